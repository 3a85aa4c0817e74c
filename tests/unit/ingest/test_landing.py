"""Landing only complete files: the readiness rules, the names landing reads, skips or refuses, links.

``list_source``/``readiness`` (what the wait sensor asks) and ``land`` on a real local landing
folder and lake: a file still being written, a second file still to come, Spark's staging files,
an upper-case suffix, a stray ``.tmp`` or ``.json``, a symbolic link to a file elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from tests.unit.ingest.test_validation import INCLUDE, START, churn_frame

from mlops.config.pipeline import Pipeline, load_pipeline
from mlops.ingest.stage import (
    LandingRefused,
    SourceChanged,
    SourceMissing,
    WrongFormat,
    land,
    list_source,
    readiness,
    source_files,
)
from mlops.lake.storage import LocalStorage, SymlinkRefused, partition_dir, read_manifest, read_partition

DS = START.date().isoformat()
CSV = churn_frame(1200).to_csv(index=False).encode()


def churn(**source: object) -> Pipeline:
    pipeline = load_pipeline(INCLUDE / "pipelines" / "churn.yaml")
    return pipeline.model_copy(update={"source": pipeline.source.model_copy(update=source)})


def put(landing: Path, relative: str, data: bytes = CSV, *, age: float = 0.0) -> Path:
    """A file in the day's landing folder, last written ``age`` seconds ago."""
    target = landing / f"ds={DS}" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    if age:
        when = time.time() - age
        os.utime(target, (when, when))
    return target


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def lake(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "lake")


def test_a_file_still_being_written_is_complete_only_once_it_stops_changing(landing: Path) -> None:
    pipeline, storage = churn(settle_seconds=60), LocalStorage(landing)
    target = put(landing, "part-000.csv", CSV[:1000])
    first = list_source(storage, pipeline, DS)
    verdict = readiness(first, None, pipeline.source, time.time())
    assert not verdict.ready and 59 < verdict.look_again_in <= 60
    assert "once unchanged for source.settle_seconds (60s)" in verdict.why

    with target.open("ab") as handle:  # the writer goes on
        handle.write(CSV[1000:])
    second = list_source(storage, pipeline, DS)
    assert not readiness(second, first.signature(), pipeline.source, time.time()).ready

    third = list_source(storage, pipeline, DS)
    verdict = readiness(third, second.signature(), pipeline.source, time.time())
    assert verdict.ready and verdict.why == "unchanged since the previous look"


def test_files_untouched_for_settle_seconds_are_complete_at_the_first_look(landing: Path) -> None:
    pipeline = churn(settle_seconds=60)
    put(landing, "part-000.csv", age=61)
    verdict = readiness(list_source(LocalStorage(landing), pipeline, DS), None, pipeline.source, time.time())
    assert verdict.ready and verdict.why.startswith("no file changed for 6")


def test_a_second_file_arriving_starts_the_wait_again(landing: Path) -> None:
    pipeline, storage = churn(settle_seconds=60), LocalStorage(landing)
    put(landing, "part-1.csv", age=300)
    first = list_source(storage, pipeline, DS)
    assert readiness(first, None, pipeline.source, time.time()).ready
    put(landing, "part-2.csv")
    assert not readiness(
        list_source(storage, pipeline, DS), first.signature(), pipeline.source, time.time()
    ).ready


@pytest.mark.parametrize("marker", [None, "READY"])
def test_with_the_marker_rule_files_are_complete_once_the_marker_is_there(
    landing: Path, lake: LocalStorage, marker: str | None
) -> None:
    pipeline = churn(ready="marker", **({"ready_marker": marker} if marker else {}))
    name = marker or "_SUCCESS"
    storage = LocalStorage(landing)
    put(landing, "part-000.csv", age=3600)
    verdict = readiness(list_source(storage, pipeline, DS), None, pipeline.source, time.time())
    assert not verdict.ready and verdict.why == f"waiting for the ready marker {name}"
    with pytest.raises(SourceMissing, match=f"has no ready marker {name} \\(source.ready: marker\\)"):
        land(storage, lake, pipeline, DS)

    put(landing, name, b"")
    assert readiness(list_source(storage, pipeline, DS), None, pipeline.source, time.time()).ready
    landed = land(storage, lake, pipeline, DS)
    assert sorted(read_partition(lake, partition_dir("churn", "raw", DS))) == ["part-000.csv"]
    assert landed["ready"] == "marker"


def test_a_marker_name_outside_the_marker_rule_is_refused() -> None:
    import yaml

    from mlops.config.pipeline import ConfigError, parse_pipeline

    data = yaml.safe_load((INCLUDE / "pipelines" / "churn.yaml").read_text())
    data["source"]["ready_marker"] = "DONE"
    with pytest.raises(ConfigError, match="ready_marker is read only with ready: marker"):
        parse_pipeline(data, source="churn.yaml")


def test_staging_and_hidden_files_are_skipped_and_suffixes_match_in_any_case(
    landing: Path, lake: LocalStorage
) -> None:
    second = churn_frame(600, seed=2)
    second["customer_id"] = (second["customer_id"].astype(int) + 10_000).astype(str)
    put(landing, "part-1.csv")
    put(landing, "part-2.CSV", second.to_csv(index=False).encode())
    put(landing, "_SUCCESS", b"")
    put(landing, "_temporary/0/_temporary/attempt_1/part-3.csv", b"half a row,")
    put(landing, ".part-1.csv.crc", b"\x00\x01")
    landed = land(LocalStorage(landing), lake, churn(), DS)
    raw = read_partition(lake, partition_dir("churn", "raw", DS))
    assert sorted(raw) == ["part-1.csv", "part-2.CSV"]
    assert landed["sizes"] == {"part-1.csv": len(CSV), "part-2.CSV": len(raw["part-2.CSV"])}


@pytest.mark.parametrize("stray", ["part-1.csv.tmp", "manifest.json", "README.txt", "export.parquet"])
def test_a_file_landing_does_not_read_fails_the_day_naming_it(
    landing: Path, lake: LocalStorage, stray: str
) -> None:
    put(landing, "part-000.csv")
    put(landing, stray, b"{}")
    with pytest.raises(WrongFormat, match=f"holds {stray} but pipeline churn reads csv"):
        land(LocalStorage(landing), lake, churn(), DS)
    assert not lake.list_files("churn/raw")


def test_a_folder_with_only_another_format_is_said_at_once(landing: Path) -> None:
    put(landing, "export.parquet", b"PAR1")
    with pytest.raises(WrongFormat, match=r"holds export\.parquet but pipeline churn reads csv"):
        source_files(LocalStorage(landing), churn(), DS)


def test_landing_records_each_files_size_and_checksum(landing: Path, lake: LocalStorage) -> None:
    put(landing, "east/part-000.csv")
    land(LocalStorage(landing), lake, churn(), DS)
    extra = read_manifest(lake, partition_dir("churn", "raw", DS)).extra
    assert extra["sizes"] == {"east__part-000.csv": len(CSV)}
    assert extra["sha256"] == {"east__part-000.csv": hashlib.sha256(CSV).hexdigest()}
    assert extra["bytes"] == len(CSV) and extra["ready"] == "stable"


class WriterAtWork(LocalStorage):
    """The landing folder while its producer still appends to the file being copied."""

    def read_bytes(self, path: str) -> bytes:
        data = super().read_bytes(path)
        with (self.root / path).open("ab") as handle:
            handle.write(b"1001,2026-01-05T10:00:00Z\n")
        return data


def test_a_file_that_changes_while_it_is_landed_fails_the_landing(landing: Path, lake: LocalStorage) -> None:
    put(landing, "part-000.csv", age=600)
    with pytest.raises(SourceChanged, match=r"part-000\.csv changed while the day was landed"):
        land(WriterAtWork(landing), lake, churn(), DS)
    assert not lake.list_files("churn/raw"), "nothing of the day is committed"


@pytest.mark.parametrize("linked", ["file", "subfolder", "day"])
def test_a_symbolic_link_in_landing_is_refused_never_followed(
    tmp_path: Path, landing: Path, lake: LocalStorage, linked: str
) -> None:
    secret = tmp_path / "outside" / "signing.key"
    secret.parent.mkdir()
    secret.write_bytes(CSV)  # even a file that reads as valid data
    day = landing / f"ds={DS}"
    if linked == "file":
        put(landing, "part-000.csv")
        (day / "part-001.csv").symlink_to(secret)
        named = "part-001.csv"
    elif linked == "subfolder":
        put(landing, "part-000.csv")
        (day / "east").symlink_to(secret.parent, target_is_directory=True)
        named = "east"
    else:
        landing.mkdir()
        day.symlink_to(secret.parent, target_is_directory=True)
        named = f"ds={DS}"
    with pytest.raises(LandingRefused, match=f"{named} is a symbolic link, and landing never follows a link"):
        land(LocalStorage(landing), lake, churn(), DS)
    assert not lake.list_files("churn/raw")


def test_the_lake_on_local_disk_never_reads_through_a_link(tmp_path: Path) -> None:
    secret = tmp_path / "signing.key"
    secret.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    storage = LocalStorage(tmp_path / "lake")
    (tmp_path / "lake" / "churn" / "raw").mkdir(parents=True)
    (tmp_path / "lake" / "churn" / "raw" / "part.csv").symlink_to(secret)
    (tmp_path / "lake" / "churn" / "linked").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(SymlinkRefused, match=r"raw/part\.csv is a symbolic link"):
        storage.read_bytes("churn/raw/part.csv")
    with pytest.raises(SymlinkRefused, match=r"churn/linked is a symbolic link"):
        storage.read_bytes("churn/linked/signing.key")
    listed = [(f.path, f.link) for f in storage.stat_files("churn")]
    assert listed == [("churn/linked", True), ("churn/raw/part.csv", True)], "listed, not followed"


def test_a_marker_with_no_file_beside_it_fails_at_once(landing: Path, lake: LocalStorage) -> None:
    pipeline, storage = churn(ready="marker"), LocalStorage(landing)
    put(landing, "_SUCCESS", b"")
    assert readiness(list_source(storage, pipeline, DS), None, pipeline.source, time.time()).ready
    with pytest.raises(
        SourceMissing, match=r"no csv file for 2026-01-05 at .* although the ready marker _SUCCESS"
    ):
        land(storage, lake, pipeline, DS)
