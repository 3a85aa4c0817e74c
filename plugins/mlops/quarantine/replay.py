"""Replay a day's quarantine: fix the rows, re-validate them, and commit what passes.

The rows are re-validated by ``mlops.ingest.validation.validate_partition`` itself, against the
current suite's row-level expectations (a table-level check, such as the row count or a mean, speaks
of a whole partition, not of a few rows; the day passed them when it was gated). The rows that pass
join the day's validated data as a new attempt of ``validated``: the attempt names the files it had
(``adopt``, never copied) plus ``replay.parquet``, and keeps the replaced manifest in its history.
The rows that still fail are the new quarantine, with their new reasons (the old attempt kept too).
Landed = validated + quarantined holds after every replay, and is checked before anything is written.

Each replayed row keeps its ``_row_number`` and gains its source file, the fix and the run
(``mlops.quarantine.lineage``). Validated is committed first and quarantine second: a replay killed
between the two has its rows in both, and a retry finds them in ``validated`` (by ``_row_number``)
and completes the quarantine, so a row is never lost nor counted twice once the replay is done.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.config.pipeline import NO_FIX, SUBMITTED_FIX
from mlops.ingest.suite import ROW, check_name
from mlops.ingest.validation import QUARANTINE_REASONS, ROW_NUMBER
from mlops.lake.batches import parquet_batches, parquet_bytes
from mlops.lake.storage import (
    PartitionMissing,
    commit_partition,
    open_partition,
    partition_dir,
    read_manifest,
    read_partition,
)
from mlops.quarantine.fixes import apply_fix
from mlops.quarantine.lineage import REPLAY_FIX, REPLAY_RUN, SOURCE_FILE
from mlops.quarantine.submission import read_submission
from mlops.quarantine.summary import Quarantine, quarantine_dir, read_quarantine, reason_counts, summarise

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import Pipeline
    from mlops.lake.storage import Storage

REPLAY_PART = "replay.parquet"


class ReplayRefused(ValueError):
    """A replay that cannot run as asked (no such day, no submission, counts that do not add up)."""


@dataclass(frozen=True)
class ReplayReport:
    """One day's replay: what was re-validated, what passed, what stays."""

    ds: str
    fix: str
    run_id: str
    candidates: int  # quarantined rows re-validated
    passed: int  # now in validated
    quarantined: int  # still in quarantine, with their new reasons
    rows: int  # landed
    validated: int  # in validated after the replay
    path: str  # the validated partition
    attempt: str | None = None  # the new validated attempt; None when no row passed
    reasons: dict[str, int] = field(default_factory=dict)  # of the rows still quarantined

    @property
    def published(self) -> bool:
        """Whether validated changed, so the day is published again for score and monitor."""
        return self.attempt is not None

    def asset_extra(self) -> dict[str, Any]:
        """The re-published ``<pipeline>.validated`` event's extra: the gate's keys, and the replay."""
        return {
            "ds": self.ds,
            "rows": self.rows,
            "quarantined": self.quarantined,
            "path": self.path,
            "replay": {"fix": self.fix, "run_id": self.run_id, "rows": self.passed, "attempt": self.attempt},
        }


def row_suite(suite: Mapping[str, Any]) -> dict[str, Any]:
    """The suite's row-level expectations (its name and fingerprint kept, so it still must match)."""
    return {**suite, "expectations": [e for e in suite["expectations"] if e["meta"]["level"] == ROW]}


def replay_plan(lake: Storage, pipeline: Pipeline, partitions: list[str]) -> list[str]:
    """The days to replay, oldest first (replays publish in the order of the logical clock), each
    once; ``ReplayRefused`` naming the days that have no quarantine or no validated data."""
    grain = pipeline.grain
    try:
        days = sorted({grain.key(str(p).strip()) for p in partitions})
    except ValueError as exc:
        raise ReplayRefused(f"{pipeline.name}: {exc}") from None
    if not days:
        raise ReplayRefused(f"{pipeline.name}: no partition to replay was given")
    missing = [
        ds
        for ds in days
        if not all(
            _committed(lake, partition_dir(pipeline.name, zone, ds)) for zone in ("validated", "quarantine")
        )
    ]
    if missing:
        raise ReplayRefused(
            f"{pipeline.name}: no validated data and quarantine for {', '.join(missing)} (not ingested, "
            "or rejected by the gate: a rejected day is re-run by its ingest, not replayed)"
        )
    return days


def _committed(lake: Storage, directory: str) -> bool:
    try:
        read_manifest(lake, directory)
    except PartitionMissing:
        return False
    return True


def source_files(lake: Storage, pipeline: Pipeline, quarantine: Quarantine) -> list[tuple[str, int]]:
    """The landed files of the day with their row counts, in the order of ``_row_number``: from
    the quarantine's summary, or (a day gated before it was kept) by reading the raw partition."""
    if "file_rows" in quarantine.extra:
        return [(str(name), int(rows)) for name, rows in quarantine.extra["file_rows"]]
    from mlops.ingest.stage import read_file_frames

    raw_dir = partition_dir(pipeline.name, "raw", quarantine.ds)
    frames = read_file_frames(read_partition(lake, raw_dir), pipeline, lambda n: lake.uri(f"{raw_dir}/{n}"))
    return [(name, len(frame)) for name, frame in frames]


def file_of(rows: pd.Series, files: list[tuple[str, int]]) -> list[str]:
    """The source file of each ``_row_number``."""
    import numpy as np

    ends = np.cumsum([count for _, count in files])
    index = np.searchsorted(ends, rows.to_numpy(), side="right")
    if len(index) and index.max() >= len(files):
        raise ReplayRefused(f"row number {int(rows.max())} is beyond the {int(ends[-1])} rows landed")
    return [files[i][0] for i in index]


def replayed_rows(lake: Storage, directory: str) -> set[int]:
    """The ``_row_number`` of every row an earlier replay put into this validated partition."""
    import pandas as pd

    found: set[int] = set()
    for name in read_manifest(lake, directory).files:
        if name.startswith(REPLAY_PART.split(".")[0] + "-"):
            data = lake.read_bytes(f"{directory}/{name}")  # one replay's rows: a bounded file
            found.update(int(r) for r in pd.read_parquet(io.BytesIO(data), columns=[ROW_NUMBER])[ROW_NUMBER])
    return found


def fixed_rows(
    lake: Storage, pipeline: Pipeline, quarantine: Quarantine, pending: pd.DataFrame, fix: str
) -> tuple[pd.DataFrame, str]:
    """The pending quarantined rows with ``fix`` applied, and the fix as lineage records it."""
    if fix == NO_FIX:
        return pending, NO_FIX
    if fix == SUBMITTED_FIX:
        try:
            submitted, attempt = read_submission(lake, pipeline, quarantine)
        except PartitionMissing:
            raise ReplayRefused(
                f"{pipeline.name} {quarantine.ds}: no file was submitted for this day "
                f"(python -m mlops quarantine submit {pipeline.name} --partition {quarantine.ds} FILE)"
            ) from None
        edited = submitted.set_index(ROW_NUMBER)
        fixed = pending.set_index(ROW_NUMBER)
        rows = fixed.index.intersection(edited.index)
        columns = list(pipeline.columns)
        fixed[columns] = fixed[columns].astype(object)
        fixed.loc[rows, columns] = edited.loc[rows, columns]
        return fixed.reset_index(), f"{SUBMITTED_FIX}:{attempt}"
    return apply_fix(pending, pipeline, fix), fix


def _revalidate(
    fixed: pd.DataFrame, pipeline: Pipeline, suite: Mapping[str, Any], ds: str, context: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed rows through ``validate_partition``: (passing rows typed, with their original
    ``_row_number``; failing rows raw, with their new reasons and original ``_row_number``)."""
    import numpy as np

    from mlops.ingest.validation import validate_partition

    # Row-level rules only, so no share of failing rows may fail the replay as a whole.
    rows_only = pipeline.model_copy(
        update={"validation": pipeline.validation.model_copy(update={"max_quarantine_fraction": 1.0})}
    )
    grain = pipeline.grain
    outcome = validate_partition(
        fixed[list(pipeline.columns)].reset_index(drop=True),
        rows_only,
        row_suite(suite),
        interval_start=grain.start(ds),
        interval_end=grain.end(ds),
        period=grain.describe(ds),
        context=context,
    )
    if not outcome.passed:  # only a table-level rule can fail it, and none is run
        raise ReplayRefused(f"{pipeline.name} {ds}: the replayed rows failed as a whole: {outcome.message}")
    original = fixed[ROW_NUMBER].to_numpy()
    failing_at = outcome.quarantined[ROW_NUMBER].to_numpy()
    passing_at = np.setdiff1d(np.arange(len(fixed)), failing_at)
    passed = outcome.validated.assign(**{ROW_NUMBER: original[passing_at]})
    failing = outcome.quarantined.assign(**{ROW_NUMBER: original[failing_at]})
    return passed, failing


def _key_clashes(lake: Storage, pipeline: Pipeline, directory: str, passed: pd.DataFrame) -> Any:
    """Which passing rows hold a key the validated partition already has (the uniqueness rule spans
    the day, and the rows re-validated are only part of it)."""
    keys: set[Any] = set()
    for frame in parquet_batches(lake, directory, columns=[pipeline.key]):
        keys.update(frame[pipeline.key].dropna().tolist())
    return passed[pipeline.key].isin(keys).to_numpy()


def replay_partition(
    lake: Storage,
    pipeline: Pipeline,
    suite: Mapping[str, Any],
    ds: str,
    *,
    fix: str,
    run_id: str,
    context: Any = None,
) -> ReplayReport:
    """Replay day ``ds``'s quarantine with ``fix`` (a name under ``fixes:``, ``submitted`` or ``none``)."""
    import numpy as np

    name = pipeline.name
    validated_dir = partition_dir(name, "validated", ds)
    try:
        validated = read_manifest(lake, validated_dir)
        quarantine = read_quarantine(lake, pipeline, ds)
    except PartitionMissing as exc:
        raise ReplayRefused(f"{name} {ds}: nothing to replay: {exc}") from None
    already = replayed_rows(lake, validated_dir)
    held = quarantine.frame
    pending = held[~held[ROW_NUMBER].isin(already)].reset_index(drop=True)
    rows, before = quarantine.rows, int(validated.extra.get("validated", 0))
    report = dict(ds=ds, run_id=run_id, rows=rows, path=lake.uri(validated_dir))
    if pending.empty and len(held) == 0:
        return ReplayReport(fix=fix, candidates=0, passed=0, quarantined=0, validated=before, **report)

    fixed, lineage_fix = (
        fixed_rows(lake, pipeline, quarantine, pending, fix) if len(pending) else (pending, fix)
    )
    passed, failing = (
        _revalidate(fixed, pipeline, suite, ds, context) if len(fixed) else (fixed.iloc[0:0], fixed)
    )
    clash = _key_clashes(lake, pipeline, validated_dir, passed) if len(passed) else np.zeros(0, dtype=bool)
    if clash.any():
        unique = check_name("expect_column_values_to_be_unique", pipeline.key)
        back = fixed[fixed[ROW_NUMBER].isin(passed.loc[clash, ROW_NUMBER])].assign(
            **{QUARANTINE_REASONS: unique}
        )
        failing = _concat([failing, back[failing.columns]])
        passed = passed[~clash]
    failing = failing.sort_values(ROW_NUMBER).reset_index(drop=True)

    after = before + len(passed)
    if rows != after + len(failing):
        raise ReplayRefused(
            f"{name} {ds}: the lake's counts do not add up ({rows} rows landed, {after} validated and "
            f"{len(failing)} quarantined after the replay); nothing was written: re-run the day's ingest"
        )
    files = source_files(lake, pipeline, quarantine)
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record = {"fix": lineage_fix, "run_id": run_id, "rows": len(passed), "replayed_at": when}
    attempt = None
    if len(passed):
        lineage = passed.assign(
            **{SOURCE_FILE: file_of(passed[ROW_NUMBER], files), REPLAY_FIX: lineage_fix, REPLAY_RUN: run_id}
        )
        with open_partition(lake, validated_dir) as writer:
            for stored in validated.files:
                writer.adopt(stored)
            writer.add(REPLAY_PART, parquet_bytes(lineage.reset_index(drop=True)))
            extra = {
                **validated.extra,
                "validated": after,
                "quarantined": len(failing),
                "replays": [*validated.extra.get("replays", []), {**record, "attempt": writer.attempt}],
            }
            attempt = writer.commit(extra, keep_replaced=True).attempt
    if attempt is not None or not _same(failing, held):
        commit_partition(
            lake,
            quarantine_dir(name, ds),
            {"part.parquet": parquet_bytes(failing[held.columns])},
            extra={
                "rows": rows,
                "validated": after,
                "quarantined": len(failing),
                **summarise(failing, rows, files),
                "replays": [*quarantine.extra.get("replays", []), {**record, "validated_attempt": attempt}],
            },
            keep_replaced=True,
        )
    if attempt is not None or not _same(failing, held):
        _reindex(lake, name, ds, rows=rows, validated=after, failing=failing, fix=lineage_fix, run_id=run_id)
    return ReplayReport(
        fix=lineage_fix,
        candidates=len(pending),
        passed=len(passed),
        quarantined=len(failing),
        validated=after,
        attempt=attempt,
        reasons=reason_counts(failing[QUARANTINE_REASONS]),
        **report,
    )


def _reindex(
    lake: Storage,
    pipeline: str,
    ds: str,
    *,
    rows: int,
    validated: int,
    failing: pd.DataFrame,
    fix: str,
    run_id: str,
) -> None:
    """The day's summary in the lake's index, as the gate would write it for the partition now."""
    from mlops.index.records import ingest_record, reason_counts, write_record

    record = ingest_record(
        passed=True,
        rows=rows,
        validated=validated,
        quarantined=len(failing),
        reasons=reason_counts(failing[QUARANTINE_REASONS]),
        failures=[],
        message=f"passed; quarantine replayed with {fix} by {run_id}",
        replayed_by=run_id,
    )
    write_record(lake, pipeline, ds, "ingest", record)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _same(new: pd.DataFrame, old: pd.DataFrame) -> bool:
    """Whether the new quarantine holds exactly the old one's rows, values and reasons."""
    if len(new) != len(old):
        return False
    a = new[old.columns].sort_values(ROW_NUMBER).reset_index(drop=True).astype("string")
    b = old.sort_values(ROW_NUMBER).reset_index(drop=True).astype("string")
    return bool(((a == b).fillna(False) | (a.isna() & b.isna())).all(axis=None))


def replay_partitions(
    lake: Storage,
    pipeline: Pipeline,
    suite: Mapping[str, Any],
    partitions: list[str],
    *,
    fix: str,
    run_id: str,
    context: Any = None,
) -> list[ReplayReport]:
    """``replay_partition`` for each day of ``replay_plan``, oldest first."""
    return [
        replay_partition(lake, pipeline, suite, ds, fix=fix, run_id=run_id, context=context)
        for ds in replay_plan(lake, pipeline, partitions)
    ]
