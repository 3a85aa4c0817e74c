"""Export a day's quarantined rows to CSV, and take the edited file back.

The export has ``_row_number`` first (which row of the day each line is), the declared columns as
landed, and ``_quarantine_reasons`` last, for the steward to read. A submitted file must keep that
shape: the same columns (``_quarantine_reasons`` may be dropped; it is ignored), only rows the
quarantine holds, each once, with its key unchanged. Rows left out stay in quarantine as they are.
Every refusal names the rows (by ``_row_number`` and line of the file), never their values.

A checked file is stored as it came in ``quarantine/ds=.../submitted/`` (a sub-partition, committed
on its own; a new submission keeps the one it replaces for audit). The replay checks it again
against the quarantine of the moment, so a file that a later replay or re-ingest made stale is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.ingest.validation import QUARANTINE_REASONS, ROW_NUMBER
from mlops.lake.storage import commit_partition, read_manifest, read_partition
from mlops.quarantine.fixes import key_unchanged, some_rows
from mlops.quarantine.summary import Quarantine, quarantine_dir

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import Pipeline
    from mlops.lake.storage import Storage

SUBMITTED_FILE = "submitted.csv"


class SubmissionRejected(ValueError):
    """A submitted file that does not fit the day's quarantine; the message names the rows."""


def submission_dir(pipeline: str, ds: str) -> str:
    return f"{quarantine_dir(pipeline, ds)}/submitted"


def export_columns(pipeline: Pipeline) -> list[str]:
    return [ROW_NUMBER, *pipeline.columns, QUARANTINE_REASONS]


def export_csv(quarantine: Quarantine, pipeline: Pipeline) -> bytes:
    """The day's quarantined rows as CSV, in row order; a null is the empty field."""
    frame = quarantine.frame.sort_values(ROW_NUMBER)[export_columns(pipeline)]
    return frame.to_csv(index=False).encode()


def _lines(positions: list[int]) -> str:
    return some_rows([p + 2 for p in positions])  # line 1 is the header


def check_submission(data: bytes, quarantine: Quarantine, pipeline: Pipeline, *, source: str) -> pd.DataFrame:
    """The submitted rows (declared columns and ``_row_number``) with the quarantine's reasons,
    or ``SubmissionRejected`` saying what does not fit."""
    from mlops.ingest.parsing import BadInputError, coerce_column, parse_file

    try:
        frame = parse_file(data, "csv", source=source, null_values=pipeline.source.null_values)
    except BadInputError as exc:
        raise SubmissionRejected(str(exc)) from None
    expected = [ROW_NUMBER, *pipeline.columns]
    missing = [c for c in expected if c not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in (*expected, QUARANTINE_REASONS)]
    if missing or extra:
        what = "; ".join(
            t for t in (f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "") if t
        )
        raise SubmissionRejected(
            f"{source}: the columns changed ({what}); submit the file `quarantine export` wrote, "
            f"with its columns {expected} (and {QUARANTINE_REASONS}, which is ignored)"
        )
    numbers = coerce_column(frame[ROW_NUMBER], "int")
    if unreadable := numbers[numbers.isna()].index.tolist():
        raise SubmissionRejected(f"{source}: no {ROW_NUMBER} on line(s) {_lines(unreadable)}")
    twice = numbers[numbers.duplicated(keep=False)]
    if not twice.empty:
        raise SubmissionRejected(
            f"{source}: {ROW_NUMBER} {some_rows(sorted(set(twice.tolist())))} given more than once "
            f"(line(s) {_lines(twice.index.tolist())}): each quarantined row at most once"
        )
    held = quarantine.frame.set_index(ROW_NUMBER)
    foreign = numbers[~numbers.isin(held.index)]
    if not foreign.empty:
        raise SubmissionRejected(
            f"{source}: line(s) {_lines(foreign.index.tolist())} ({ROW_NUMBER} {some_rows(foreign.tolist())}) "
            f"are not rows of the {quarantine.ds} quarantine (extra rows, or rows already replayed): "
            "submit only rows the latest `quarantine export` lists"
        )
    submitted = frame[expected].assign(**{ROW_NUMBER: numbers.astype("int64")})
    original = held.loc[submitted[ROW_NUMBER]].reset_index()
    try:
        key_unchanged(original, submitted, pipeline)
    except ValueError as exc:
        raise SubmissionRejected(f"{source}: {exc}") from None
    submitted = submitted.astype({c: object for c in pipeline.columns}).reset_index(drop=True)
    submitted[QUARANTINE_REASONS] = original[QUARANTINE_REASONS].to_numpy()
    return submitted


@dataclass(frozen=True)
class Submitted:
    ds: str
    rows: int
    changed: int  # rows with at least one value different from the quarantine's
    path: str
    attempt: str


def changed_rows(submitted: pd.DataFrame, quarantine: Quarantine, pipeline: Pipeline) -> int:
    """How many submitted rows differ from their quarantined version in some declared column."""
    held = quarantine.frame.set_index(ROW_NUMBER).loc[submitted[ROW_NUMBER], list(pipeline.columns)]
    new = submitted[list(pipeline.columns)].astype("string").reset_index(drop=True)
    old = held.astype("string").reset_index(drop=True)
    same = (new == old).fillna(False) | (new.isna() & old.isna())
    return int((~same.all(axis=1)).sum())


def submit(
    lake: Storage, pipeline: Pipeline, quarantine: Quarantine, data: bytes, *, source: str, by: str = ""
) -> Submitted:
    """Check an edited export against the day's quarantine and store it for the replay."""
    submitted = check_submission(data, quarantine, pipeline, source=source)
    changed = changed_rows(submitted, quarantine, pipeline)
    directory = submission_dir(pipeline.name, quarantine.ds)
    manifest = commit_partition(
        lake,
        directory,
        {SUBMITTED_FILE: data},
        extra={
            "rows": len(submitted),
            "changed": changed,
            "source": source,
            "by": by,
            "quarantine_attempt": quarantine.attempt,
            "submitted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        keep_replaced=True,
    )
    return Submitted(quarantine.ds, len(submitted), changed, lake.uri(directory), manifest.attempt)


def read_submission(lake: Storage, pipeline: Pipeline, quarantine: Quarantine) -> tuple[pd.DataFrame, str]:
    """The stored submission of the day, checked again against its quarantine; and its attempt.
    ``PartitionMissing`` when nothing was submitted."""
    directory = submission_dir(pipeline.name, quarantine.ds)
    manifest = read_manifest(lake, directory)
    [data] = read_partition(lake, directory).values()
    source = lake.uri(f"{directory}/{manifest.files[0]}")
    return check_submission(data, quarantine, pipeline, source=source), manifest.attempt
