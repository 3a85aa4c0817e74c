"""A partition's quarantine: read it, count its reasons, show samples, and keep a summary of it.

The gate writes the summary (``summarise``) into the quarantine manifest's ``extra`` beside the
counts, so the share and reasons of every day stay in the lake, cheap to list over time (``history``)
without reading a row. ``describe`` is what ``python -m mlops quarantine show`` prints for one day.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.index.records import reason_counts as index_reason_counts
from mlops.ingest.validation import QUARANTINE_REASONS, ROW_NUMBER
from mlops.lake.batches import parquet_batches
from mlops.lake.storage import MANIFEST, Storage, partition_dir, read_manifest

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import Pipeline

SEPARATOR = "; "  # between the reasons of one row (``mlops.ingest.validation``)
_COLUMN = re.compile(r"\(([^()]*)\)$")


def reasons_of(text: Any) -> list[str]:
    """The checks one row failed, from its ``_quarantine_reasons``."""
    return [r for r in str(text).split(SEPARATOR) if r] if isinstance(text, str) else []


def column_of(check: str) -> str | None:
    """The column a check names: ``expect_column_values_to_be_in_set(plan)`` -> ``plan``."""
    found = _COLUMN.search(check)
    return found.group(1) if found else None


def reason_counts(reasons: pd.Series) -> dict[str, int]:
    """How many rows failed each check (a row failing two checks counts for both), most first."""
    return index_reason_counts(reasons, limit=None)


def summarise(
    quarantined: pd.DataFrame, rows: int, file_rows: Sequence[tuple[str, int]] | None = None
) -> dict[str, Any]:
    """What the quarantine manifest keeps beside the counts: the share, the reasons, and how many
    rows each landed file held (in the order of ``_row_number``), which names a row's source file."""
    summary: dict[str, Any] = {
        "share": round(len(quarantined) / rows, 6) if rows else 0.0,
        "reasons": reason_counts(quarantined[QUARANTINE_REASONS]),
    }
    if file_rows is not None:
        summary["file_rows"] = [[name, int(count)] for name, count in file_rows]
    return summary


@dataclass(frozen=True)
class Quarantine:
    """A committed quarantine partition: its rows and its manifest."""

    ds: str
    frame: pd.DataFrame  # raw values + _quarantine_reasons + _row_number
    extra: dict[str, Any]
    attempt: str

    @property
    def rows(self) -> int:
        """Rows landed for the day (the gate's count)."""
        return int(self.extra.get("rows", len(self.frame)))


def quarantine_dir(pipeline: str, ds: str) -> str:
    return partition_dir(pipeline, "quarantine", ds)


def read_quarantine(lake: Storage, pipeline: Pipeline, ds: str) -> Quarantine:
    """The day's quarantine; ``PartitionMissing`` when the day was not ingested or was rejected."""
    import pandas as pd

    directory = quarantine_dir(pipeline.name, ds)
    manifest = read_manifest(lake, directory)
    frames = list(parquet_batches(lake, directory))
    if not frames:
        raise ValueError(f"{lake.uri(directory)}: the quarantine names no file; re-run the day's ingest")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return Quarantine(ds, frame, manifest.extra, manifest.attempt)


@dataclass(frozen=True)
class Reason:
    check: str
    rows: int
    samples: list[dict[str, Any]]  # a few rows: their _row_number and the value of the check's column


@dataclass(frozen=True)
class View:
    """What ``quarantine show`` says about one day."""

    ds: str
    rows: int
    quarantined: int
    reasons: list[Reason] = field(default_factory=list)
    replays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.quarantined / self.rows if self.rows else 0.0


def describe(quarantine: Quarantine, samples: int = 3) -> View:
    """The day's reasons with their counts and ``samples`` rows each (row number, offending value)."""
    frame = quarantine.frame
    listed = frame[QUARANTINE_REASONS].map(reasons_of)
    reasons = []
    for check, count in reason_counts(frame[QUARANTINE_REASONS]).items():
        hit = frame[listed.map(lambda found, check=check: check in found)].head(samples)
        column = column_of(check)
        reasons.append(
            Reason(
                check,
                count,
                [
                    {
                        ROW_NUMBER: int(row[ROW_NUMBER]),
                        **({column: _plain(row[column])} if column in frame.columns else {}),
                    }
                    for _, row in hit.iterrows()
                ],
            )
        )
    return View(
        quarantine.ds,
        quarantine.rows,
        len(frame),
        reasons,
        list(quarantine.extra.get("replays", [])),
    )


def _plain(value: Any) -> Any:
    import pandas as pd

    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def quarantined_days(lake: Storage, pipeline: str) -> list[str]:
    """Every day with a committed quarantine, oldest first."""
    prefix = f"{pipeline}/quarantine/"
    found = re.compile(rf"^{re.escape(prefix)}ds=([^/]+)/{MANIFEST}$")
    return sorted(m.group(1) for path in lake.list_files(prefix.rstrip("/")) if (m := found.match(path)))


def history(lake: Storage, pipeline: Pipeline) -> list[View]:
    """Each quarantined day's rows, share and reasons, from the manifests alone (no row is read);
    a day committed before the summary was kept is read whole."""
    views = []
    for ds in quarantined_days(lake, pipeline.name):
        extra = read_manifest(lake, quarantine_dir(pipeline.name, ds)).extra
        if "reasons" not in extra:
            views.append(describe(read_quarantine(lake, pipeline, ds), samples=0))
            continue
        reasons = [Reason(check, int(count), []) for check, count in extra["reasons"].items()]
        views.append(
            View(ds, int(extra["rows"]), int(extra["quarantined"]), reasons, list(extra.get("replays", [])))
        )
    return views
