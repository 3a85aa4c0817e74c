"""What every operator of the package shares: its pipeline's config, the lake, the partition date."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseOperatorLink

from mlops.config import Pipeline, load_pipeline
from mlops.settings import Settings, get_settings

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

    from mlops.hooks.lake import LakeHook
    from mlops.hooks.mlflow import MlflowHook


class PipelineOperator(BaseOperator):
    """Base of the package's operators. ``pipeline`` (the config name) is templated.

    The config is re-read from YAML at execute time, so a task runs with the rules it was parsed with
    only if the file did not change in between: the YAML in the deployment is the truth.
    """

    template_fields = ("pipeline_name",)

    def __init__(self, *, pipeline: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline_name = pipeline

    @cached_property
    def settings(self) -> Settings:
        return get_settings()

    @cached_property
    def pipeline(self) -> Pipeline:
        return load_pipeline(self.settings.pipelines_dir / f"{self.pipeline_name}.yaml")

    def lake_hook(self, root: str | None = None) -> LakeHook:
        from mlops.hooks.lake import LakeHook

        return LakeHook(root=root or self.settings.lake_root, aws_conn_id=self.settings.aws_conn_id)

    def landing_hook(self) -> LakeHook:
        return self.lake_hook(self.settings.source_root(self.pipeline.source.uri))

    @staticmethod
    def interval(context: Context) -> tuple[str, dt.datetime, dt.datetime]:
        """The run's partition: the logical date's day (UTC), and that day as a half-open interval.

        Scheduled runs of a daily data-interval timetable have the interval's start as logical date;
        a manual run for "2026-01-19" means that day, not the interval Airflow would infer before it.
        """
        logical = context.get("logical_date")
        if logical is None:
            raise ValueError("this task needs a logical date: trigger the run with one")
        day = logical.astimezone(dt.UTC).date()
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return day.isoformat(), start, start + dt.timedelta(days=1)


def reports_base_url() -> str | None:
    """The Airflow API server's public address (``[api] base_url``) when the deployment sets one;
    report links are relative to the UI's origin otherwise."""
    from airflow.sdk.configuration import conf

    return conf.get("api", "base_url", fallback=None) or None


class TaskSetLink(BaseOperatorLink):
    """A link whose URL the task set while it ran, in the operator attribute ``attribute``."""

    name = ""
    attribute = ""

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return getattr(operator, self.attribute, "") or ""


class MlflowRunLink(TaskSetLink):
    """The task's MLflow run (the training run for trials, the registered version for the gate)."""

    name = "MLflow"
    attribute = "mlflow_url"


class ModelOperator(PipelineOperator):
    """An operator that works with MLflow: the hook, and a link to what it touched there."""

    operator_extra_links = (MlflowRunLink(),)

    def __init__(self, *, pipeline: str, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.mlflow_url: str | None = None

    @cached_property
    def mlflow(self) -> MlflowHook:
        from mlops.hooks.mlflow import MlflowHook

        return MlflowHook(self.settings.mlflow_conn_id)

    def refuse_unverified(self, version: str) -> None:
        """Fail (no retry) unless ``version``'s files match its signature: the champion alias only
        ever points at a verified version."""
        from airflow.sdk.exceptions import AirflowFailException

        from mlops.signing import UnverifiedModel

        try:
            self.mlflow.verify_version(self.pipeline.name, str(version))
        except UnverifiedModel as exc:
            raise AirflowFailException(f"not moving champion: {exc}") from None


def logical_day(context: Context) -> str:
    """The run's day on the logical clock: its logical date, or when it was due to run if it has none."""
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.astimezone(dt.UTC).date().isoformat()


def effective_from(operator: PipelineOperator, day: str) -> str:
    """The day a move decided as of ``day`` takes effect: ``day``, or the first day after it that no
    stage has acted on (``clock.first_open_day``), logged when they differ."""
    from mlops.clock import first_open_day

    effective = first_open_day(operator.lake_hook().storage, operator.pipeline.name, day)
    if effective != day:
        operator.log.warning(
            "%s: days %s .. the day before %s were already scored or monitored with the champion of "
            "their day; this move takes effect from %s, never retroactively",
            operator.pipeline.name,
            day,
            effective,
            effective,
        )
    return effective


def run_type(context: Context) -> str:
    """The run's type as a plain string: scheduled, manual, backfill, asset_triggered, ..."""
    kind = context["dag_run"].run_type
    return str(getattr(kind, "value", kind))


def partitions_of(context: Context) -> list[str]:
    """The partitions a run processes, oldest first.

    Manual runs over history name them with ``start_ds``/``end_ds``; a run for one partition (the
    ``validated`` event of a day starts one per day, and the trigger form takes a partition key)
    takes its key; a run started by unkeyed events takes the ``ds`` of each of them; otherwise the
    logical date's day.
    """
    params = context.get("params") or {}
    if params.get("start_ds"):
        first = dt.date.fromisoformat(params["start_ds"])
        last = dt.date.fromisoformat(params.get("end_ds") or params["start_ds"])
        if last < first:
            raise ValueError(f"end_ds {last} is before start_ds {first}")
        return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    key = getattr(context.get("dag_run"), "partition_key", None)
    if key:
        try:
            return [dt.date.fromisoformat(str(key)[:10]).isoformat()]
        except ValueError:
            raise ValueError(f"partition key {key!r} is not a day (YYYY-MM-DD)") from None
    events = [e for batch in (context.get("triggering_asset_events") or {}).values() for e in batch]
    found = sorted({str((e.extra or {})["ds"]) for e in events if "ds" in (e.extra or {})})
    if found:
        return found
    return [PipelineOperator.interval(context)[0]]
