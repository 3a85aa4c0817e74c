"""Quarantine you can act on, end to end with ``dag.test()``: ingest a day with bad rows, fix them
the two ways a steward does (a fix of the pipeline YAML, an edited export submitted through the
CLI), replay them with the ``churn_replay_quarantine`` DAG, and check the lake and the events.

Real files, the real suite (GX), Airflow's task runner against a migrated metadata database.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tests.e2e.test_ingest_dag import asset_events, frame, land_scenario, raw_rows, roots, run, states

from mlops.cli.quarantine import main as quarantine_cli
from mlops.lake.storage import LocalStorage, partition_dir, read_manifest

__all__ = ["roots"]  # the fixture, used by name

ROOT = Path(__file__).resolve().parents[2]
# Days no other test of the session ingests: the asset events are counted per day.
BAD_DAY, OTHER_DAY = "2026-02-24", "2026-02-23"
PLATINUM, NOT_A_NUMBER = [2, 50, 700], [9, 1000]


@pytest.fixture(scope="module")
def bag(airflow_db: Path):
    from airflow.dag_processing.dagbag import DagBag

    found = DagBag(dag_folder=str(ROOT / "dags"))
    assert not found.import_errors
    return found


def spoil(landing: Path, ds: str) -> None:
    """An upstream system sends a plan level the config does not know and text in a number."""
    path = landing / "churn" / f"ds={ds}" / "part-000.csv"
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows.loc[PLATINUM, "plan"] = "platinum"
    rows.loc[NOT_A_NUMBER, "tenure_months"] = "N/A"
    rows.to_csv(path, index=False)


def replay(bag, fix: str, *partitions: str):
    return bag.dags["churn_replay_quarantine"].test(run_conf={"partitions": list(partitions), "fix": fix})


def snapshot(lake: LocalStorage, ds: str) -> dict[str, object]:
    """What another day's partitions are: their attempts and their rows."""
    return {
        zone: (read_manifest(lake, partition_dir("churn", zone, ds)).attempt, frame(lake, zone, ds))
        for zone in ("validated", "quarantine")
    }


def test_bad_rows_are_fixed_both_ways_and_replayed_into_the_lake(bag, roots, tmp_path: Path) -> None:
    landing, lake_root = roots
    land_scenario(landing, OTHER_DAY, BAD_DAY, bad_row_fraction=0.0)
    spoil(landing, BAD_DAY)
    ingest = bag.dags["churn_ingest"]
    for ds in (OTHER_DAY, BAD_DAY):
        assert str(run(ingest, ds).state) == "success"
    lake = LocalStorage(lake_root)
    quarantined = frame(lake, "quarantine", BAD_DAY)
    assert sorted(quarantined["_row_number"]) == sorted(PLATINUM + NOT_A_NUMBER)
    other = snapshot(lake, OTHER_DAY)
    first_attempt = read_manifest(lake, partition_dir("churn", "validated", BAD_DAY)).attempt

    # 1. The YAML's fix renames the plan level; the text-in-number rows still fail, as before.
    dag_run = replay(bag, "plan_renamed", BAD_DAY)
    assert str(dag_run.state) == "success", states(dag_run)
    after_fix = read_manifest(lake, partition_dir("churn", "validated", BAD_DAY))
    assert after_fix.attempt != first_attempt and after_fix.history[0]["attempt"] == first_attempt
    left = frame(lake, "quarantine", BAD_DAY)
    assert sorted(left["_row_number"]) == NOT_A_NUMBER
    assert set(left["_quarantine_reasons"]) == {"expect_column_values_to_be_of_type(tenure_months)"}

    # 2. The steward exports the rest, types the tenure in, and submits the file.
    exported, edited = tmp_path / "quarantine.csv", tmp_path / "edited.csv"
    assert quarantine_cli(["export", "churn", "--partition", BAD_DAY, "--out", str(exported)]) == 0
    rows = pd.read_csv(exported, dtype=str, keep_default_na=False)
    rows.assign(tenure_months=["7", "31"]).to_csv(edited, index=False)
    bad_file = tmp_path / "bad.csv"
    rows.assign(customer_id="1").to_csv(bad_file, index=False)
    assert quarantine_cli(["submit", "churn", "--partition", BAD_DAY, str(bad_file)]) == 1  # a changed key
    assert quarantine_cli(["submit", "churn", "--partition", BAD_DAY, str(edited)]) == 0
    dag_run = replay(bag, "submitted", BAD_DAY)
    assert str(dag_run.state) == "success", states(dag_run)

    # The validated attempt: the day's first rows as they were, and each replayed row with lineage.
    validated, landed = frame(lake, "validated", BAD_DAY), raw_rows(lake, BAD_DAY)
    assert landed == len(validated) and frame(lake, "quarantine", BAD_DAY).empty
    assert validated["customer_id"].is_unique
    replayed = validated[validated["_replay_fix"].notna()].sort_values("_row_number")
    assert replayed["_row_number"].astype(int).tolist() == sorted(PLATINUM + NOT_A_NUMBER)
    assert set(replayed["_source_file"]) == {"part-000.csv"}
    by_row = replayed.set_index(replayed["_row_number"].astype(int))
    assert set(by_row.loc[PLATINUM, "plan"]) == {"premium"}
    assert set(by_row.loc[PLATINUM, "_replay_fix"]) == {"plan_renamed"}
    assert by_row.loc[NOT_A_NUMBER, "tenure_months"].tolist() == [7, 31]
    assert all(f.startswith("submitted:") for f in by_row.loc[NOT_A_NUMBER, "_replay_fix"])
    assert by_row["_replay_run"].nunique() == 2 and by_row["_replay_run"].str.startswith("manual__").all()
    manifest = read_manifest(lake, partition_dir("churn", "validated", BAD_DAY))
    counts = (manifest.extra["rows"], manifest.extra["validated"], manifest.extra["quarantined"])
    assert counts == (landed, landed, 0)
    kept = [n for h in manifest.history for n in h["files"]]
    assert len(manifest.history) == 2 and all(
        lake.exists(f"{partition_dir('churn', 'validated', BAD_DAY)}/{n}") for n in kept
    )

    # Each replay published the day again, keyed by it, saying what it replayed.
    events = asset_events(BAD_DAY)
    assert [e.get("replay", {}).get("rows") for e in events] == [None, 3, 2]
    assert events[-1]["quarantined"] == 0 and events[-1]["rows"] == landed

    # 3. Nothing left to replay: the task is skipped and nothing is published.
    dag_run = replay(bag, "none", BAD_DAY)
    assert states(dag_run)["replay"] == "skipped" and len(asset_events(BAD_DAY)) == 3

    # The other day is untouched: same attempts, same rows, and never published again.
    again = snapshot(lake, OTHER_DAY)
    for zone, (attempt, rows_before) in other.items():
        assert again[zone][0] == attempt
        pd.testing.assert_frame_equal(again[zone][1], rows_before)
    assert len(asset_events(OTHER_DAY)) == 1


def test_a_day_that_was_never_ingested_fails_the_plan_naming_it(bag, roots) -> None:
    dag_run = replay(bag, "plan_renamed", "2026-03-20")
    assert str(dag_run.state) == "failed" and states(dag_run)["plan"] == "failed"
    assert asset_events("2026-03-20") == []
