"""Landing only complete files, through the ingest DAG run for real with ``dag.test()``.

A pipeline of its own (the churn schema, named ``arrivals``) pokes every 5 s and counts files as
complete after 30 s untouched, or once a poke finds them as the previous one did: the sensor's
memory of the previous poke lives in the task's state store, across reschedules.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.dag_env import dags_with_roots

from mlops.lake.storage import LocalStorage, is_committed, partition_dir, read_partition
from mlops.tools import scenario

ROOT = Path(__file__).resolve().parents[2]
NAME = "arrivals"
SETTLE = 30


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path) -> Iterator[tuple[object, Path, Path]]:
    """The ``arrivals`` ingest DAG, with its landing and lake roots."""

    from mlops.config.pipeline import load_pipeline
    from mlops.ingest.suite import write_suite

    base = tmp_path_factory.mktemp(NAME)
    include = base / "include"
    (include / "pipelines").mkdir(parents=True)
    config = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
    config.update(name=NAME)
    config["source"].update(uri=NAME, poke_interval_seconds=5, settle_seconds=SETTLE)
    config["validation"].update(suite=f"gx/{NAME}.json")
    path = include / "pipelines" / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(config))
    write_suite(load_pipeline(path), include)
    with dags_with_roots(base, include) as dags:
        yield dags[f"{NAME}_ingest"], base / "landing" / NAME, base / "lake"


def day_bytes(day: dt.date) -> bytes:
    config = scenario.ScenarioConfig(start=day, end=day, rows_per_day=1500, pipeline=NAME)
    return scenario.encode_day(config, day, scenario.generate_day(config, day))


def run(dag, day: dt.date):
    return dag.test(logical_date=dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))


def task_instances(dag_run) -> dict[str, object]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti for ti in dag_run.get_task_instances(session=session)}


def reschedules(dag_run, task_id: str) -> int:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    ti_id = task_instances(dag_run)[task_id].id
    with create_session() as session:
        return session.scalar(select(func.count(TaskReschedule.id)).where(TaskReschedule.ti_id == ti_id))


def rescheduled(dag_id: str, task_id: str) -> bool:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(TaskReschedule.id)
            .join(TaskInstance, TaskReschedule.ti_id == TaskInstance.id)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id)
        )
        return session.scalars(query).first() is not None


def landed(landing: Path, day: dt.date, cut: int = 1) -> tuple[dt.date, bytes, Path]:
    """Day ``day``'s file in the landing folder, its first 1/``cut`` written; (day, all its bytes, path)."""
    data = day_bytes(day)
    target = landing / f"ds={day}" / "part-000.csv"
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: len(data) // cut])
    return day, data, target


def test_a_file_still_being_written_is_landed_only_once_complete(env) -> None:
    dag, landing, lake_root = env
    day, data, target = landed(landing, dt.date(2026, 1, 5), cut=3)  # the sensor fires while the copy runs

    def finish() -> None:  # once the first poke has seen the partial file
        deadline = time.monotonic() + 120
        while not rescheduled(f"{NAME}_ingest", "wait_for_source") and time.monotonic() < deadline:
            time.sleep(0.2)
        with target.open("ab") as handle:
            handle.write(data[len(data) // 3 :])

    writer = threading.Thread(target=finish)
    writer.start()
    dag_run = run(dag, day)
    writer.join()

    tis = task_instances(dag_run)
    assert str(dag_run.state) == "success", {k: str(t.state) for k, t in tis.items()}
    lake = LocalStorage(lake_root)
    assert list(read_partition(lake, partition_dir(NAME, "raw", str(day))).values()) == [data]
    # Two reschedules (a partial file, then one that had changed since), and taken by the third poke
    # seeing what the second saw, well before the files had been untouched for SETTLE seconds.
    assert reschedules(dag_run, "wait_for_source") == 2
    quiet = tis["wait_for_source"].end_date.timestamp() - target.stat().st_mtime
    assert quiet < SETTLE - 5, quiet


def test_a_redelivered_file_cut_short_is_rejected_and_withdraws_the_day(env) -> None:
    dag, landing, lake_root = env
    day, data, target = landed(landing, dt.date(2026, 1, 6))
    os.utime(target, (time.time() - 120,) * 2)  # delivered a while ago: complete at the first poke
    assert str(run(dag, day).state) == "success"
    lake = LocalStorage(lake_root)
    assert is_committed(lake, partition_dir(NAME, "validated", str(day)))

    target.write_bytes(data[:-2])  # re-delivered, cut inside the last field
    os.utime(target, (time.time() - 120,) * 2)
    dag_run = run(dag, day)
    tis = task_instances(dag_run)
    assert str(dag_run.state) == "failed"
    assert (str(tis["validate"].state), tis["validate"].try_number) == ("failed", 1), "not retried"
    assert not is_committed(lake, partition_dir(NAME, "validated", str(day)))
    assert list(read_partition(lake, partition_dir(NAME, "raw", str(day))).values()) == [data[:-2]]
    docs = read_partition(lake, partition_dir(NAME, "reports", str(day)))["data_docs.html"].decode()
    assert "not a complete CSV file (truncated, or still being written?)" in docs
