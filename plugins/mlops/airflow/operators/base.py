"""What every operator of the package shares: its pipeline's config, the lake, the partition date."""

from __future__ import annotations

import datetime as dt
import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.config.pipeline import Pipeline, load_pipeline
from mlops.grain import Grain, run_range
from mlops.settings import Settings, get_settings

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

    from mlops.airflow.hooks.lake import LakeHook
    from mlops.airflow.hooks.mlflow import MlflowHook
    from mlops.registry.champion import Move


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

    def notify(self, context: Context, event: str, title: str, **notice: Any) -> dict[str, str]:
        """Send ``event`` to the channels the pipeline chose for it, with a link to this run first;
        returns each channel's outcome. Never raises. ``notice``: the keywords of ``notify_pipeline``."""
        return notify_pipeline(self.pipeline, context, event, title, **notice)

    def lake_hook(self, root: str | None = None) -> LakeHook:
        from mlops.airflow.hooks.lake import LakeHook

        return LakeHook(root=root or self.settings.lake_root, aws_conn_id=self.settings.aws_conn_id)

    def landing_hook(self) -> LakeHook:
        return self.lake_hook(self.settings.source_root(self.pipeline.source.uri))

    def interval(self, context: Context) -> tuple[str, dt.datetime, dt.datetime]:
        """The run's partition: the one of the pipeline's grain holding the logical date, and its
        period as a half-open interval.

        Scheduled runs of a data-interval timetable have the interval's start as logical date; a
        manual run for "2026-01-19" means that day's partition, not the interval Airflow would infer.
        """
        return partition_interval(context, self.pipeline.grain)


def reports_base_url() -> str | None:
    """The Airflow API server's public address (``[api] base_url``) when the deployment sets one;
    report links are relative to the UI's origin otherwise."""
    from airflow.sdk.configuration import conf

    return conf.get("api", "base_url", fallback=None) or None


def notify_pipeline(
    pipeline: Pipeline,
    context: Context,
    event: str,
    title: str,
    *,
    day: str | None = None,
    version: str | None = None,
    details: list[str] | None = None,
    links: dict[str, str | None] | None = None,
) -> dict[str, str]:
    """``PipelineOperator.notify`` for code that has a pipeline but no operator (a failure callback)."""
    from mlops.airflow.notifications import Notice, absolute_links, run_url, send

    if not pipeline.notifications.channels_for(event):
        return {}
    try:
        ti = context["ti"]
        run = run_url(reports_base_url(), ti.dag_id, context["run_id"])
        notice = Notice(
            pipeline=pipeline.name,
            event=event,
            title=title,
            day=day,
            version=version,
            details=[f"Airflow: {ti.dag_id} / {context['run_id']} / {ti.task_id}", *(details or [])],
            links=absolute_links({"Airflow run": run, **(links or {})}),
        )
    except Exception:  # building the message must not fail the task either
        logging.getLogger(__name__).exception(
            "%s: the %s notification could not be built", pipeline.name, event
        )
        return {}
    return send(pipeline.notifications, notice, context)


class FailureNotifier:
    """``on_failure_callback`` of a pipeline's tasks: Airflow calls it once the last retry failed."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline_name = pipeline

    def __call__(self, context: Context) -> None:
        pipeline = load_pipeline(get_settings().pipelines_dir / f"{self.pipeline_name}.yaml")
        ti = context["ti"]
        error = context.get("exception")
        day = context.get("logical_date")
        notify_pipeline(
            pipeline,
            context,
            "task_failed",
            f"task {ti.task_id} failed after its last try",
            day=day.date().isoformat() if day else None,
            details=[
                f"try {ti.try_number}: {str(error).splitlines()[0][:500] if error else 'no error recorded'}"
            ],
        )


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

    def make_move(self, context: Context, move: Move, *, superseded_fails: bool) -> dict[str, Any]:
        """Move ``champion`` to ``move.version`` by compare-and-set against ``move.previous`` (the
        champion this run read), audited and signed; returns the outlet event's extra.

        The one sequence of a promotion and a rollback: refuse an unverified version, move under the
        promotion lock (``mlops.registry.champion.move_champion``), then link the version, set the
        extra on every outlet (``<pipeline>.champion``) and send ``champion_changed``. Nothing fires
        when the move is refused: ``ChampionChanged`` fails the task (no retry); ``Superseded`` (a
        decision later in the logical order holds) skips it, or fails it with ``superseded_fails``.
        """
        from mlops.registry import champion

        self.refuse_unverified(move.version)
        try:
            champion.move_champion(
                self.mlflow.client, move, expected=move.previous, key=self.mlflow.signing_key
            )
        except champion.Superseded as exc:
            raise (AirflowFailException if superseded_fails else AirflowSkipException)(str(exc)) from None
        except champion.ChampionChanged as exc:
            raise AirflowFailException(str(exc)) from None
        self.mlflow_url = self.mlflow.version_url(move.model, move.version)
        extra = {
            "version": move.version,
            "previous": move.previous,
            "reason": move.reason,
            "run_id": context["run_id"],
            "effective_day": move.effective_day,
        }
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.info(
            "champion is now version %s (%s; was %s) as of %s",
            move.version,
            move.kind,
            move.previous,
            move.effective_day,
        )
        self.announce_move(context, move)
        return extra

    def announce_move(self, context: Context, move: Move) -> None:
        """The ``champion_changed`` notification of a promotion or a rollback."""
        self.notify(
            context,
            "champion_changed",
            f"champion is now version {move.version} ({move.kind})",
            day=move.effective_day,
            version=move.version,
            details=[
                f"previous champion: {move.previous or 'none'}",
                f"effective from {move.effective_day}",
                move.reason,
            ],
            links={"MLflow version": self.mlflow.version_url(move.model, move.version)},
        )

    @cached_property
    def mlflow(self) -> MlflowHook:
        from mlops.airflow.hooks.mlflow import MlflowHook

        return MlflowHook(self.settings.mlflow_conn_id)

    def refuse_unverified(self, version: str) -> None:
        """Fail (no retry) unless ``version``'s files match its signature: the champion alias only
        ever points at a verified version."""
        from airflow.sdk.exceptions import AirflowFailException

        from mlops.registry.signing import UnverifiedModel

        try:
            self.mlflow.verify_version(self.pipeline.name, str(version))
        except UnverifiedModel as exc:
            raise AirflowFailException(f"not moving champion: {exc}") from None


def partition_interval(context: Context, grain: Grain) -> tuple[str, dt.datetime, dt.datetime]:
    """The partition of ``grain`` holding the run's logical date: its key, start and end."""
    logical = context.get("logical_date")
    if logical is None:
        raise ValueError("this task needs a logical date: trigger the run with one")
    ds = grain.key(logical)
    return ds, grain.start(ds), grain.end(ds)


def logical_day(context: Context, grain: Grain) -> str:
    """The run's partition on the logical clock: the one holding its logical date, or when it was
    due to run if it has none."""
    return grain.key(context.get("logical_date") or context["dag_run"].run_after)


def effective_from(operator: PipelineOperator, day: str) -> str:
    """The partition a move decided as of ``day`` takes effect: ``day``, or the first one after it
    that no stage has acted on (``clock.first_open_day``), logged when they differ."""
    from mlops.clock.logical import first_open_day

    effective = first_open_day(
        operator.lake_hook().storage, operator.pipeline.name, day, operator.pipeline.grain
    )
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


def replay_of(context: Context) -> dict[str, Any] | None:
    """The quarantine replay that published the run's partition again (its event's ``replay``:
    fix, run, rows, attempt), or None for a run of the day's first publication."""
    events = [e for batch in (context.get("triggering_asset_events") or {}).values() for e in batch]
    found = [(e.extra or {}).get("replay") for e in events]
    replays = [r for r in found if isinstance(r, dict)]
    return replays[-1] if replays else None


def replay_tags(context: Context) -> dict[str, str]:
    """MLflow tags that record a run as a re-run after a quarantine replay (none otherwise)."""
    replay = replay_of(context)
    if replay is None:
        return {}
    return {
        "rerun_of": "quarantine_replay",
        "replay.run_id": str(replay.get("run_id", "")),
        "replay.fix": str(replay.get("fix", "")),
    }


class BadRange(AirflowFailException, ValueError):
    """A run's ``start_ds``/``end_ds`` name no range it can process: it fails at once, without retries
    (the same form would fail again)."""


def partitions_of(context: Context, grain: Grain) -> list[str]:
    """The partitions a run processes, oldest first, as keys of the pipeline's ``grain``.

    Manual runs over history name them with ``start_ds``/``end_ds`` (every partition between,
    inclusive; at most a year of them, see ``grain.run_range``, else ``BadRange``); a run for one
    partition (the ``validated`` event of a partition starts one per partition, and the trigger form
    takes a partition key) takes its key; a run started by unkeyed events takes the ``ds`` of each
    of them; otherwise the logical date's partition.
    """
    params = context.get("params") or {}
    if params.get("start_ds"):
        try:
            return run_range(grain, str(params["start_ds"]), str(params.get("end_ds") or params["start_ds"]))
        except ValueError as exc:
            raise BadRange(str(exc)) from None
    key = getattr(context.get("dag_run"), "partition_key", None)
    if key:
        try:
            return [grain.key(str(key))]
        except ValueError:
            raise ValueError(
                f"partition key {key!r} is not a partition (YYYY-MM-DD, or YYYY-MM-DDTHH for an hour)"
            ) from None
    events = [e for batch in (context.get("triggering_asset_events") or {}).values() for e in batch]
    found = sorted({str((e.extra or {})["ds"]) for e in events if "ds" in (e.extra or {})})
    if found:
        return found
    return [partition_interval(context, grain)[0]]
