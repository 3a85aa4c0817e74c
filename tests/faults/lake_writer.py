"""A writer of one lake partition in a process of its own, so that a test can kill it mid-commit.

    python lake_writer.py ROOT DIRECTORY TAG FILES [COMMITS]

Commits ``FILES`` files whose bytes all carry ``TAG`` (``COMMITS`` times, default once) through the
package's ``commit_partition`` and prints ``wrote <name>`` after each file it wrote and
``committed <tag>`` after each commit, flushed, so the test knows how far it got. With
``LAKE_WRITER_STEP=1`` it then waits for a line on stdin before it goes on: a test can kill it at an
exact point of the commit.
"""

from __future__ import annotations

import os
import sys

from mlops.airflow.hooks.lake import storage_for
from mlops.lake.storage import Storage, commit_partition


class Reporting:
    """A storage that says what it wrote, once it is written."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def write_bytes(self, path: str, data: bytes) -> None:
        self.inner.write_bytes(path, data)
        print(f"wrote {path.rsplit('/', 1)[-1]}", flush=True)
        if os.environ.get("LAKE_WRITER_STEP") == "1":
            sys.stdin.readline()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def payload(tag: str, files: int) -> dict[str, bytes]:
    return {f"part-{i:03d}.csv": f"{tag}:{i}\n".encode() for i in range(files)}


def main(root: str, directory: str, tag: str, files: str, commits: str = "1") -> None:
    storage = Reporting(storage_for(root))
    for n in range(int(commits)):
        commit_partition(storage, directory, payload(f"{tag}.{n}", int(files)))  # type: ignore[arg-type]
        print(f"committed {tag}.{n}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
