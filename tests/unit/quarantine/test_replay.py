"""Replay: fixed rows re-validated by the real suite, committed as a new attempt, nothing lost."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from tests.unit.quarantine.conftest import DS, IN_CENTS, NOT_A_NUMBER, PLATINUM, with_fixes

from mlops.clock.window import attempts_of, load_frames
from mlops.config.pipeline import Pipeline
from mlops.index.records import IndexReader
from mlops.ingest.suite import build_suite
from mlops.lake.batches import parquet_bytes
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir, read_manifest, read_partition
from mlops.quarantine.replay import ReplayRefused, replay_partition, replay_plan
from mlops.quarantine.submission import export_csv, submit
from mlops.quarantine.summary import read_quarantine

VALIDATED, QUARANTINE = partition_dir("churn", "validated", DS), partition_dir("churn", "quarantine", DS)


def zone(lake: LocalStorage, directory: str) -> pd.DataFrame:
    parts = read_partition(lake, directory).values()
    return pd.concat([pd.read_parquet(io.BytesIO(b)) for b in parts], ignore_index=True)


def reconciled(lake: LocalStorage) -> tuple[int, int]:
    """Validated and quarantined rows, checked against both manifests' counts and the landed rows."""
    validated, quarantined = len(zone(lake, VALIDATED)), len(zone(lake, QUARANTINE))
    for directory in (VALIDATED, QUARANTINE):
        extra = read_manifest(lake, directory).extra
        assert (extra["rows"], extra["validated"], extra["quarantined"]) == (1200, validated, quarantined)
    assert validated + quarantined == 1200
    return validated, quarantined


def test_a_yaml_fix_moves_the_fixed_rows_into_a_new_validated_attempt_with_lineage(
    lake: LocalStorage, pipeline: Pipeline, suite: dict
) -> None:
    before = read_manifest(lake, VALIDATED)
    old_quarantine = read_manifest(lake, QUARANTINE)
    report = replay_partition(lake, pipeline, suite, DS, fix="plan_renamed", run_id="manual__1")
    assert (report.candidates, report.passed, report.quarantined, report.validated) == (6, 3, 3, 1197)
    assert report.published and report.asset_extra()["replay"]["rows"] == 3

    after = read_manifest(lake, VALIDATED)
    assert after.attempt == report.attempt != before.attempt
    assert after.files[: len(before.files)] == before.files, "the rows it had are adopted, not copied"
    assert [h["attempt"] for h in after.history] == [before.attempt]
    assert after.extra["replays"][0] | {"replayed_at": None} == {
        "attempt": report.attempt,
        "fix": "plan_renamed",
        "rows": 3,
        "run_id": "manual__1",
        "replayed_at": None,
    }
    # The old quarantine attempt is kept on disk for audit, named by the new manifest's history.
    quarantine = read_manifest(lake, QUARANTINE)
    assert quarantine.history[0]["attempt"] == old_quarantine.attempt
    assert all(lake.exists(f"{QUARANTINE}/{name}") for name in old_quarantine.files)
    assert reconciled(lake) == (1197, 3)

    validated = zone(lake, VALIDATED)
    replayed = validated[validated["_replay_fix"].notna()].sort_values("_row_number")
    assert replayed["_row_number"].astype(int).tolist() == PLATINUM
    assert replayed["customer_id"].tolist() == [1000 + r for r in PLATINUM]
    assert set(replayed["plan"]) == {"premium"} and set(replayed["_replay_run"]) == {"manual__1"}
    assert set(replayed["_source_file"]) == {"a.csv"}
    assert validated["customer_id"].is_unique
    left = zone(lake, QUARANTINE)
    assert sorted(left["_row_number"]) == sorted(NOT_A_NUMBER + IN_CENTS)
    # The lake's index (what the Models view reads) says the same counts and the reasons left.
    record = IndexReader(lake).read("churn")[DS]["ingest"]
    assert (record["rows"], record["validated"], record["quarantined"]) == (1200, 1197, 3)
    assert record["reasons"] == read_manifest(lake, QUARANTINE).extra["reasons"]
    assert "plan_renamed" in record["message"] and "manual__1" in record["message"]
    # A training window that recorded the attempt it read reads the same rows after the replay.
    assert attempts_of(lake, "churn", [DS]) == {DS: report.attempt}
    old = load_frames(lake, pipeline, [DS], whole_window=False, attempts={DS: before.attempt})[DS]
    new = load_frames(lake, pipeline, [DS], whole_window=False, attempts={DS: report.attempt})[DS]
    assert (len(old), len(new)) == (1194, 1197)
    assert len(load_frames(lake, pipeline, [DS], whole_window=False)[DS]) == 1197


def test_rows_that_still_fail_stay_with_their_new_reasons(lake: LocalStorage, suite: dict) -> None:
    pipeline = with_fixes({"guess": [{"column": "tenure_months", "map": {"N/A": "-3"}}]})
    report = replay_partition(lake, pipeline, suite, DS, fix="guess", run_id="r")
    assert not report.published and report.passed == 0
    assert report.reasons == {
        "expect_column_values_to_be_in_set(plan)": 3,
        "expect_column_values_to_be_between(tenure_months)": 2,  # was: of_type (text in a number)
        "expect_column_values_to_be_between(monthly_charges)": 1,
    }
    left = zone(lake, QUARANTINE).set_index("_row_number")
    assert set(left.loc[NOT_A_NUMBER, "tenure_months"]) == {"-3"}
    assert read_manifest(lake, QUARANTINE).extra["reasons"] == report.reasons
    assert reconciled(lake) == (1194, 6)


def test_a_submitted_file_is_replayed_and_then_stale(
    lake: LocalStorage, pipeline: Pipeline, suite: dict
) -> None:
    quarantine = read_quarantine(lake, pipeline, DS)
    edited = export_csv(quarantine, pipeline).replace(b",N/A,", b",12,")
    submitted = submit(lake, pipeline, quarantine, edited, source="edited.csv")
    report = replay_partition(lake, pipeline, suite, DS, fix="submitted", run_id="r1")
    assert report.passed == 2 and report.fix == f"submitted:{submitted.attempt}"
    validated = zone(lake, VALIDATED)
    fixed = validated[validated["_row_number"].isin(NOT_A_NUMBER)]
    assert fixed["tenure_months"].tolist() == [12, 12] and set(fixed["_replay_fix"]) == {report.fix}
    assert reconciled(lake) == (1196, 4)
    with pytest.raises(Exception, match=r"are not rows of the 2026-01-05 quarantine"):
        replay_partition(lake, pipeline, suite, DS, fix="submitted", run_id="r2")


def test_accepting_a_level_in_the_config_then_replaying_with_no_fix(lake: LocalStorage) -> None:
    accepted = with_fixes()
    columns = {**accepted.model_dump()["columns"]}
    columns["plan"] = {**columns["plan"], "values": ["basic", "standard", "premium", "platinum"]}
    accepted = with_fixes(columns=columns)
    report = replay_partition(lake, accepted, build_suite(accepted), DS, fix="none", run_id="r")
    assert report.passed == 3 and report.fix == "none"
    with pytest.raises(Exception, match="does not match"):  # the old suite is stale for the new YAML
        replay_partition(lake, accepted, build_suite(with_fixes()), DS, fix="none", run_id="r")


def test_a_replay_killed_between_its_commits_is_completed_by_a_retry(
    lake: LocalStorage, pipeline: Pipeline, suite: dict
) -> None:
    class DiesOnQuarantine(LocalStorage):
        def write_bytes(self, path: str, data: bytes) -> None:
            if path == f"{QUARANTINE}/_SUCCESS":
                raise OSError("killed")
            super().write_bytes(path, data)

    with pytest.raises(OSError, match="killed"):
        replay_partition(DiesOnQuarantine(lake.root), pipeline, suite, DS, fix="plan_renamed", run_id="r1")
    assert len(zone(lake, VALIDATED)) == 1197 and len(zone(lake, QUARANTINE)) == 6  # in both, for now
    retry = replay_partition(lake, pipeline, suite, DS, fix="plan_renamed", run_id="r1")
    assert retry.passed == 0 and retry.candidates == 3
    assert reconciled(lake) == (1197, 3)
    assert zone(lake, VALIDATED)["customer_id"].is_unique


def test_a_row_whose_key_validated_already_holds_stays_quarantined(
    lake: LocalStorage, pipeline: Pipeline, suite: dict
) -> None:
    held = read_quarantine(lake, pipeline, DS)
    clash = held.frame.assign(
        customer_id=held.frame["customer_id"].mask(held.frame["_row_number"] == 3, "1000")
    )
    commit_partition(lake, QUARANTINE, {"part.parquet": parquet_bytes(clash)}, extra=held.extra)
    report = replay_partition(lake, pipeline, suite, DS, fix="plan_renamed", run_id="r")
    assert report.passed == 2
    assert report.reasons["expect_column_values_to_be_unique(customer_id)"] == 1
    assert reconciled(lake) == (1196, 4)


def test_the_plan_orders_the_days_and_refuses_one_without_validated_data(
    lake: LocalStorage, pipeline: Pipeline
) -> None:
    assert replay_plan(lake, pipeline, [DS, f" {DS}"]) == [DS]
    with pytest.raises(
        ReplayRefused, match=r"no validated data and quarantine for 2026-01-06 \(not ingested"
    ):
        replay_plan(lake, pipeline, ["2026-01-06", DS])
    with pytest.raises(ReplayRefused):
        replay_plan(lake, pipeline, ["yesterday"])
    with pytest.raises(ReplayRefused, match="no partition"):
        replay_plan(lake, pipeline, [])


def test_training_and_scoring_read_no_lineage_column(
    lake: LocalStorage, pipeline: Pipeline, suite: dict
) -> None:
    from mlops.clock.window import load_frames
    from mlops.model.pyfunc import model_input

    replay_partition(lake, pipeline, suite, DS, fix="plan_renamed", run_id="r")
    [frame] = load_frames(lake, pipeline, [DS], whole_window=False).values()
    assert list(frame.columns) == [*pipeline.features, pipeline.target] and len(frame) == 1197
    assert list(model_input(zone(lake, VALIDATED), pipeline).columns) == pipeline.features
