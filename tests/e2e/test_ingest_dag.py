"""The ingest DAG, run for real with ``dag.test()``: land, validate, gate, on local disk and on S3.

Each run goes through Airflow's task runner against a migrated metadata database; the lake is real
files (or a real S3 server on loopback, through the Amazon provider) and GX runs the real suite.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mlops.lake.storage import LocalStorage, partition_dir, read_manifest, read_partition
from mlops.tools import scenario

ROOT = Path(__file__).resolve().parents[2]
ROWS = 1500


@pytest.fixture(scope="module")
def dag(airflow_db: Path):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors
    return bag.dags["churn_ingest"]


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Fresh local landing and lake roots for one test."""
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    old = {k: os.environ.get(k) for k in ("MLOPS_LANDING_ROOT", "MLOPS_LAKE_ROOT")}
    os.environ["MLOPS_LANDING_ROOT"], os.environ["MLOPS_LAKE_ROOT"] = str(landing), str(lake)
    yield landing, lake
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def land_scenario(landing: Path, start: str, end: str, **knobs) -> None:
    config = scenario.ScenarioConfig(
        start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end), rows_per_day=ROWS, **knobs
    )
    storage = LocalStorage(landing)
    scenario.write_scenario(config, storage.write_bytes)


def run(dag, ds: str):
    day = dt.date.fromisoformat(ds)
    return dag.test(logical_date=dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def frame(storage, zone: str, ds: str) -> pd.DataFrame:
    files = read_partition(storage, partition_dir("churn", zone, ds))
    return pd.concat([pd.read_parquet(io.BytesIO(data)) for data in files.values()], ignore_index=True)


def raw_rows(storage, ds: str) -> int:
    files = read_partition(storage, partition_dir("churn", "raw", ds))
    return sum(len(pd.read_csv(io.BytesIO(data), dtype=str)) for data in files.values())


def asset_events(ds: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "churn.validated")
        ).all()
        found = [e for e in rows if (e.extra or {}).get("ds") == ds]
        # Keyed by the day, so score and monitor get one run per day.
        assert all(e.partition_key == ds for e in found), [e.partition_key for e in found]
        return [dict(e.extra) for e in found]


def test_a_clean_day_is_landed_validated_and_reconciled(dag, roots) -> None:
    landing, lake_root = roots
    land_scenario(landing, "2026-01-05", "2026-01-05")
    dag_run = run(dag, "2026-01-05")
    assert str(dag_run.state) == "success", states(dag_run)

    lake = LocalStorage(lake_root)
    source = (landing / "churn" / "ds=2026-01-05" / "part-000.csv").read_bytes()
    assert list(read_partition(lake, partition_dir("churn", "raw", "2026-01-05")).values()) == [source]

    validated, quarantined = frame(lake, "validated", "2026-01-05"), frame(lake, "quarantine", "2026-01-05")
    assert raw_rows(lake, "2026-01-05") == len(validated) + len(quarantined)
    assert 0 < len(quarantined) < 0.03 * len(validated)
    assert quarantined["_quarantine_reasons"].str.startswith("expect_").all()
    assert validated["customer_id"].is_unique
    assert str(validated["event_ts"].dtype).startswith("datetime64")

    reports = read_partition(lake, partition_dir("churn", "reports", "2026-01-05"))
    assert b"<html" in reports["data_docs.html"].lower()
    assert b"expect_table_row_count_to_be_between" in reports["validation.json"]

    [extra] = asset_events("2026-01-05")
    assert extra == {
        "ds": "2026-01-05",
        "rows": len(validated) + len(quarantined),
        "quarantined": len(quarantined),
        "path": str(lake_root / partition_dir("churn", "validated", "2026-01-05")),
    }


def test_rerun_is_idempotent(dag, roots) -> None:
    landing, lake_root = roots
    land_scenario(landing, "2026-01-06", "2026-01-06")
    lake = LocalStorage(lake_root)
    assert str(run(dag, "2026-01-06").state) == "success"
    first = frame(lake, "validated", "2026-01-06")
    first_attempt = read_manifest(lake, partition_dir("churn", "validated", "2026-01-06")).attempt

    assert str(run(dag, "2026-01-06").state) == "success"
    again = frame(lake, "validated", "2026-01-06")
    pd.testing.assert_frame_equal(first, again)
    directory = partition_dir("churn", "validated", "2026-01-06")
    assert read_manifest(lake, directory).attempt != first_attempt
    assert len(lake.list_files(directory)) == 2, "the old attempt's files must be gone"


@pytest.mark.parametrize(
    ("day", "knobs", "phrase"),
    [
        pytest.param("2026-01-20", {}, "not a readable CSV file", id="corrupt-file"),
        pytest.param("2026-02-10", {}, "monthly_charges", id="missing-column"),
    ],
)
def test_a_bad_day_fails_clearly_and_keeps_its_raw_copy(
    dag, roots, day: str, knobs: dict, phrase: str
) -> None:
    landing, lake_root = roots
    land_scenario(landing, day, day, **knobs)
    dag_run = run(dag, day)
    assert str(dag_run.state) == "failed"
    assert states(dag_run)["validate"] == "failed"
    assert states(dag_run)["land"] == "success"

    lake = LocalStorage(lake_root)
    source = (landing / "churn" / f"ds={day}" / "part-000.csv").read_bytes()
    assert list(read_partition(lake, partition_dir("churn", "raw", day)).values()) == [source]
    assert not lake.list_files(partition_dir("churn", "validated", day))
    assert asset_events(day) == []
    # The rejection is on record, so training knows the day failed rather than is still to come.
    from mlops.clock.window import day_state

    assert day_state(lake, "churn", day) == "failed"
    assert b"<html" in read_partition(lake, partition_dir("churn", "reports", day))["data_docs.html"]


def test_a_rerun_that_fails_withdraws_the_days_validated_data(dag, roots) -> None:
    landing, lake_root = roots
    land_scenario(landing, "2026-02-10", "2026-02-10", missing_column_day=None)
    assert str(run(dag, "2026-02-10").state) == "success"
    lake = LocalStorage(lake_root)
    assert len(frame(lake, "validated", "2026-02-10")) > 0
    # The provider re-delivers the day, now without a required column.
    land_scenario(landing, "2026-02-10", "2026-02-10")
    assert str(run(dag, "2026-02-10").state) == "failed"
    for zone in ("validated", "quarantine"):
        assert lake.list_files(partition_dir("churn", zone, "2026-02-10")) == []
    assert raw_rows(lake, "2026-02-10") > 0, "the raw copy of the new file is kept"


def test_failure_message_names_the_problem(roots) -> None:
    """The task's error (what the UI shows) names the file and what is wrong with it."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlops.airflow.operators.ingest import LandPartitionOperator, ValidatePartitionOperator

    landing, _ = roots
    land_scenario(landing, "2026-02-10", "2026-02-10")
    context = {"logical_date": dt.datetime(2026, 2, 10, tzinfo=dt.UTC), "outlet_events": {}}
    LandPartitionOperator(task_id="land", pipeline="churn").execute(context)
    with pytest.raises(AirflowFailException) as info:
        ValidatePartitionOperator(task_id="validate", pipeline="churn").execute(context)
    message = str(info.value)
    assert (
        "2026-02-10" in message
        and "monthly_charges" in message
        and "part-000" in message
        and "lacks the declared column(s) ['monthly_charges']" in message
    )


def test_replay_after_the_source_is_fixed(dag, roots) -> None:
    """A failed day is re-run by clearing it (UI "Clear", or a backfill reprocessing failed runs)."""
    landing, lake_root = roots
    land_scenario(landing, "2026-01-20", "2026-01-20")
    assert str(run(dag, "2026-01-20").state) == "failed"
    # The provider re-delivers a good file for the day.
    land_scenario(landing, "2026-01-20", "2026-01-20", corrupt_day=None)
    # dag.test() clears the day's task instances and runs them again, as "Clear" does.
    assert str(run(dag, "2026-01-20").state) == "success"
    lake = LocalStorage(lake_root)
    assert raw_rows(lake, "2026-01-20") == len(frame(lake, "validated", "2026-01-20")) + len(
        frame(lake, "quarantine", "2026-01-20")
    )
    assert len(asset_events("2026-01-20")) == 1


def test_missing_source_times_out_naming_the_path(roots) -> None:
    from airflow.sdk.exceptions import AirflowSensorTimeout

    from mlops.airflow.operators.ingest import WaitForSourceSensor

    landing, _ = roots
    sensor = WaitForSourceSensor(task_id="wait", pipeline="churn", timeout=0, poke_interval=5, mode="poke")
    context = {"logical_date": dt.datetime(2026, 1, 7, tzinfo=dt.UTC)}
    assert sensor.poke(context) is False
    land_scenario(landing, "2026-01-07", "2026-01-07")
    assert sensor.poke(context) is True
    with pytest.raises(AirflowSensorTimeout, match=str(landing / "churn" / "ds=2026-01-08")):
        sensor.execute({**context, "logical_date": dt.datetime(2026, 1, 8, tzinfo=dt.UTC), "ti": None})


def test_ingest_against_s3(dag, s3_client, monkeypatch) -> None:
    """Landing and lake both in S3 on a loopback server, reached through ``aws_default``."""
    from mlops.airflow.hooks.lake import LakeHook

    s3_client.create_bucket(Bucket="landing")
    s3_client.create_bucket(Bucket="lake")
    monkeypatch.setenv("MLOPS_LANDING_ROOT", "s3://landing/incoming")
    monkeypatch.setenv("MLOPS_LAKE_ROOT", "s3://lake/mlops")
    config = scenario.ScenarioConfig(
        start=dt.date(2026, 1, 19), end=dt.date(2026, 1, 21), rows_per_day=ROWS, format="csv"
    )
    scenario.write_scenario(config, LakeHook(root="s3://landing/incoming").write_bytes)

    outcome = {ds: str(run(dag, ds).state) for ds in ("2026-01-19", "2026-01-20", "2026-01-21")}
    assert outcome == {"2026-01-19": "success", "2026-01-20": "failed", "2026-01-21": "success"}

    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket="lake", Prefix="mlops/")["Contents"]}
    for ds in ("2026-01-19", "2026-01-21"):
        for zone in ("raw", "validated", "quarantine", "reports"):
            assert f"mlops/churn/{zone}/ds={ds}/_SUCCESS" in keys
    assert "mlops/churn/raw/ds=2026-01-20/_SUCCESS" in keys
    assert not any(k.startswith("mlops/churn/validated/ds=2026-01-20/") for k in keys)

    lake = LakeHook(root="s3://lake/mlops").storage
    for ds in ("2026-01-19", "2026-01-21"):
        assert raw_rows(lake, ds) == len(frame(lake, "validated", ds)) + len(frame(lake, "quarantine", ds))
    [extra] = asset_events("2026-01-21")
    assert extra["path"] == "s3://lake/mlops/churn/validated/ds=2026-01-21"
