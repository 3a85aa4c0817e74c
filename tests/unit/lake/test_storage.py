"""The commit protocol: a partition is visible whole or not at all, even when its writer is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.lake import storage as lake_module
from mlops.lake.storage import (
    LocalStorage,
    PartitionMissing,
    commit_partition,
    is_committed,
    partition_dir,
    read_partition,
)

ROOT = Path(__file__).resolve().parents[3]


def test_layout() -> None:
    assert partition_dir("churn", "validated", "2026-01-05") == "churn/validated/ds=2026-01-05"
    with pytest.raises(ValueError, match="unknown zone"):
        partition_dir("churn", "gold", "2026-01-05")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        partition_dir("churn", "raw", "2026-02-30")


def test_commit_and_read(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path)
    directory = partition_dir("churn", "validated", "2026-01-05")
    with pytest.raises(PartitionMissing, match="not committed"):
        read_partition(lake, directory)
    commit_partition(lake, directory, {"part.parquet": b"one"}, extra={"rows": 1})
    assert read_partition(lake, directory) == {"part.parquet": b"one"}
    commit_partition(lake, directory, {"part.parquet": b"two"})
    assert read_partition(lake, directory) == {"part.parquet": b"two"}
    assert len(lake.list_files(directory)) == 2  # the data file and the manifest, nothing stale


def test_files_without_a_manifest_are_invisible(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path)
    directory = partition_dir("churn", "validated", "2026-01-05")
    lake.write_bytes(f"{directory}/part-deadbeef.parquet", b"half")
    assert not is_committed(lake, directory)
    with pytest.raises(PartitionMissing):
        read_partition(lake, directory)


WRITER = """
import sys, time
from mlops.lake.storage import LocalStorage, commit_partition

class Slow(LocalStorage):
    def write_bytes(self, path, data):
        super().write_bytes(path, data)
        if not path.endswith("_SUCCESS"):
            print("data written", flush=True)
            time.sleep(60)  # killed here: data on disk, manifest never written

commit_partition(Slow(sys.argv[1]), sys.argv[2], {"part.parquet": b"new" * 1000})
"""


def test_a_killed_writer_leaves_the_old_partition_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalStorage(tmp_path)
    directory = partition_dir("churn", "validated", "2026-01-05")
    commit_partition(lake, directory, {"part.parquet": b"old"})

    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), directory], stdout=subprocess.PIPE, text=True, env=env
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "data written"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)

    assert len(lake.list_files(directory)) == 3  # old data, manifest, the killed writer's orphan
    assert read_partition(lake, directory) == {"part.parquet": b"old"}
    commit_partition(lake, directory, {"part.parquet": b"newer"})
    assert read_partition(lake, directory) == {"part.parquet": b"newer"}
    # A writer that started moments ago may still be at work: its files stay until abandoned.
    assert len(lake.list_files(directory)) == 3
    monkeypatch.setattr(lake_module, "ABANDONED_AFTER_S", -1)
    commit_partition(lake, directory, {"part.parquet": b"newest"})
    assert len(lake.list_files(directory)) == 2, "a commit after that removes the orphan"


class CommitsInBetween(LocalStorage):
    """A writer that another writer overtakes: the other commits after our data, before our manifest."""

    def __init__(self, root: Path, other: dict[str, bytes]) -> None:
        super().__init__(root)
        self.other: dict[str, bytes] | None = other

    def write_bytes(self, path: str, data: bytes) -> None:
        if path.endswith("_SUCCESS") and self.other is not None:
            other, self.other = self.other, None
            commit_partition(LocalStorage(self.root), path.rsplit("/", 1)[0], other)
        super().write_bytes(path, data)


def test_two_overlapping_writers_leave_a_whole_partition(tmp_path: Path) -> None:
    directory = partition_dir("churn", "validated", "2026-01-05")
    commit_partition(LocalStorage(tmp_path), directory, {"part.parquet": b"first"})
    slow = CommitsInBetween(tmp_path, other={"part.parquet": b"retry"})
    commit_partition(slow, directory, {"part.parquet": b"zombie"})
    # The last manifest wins, and every file it names is there.
    assert read_partition(LocalStorage(tmp_path), directory) == {"part.parquet": b"zombie"}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_listed_file_that_vanished_is_a_partition_missing(tmp_path: Path, where: str, request) -> None:
    if where == "local":
        lake = LocalStorage(tmp_path)
    else:
        from mlops.airflow.hooks.lake import S3Storage

        request.getfixturevalue("s3_client").create_bucket(Bucket="vanish")
        lake = S3Storage("s3://vanish/lake", "aws_default")
    directory = partition_dir("churn", "validated", "2026-01-05")
    manifest = commit_partition(lake, directory, {"part.parquet": b"x"})
    lake.delete([f"{directory}/{manifest.files[0]}"])
    with pytest.raises(PartitionMissing, match=rf"names {manifest.files[0]}, which no longer exists"):
        read_partition(lake, directory)


def test_local_write_is_atomic(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path)
    lake.write_bytes("a/b.bin", b"x" * 10)
    assert lake.read_bytes("a/b.bin") == b"x" * 10
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]  # no temporary left behind


def test_s3_storage_round_trip(s3_client) -> None:
    from mlops.airflow.hooks.lake import LakeHook

    s3_client.create_bucket(Bucket="unit")
    hook = LakeHook(root="s3://unit/prefix")
    directory = partition_dir("churn", "raw", "2026-01-05")
    commit_partition(hook.storage, directory, {"part-000.csv": b"a,b\n1,2\n"})
    assert read_partition(hook.storage, directory) == {"part-000.csv": b"a,b\n1,2\n"}
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket="unit")["Contents"]]
    assert all(k.startswith("prefix/churn/raw/ds=2026-01-05/") for k in keys) and len(keys) == 2
    assert hook.uri(directory) == "s3://unit/prefix/churn/raw/ds=2026-01-05"


def test_unsupported_root() -> None:
    from mlops.airflow.hooks.lake import LakeHook

    with pytest.raises(ValueError, match="unsupported lake root"):
        LakeHook(root="gs://bucket/x").storage  # noqa: B018


def test_a_commit_leaves_sub_partitions_alone(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path)
    reports = partition_dir("churn", "reports", "2026-01-05")
    commit_partition(lake, f"{reports}/drift", {"drift.json": b"{}"})
    commit_partition(lake, reports, {"validation.json": b"{}"})
    commit_partition(lake, reports, {"validation.json": b"{ }"})
    assert read_partition(lake, f"{reports}/drift") == {"drift.json": b"{}"}
    assert read_partition(lake, reports) == {"validation.json": b"{ }"}


def test_a_commit_that_keeps_the_replaced_attempt_adopts_files_and_keeps_history(tmp_path: Path) -> None:
    from mlops.lake.storage import open_partition, read_manifest

    lake = LocalStorage(tmp_path)
    directory = partition_dir("churn", "validated", "2026-01-05")
    first = commit_partition(lake, directory, {"part.parquet": b"rows"}, extra={"validated": 1})
    with open_partition(lake, directory) as writer:
        writer.adopt(first.files[0])
        with pytest.raises(ValueError, match="not a committed file"):
            writer.adopt("part-elsewhere.parquet")
        writer.add("replay.parquet", b"more")
        second = writer.commit({"validated": 2}, keep_replaced=True)
    assert read_partition(lake, directory) == {first.files[0]: b"rows", "replay.parquet": b"more"}
    assert read_manifest(lake, directory).history == [first.body()]
    # Aborting an attempt never removes a file it adopted: the committed attempt still names it.
    with open_partition(lake, directory) as writer:
        writer.adopt(first.files[0])
        writer.abort()
    assert lake.exists(f"{directory}/{first.files[0]}")
    # A commit that does not keep the replaced attempt removes it and every attempt it kept.
    commit_partition(lake, directory, {"part.parquet": b"fresh"})
    assert read_partition(lake, directory) == {"part.parquet": b"fresh"}
    assert len(lake.list_files(directory)) == 2 and second.files[1] not in str(lake.list_files(directory))


def test_a_kept_attempt_survives_the_next_kept_commit(tmp_path: Path) -> None:
    from mlops.lake.storage import read_manifest

    lake = LocalStorage(tmp_path)
    directory = partition_dir("churn", "quarantine", "2026-01-05")
    first = commit_partition(lake, directory, {"part.parquet": b"6 rows"})
    second = commit_partition(lake, directory, {"part.parquet": b"3 rows"}, keep_replaced=True)
    commit_partition(lake, directory, {"part.parquet": b"0 rows"}, keep_replaced=True)
    history = read_manifest(lake, directory).history
    assert [h["attempt"] for h in history] == [second.attempt, first.attempt]
    assert all(lake.exists(f"{directory}/{name}") for name in first.files + second.files)
    assert read_partition(lake, directory) == {"part.parquet": b"0 rows"}


def test_an_attempt_is_read_while_it_is_committed_or_kept_and_refused_after(tmp_path: Path) -> None:
    from mlops.lake.storage import read_attempt

    lake = LocalStorage(tmp_path)
    directory = partition_dir("churn", "validated", "2026-01-05")
    first = commit_partition(lake, directory, {"part.parquet": b"first"})
    second = commit_partition(lake, directory, {"part.parquet": b"second"}, keep_replaced=True)
    assert read_attempt(lake, directory, second.attempt) == {"part.parquet": b"second"}
    assert read_attempt(lake, directory, first.attempt) == {"part.parquet": b"first"}  # kept
    commit_partition(lake, directory, {"part.parquet": b"third"})  # replaces both, keeps none
    with pytest.raises(PartitionMissing, match=f"attempt {first.attempt} is neither committed nor kept"):
        read_attempt(lake, directory, first.attempt)
