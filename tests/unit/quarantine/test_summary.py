"""A day's quarantine summarised: the gate keeps it in the manifest, ``show`` reads it back."""

from __future__ import annotations

from tests.unit.quarantine.conftest import DS, IN_CENTS, NOT_A_NUMBER, PLATINUM

from mlops.config.pipeline import Pipeline
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir, read_manifest
from mlops.quarantine.summary import column_of, describe, history, read_quarantine, reason_counts

IN_SET = "expect_column_values_to_be_in_set(plan)"
TYPE = "expect_column_values_to_be_of_type(tenure_months)"
RANGE = "expect_column_values_to_be_between(monthly_charges)"


def test_the_gate_keeps_the_share_reasons_and_file_rows_in_the_manifest(lake: LocalStorage) -> None:
    extra = read_manifest(lake, partition_dir("churn", "quarantine", DS)).extra
    assert extra["rows"] == 1200 and extra["quarantined"] == 6 and extra["validated"] == 1194
    assert extra["share"] == 0.005
    assert extra["reasons"] == {IN_SET: 3, TYPE: 2, RANGE: 1}
    assert extra["file_rows"] == [["a.csv", 600], ["b.csv", 600]]


def test_describe_gives_counts_and_samples_with_the_offending_value(
    lake: LocalStorage, pipeline: Pipeline
) -> None:
    view = describe(read_quarantine(lake, pipeline, DS), samples=2)
    assert (view.rows, view.quarantined, round(view.share, 4)) == (1200, 6, 0.005)
    by_check = {r.check: r for r in view.reasons}
    assert [r.check for r in view.reasons] == [IN_SET, TYPE, RANGE]  # most rows first
    assert by_check[IN_SET].samples == [
        {"_row_number": PLATINUM[0], "plan": "platinum"},
        {"_row_number": PLATINUM[1], "plan": "platinum"},
    ]
    assert by_check[TYPE].samples == [{"_row_number": r, "tenure_months": "N/A"} for r in NOT_A_NUMBER]
    assert by_check[RANGE].samples == [{"_row_number": IN_CENTS[0], "monthly_charges": "4999"}]


def test_history_reads_manifests_and_falls_back_to_the_rows_of_an_old_day(
    lake: LocalStorage, pipeline: Pipeline
) -> None:
    # A day gated before the summary was kept: its manifest has the counts only.
    old = read_quarantine(lake, pipeline, DS)
    from mlops.lake.batches import parquet_bytes

    commit_partition(
        lake,
        partition_dir("churn", "quarantine", "2026-01-04"),
        {"part.parquet": parquet_bytes(old.frame.head(2))},
        extra={"rows": 1000, "validated": 998, "quarantined": 2},
    )
    views = history(lake, pipeline)
    assert [(v.ds, v.quarantined, v.rows) for v in views] == [("2026-01-04", 2, 1000), (DS, 6, 1200)]
    assert {r.check: r.rows for r in views[0].reasons} == reason_counts(
        old.frame.head(2)["_quarantine_reasons"]
    )
    assert {r.check: r.rows for r in views[1].reasons} == {IN_SET: 3, TYPE: 2, RANGE: 1}


def test_a_row_failing_two_checks_counts_under_each() -> None:
    import pandas as pd

    counts = reason_counts(pd.Series([f"{IN_SET}; {TYPE}", IN_SET, None]))
    assert counts == {IN_SET: 2, TYPE: 1}
    assert column_of(IN_SET) == "plan" and column_of("expect_table_row_count_to_be_between") is None
