"""Hourly and monthly pipelines end to end, with ``dag.test()`` against a real MLflow server.

The shipped hourly example (``sensors.yaml``) and a monthly variant of it (written here into a
pipelines folder of the test's own) go through ingest -> train -> score -> monitor: the ingest DAG
checks event times over the whole period, training reads a window of partitions ending at the last
complete one, and score and monitor expand a date range over partitions of the grain.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tests.dag_env import dags_with_roots

from mlops.clock.logical import read_record
from mlops.config.pipeline import load_pipeline
from mlops.grain import Grain
from mlops.ingest.stage import gate, land
from mlops.ingest.suite import load_suite, write_suite
from mlops.lake.storage import LocalStorage, is_committed, partition_dir, read_manifest
from mlops.monitor.report_store import read_report
from mlops.tools.sensor_scenario import SensorConfig, write_scenario

ROOT = Path(__file__).resolve().parents[2]
TRAINED, AFTER = 8, 2  # partitions in the training window, and partitions scored and monitored after it


@dataclass(frozen=True)
class Case:
    name: str
    schedule: str
    start: dt.datetime
    machines: int


CASES = {
    "hourly": Case("sensors", "@hourly", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 120),
    "monthly": Case("sensorsmonthly", "@monthly", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 150),
}


@dataclass(frozen=True)
class Stack:
    case: Case
    grain: Grain
    keys: list[str]  # every partition landed, oldest first
    lake: LocalStorage
    dags: dict
    mlflow_uri: str


def pipeline_yaml(case: Case) -> dict:
    """The shipped example, at the case's grain and sized for a test."""
    data = yaml.safe_load((ROOT / "include" / "pipelines" / "sensors.yaml").read_text())
    data.update(name=case.name, start_date=case.start.date(), end_date=None)
    data["validation"]["suite"] = f"gx/{case.name}.json"
    data["source"]["uri"] = case.name
    data["schedules"].update(ingest=case.schedule)
    data["training"].update(
        window=TRAINED, validation=2, holdout=2, min_partitions=6, min_rows=600, n_trials=1
    )
    data["training"]["params"].update(n_estimators=40)
    data["drift"].update(min_rows=50, persistence={"window": 2, "required": 2}, retrain_cooldown=2)
    return data


@pytest.fixture(scope="module", params=list(CASES))
def stack(request, tmp_path_factory, airflow_db: Path, mlflow_server: str) -> Iterator[Stack]:

    case = CASES[request.param]
    base = tmp_path_factory.mktemp(case.name)
    include = base / "include"
    (include / "pipelines").mkdir(parents=True)
    path = include / "pipelines" / f"{case.name}.yaml"
    path.write_text(yaml.safe_dump(pipeline_yaml(case)))
    pipeline = load_pipeline(path)
    write_suite(pipeline, include)
    grain = pipeline.grain
    config = SensorConfig(
        start=case.start,
        periods=TRAINED + AFTER,
        grain=grain,
        machines=case.machines,
        shift_start=None,
        pipeline=case.name,
    )
    write_scenario(config, LocalStorage(base / "landing").write_bytes)
    with dags_with_roots(base, include) as dags:
        for dag in dags.values():
            for task in dag.tasks:
                task.retries = 0
        yield Stack(case, grain, config.partitions(), LocalStorage(base / "lake"), dags, mlflow_server)
    shutil.rmtree(base, ignore_errors=True)


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def test_ingest_train_score_monitor_at_the_grain(stack: Stack) -> None:
    name, grain, keys, lake = stack.case.name, stack.grain, stack.keys, stack.lake
    pipeline = load_pipeline(Path(os.environ["MLOPS_INCLUDE_DIR"]) / "pipelines" / f"{name}.yaml")

    # Ingest through the DAG: one run per partition, its event times checked over the whole period.
    first = keys[0]
    run = stack.dags[f"{name}_ingest"].test(logical_date=grain.start(first) + dt.timedelta(minutes=1))
    assert str(run.state) == "success", states(run)
    extra = read_manifest(lake, partition_dir(name, "validated", first)).extra
    assert extra["validated"] >= 0.98 * stack.case.machines, extra  # a whole period of event times passes
    # The rest of the window through the same core the DAG calls, to keep the test short.
    landing = LocalStorage(Path(os.environ["MLOPS_LANDING_ROOT"]) / name)
    suite = load_suite(pipeline, Path(os.environ["MLOPS_INCLUDE_DIR"]))
    for ds in keys[1:TRAINED]:
        land(landing, lake, pipeline, ds)
        gate(lake, pipeline, suite, ds, interval_start=grain.start(ds), interval_end=grain.end(ds))

    # Train on the window ending at the last complete partition before the logical date.
    after = keys[TRAINED:]
    logical = grain.start(after[0]) + (grain.end(after[0]) - grain.start(after[0])) / 2
    run = stack.dags[f"{name}_train"].test(logical_date=logical, run_conf={"reason": "first model"})
    assert str(run.state) == "success", states(run)
    record = read_record(lake, name, keys[TRAINED - 1], "manual")
    assert record is not None and record.outcome == "promoted", record
    assert record.effective_day == after[0]

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)
    version = client.get_model_version(name, record.version)
    assert version.tags["window.partitions"].split(",") == keys[:TRAINED]

    for ds in after:
        land(landing, lake, pipeline, ds)
        gate(lake, pipeline, suite, ds, interval_start=grain.start(ds), interval_end=grain.end(ds))

    # A range expands over partitions of the grain, each scored and monitored with the champion.
    span = {"start_ds": after[0], "end_ds": after[-1]}
    run = stack.dags[f"{name}_score"].test(run_conf=span)
    assert str(run.state) == "success", states(run)
    assert all(is_committed(lake, partition_dir(name, "predictions", ds)) for ds in after)
    run = stack.dags[f"{name}_monitor"].test(run_conf=span)
    assert str(run.state) == "success", states(run)
    reports = [read_report(lake, name, ds) for ds in after]
    assert [r["ds"] for r in reports if r] == after
    assert all(r["champion_version"] == record.version for r in reports)
