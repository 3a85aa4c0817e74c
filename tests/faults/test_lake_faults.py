"""A partition is old or new, never partial: S3 erroring or stopped mid-commit, writers killed, writers racing.

Every fault hits a real process: moto's S3 server behind a proxy that answers errors or stops
listening, and ``lake_writer.py`` processes that commit through the package and get SIGKILLed.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from tests.faults.conftest import S3Behind, start_writer
from tests.faults.fault_proxy import DROP
from tests.faults.lake_writer import payload

from mlops.airflow.hooks.lake import storage_for
from mlops.lake.storage import Storage, commit_partition, read_partition

FILES = 6


def whole(files: dict[str, bytes]) -> str:
    """The tag every file of a read partition carries; fails unless the partition is one whole commit."""
    tags = {data.decode().split(":")[0] for data in files.values()}
    assert len(tags) == 1, f"a partition mixing commits: {sorted(tags)}"
    (tag,) = tags
    assert sorted(files) == sorted(payload(tag, FILES)), f"commit {tag} is missing files: {sorted(files)}"
    return tag


def puts_to(directory: str, proxy_seen: list) -> list[str]:
    return [path for method, path, _ in proxy_seen if method == "PUT" and directory in unquote(path)]


@pytest.mark.parametrize("failing", ["data", "manifest"])
def test_s3_answering_errors_mid_commit_leaves_the_previous_partition(
    healthy_proxy: S3Behind, failing: str
) -> None:
    storage, directory = storage_for(healthy_proxy.root), f"t/validated/ds=2026-01-0{len(failing)}"
    commit_partition(storage, directory, payload("old", FILES))
    proxy = healthy_proxy.proxy
    data_puts = 0

    def policy(method: str, path: str) -> int | None:
        nonlocal data_puts
        if method != "PUT":
            return None
        if failing == "manifest":
            return 503 if path.endswith("_SUCCESS") else None
        data_puts += 1
        return 503 if data_puts > 2 else None

    proxy.policy = policy
    started = time.monotonic()
    with pytest.raises(Exception, match=r"503|ServiceUnavailable|reached max retries"):
        commit_partition(storage, directory, payload("new", FILES))
    print(f"\nS3 answering 503 ({failing}): the commit failed in {time.monotonic() - started:.1f}s")
    assert whole(read_partition(storage, directory)) == "old"
    proxy.policy = lambda method, path: None
    commit_partition(storage, directory, payload("new", FILES))
    assert whole(read_partition(storage, directory)) == "new"


def test_s3_stopped_mid_commit_then_back_leaves_old_then_new(healthy_proxy: S3Behind) -> None:
    storage, directory = storage_for(healthy_proxy.root), "t/validated/ds=2026-01-10"
    commit_partition(storage, directory, payload("old", FILES))
    proxy = healthy_proxy.proxy
    cut = threading.Event()

    def policy(method: str, path: str) -> int | None:
        if method == "PUT" and len(puts_to(directory, proxy.seen)) >= 2:
            cut.set()
            return DROP
        return DROP if cut.is_set() else None

    proxy.policy = policy
    writer = start_writer(healthy_proxy.root, directory, "new", FILES)
    assert cut.wait(60), "the writer never reached its third file"
    proxy.stop()  # the server is gone: connections are refused from now on
    started = time.monotonic()
    out, err = writer.communicate(timeout=180)
    print(f"\nS3 stopped mid-commit: the writer failed {time.monotonic() - started:.1f}s after the stop")
    assert writer.returncode != 0, out
    assert "committed" not in out
    assert "Could not connect" in err or "Connection" in err, err[-2000:]

    proxy.policy = lambda method, path: None
    proxy.start()
    assert whole(read_partition(storage, directory)) == "old"
    rerun = start_writer(healthy_proxy.root, directory, "rerun", FILES)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err[-2000:]
    assert whole(read_partition(storage, directory)) == "rerun.0"


def _kill_after(root: str, directory: str, lines: int) -> str:
    """Start a writer that steps on our word, SIGKILL it right after its ``lines``-th write."""
    writer = start_writer(root, directory, "killed", FILES, step=True)
    said = []
    assert writer.stdout is not None and writer.stdin is not None
    for line in writer.stdout:
        if not line.startswith("wrote "):
            continue  # a log line
        said.append(line.strip())
        if len(said) == lines:
            writer.send_signal(signal.SIGKILL)
            break
        writer.stdin.write("\n")
        writer.stdin.flush()
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL, f"the writer ended before the kill: {said}"
    return "\n".join(said)


@pytest.mark.parametrize("where", ["local", "s3"])
@pytest.mark.parametrize(
    ("reported", "expected"),
    [(1, "old"), (FILES, "old"), (FILES + 1, "killed.0")],
    ids=["after-one-file", "before-the-manifest", "after-the-manifest"],
)
def test_a_writer_killed_mid_commit_leaves_a_whole_partition(
    healthy_proxy: S3Behind, tmp_path: Path, where: str, reported: int, expected: str
) -> None:
    root = str(tmp_path / "lake") if where == "local" else healthy_proxy.root
    storage, directory = storage_for(root), f"k/validated/ds=2026-02-{reported:02d}"
    commit_partition(storage, directory, payload("old", FILES))
    said = _kill_after(root, directory, reported)
    assert whole(read_partition(storage, directory)) == expected, said
    # The next writer (a retry) commits over whatever the killed one left.
    commit_partition(storage, directory, payload("retry", FILES))
    assert whole(read_partition(storage, directory)) == "retry"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_overlapping_writers_never_expose_a_broken_partition(
    healthy_proxy: S3Behind, tmp_path: Path, where: str
) -> None:
    root = str(tmp_path / "lake") if where == "local" else healthy_proxy.root
    storage: Storage = storage_for(root)
    directory = f"o/validated/ds=2026-03-0{1 if where == 'local' else 2}"
    commit_partition(storage, directory, payload("first", FILES))
    commits = 6
    writers = [start_writer(root, directory, name, FILES, commits) for name in ("a", "b")]
    reads, seen = 0, set()
    while any(w.poll() is None for w in writers):
        seen.add(whole(read_partition(storage, directory)))
        reads += 1
    for w in writers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err[-2000:]
        assert out.count("committed") == commits
    final = whole(read_partition(storage, directory))
    assert final in {f"a.{commits - 1}", f"b.{commits - 1}"}
    print(f"\n{where}: {reads} reads during {2 * commits} overlapping commits, all whole; saw {len(seen)}")
    assert reads > 0
    # Cleanup ran: of all the files written, those replaced by a later manifest were removed. Files
    # of a commit that another overtook stay until they are abandoned (``ABANDONED_AFTER_S``): a
    # writer cannot tell a finished rival from one still at work.
    written = (1 + 2 * commits) * FILES
    left = [p for p in storage.list_files(directory) if not p.endswith("_SUCCESS")]
    assert FILES <= len(left) < written, f"{len(left)} of {written} files left"
