"""The as-of window of validated partitions a training run reads.

A day in the window is ``ready`` (validated committed), ``failed`` (the gate rejected it: its report
is committed and says so), or ``pending`` (not ingested yet). Training waits while the last day is
pending, skips failed days and names them, and refuses a window below the configured minimums.
Pure Python over ``Storage``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mlops.grain import Grain
from mlops.lake.storage import (
    MANIFEST,
    Storage,
    is_committed,
    partition_dir,
    read_attempt,
    read_manifest,
    read_partition,
)

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import Pipeline

DayState = Literal["ready", "failed", "pending"]


class WindowTooSmall(ValueError):
    """Fewer partitions or rows than the pipeline's training minimums; names what is missing."""


def window_days(as_of: dt.date | str, days: int, grain: Grain) -> list[str]:
    """The ``days`` partitions of ``grain`` ending with ``as_of``, oldest first."""
    return grain.last(as_of, days)


def day_state(lake: Storage, pipeline: str, ds: str) -> DayState:
    if is_committed(lake, partition_dir(pipeline, "validated", ds)):
        return "ready"
    reports = partition_dir(pipeline, "reports", ds)
    if is_committed(lake, reports):
        manifest = json.loads(lake.read_bytes(f"{reports}/{MANIFEST}"))
        if manifest.get("extra", {}).get("passed") is False:
            return "failed"
    return "pending"


@dataclass(frozen=True)
class Window:
    as_of: str
    ready: list[str]
    failed: list[str]
    pending: list[str]

    def check(self, pipeline: Pipeline) -> None:
        need = pipeline.windows.min_partitions
        if len(self.ready) < need:
            raise WindowTooSmall(
                f"{pipeline.name}: the window ending {self.as_of} has {len(self.ready)} validated "
                f"{pipeline.grain.name} partition(s), training needs at least {need} (training.min_partitions); "
                f"failed: {self.failed or 'none'}; not ingested: {self.pending or 'none'}"
            )


def scan(lake: Storage, pipeline: Pipeline, as_of: dt.date | str, days: int) -> Window:
    """The states of the ``days`` partitions ending with ``as_of`` (in partitions of the grain)."""
    grain = pipeline.grain
    # Partitions before the pipeline's start date hold no data by definition: not "pending".
    first = grain.key(pipeline.start_date)
    window = window_days(as_of, days, grain)
    states = {ds: day_state(lake, pipeline.name, ds) for ds in window if ds >= first}
    return Window(
        as_of=window[-1],
        ready=[d for d, s in states.items() if s == "ready"],
        failed=[d for d, s in states.items() if s == "failed"],
        pending=[d for d, s in states.items() if s == "pending"],
    )


def attempts_of(lake: Storage, pipeline: str, days: list[str]) -> dict[str, str]:
    """The committed attempt of each day's validated partition: what a window reads, recorded so
    that its trials and its gate read the same rows (a quarantine replay commits a new attempt)."""
    return {ds: read_manifest(lake, partition_dir(pipeline, "validated", ds)).attempt for ds in days}


def load_frames(
    lake: Storage,
    pipeline: Pipeline,
    days: list[str],
    *,
    whole_window: bool = True,
    attempts: Mapping[str, str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Each ready day's validated rows, features and target only (what the matrix needs); of the
    attempt ``attempts`` names for the day, where it names one, else the committed one.

    For a whole training window, fewer rows than ``training.min_rows`` is an error.
    """
    import pandas as pd

    columns = [*pipeline.features, pipeline.target]
    frames = {}
    for ds in days:
        directory = partition_dir(pipeline.name, "validated", ds)
        files = (
            read_attempt(lake, directory, attempts[ds])
            if attempts and ds in attempts
            else read_partition(lake, directory)
        )
        frames[ds] = pd.concat(
            [pd.read_parquet(io.BytesIO(data), columns=columns) for data in files.values()], ignore_index=True
        )
    rows = sum(len(f) for f in frames.values())
    if whole_window and rows < pipeline.training.min_rows:
        raise WindowTooSmall(
            f"{pipeline.name}: {rows} validated rows in {len(days)} partition(s), training needs at least "
            f"{pipeline.training.min_rows} (training.min_rows)"
        )
    return frames
