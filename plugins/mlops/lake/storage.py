"""The lake: layout of partitions and the commit protocol that makes them atomic.

Layout: ``<lake_root>/<pipeline>/<zone>/ds=YYYY-MM-DD/``. A partition is visible only through its
``_SUCCESS`` manifest, written last in one step (an ``os.replace`` locally, a single PUT on S3). The
manifest names the data files of the attempt that committed; readers read exactly those. A writer
killed mid-way leaves only files no manifest names, which a later commit removes once abandoned. A
re-run writes new files and swaps the manifest, so readers see the old partition or the new one,
never a mix. A commit that keeps the replaced attempt (``keep_replaced``: a quarantine replay) records
that attempt's manifest in the new one's ``history`` and leaves its files in place, for audit; an
attempt may also reuse a file of the attempt it replaces (``adopt``) rather than copy it.

Pure Python over a small ``Storage`` protocol; the Airflow hook supplies local or S3 storage.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal, Protocol

from mlops.grain import normalize_key

Zone = Literal["raw", "validated", "quarantine", "predictions", "reports", "served", "index"]
ZONES: tuple[Zone, ...] = ("raw", "validated", "quarantine", "predictions", "reports", "served", "index")
MANIFEST = "_SUCCESS"


@dataclass(frozen=True)
class FileStat:
    """One listed file: what tells a file that is still changing from one that is not."""

    path: str
    size: int
    mtime: float  # seconds since the epoch
    tag: str = ""  # what changes on any rewrite: an S3 ETag, a local file's inode and mtime in ns
    link: bool = False  # a symbolic link on local disk (to a file or a folder), never followed


# Streams are copied in pieces of this size: a landed file of any size costs this much memory.
COPY_CHUNK = 8 << 20


class Storage(Protocol):
    """Bytes under one root; paths are relative and use '/'.

    ``open_read`` and ``write_stream`` move a file of any size in bounded memory (a 2 GB export is
    never one ``bytes``); ``read_bytes`` and ``write_bytes`` are for files a batch bounds.
    """

    def read_bytes(self, path: str) -> bytes: ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def open_read(self, path: str) -> BinaryIO: ...
    def write_stream(self, path: str, stream: BinaryIO) -> int: ...
    def exists(self, path: str) -> bool: ...
    def list_files(self, prefix: str) -> list[str]: ...
    def stat_files(self, prefix: str) -> list[FileStat]: ...
    def delete(self, paths: list[str]) -> None: ...
    def uri(self, path: str) -> str: ...


class PartitionMissing(FileNotFoundError):
    """A partition that has not been committed (absent, or a writer never finished)."""


def partition_dir(pipeline: str, zone: Zone, ds: str | dt.date) -> str:
    if zone not in ZONES:
        raise ValueError(f"unknown zone {zone!r}; expected one of {ZONES}")
    return f"{pipeline}/{zone}/ds={normalize_key(ds)}"


@dataclass(frozen=True)
class Manifest:
    files: list[str]
    committed_at: str
    attempt: str
    extra: dict[str, Any] = field(default_factory=dict)
    # The attempts this one replaced but kept (newest first): each {files, committed_at, attempt,
    # extra}. Their files stay until a commit that does not keep them replaces this one.
    history: list[dict[str, Any]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        body = {"files": self.files, "committed_at": self.committed_at, "attempt": self.attempt}
        return {**body, "extra": self.extra}

    def to_json(self) -> bytes:
        history = {"history": self.history} if self.history else {}  # older manifests stay as they were
        return json.dumps({**self.body(), **history}, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        return cls(
            body["files"],
            body["committed_at"],
            body["attempt"],
            body.get("extra", {}),
            body.get("history", []),
        )

    def kept_files(self) -> set[str]:
        """The files of the kept attempts in ``history``."""
        return {name for attempt in self.history for name in attempt["files"]}


class PartitionWriter:
    """One new attempt of a partition: files written one at a time, visible together on ``commit``.

    Names get the attempt's suffix (``part-00003.parquet`` is stored as ``part-00003-<attempt>.parquet``)
    so a concurrent or killed writer never overwrites committed files; until ``commit`` writes the
    manifest, readers see the partition as it was. Leaving the ``with`` block on an exception, or
    ``abort()``, removes what this attempt wrote. Memory is one file's bytes at a time.
    """

    def __init__(self, storage: Storage, directory: str) -> None:
        self.storage, self.directory = storage, directory
        self.attempt = _new_attempt()
        self.written: list[str] = []
        self.adopted: set[str] = set()  # files of the replaced attempt this one names too: never removed
        self.committed: Manifest | None = None

    def _stored(self, name: str) -> str:
        if "/" in name or name == MANIFEST or not name:
            raise ValueError(f"not a partition file name: {name!r}")
        stem, dot, ext = name.partition(".")
        unique = f"{stem}-{self.attempt}{dot}{ext}"
        if unique in self.written:
            raise ValueError(f"{self.storage.uri(self.directory)}: {name!r} written twice in one attempt")
        return unique

    def add(self, name: str, data: bytes) -> str:
        """Write one file of the attempt; returns its stored name."""
        unique = self._stored(name)
        self.storage.write_bytes(f"{self.directory}/{unique}", data)
        self.written.append(unique)
        return unique

    def add_stream(self, name: str, stream: BinaryIO) -> int:
        """Copy a stream of any size into one file of the attempt, in bounded memory; returns bytes."""
        unique = self._stored(name)
        size = self.storage.write_stream(f"{self.directory}/{unique}", stream)
        self.written.append(unique)
        return size

    def adopt(self, stored: str) -> str:
        """Name a file of the committed attempt (its stored name) as a file of this one too, without
        copying it: a replay adds rows to a partition and keeps the rows it had as they are."""
        if stored not in read_manifest(self.storage, self.directory).files:
            raise ValueError(f"{self.storage.uri(self.directory)}: {stored!r} is not a committed file")
        if stored in self.written:
            raise ValueError(f"{self.storage.uri(self.directory)}: {stored!r} adopted twice in one attempt")
        self.written.append(stored)
        self.adopted.add(stored)
        return stored

    def adopt_committed(self) -> Manifest | None:
        """``adopt`` every file of the committed attempt, reading its manifest once; returns that
        manifest (None: nothing committed yet). An append: the served zone adds a part per flush."""
        try:
            manifest = read_manifest(self.storage, self.directory)
        except PartitionMissing:
            return None
        for stored in manifest.files:
            if stored not in self.adopted:
                self.written.append(stored)
                self.adopted.add(stored)
        return manifest

    def commit(self, extra: dict[str, Any] | None = None, *, keep_replaced: bool = False) -> Manifest:
        """Write the manifest naming this attempt's files (one step), then remove the replaced ones.

        ``keep_replaced``: the replaced attempt goes to the new manifest's ``history`` and its files
        stay (an audit trail); otherwise the replaced attempt and the ones it kept are removed.
        """
        if self.committed is not None:
            raise RuntimeError(
                f"{self.storage.uri(self.directory)}: attempt {self.attempt} already committed"
            )
        try:
            previous: Manifest | None = read_manifest(self.storage, self.directory)
        except PartitionMissing:
            previous = None
        history: list[dict[str, Any]] = []
        replaced: set[str] = set()
        if previous is not None and keep_replaced:
            history = [previous.body(), *previous.history]
        elif previous is not None:
            replaced = set(previous.files) | previous.kept_files()
        manifest = Manifest(
            files=list(self.written),
            committed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            attempt=self.attempt,
            extra=extra or {},
            history=history,
        )
        kept = manifest.kept_files()
        self.storage.write_bytes(f"{self.directory}/{MANIFEST}", manifest.to_json())
        self.committed = manifest
        # Only now is the old content unreferenced: remove what the replaced manifest named, and the
        # leftovers of writers that started long before this one (killed mid-way). Never the files
        # of a writer that may still be at work (a retry beside a zombie, a re-run beside a
        # backfill): its manifest, if it lands after this one, must find every file it names.
        # Direct children only: a sub-partition (reports/ds=.../drift/) is committed on its own.
        children = [
            p for p in self.storage.list_files(self.directory) if "/" not in p[len(self.directory) + 1 :]
        ]
        names = {p.rsplit("/", 1)[-1]: p for p in children}
        stale = [
            path
            for name, path in names.items()
            if name not in {*self.written, MANIFEST, *kept}
            and (name in replaced or _abandoned(name, self.attempt))
        ]
        self.storage.delete(stale)
        return manifest

    def abort(self) -> None:
        """Remove this attempt's files (nothing names them); a committed attempt is left alone."""
        if self.committed is None:
            self.storage.delete([f"{self.directory}/{n}" for n in self.written if n not in self.adopted])
            self.written.clear()
            self.adopted.clear()

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self.abort()


def open_partition(storage: Storage, directory: str) -> PartitionWriter:
    """A writer for a new attempt of ``directory``: ``with open_partition(...) as w: w.add(...); w.commit()``."""
    return PartitionWriter(storage, directory)


def commit_partition(
    storage: Storage,
    directory: str,
    files: dict[str, bytes],
    *,
    extra: dict[str, Any] | None = None,
    keep_replaced: bool = False,
) -> Manifest:
    """Write ``files`` (name -> bytes) as the new content of ``directory`` and commit them."""
    with open_partition(storage, directory) as writer:
        for name, data in files.items():
            writer.add(name, data)
        return writer.commit(extra, keep_replaced=keep_replaced)


# A writer's files not named by any manifest are abandoned once the writer started this long before.
ABANDONED_AFTER_S = 6 * 3600
_ATTEMPT = re.compile(r"-([0-9a-f]{12,16})(?:\.|$)")


def _new_attempt() -> str:
    """A commit attempt's id: its start in seconds (hex, so ids sort by time), then random bits."""
    return f"{int(time.time()):08x}{uuid.uuid4().hex[:6]}"


def _attempt_started(attempt: str) -> float | None:
    return int(attempt[:8], 16) if len(attempt) == 14 else None  # 12 hex: an id from before the clock


def _abandoned(name: str, attempt: str) -> bool:
    found = _ATTEMPT.search(name)
    if not found:
        return False
    started, now = _attempt_started(found.group(1)), _attempt_started(attempt) or time.time()
    return started is None or now - started > ABANDONED_AFTER_S


def withdraw_partition(storage: Storage, directory: str) -> None:
    """Make a partition invisible (manifest first, in one step), then remove its files."""
    storage.delete([f"{directory}/{MANIFEST}"])
    storage.delete([p for p in storage.list_files(directory) if "/" not in p[len(directory) + 1 :]])


def read_manifest(storage: Storage, directory: str) -> Manifest:
    path = f"{directory}/{MANIFEST}"
    missing = PartitionMissing(f"partition {storage.uri(directory)} is not committed (no {MANIFEST})")
    if not storage.exists(path):
        raise missing
    try:
        return Manifest.from_json(storage.read_bytes(path))
    except Exception as exc:  # withdrawn between the two calls
        if _not_found(exc):
            raise missing from None
        raise


def is_committed(storage: Storage, directory: str) -> bool:
    return storage.exists(f"{directory}/{MANIFEST}")


def read_partition(storage: Storage, directory: str, *, attempts: int = 10) -> dict[str, bytes]:
    """The committed files of a partition, by their name without the attempt suffix.

    A writer that commits while this reads removes the files of the manifest this read: when a
    named file is gone and the manifest changed meanwhile, read the new one (old or new, never a mix).
    Holds every file at once: for a partition a batch does not bound, use ``iter_partition``.
    """
    for attempt in range(1, attempts + 1):
        manifest = read_manifest(storage, directory)
        try:
            return dict(_iter_files(storage, directory, manifest))
        except PartitionMissing:
            if attempt == attempts or read_manifest(storage, directory).attempt == manifest.attempt:
                raise
    raise AssertionError("unreachable")


def read_attempt(storage: Storage, directory: str, attempt: str) -> dict[str, bytes]:
    """The files of one attempt of a partition: the committed one, or one its manifest kept in
    ``history`` (a replaced attempt kept for audit). A reader that recorded which attempt it read (a
    training window) reads the same rows later, whatever was committed since."""
    manifest = read_manifest(storage, directory)
    if manifest.attempt != attempt:
        kept = next((h for h in manifest.history if h["attempt"] == attempt), None)
        if kept is None:
            raise PartitionMissing(
                f"partition {storage.uri(directory)}: attempt {attempt} is neither committed nor kept "
                f"(committed: {manifest.attempt}); a later commit replaced it without keeping it"
            )
        manifest = Manifest(kept["files"], kept["committed_at"], kept["attempt"], kept.get("extra", {}))
    return dict(_iter_files(storage, directory, manifest))


def partition_files(storage: Storage, directory: str) -> list[tuple[str, str]]:
    """``(name, path)`` of each committed file, by name (without the attempt suffix): what
    ``iter_partition`` reads, for readers that open the files themselves (``open_read``)."""
    manifest = read_manifest(storage, directory)
    suffix = f"-{manifest.attempt}"
    return sorted((name.replace(suffix, "", 1), f"{directory}/{name}") for name in manifest.files)


def iter_partition(storage: Storage, directory: str) -> Iterator[tuple[str, bytes]]:
    """The committed files one at a time, in the order written: memory is one file, not the partition.

    The files are those of the manifest read first. A re-run that commits meanwhile removes them:
    the reader then gets ``PartitionMissing`` naming the file (a retry reads the new attempt whole),
    never a mix of two attempts.
    """
    yield from _iter_files(storage, directory, read_manifest(storage, directory))


def _iter_files(storage: Storage, directory: str, manifest: Manifest) -> Iterator[tuple[str, bytes]]:
    suffix = f"-{manifest.attempt}"
    for name in manifest.files:  # in the order written: a writer adds parts in the order of their rows
        try:
            data = storage.read_bytes(f"{directory}/{name}")
        except Exception as exc:
            if not _not_found(exc):
                raise
            raise PartitionMissing(
                f"partition {storage.uri(directory)} names {name}, which no longer exists (removed by "
                "another writer or by hand); re-run the task that writes it"
            ) from None
        yield name.replace(suffix, "", 1), data


def _not_found(exc: BaseException) -> bool:
    """A missing file, locally or on S3 (botocore's ClientError, recognised without importing it)."""
    if isinstance(exc, FileNotFoundError):
        return True
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class SymlinkRefused(PermissionError):
    """A symbolic link below a local root: neither it nor what it points to is read."""


class LocalStorage:
    """Storage on a local directory; writes are atomic (temporary file, then rename).

    Symbolic links below the root are listed but never followed: reading one (or through one) is
    refused, so a link in the landing folder or the lake cannot copy a file from elsewhere on the
    worker (a key, a password file) into the lake, its reports or a notification.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, path: str) -> Path:
        return self.root / path

    def _unlinked(self, path: str) -> Path:
        """``path`` under the root, refusing it when it or a folder on the way is a symbolic link."""
        current = self.root
        for part in Path(path).parts:
            current = current / part
            if current.is_symlink():
                raise SymlinkRefused(
                    f"{current} is a symbolic link: only regular files are read, never a link "
                    "(replace the link with a copy of the file)"
                )
        return current

    def read_bytes(self, path: str) -> bytes:
        with self.open_read(path) as handle:
            return handle.read()

    def open_read(self, path: str) -> BinaryIO:
        target = self._unlinked(path)
        # O_NOFOLLOW: a link swapped in after the check is refused by the kernel, not followed.
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            if target.is_symlink():
                raise SymlinkRefused(f"{target} is a symbolic link: only regular files are read") from None
            raise
        return os.fdopen(fd, "rb")

    def write_bytes(self, path: str, data: bytes) -> None:
        self._write(path, lambda handle: handle.write(data))

    def write_stream(self, path: str, stream: BinaryIO) -> int:
        written = 0

        def copy(handle: BinaryIO) -> None:
            nonlocal written
            while chunk := stream.read(COPY_CHUNK):
                handle.write(chunk)
                written += len(chunk)

        self._write(path, copy)
        return written

    def _write(self, path: str, write: Any) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def list_files(self, prefix: str) -> list[str]:
        return [found.path for found in self.stat_files(prefix)]

    def stat_files(self, prefix: str) -> list[FileStat]:
        """Regular files under ``prefix``, and links (to files or folders) as ``link`` entries:
        listed so that a reader can refuse them by name, never followed."""
        base = self._path(prefix)
        if base.is_symlink():
            return [FileStat(base.relative_to(self.root).as_posix(), 0, 0.0, link=True)]
        found: list[FileStat] = []
        if base.is_dir():
            self._scan(os.fspath(base), base.relative_to(self.root).as_posix(), found)
        return sorted(found, key=lambda entry: entry.path)

    def _scan(self, folder: str, relative: str, found: list[FileStat]) -> None:
        """Depth first over plain strings (no ``Path`` per entry: a year of partitions lists fast)."""
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:  # removed while listing
            return
        for entry in entries:
            name = f"{relative}/{entry.name}" if relative not in ("", ".") else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(info.st_mode):  # listed by name so a reader can refuse it, never followed
                found.append(FileStat(name, 0, info.st_mtime, link=True))
            elif stat.S_ISDIR(info.st_mode):
                self._scan(entry.path, name, found)
            elif stat.S_ISREG(info.st_mode):
                found.append(FileStat(name, info.st_size, info.st_mtime, f"{info.st_ino}:{info.st_mtime_ns}"))

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            self._path(path).unlink(missing_ok=True)

    def uri(self, path: str) -> str:
        return str(self._path(path))
