"""``mlops.tools.index_rebuild``: rebuilding the index of a lake written before it existed gives the records the stages write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.unit.ingest.conftest import pipeline, suite
from tests.unit.ingest.test_stage import DS, ingest, write
from tests.unit.ingest.test_validation import churn_frame

from mlops.config.pipeline import Pipeline
from mlops.index.records import IndexReader, score_record, write_record
from mlops.ingest.stage import PartitionRejected
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir
from mlops.monitor.report_store import write_report
from mlops.tools.index_rebuild import rebuild

__all__ = ["pipeline", "suite"]  # the ingest tests' fixtures


def test_a_rebuilt_index_equals_the_one_the_stages_wrote(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    frame = churn_frame(1200)
    frame.loc[:9, "plan"] = "not-a-plan"
    write(tmp_path / "landing", "part.csv", frame)
    lake, _ = ingest(tmp_path, pipeline, suite)
    commit_partition(
        lake,
        partition_dir("churn", "predictions", DS),
        {"part.parquet": b"scored"},
        extra={"rows": 1190, "model_version": "3", "airflow_run_id": "scheduled__x"},
    )
    write_record(
        lake, "churn", DS, "score", score_record(rows=1190, version="3", airflow_run_id="scheduled__x")
    )
    write_report(
        lake,
        "churn",
        {"ds": DS, "champion_version": "3", "n_rows": 1190, "verdict": {"status": "no_drift"},
         "features": {"tenure_months": {"psi": 0.03}}, "trigger": {"fire": False}},
        "<html></html>",
    )  # fmt: skip
    written = IndexReader(lake).read("churn")
    shutil.rmtree(tmp_path / "lake" / "churn" / "index")
    assert IndexReader(lake).read("churn") == {}

    assert rebuild(lake, "churn") == {"ingest": 1, "monitor": 1, "score": 1}

    rebuilt = IndexReader(lake).read("churn")
    assert rebuilt[DS]["monitor"] == written[DS]["monitor"] and rebuilt[DS]["score"] == written[DS]["score"]
    keep = ("passed", "rows", "validated", "quarantined", "quarantine_rate", "reasons")
    assert {k: rebuilt[DS]["ingest"][k] for k in keep} == {k: written[DS]["ingest"][k] for k in keep}
    assert rebuild(lake, "churn") == {"ingest": 1, "monitor": 1, "score": 1}  # again: the same records
    assert IndexReader(lake).read("churn") == rebuilt


def test_a_rejected_day_is_rebuilt_as_rejected_naming_why(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    write(tmp_path / "landing", "part.csv", churn_frame(1200).drop(columns=["plan"]))
    with pytest.raises(PartitionRejected):
        ingest(tmp_path, pipeline, suite)
    lake = LocalStorage(tmp_path / "lake")
    shutil.rmtree(tmp_path / "lake" / "churn" / "index")
    assert rebuild(lake, "churn") == {"ingest": 1, "monitor": 0, "score": 0}
    record = IndexReader(lake).read("churn")[DS]["ingest"]
    assert record["passed"] is False and "plan" in record["message"]
