"""What was served, kept: answered rows buffered in memory and appended to the lake's ``served`` zone.

Layout: ``<pipeline>/served/ds=<key>/``, the key of the pipeline's grain holding the UTC time the rows
were served. Each flush commits a new attempt of each partition it touches: the attempt adopts the
parts already committed and adds one (``part-<n>.parquet``), so a reader sees the partition before or
after the flush, never half of it (``mlops.lake.storage``). The manifest's ``extra.rows`` is the
partition's row count. A part's columns: ``_served_at``, ``_request_id``, ``_model_version``, the
key (null where the request did not send it), every feature as the pipeline schema types it,
``score`` and ``label``.

Requests only append to the buffer; a thread of the writer commits it every ``serving.flush_rows``
rows or ``serving.flush_seconds``, whichever first, and once more on shutdown. ``serving.sample_rate``
of the rows are kept. A flush that fails keeps its rows for the next one; beyond ``max_buffered``
rows the oldest are dropped (counted). Commits of one partition are serialised across the
processes of one machine (uvicorn workers) by a lock file; separate machines need separate lakes
or one writer. No Airflow import.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops.ingest.parsing import coerce_column
from mlops.lake.batches import parquet_bytes, part_name
from mlops.lake.storage import Manifest, Storage, open_partition, partition_dir

if TYPE_CHECKING:
    from mlops.config.pipeline import Pipeline
    from mlops.serving.metrics import ServingMetrics
    from mlops.serving.rows import Rows

log = logging.getLogger(__name__)

SERVED_AT, REQUEST_ID, MODEL_VERSION = "_served_at", "_request_id", "_model_version"


def served_frame(
    pipeline: Pipeline,
    rows: Rows,
    scores: np.ndarray,
    *,
    version: str,
    request_id: str,
    served_at: dt.datetime,
) -> pd.DataFrame:
    """One request's answered rows in the served zone's columns."""
    n = len(rows)
    typed = rows.typed.reset_index(drop=True)
    key = pipeline.key
    if rows.has_key:
        keys = typed[key]
    else:
        keys = coerce_column(pd.Series([None] * n, dtype=object), pipeline.columns[key].type)
    score = np.asarray(scores, dtype="float64")
    return pd.DataFrame(
        {
            SERVED_AT: pd.Series([served_at] * n, dtype="datetime64[ns, UTC]"),
            REQUEST_ID: pd.Series([request_id] * n, dtype="string"),
            MODEL_VERSION: pd.Series([version] * n, dtype="string"),
            key: keys.reset_index(drop=True),
            **{name: typed[name] for name in pipeline.features},
            "score": score,
            "label": (score >= pipeline.training.threshold).astype("int8"),
        }
    )


def commit_part(lake: Storage, pipeline: Pipeline, ds: str, frame: pd.DataFrame) -> Manifest:
    """Append ``frame`` to ``served/ds=<ds>`` as one new part, in one commit."""
    directory = partition_dir(pipeline.name, "served", ds)
    with _exclusive(lake.uri(directory)), open_partition(lake, directory) as writer:
        previous = writer.adopt_committed()
        before = int(previous.extra.get("rows", 0)) if previous else 0
        writer.add(part_name(len(previous.files) if previous else 0), parquet_bytes(frame))
        return writer.commit({"rows": before + len(frame)})


@contextlib.contextmanager
def _exclusive(uri: str) -> Iterator[None]:
    """One committer of ``uri`` at a time on this machine: two workers adopting the same attempt
    would each commit a manifest without the other's part, and the second would delete it."""
    name = hashlib.sha256(uri.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"mlops-served-{name}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ServedWriter:
    """The served-rows buffer of one pipeline and the thread that commits it."""

    def __init__(
        self,
        lake: Storage,
        pipeline: Pipeline,
        *,
        metrics: ServingMetrics | None = None,
        rng: np.random.Generator | None = None,
        max_buffered: int | None = None,
    ) -> None:
        settings = pipeline.serving
        self.lake, self.pipeline, self.metrics = lake, pipeline, metrics
        self.sample_rate = settings.sample_rate
        self.flush_rows, self.flush_seconds = settings.flush_rows, settings.flush_seconds
        self.max_buffered = max_buffered or max(100_000, 10 * settings.flush_rows)
        self._rng = rng or np.random.default_rng()
        self._lock = threading.Lock()  # the buffer's; never held during I/O
        self._flushing = threading.Lock()  # one flush at a time
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def buffered(self) -> int:
        return self._buffered

    def add(self, frame: pd.DataFrame) -> int:
        """Keep the sampled share of one request's rows (``served_frame``); returns how many."""
        if self.sample_rate < 1:
            frame = frame[self._rng.random(len(frame)) < self.sample_rate]
        if frame.empty:
            return 0
        with self._lock:
            self._buffer.append(frame)
            self._buffered += len(frame)
            full = self._buffered >= self.flush_rows
        if full:
            self._due.set()
        return len(frame)

    def flush(self) -> list[Manifest]:
        """Commit everything buffered, one part per partition touched; returns the manifests."""
        with self._flushing:
            with self._lock:
                pending, self._buffer, self._buffered = self._buffer, [], 0
            if not pending:
                return []
            frame = pd.concat(pending, ignore_index=True)
            grain = self.pipeline.grain
            days = frame[SERVED_AT].map(grain.key)
            committed, failed = [], []
            for ds, part in frame.groupby(days, sort=True):
                try:
                    committed.append(
                        commit_part(self.lake, self.pipeline, str(ds), part.reset_index(drop=True))
                    )
                except Exception:  # the rows are kept for the next flush, and it is logged
                    log.exception(
                        "%s: committing %d served rows of %s failed", self.pipeline.name, len(part), ds
                    )
                    failed.append(part)
                else:
                    self._count("committed", len(part))
            if failed:
                self._requeue(failed)
            return committed

    def _requeue(self, frames: list[pd.DataFrame]) -> None:
        with self._lock:
            self._buffer[:0] = frames
            self._buffered = sum(len(f) for f in self._buffer)
            dropped = 0
            while (excess := self._buffered - self.max_buffered) > 0:
                oldest = self._buffer[0]
                if len(oldest) <= excess:
                    self._buffer.pop(0)
                else:  # the oldest rows of it
                    self._buffer[0] = oldest.iloc[excess:].reset_index(drop=True)
                cut = min(len(oldest), excess)
                self._buffered -= cut
                dropped += cut
        if dropped:
            log.error(
                "%s: %d served rows dropped: the buffer is full and the lake refuses commits",
                self.pipeline.name,
                dropped,
            )
            self._count("dropped", dropped)

    def _count(self, outcome: str, rows: int) -> None:
        if self.metrics is not None:
            self.metrics.logged.labels(self.pipeline.name, outcome).inc(rows)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"served-{self.pipeline.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.wait(self.flush_seconds)
            self._due.clear()
            self.flush()

    def stop(self, timeout: float = 30) -> None:
        """Stop the thread and commit what is left."""
        self._stop.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush()
