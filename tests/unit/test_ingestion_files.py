"""The ingest stage on odd but real exports: split folders, a file missing a column, literal "NA".

``land`` then ``gate`` on a local landing folder and lake, with the real Great Expectations suite:
every landed row ends up validated or quarantined, or the day fails naming the file.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from tests.unit.test_validation import END, INCLUDE, START, churn_frame

from mlops.config import Pipeline
from mlops.ingestion import PartitionRejected, gate, land
from mlops.lake import LocalStorage, partition_dir, read_partition

DS = START.date().isoformat()


@pytest.fixture
def pipeline() -> Pipeline:
    from mlops.config import load_pipeline

    return load_pipeline(INCLUDE / "pipelines" / "churn.yaml")


@pytest.fixture
def suite(pipeline: Pipeline) -> dict:
    from mlops.suite import load_suite

    return load_suite(pipeline, INCLUDE)


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
    from mlops.drift_reports import read_report, report_dir, write_report
    from mlops.lake import commit_partition, is_committed

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
    from mlops.ingestion import WrongFormat, source_files

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
