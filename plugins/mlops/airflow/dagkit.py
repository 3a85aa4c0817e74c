"""What every DAG file shares: one DAG per pipeline config, with the same defaults.

A DAG file calls ``build_stage(stage, build, doc)``; ``build`` wires one pipeline's DAG. Parsing
reads YAML files from local disk and touches no database, network or heavy library.
A pipeline whose YAML is broken still gets a DAG under its id, paused, tagged ``config-error``,
whose only task fails with the config error: the UI shows what to fix and the other pipelines'
DAGs are untouched.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any

from airflow.sdk import DAG, Asset, Param, task

from mlops.config.pipeline import ConfigError, Pipeline, discover
from mlops.grain import Grain
from mlops.names import Stage, asset_name, dag_id
from mlops.settings import get_settings

HOURLY_KEY_PATTERN = r"^\d{4}-\d{2}-\d{2}(T\d{2})?$"
log = logging.getLogger(__name__)


def validated_asset(pipeline: str) -> Asset:
    """A partition of ``pipeline`` passed the gate; extra ``{ds, rows, quarantined, path}``."""
    return Asset(asset_name(pipeline, "validated"))


def drift_asset(pipeline: str) -> Asset:
    """Drift above threshold; extra ``{ds, champion_version, features, reason}``."""
    return Asset(asset_name(pipeline, "drift"))


def champion_asset(pipeline: str) -> Asset:
    """The ``champion`` alias moved; extra names the version, the previous one and why."""
    return Asset(asset_name(pipeline, "champion"))


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def end_of(pipeline: Pipeline) -> dt.datetime | None:
    """The last scheduled day (inclusive), or None for an open-ended pipeline."""
    return _start(pipeline.end_date) + dt.timedelta(hours=23, minutes=59) if pipeline.end_date else None


def dag_kwargs(pipeline: Pipeline, stage: Stage, doc: str | None) -> dict[str, Any]:
    """The arguments every stage's DAG shares: owner, retries, tags, dates, docs."""
    intro = f"**Pipeline `{pipeline.name}`**: {pipeline.description}\n\n" if pipeline.description else ""
    failure: dict[str, Any] = {}
    if pipeline.notifications.channels_for("task_failed"):
        from mlops.airflow.operators.base import FailureNotifier

        failure["on_failure_callback"] = FailureNotifier(pipeline.name)
    return {
        "dag_id": dag_id(pipeline.name, stage),
        "description": f"{pipeline.name}: {stage}",
        "doc_md": intro + (doc or ""),
        "start_date": _start(pipeline.start_date),
        "tags": ["mlops", pipeline.name, stage],
        "default_args": {
            "owner": pipeline.owner,
            "retries": pipeline.retries,
            "retry_delay": dt.timedelta(minutes=pipeline.retry_delay_minutes),
            "retry_exponential_backoff": True,
            "execution_timeout": dt.timedelta(minutes=pipeline.task_timeout_minutes),
            **failure,
        },
        "max_active_runs": {
            "ingest": pipeline.schedules.max_active_ingest_runs,
            "train": pipeline.schedules.max_active_train_runs,
        }.get(stage, 1),
    }


# Airflow's limits on a DAG id and a tag: a broken file's name must fit them, or its error DAG
# would fail the whole DAG file.
DAG_ID_MAX, TAG_MAX = 250, 100


def _fenced(text: str) -> str:
    """``text`` as a Markdown code block, fenced with more backticks than it holds in a row."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}\n"


def _broken(name: str, stage: Stage, error: Exception) -> DAG:
    """A DAG that shows the error in the UI and fails when run; its id and tags are valid whatever
    the file name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[: DAG_ID_MAX - len(stage) - 1]
    message = str(error)
    with DAG(
        dag_id=dag_id(safe, stage),
        description=f"{name}: pipeline config error",
        doc_md=f"## Pipeline config error\n\n{_fenced(message)}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        tags=["mlops", name[:TAG_MAX], stage, "config-error"],
        is_paused_upon_creation=True,
        default_args={"owner": "mlops", "retries": 0},
    ) as dag:

        @task(task_id="config_error")
        def config_error() -> None:
            raise ConfigError(message)

        config_error()
    return dag


def build_stage(stage: Stage, build: Callable[[Pipeline], DAG]) -> dict[str, DAG]:
    """Build ``stage``'s DAG for every pipeline config; returns them by dag_id."""
    dags: dict[str, DAG] = {}
    for name, loaded in discover(get_settings().pipelines_dir).items():
        if not isinstance(loaded, ConfigError):
            try:
                dag = build(loaded)
            except Exception as exc:  # one pipeline's DAG never takes the others' down
                loaded = ConfigError(f"pipeline {name}: its {stage} DAG cannot be built: {exc}")
        if isinstance(loaded, ConfigError):
            log.error("pipeline %s: %s", name, loaded)
            try:
                dag = _broken(name, stage, loaded)
            except Exception:  # even then, the other pipelines keep their DAGs
                log.exception("pipeline %s: its config-error DAG cannot be built either", name)
                continue
        dags[dag.dag_id] = dag
    return dags


def date_range_params(purpose: str, grain: Grain) -> dict[str, Param]:
    """Optional ``start_ds``/``end_ds`` for manual runs over history; empty means the run's own ds.

    Every partition of the grain between the two is processed. An hourly key is no date: its field
    takes ``YYYY-MM-DDTHH`` text (a date alone means the hour starting it).
    """
    section = "Date range"
    shape = {"format": "date"} if grain.name != "hour" else {"pattern": HOURLY_KEY_PATTERN}
    first, last = ("First day", "Last day") if grain.name == "day" else ("First partition", "Last partition")

    def key(title: str, description: str) -> Param:
        return Param(
            None, type=["null", "string"], **shape, title=title, section=section, description=description
        )

    return {
        "start_ds": key(first, f"first {grain.name} to process ({purpose}); empty: the triggering ones"),
        "end_ds": key(last, f"last {grain.name} to process (inclusive); empty: same as start_ds"),
    }


def version_param(title: str, section: str, description: str) -> Param:
    """A form field for a registered model version (a positive number), empty by default."""
    return Param(
        None, type=["null", "integer"], minimum=1, title=title, section=section, description=description
    )
