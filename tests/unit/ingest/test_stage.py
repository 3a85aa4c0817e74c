"""The ingest stage on odd but real exports: split folders, a file missing a column, literal "NA".

``land`` then ``gate`` on a local landing folder and lake, with the real Great Expectations suite:
every landed row ends up validated or quarantined, or the day fails naming the file.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from tests.unit.ingest.test_validation import END, INCLUDE, START, churn_frame

from mlops.config.pipeline import Pipeline
from mlops.index.records import IndexReader
from mlops.ingest.stage import PartitionRejected, gate, land
from mlops.lake.storage import LocalStorage, partition_dir, read_manifest, read_partition

DS = START.date().isoformat()


def write(landing: Path, relative: str, frame: pd.DataFrame) -> None:
    target = landing / f"ds={DS}" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target, index=False)


def two_exports() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two files of one day's export, with different customers (the key stays unique)."""
    first, second = churn_frame(700, seed=1), churn_frame(600, seed=2)
    second["customer_id"] = (second["customer_id"].astype(int) + 10_000).astype(str)
    return first, second


def frames(lake: LocalStorage, zone: str) -> pd.DataFrame:
    parts = read_partition(lake, partition_dir("churn", zone, DS)).values()
    return pd.concat([pd.read_parquet(io.BytesIO(b)) for b in parts], ignore_index=True)


def ingest(base: Path, pipeline: Pipeline, suite: dict) -> tuple[LocalStorage, int]:
    """Land and gate the day from ``base/landing``; the lake, and the rows in validated + quarantine."""
    landing, lake = LocalStorage(base / "landing"), LocalStorage(base / "lake")
    land(landing, lake, pipeline, DS)
    gate(lake, pipeline, suite, DS, interval_start=START, interval_end=END)
    return lake, len(frames(lake, "validated")) + len(frames(lake, "quarantine"))


def test_files_of_the_same_name_in_different_folders_are_all_landed(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    east, west = two_exports()
    write(tmp_path / "landing", "east/part-000.csv", east)
    write(tmp_path / "landing", "west/part-000.csv", west)
    lake, rows = ingest(tmp_path, pipeline, suite)
    assert rows == len(east) + len(west)
    raw = read_partition(lake, partition_dir("churn", "raw", DS))
    assert sorted(raw) == ["east__part-000.csv", "west__part-000.csv"]


def test_a_file_missing_a_column_fails_the_day_naming_that_file(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    whole, partial = two_exports()
    write(tmp_path / "landing", "a.csv", whole)
    write(tmp_path / "landing", "b.csv", partial.drop(columns=["late_payments"]))  # a nullable column
    with pytest.raises(
        PartitionRejected, match=r"b\.csv: lacks the declared column\(s\) \['late_payments'\]"
    ):
        ingest(tmp_path, pipeline, suite)
    lake = LocalStorage(tmp_path / "lake")
    assert not lake.list_files(partition_dir("churn", "validated", DS))
    assert read_partition(lake, partition_dir("churn", "raw", DS)), "the landed bytes are kept"


def test_a_renamed_column_is_named_both_ways(tmp_path: Path, pipeline: Pipeline, suite: dict) -> None:
    """What is missing and what came instead: the export's own header name, cut short, is the clue."""
    whole, _ = two_exports()
    write(tmp_path / "landing", "a.csv", whole.rename(columns={"late_payments": "late_payments_" + "x" * 60}))
    with pytest.raises(PartitionRejected) as rejected:
        ingest(tmp_path, pipeline, suite)
    assert (
        "a.csv: lacks the declared column(s) ['late_payments']; it has other column(s) "
        f"['late_payments_{'x' * 23}...']"
    ) in str(rejected.value)


def test_a_literal_na_is_checked_against_the_allowed_values_unless_configured_as_null(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    frame = churn_frame(1200)
    frame.loc[:4, "plan"] = "NA"
    write(tmp_path / "landing", "part.csv", frame)
    lake, rows = ingest(tmp_path, pipeline, suite)
    assert rows == len(frame)
    assert (frames(lake, "quarantine")["plan"] == "NA").sum() == 5, "'NA' is not an allowed plan"

    as_null = pipeline.model_copy(
        update={"source": pipeline.source.model_copy(update={"null_values": ["", "NA"]})}
    )
    write(tmp_path / "again" / "landing", "part.csv", frame)
    lake, rows = ingest(tmp_path / "again", as_null, suite)
    quarantined = frames(lake, "quarantine")
    assert rows == len(frame) and quarantined["plan"].isna().sum() == 5, "now null, and plan is required"
    assert (
        quarantined.loc[quarantined["plan"].isna(), "_quarantine_reasons"].str.contains("not_be_null").all()
    )


def test_the_source_null_values_default_to_the_empty_field_only(pipeline: Pipeline) -> None:
    assert pipeline.source.null_values == [""]


def test_a_day_rejected_on_a_rerun_withdraws_what_score_and_monitor_made_of_it(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    from mlops.lake.storage import commit_partition, is_committed
    from mlops.monitor.report_store import read_report, report_dir, write_report

    write(tmp_path / "landing", "part.csv", churn_frame(1200))
    lake, _ = ingest(tmp_path, pipeline, suite)
    commit_partition(lake, partition_dir("churn", "predictions", DS), {"part.parquet": b"scored"})
    write_report(lake, "churn", {"ds": DS}, "<html></html>")
    # The source is replaced by a broken export and the day is re-run.
    (tmp_path / "landing" / f"ds={DS}" / "part.csv").write_bytes(b"customer_id\n1\n")
    with pytest.raises(PartitionRejected):
        ingest(tmp_path, pipeline, suite)
    for zone in ("validated", "quarantine", "predictions"):
        assert not is_committed(lake, partition_dir("churn", zone, DS)), zone
    assert read_report(lake, "churn", DS) is None and not lake.list_files(report_dir("churn", DS))
    # The lake's index says the same: the day rejected, naming why, and nothing scored or monitored.
    index = IndexReader(lake).read("churn")
    assert set(index[DS]) == {"ingest"}
    assert index[DS]["ingest"]["passed"] is False and index[DS]["ingest"]["failures"]
    # Paths in the record are the lake's own, never the machine's.
    assert "churn/raw/ds=" in index[DS]["ingest"]["message"] and str(tmp_path) not in json.dumps(index)


def test_the_gate_indexes_its_counts_and_the_quarantine_reasons(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    frame = churn_frame(1000)
    frame.loc[:4, "plan"] = "platinum-unknown"
    write(tmp_path / "landing", "part.csv", frame)
    lake, rows = ingest(tmp_path, pipeline, suite)
    record = IndexReader(lake).read("churn")[DS]["ingest"]
    quarantined = frames(lake, "quarantine")
    assert record["passed"] is True and record["rows"] == rows == 1000
    assert record["quarantined"] == len(quarantined) >= 5
    assert record["validated"] == len(frames(lake, "validated"))
    assert record["quarantine_rate"] == pytest.approx(len(quarantined) / 1000)
    # Every quarantined row is counted under each check it failed.
    per_check = quarantined["_quarantine_reasons"].str.split("; ").explode().value_counts().to_dict()
    assert record["reasons"] == per_check


def test_a_gzipped_csv_export_is_landed_and_read(tmp_path: Path, pipeline: Pipeline, suite: dict) -> None:
    import gzip

    frame = churn_frame(1200)
    target = tmp_path / "landing" / f"ds={DS}" / "export.csv.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    _, rows = ingest(tmp_path, pipeline, suite)
    assert rows == len(frame)


@pytest.mark.parametrize(
    ("name", "gzipped", "message"),
    [
        ("export.csv.gz", False, r"export\.csv\.gz: named \.gz but not gzip data"),
        ("export.csv", True, r"export\.csv: gzip data in a file not named \.gz"),
    ],
)
def test_bytes_that_do_not_match_the_suffix_are_named(
    tmp_path: Path, pipeline: Pipeline, suite: dict, name: str, gzipped: bool, message: str
) -> None:
    import gzip

    data = churn_frame(1200).to_csv(index=False).encode()
    target = tmp_path / "landing" / f"ds={DS}" / name
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(data) if gzipped else data)
    with pytest.raises(PartitionRejected, match=message):
        ingest(tmp_path, pipeline, suite)


def test_parquet_landed_for_a_csv_pipeline_is_said_at_once(tmp_path: Path, pipeline: Pipeline) -> None:
    from mlops.ingest.stage import WrongFormat, source_files

    target = tmp_path / "landing" / f"ds={DS}" / "export.parquet"
    target.parent.mkdir(parents=True)
    churn_frame(10).to_parquet(target)
    with pytest.raises(WrongFormat, match=r"holds export\.parquet but pipeline churn reads csv"):
        source_files(LocalStorage(tmp_path / "landing"), pipeline, DS)


def test_a_field_larger_than_the_readers_block_is_named(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    frame = churn_frame(1200)
    frame.loc[0, "plan"] = "x" * (2 << 20)
    write(tmp_path / "landing", "part.csv", frame)
    with pytest.raises(PartitionRejected, match=r"a field is larger than the CSV reader's block \(1 MiB\)"):
        ingest(tmp_path, pipeline, suite)


# ----------------------------------------------------------------------------------------------------
# Every parser and loader error is the gate's rejection: Data Docs written, the day's earlier
# validated data withdrawn, never a raw exception (which Airflow would retry on the same bytes).


def reingest_rejected(base: Path, pipeline: Pipeline, suite: dict, name: str, data: bytes) -> str:
    """A day that passed, then re-delivered as ``data``: the rejection's message, once all is checked."""
    from mlops.lake.storage import is_committed

    write(base / "landing", "part.csv", churn_frame(1200))
    lake, _ = ingest(base, pipeline, suite)
    assert is_committed(lake, partition_dir("churn", "validated", DS))
    day = base / "landing" / f"ds={DS}"
    for old in day.iterdir():
        old.unlink()
    (day / name).write_bytes(data)
    with pytest.raises(PartitionRejected) as info:
        ingest(base, pipeline, suite)
    for zone in ("validated", "quarantine"):
        assert not is_committed(lake, partition_dir("churn", zone, DS)), zone
    docs = read_partition(lake, partition_dir("churn", "reports", DS))["data_docs.html"].decode()
    assert "unreadable" in docs
    return str(info.value)


def test_a_csv_cut_inside_its_last_field_is_rejected(tmp_path: Path, pipeline: Pipeline, suite: dict) -> None:
    frame = churn_frame(1200)
    frame = frame[[*frame.columns.drop("monthly_charges"), "monthly_charges"]]  # any column order reads
    frame.loc[1199, "monthly_charges"] = "63.6"
    cut = frame.to_csv(index=False).encode()[: -len(".6\n")]  # "63.6" -> "63": would still parse, changed
    message = reingest_rejected(tmp_path, pipeline, suite, "part.csv", cut)
    assert (
        "part.csv: not a complete CSV file (truncated, or still being written?): it does not end with a "
        "line break, so its last line (line 1201) may be cut short" in message
    )


def test_cr_only_line_endings_are_read_as_lines(tmp_path: Path, pipeline: Pipeline, suite: dict) -> None:
    from mlops.ingest.parsing import parse_file

    frame = churn_frame(1200)
    data = frame.to_csv(index=False, lineterminator="\r").encode()
    pd.testing.assert_frame_equal(parse_file(data, "csv", source="cr.csv"), frame, check_dtype=False)
    (tmp_path / "landing" / f"ds={DS}").mkdir(parents=True)
    (tmp_path / "landing" / f"ds={DS}" / "part.csv").write_bytes(data)
    _, rows = ingest(tmp_path, pipeline, suite)
    assert rows == 1200


def test_a_parser_message_names_the_line_never_its_content(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    data = churn_frame(1200).to_csv(index=False).encode()
    secret = b"-----BEGIN PRIVATE KEY-----,MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
    lines = data.splitlines(keepends=True)
    broken = b"".join([*lines[:10], secret, *lines[10:]])
    message = reingest_rejected(tmp_path, pipeline, suite, "part.csv", broken)
    assert "line 11 has 2 fields where the header has 13" in message
    assert "PRIVATE" not in message and "MIIEvQ" not in message


def parquet_churn(**update: object) -> tuple[Pipeline, pd.DataFrame]:
    """The churn pipeline reading Parquet, and a clean typed day of it."""
    from mlops.config.pipeline import load_pipeline
    from mlops.ingest.parsing import coerce

    pipeline = load_pipeline(INCLUDE / "pipelines" / "churn.yaml")
    pipeline = pipeline.model_copy(
        update={"source": pipeline.source.model_copy(update={"format": "parquet", **update})}
    )
    typed, _ = coerce(churn_frame(1200), pipeline)
    return pipeline, typed


def test_a_uint64_key_beyond_int64_is_a_row_failure_not_a_crash(tmp_path: Path, suite: dict) -> None:
    import numpy as np

    pipeline, typed = parquet_churn()
    typed["customer_id"] = typed["customer_id"].astype("uint64")
    typed.loc[7, "customer_id"] = np.uint64(2**63 + 11)
    (tmp_path / "landing" / f"ds={DS}").mkdir(parents=True)
    typed.to_parquet(tmp_path / "landing" / f"ds={DS}" / "part.parquet")
    lake, rows = ingest(tmp_path, pipeline, suite)
    quarantined = frames(lake, "quarantine")
    assert rows == 1200 and quarantined["_row_number"].tolist() == [7]
    assert quarantined["_quarantine_reasons"].tolist() == ["expect_column_values_to_be_of_type(customer_id)"]


def test_a_parquet_column_of_an_unreadable_type_is_rejected(tmp_path: Path, suite: dict) -> None:
    from mlops.lake.storage import is_committed

    pipeline, typed = parquet_churn()
    typed["tenure_months"] = [[1, 2]] * len(typed)  # a list where an int is declared
    (tmp_path / "landing" / f"ds={DS}").mkdir(parents=True)
    typed.to_parquet(tmp_path / "landing" / f"ds={DS}" / "part.parquet")
    with pytest.raises(
        PartitionRejected, match=r"column 'tenure_months': values stored as object cannot be read as int"
    ):
        ingest(tmp_path, pipeline, suite)
    lake = LocalStorage(tmp_path / "lake")
    assert is_committed(lake, partition_dir("churn", "reports", DS))


# ----------------------------------------------------------------------------------------------------
# What a passing day's quarantine says: rows outside the period, keys that two files share.


def test_keys_shared_by_two_files_and_rows_outside_the_day_are_named_by_file(
    tmp_path: Path, pipeline: Pipeline, suite: dict
) -> None:
    first, second = two_exports()
    second.loc[:9, "customer_id"] = first.loc[:9, "customer_id"].to_numpy()  # 10 keys in both
    second.loc[20:22, "event_ts"] = "2026-01-06T00:00:00Z"  # 3 rows of the next day
    write(tmp_path / "landing", "a.csv", first)
    write(tmp_path / "landing", "b.csv", second)
    lake = LocalStorage(tmp_path / "lake")
    land(LocalStorage(tmp_path / "landing"), lake, pipeline, DS)
    report = gate(lake, pipeline, suite, DS, interval_start=START, interval_end=END)

    assert report.passed and (report.rows, report.quarantined) == (1300, 23)
    assert (report.notes.out_of_period, report.notes.shared_keys) == (3, 10)
    assert report.notes.lines == [
        "3 rows with event_ts outside the day 2026-01-05 (UTC) (b.csv: 3)",
        "10 customer_id values are in each of a.csv, b.csv (duplicated keys are quarantined; the first: "
        "row 1 of a.csv, row 1 of b.csv)",
    ]
    manifest = read_manifest(lake, partition_dir("churn", "reports", DS))
    assert manifest.extra["notes"] == report.notes.lines


def test_header_names_are_quoted_cut_short(tmp_path: Path, pipeline: Pipeline, suite: dict) -> None:
    name = "Authorization: Bearer " + "x" * 60
    frame = churn_frame(1200)
    frame[name] = "1"
    write(tmp_path / "landing", "part.csv", frame)
    with pytest.raises(PartitionRejected) as info:
        ingest(tmp_path, pipeline, suite)
    assert f"unexpected ['{name[:37]}...']" in str(info.value) and name not in str(info.value)
