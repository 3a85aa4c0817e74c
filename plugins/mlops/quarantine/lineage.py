"""The lineage columns of a replayed row: where it came from and what changed it.

A row that a replay moves from quarantine to ``validated`` keeps its ``_row_number`` (its position
in the landed partition) and gains its source file, the fix and the run. They start with ``_`` like
the quarantine's own columns: they are not data, so training, scoring and monitoring never read them
as features (training and scoring select the declared features; monitoring skips these by name).
"""

from __future__ import annotations

from collections.abc import Iterable

from mlops.ingest.validation import ROW_NUMBER

SOURCE_FILE = "_source_file"
REPLAY_FIX = "_replay_fix"
REPLAY_RUN = "_replay_run"
LINEAGE: tuple[str, ...] = (ROW_NUMBER, SOURCE_FILE, REPLAY_FIX, REPLAY_RUN)


def data_columns(columns: Iterable[str]) -> list[str]:
    """``columns`` without the lineage ones."""
    return [c for c in columns if c not in LINEAGE]
