"""Ingest one day: land the source files unchanged in ``raw``, then gate them into ``validated``.

Pure Python over ``Storage`` (local disk or S3 are the hook's business). Every write is a partition
commit, so a re-run for the same day replaces the day and a killed run leaves nothing visible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.grain import Grain
from mlops.index.records import ingest_record, lake_relative, reason_counts, withdraw_records, write_record
from mlops.lake.storage import (
    FileStat,
    Storage,
    commit_partition,
    partition_dir,
    read_partition,
    withdraw_partition,
)

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config.pipeline import Pipeline, Source

log = logging.getLogger(__name__)
DATA_DOCS = "data_docs.html"
VALIDATION_RESULT = "validation.json"


class SourceMissing(FileNotFoundError):
    """The source partition for a day is not there (yet)."""


class PartitionRejected(ValueError):
    """The gate failed the partition; the message names each failed expectation and its counts."""

    def __init__(self, message: str, report_uri: str) -> None:
        super().__init__(message)
        self.report_uri = report_uri


def source_dir(ds: str) -> str:
    """Where a day's files land, relative to the pipeline's source root."""
    return f"ds={ds}"


class LandingRefused(ValueError):
    """The day's folder holds something that is never landed (a link, a file of another kind):
    waiting longer would not help."""


class WrongFormat(LandingRefused):
    """The day's folder holds files that are not of the format the pipeline reads."""


class SourceChanged(RuntimeError):
    """A source file changed while it was landed: a retry lands it once the writer is done."""


_NAMED = 5  # files named in a message, at most


def suffixes(fmt: str) -> tuple[str, ...]:
    """The file names a format is read from, compared in lower case (``part-2.CSV`` is CSV)."""
    return (f".{fmt}", f".{fmt}.gz") if fmt == "csv" else (f".{fmt}",)


def skipped(relative: str) -> bool:
    """A name no producer means as data: ``_SUCCESS``, Spark's ``_temporary/``, ``.part`` files of
    an upload in progress; any path with a part that starts with ``_`` or ``.``."""
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


def _names(paths: list[str], ds: str) -> str:
    shown = [p.removeprefix(f"{source_dir(ds)}/") for p in paths[:_NAMED]]
    return ", ".join(shown) + (f" and {len(paths) - _NAMED} more" if len(paths) > _NAMED else "")


@dataclass(frozen=True)
class Listing:
    """What a day's landing folder holds, sorted into what landing reads and what it refuses."""

    ds: str
    data: list[FileStat]  # files of the configured format, by path
    unexpected: list[FileStat]  # neither data nor skipped: a .json, a .csv.tmp, another format
    links: list[FileStat]  # symbolic links (local disk): never followed
    marker: bool  # the partition's ready marker (source.ready_marker) is there

    @property
    def empty(self) -> bool:
        return not (self.data or self.unexpected or self.links)

    def signature(self) -> dict[str, list[Any]]:
        """Every file that counts, with what changes when it is written: compared between looks."""
        return {f.path: [f.size, f.mtime, f.tag] for f in (*self.data, *self.unexpected, *self.links)}

    def newest(self) -> float:
        return max((f.mtime for f in (*self.data, *self.unexpected, *self.links)), default=0.0)


def list_source(source: Storage, pipeline: Pipeline, ds: str) -> Listing:
    """The day's folder, listed once (with sizes and modification times)."""
    config = pipeline.source
    folder = source_dir(ds)
    data, unexpected, links, marker = [], [], [], False
    for entry in source.stat_files(folder):
        relative = entry.path.removeprefix(f"{folder}/")
        if config.ready == "marker" and relative == config.ready_marker:
            marker = not entry.link
        elif entry.path == folder or (entry.link and not skipped(relative)):
            links.append(entry)
        elif skipped(relative):
            continue
        elif relative.lower().endswith(suffixes(config.format)):
            data.append(entry)
        else:
            unexpected.append(entry)
    return Listing(ds, data, unexpected, links, marker)


def check_listing(listing: Listing, source: Storage, pipeline: Pipeline) -> list[str]:
    """The data files of a listing judged complete, refusing one that cannot be landed as it is."""
    ds, fmt, where = listing.ds, pipeline.source.format, source.uri(source_dir(listing.ds))
    if links := [f.path for f in listing.links]:
        raise LandingRefused(
            f"{where}: {_names(links, ds)} is a symbolic link, and landing never follows a link (it "
            "could copy any file the worker can read): put the file itself there"
        )
    if listing.unexpected:
        raise WrongFormat(
            f"{where} holds {_names([f.path for f in listing.unexpected], ds)} but pipeline "
            f"{pipeline.name} reads {fmt} (source.format: files named *{' or *'.join(suffixes(fmt))}, "
            "in any case; names starting with _ or . are skipped): remove or rename them, or change the format"
        )
    if not listing.data:
        marker = (
            f" although the ready marker {pipeline.source.ready_marker} is there" if listing.marker else ""
        )
        raise SourceMissing(f"no {fmt} file for {ds} at {where}{marker}")
    if pipeline.source.ready == "marker" and not listing.marker:
        raise SourceMissing(
            f"{where} has no ready marker {pipeline.source.ready_marker} (source.ready: marker): the "
            "producer writes it once every file of the partition is complete"
        )
    return [f.path for f in listing.data]


@dataclass(frozen=True)
class Readiness:
    ready: bool
    why: str  # what a waiting sensor logs
    look_again_in: float | None = None  # seconds until the files have been quiet for settle_seconds


def readiness(listing: Listing, previous: dict[str, Any] | None, source: Source, now: float) -> Readiness:
    """Whether the day's files are complete by the pipeline's ``source.ready`` rule.

    ``marker``: the producer's marker file is there. ``stable`` (the default): the listing (every
    file's size, modification time and tag) is the one ``previous`` look saw, or no file changed
    for ``source.settle_seconds``. A file still being written keeps changing; one that arrives
    after another resets the quiet period. A folder holding only refused files becomes ready too,
    so that the sensor names them (``check_listing``) instead of waiting for its timeout.
    """
    if source.ready == "marker" and listing.marker:  # with no file beside it, check_listing says so
        return Readiness(True, f"the ready marker {source.ready_marker} is there")
    if listing.empty:
        return Readiness(False, f"no {source.format} file yet")
    if source.ready == "marker":
        return Readiness(False, f"waiting for the ready marker {source.ready_marker}")
    if previous == listing.signature():
        return Readiness(True, "unchanged since the previous look")
    quiet = now - listing.newest()
    if quiet >= source.settle_seconds:
        return Readiness(True, f"no file changed for {quiet:.0f}s")
    return Readiness(
        False,
        f"a file changed {max(quiet, 0):.0f}s ago; the files count as complete once unchanged "
        f"for source.settle_seconds ({source.settle_seconds}s)",
        source.settle_seconds - quiet,
    )


def source_files(source: Storage, pipeline: Pipeline, ds: str) -> list[str]:
    """The day's landed files of the configured format (CSV also gzipped), sorted; empty if none
    arrived yet. Raises ``LandingRefused`` for a folder that holds a link or a file of another kind:
    waiting longer would not help."""
    listing = list_source(source, pipeline, ds)
    return [] if listing.empty else check_listing(listing, source, pipeline)


def landed_files(source: Storage, pipeline: Pipeline, ds: str) -> list[str]:
    """``source_files``, refusing a day with none (``SourceMissing``)."""
    paths = source_files(source, pipeline, ds)
    if not paths:
        raise SourceMissing(f"no {pipeline.source.format} file for {ds} at {source.uri(source_dir(ds))}")
    return paths


def _changes(before: Listing, after: Listing) -> list[str]:
    """The paths that appeared, vanished or changed between two listings of a folder."""
    old, new = before.signature(), after.signature()
    return sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))


def partition_interval(ds: str, grain: Grain) -> tuple[dt.datetime, dt.datetime]:
    """The half-open UTC interval a partition's event times must fall in: its period."""
    return grain.start(ds), grain.end(ds)


def read_file_frames(files: dict[str, bytes], pipeline: Pipeline, uri: Any) -> list[tuple[str, pd.DataFrame]]:
    """A partition's files (name -> bytes) each parsed into a frame of raw values, by name.

    ``uri(name)`` names a file in messages. Raises ``BadInputError`` for an unreadable file or one
    that lacks a declared column: the gate and ``mlops check`` read landed files with this.
    """
    from mlops.ingest.parsing import BadInputError, parse_file
    from mlops.ingest.validation import shown_names

    frames = []
    for name, data in sorted(files.items()):
        source = uri(name)
        frame = parse_file(
            data, pipeline.source.format, source=source, null_values=pipeline.source.null_values
        )
        # Each file on its own: concatenated, a file without a column would only add nulls.
        if missing := [c for c in pipeline.columns if c not in frame.columns]:
            other = [str(c) for c in frame.columns if c not in pipeline.columns]
            found = f"; it has other column(s) {shown_names(other)}" if other else ""
            raise BadInputError(f"{source}: lacks the declared column(s) {missing}{found}")
        frames.append((name, frame))
    return frames


def _concat(frames: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    import pandas as pd

    return frames[0][1] if len(frames) == 1 else pd.concat([f for _, f in frames], ignore_index=True)


def read_files(files: dict[str, bytes], pipeline: Pipeline, uri: Any) -> pd.DataFrame:
    """``read_file_frames`` as one frame, the files' rows in the order of their names."""
    return _concat(read_file_frames(files, pipeline, uri))


def land(source: Storage, lake: Storage, pipeline: Pipeline, ds: str) -> dict[str, Any]:
    """Copy the day's source files byte for byte into ``raw/ds=...`` and commit them.

    The folder is listed before and after the copy: a file that grew, shrank, was rewritten or
    arrived meanwhile fails the landing (``SourceChanged``, retried) rather than landing a part.
    """
    listing = list_source(source, pipeline, ds)
    paths = check_listing(listing, source, pipeline)
    files, sizes = {}, {}
    for entry in listing.data:
        # Keyed by the path under the day's folder: files of the same name in different sub-folders
        # are different files (an export split by region), never one overwriting the other.
        name = entry.path[len(source_dir(ds)) + 1 :].replace("/", "__")
        if name in files:
            raise ValueError(
                f"{source.uri(entry.path)}: two landed files map to the raw name {name!r}; rename one"
            )
        files[name], sizes[name] = source.read_bytes(entry.path), entry.size
        if len(files[name]) != entry.size:
            raise SourceChanged(
                f"{source.uri(entry.path)} was listed with {entry.size} bytes but {len(files[name])} were "
                "read: it is still being written; landing again once it is complete"
            )
    if changed := _changes(listing, list_source(source, pipeline, ds)):
        raise SourceChanged(
            f"{source.uri(source_dir(ds))}: {_names(changed, ds)} changed while the day was landed: "
            "landing again once the files are complete"
        )
    checksums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    extra = {
        "source": [source.uri(p) for p in paths],
        "sha256": checksums,
        "sizes": sizes,
        "bytes": sum(sizes.values()),
        "ready": pipeline.source.ready,
    }
    directory = partition_dir(pipeline.name, "raw", ds)
    manifest = commit_partition(lake, directory, files, extra=extra)
    log.info("landed %d file(s), %d bytes, for %s in %s", len(files), extra["bytes"], ds, lake.uri(directory))
    return {"ds": ds, "path": lake.uri(directory), "files": manifest.files, **extra}


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class Notes:
    """What a passing partition's quarantine says about its delivery, beyond row counts."""

    out_of_period: int = 0  # rows whose event time is outside the partition's period
    shared_keys: int = 0  # key values found in more than one of the partition's files
    lines: list[str] = field(default_factory=list)  # each said in a sentence, files named


@dataclass
class GateReport:
    ds: str
    passed: bool
    rows: int
    validated: int
    quarantined: int
    message: str
    path: str
    report_uri: str
    warnings: list[str] = field(default_factory=list)
    notes: Notes = field(default_factory=Notes)

    @property
    def quarantined_share(self) -> float:
        return self.quarantined / self.rows if self.rows else 0.0

    def asset_extra(self) -> dict[str, Any]:
        return {"ds": self.ds, "rows": self.rows, "quarantined": self.quarantined, "path": self.path}


def quarantine_notes(
    frames: list[tuple[str, pd.DataFrame]], quarantined: pd.DataFrame, pipeline: Pipeline, period: str
) -> Notes:
    """Name the rows outside the period and the keys that more than one file holds, by file.

    Both go to quarantine as row failures; a day can pass with them, so they are said here too: a
    key in two files is often one export landed twice, or two exports that overlap.
    """
    import numpy as np

    from mlops.ingest.suite import check_name
    from mlops.ingest.validation import QUARANTINE_REASONS, ROW_NUMBER

    names = [name for name, _ in frames]
    starts = np.cumsum([0] + [len(frame) for _, frame in frames])
    event_check = check_name("expect_column_values_to_be_between", pipeline.event_time)
    outside = quarantined.loc[
        quarantined[QUARANTINE_REASONS].str.split("; ").map(lambda r: event_check in r), ROW_NUMBER
    ].to_numpy()
    lines = []
    if len(outside):
        per_file = np.bincount(np.searchsorted(starts, outside, side="right") - 1, minlength=len(names))
        lines.append(
            f"{len(outside)} rows with {pipeline.event_time} outside {period} ("
            + ", ".join(f"{names[i]}: {n}" for i, n in enumerate(per_file) if n)
            + ")"
        )
    shared, shared_lines = _shared_keys(frames, pipeline)
    return Notes(out_of_period=len(outside), shared_keys=shared, lines=[*lines, *shared_lines])


def _shared_keys(frames: list[tuple[str, pd.DataFrame]], pipeline: Pipeline) -> tuple[int, list[str]]:
    """How many key values more than one file holds, and a sentence per group of files sharing
    keys: counts and row numbers, never the values (a key may be an e-mail address)."""
    import numpy as np
    import pandas as pd

    from mlops.ingest.parsing import coerce_column

    if len(frames) < 2:
        return 0, []
    kind = pipeline.columns[pipeline.key].type
    keys = pd.concat(
        [
            pd.DataFrame(
                {
                    "key": coerce_column(frame[pipeline.key], kind).to_numpy(),
                    "file": i,
                    "row": np.arange(len(frame)),
                }
            )
            for i, (_, frame) in enumerate(frames)
        ],
        ignore_index=True,
    ).dropna(subset=["key"])
    first = keys.drop_duplicates(["key", "file"])  # a key's first row in each file holding it
    first = first[first.duplicated("key", keep=False)]
    if first.empty:
        return 0, []
    files = first.groupby("key", sort=False)["file"].agg(tuple)
    lines = []
    for group, count in files.value_counts().head(_NAMED).items():
        key = next(key for key, held in files.items() if held == group)
        rows = first.loc[first["key"] == key].set_index("file")["row"]
        where = ", ".join(f"row {rows[i] + 1} of {frames[i][0]}" for i in group)
        lines.append(
            f"{count} {pipeline.key} values are in each of {', '.join(frames[i][0] for i in group)} "
            f"(duplicated keys are quarantined; the first: {where})"
        )
    return len(files), lines


def _reject(lake: Storage, pipeline: Pipeline, ds: str, message: str, report_uri: str) -> PartitionRejected:
    """Withdraw what an earlier run of the day committed (the day's source changed and now fails):
    its validated and quarantined rows, and what score and monitor made of them."""
    from mlops.monitor.report_store import report_dir

    for zone in ("validated", "quarantine", "predictions"):
        withdraw_partition(lake, partition_dir(pipeline.name, zone, ds))
    withdraw_partition(lake, report_dir(pipeline.name, ds))
    withdraw_records(lake, pipeline.name, ds, ("monitor", "score"))
    return PartitionRejected(
        f"{pipeline.name} {ds} rejected: {message} (Data Docs: {report_uri})", report_uri
    )


def _index(
    lake: Storage,
    pipeline: Pipeline,
    ds: str,
    *,
    passed: bool,
    rows: int = 0,
    validated: int = 0,
    quarantined: int = 0,
    reasons: dict[str, int] | None = None,
    failures: list[dict[str, Any]] | None = None,
    message: str = "",
) -> None:
    """The gate's summary of the day in the lake's index, written once the day's outputs are."""
    record = ingest_record(
        passed=passed,
        rows=rows,
        validated=validated,
        quarantined=quarantined,
        reasons=reasons or {},
        failures=[{**f, "message": lake_relative(str(f.get("message", "")), lake)} for f in failures or []],
        message=lake_relative(message, lake),
    )
    write_record(lake, pipeline.name, ds, "ingest", record)


def _commit_reports(
    lake: Storage, pipeline: Pipeline, ds: str, result: dict[str, Any], html: str, extra: dict[str, Any]
) -> str:
    reports_dir = partition_dir(pipeline.name, "reports", ds)
    result_json = json.dumps(result, indent=1, sort_keys=True, default=str).encode()
    reports = commit_partition(
        lake, reports_dir, {VALIDATION_RESULT: result_json, DATA_DOCS: html.encode()}, extra=extra
    )
    docs_name = next(name for name in reports.files if name.startswith(DATA_DOCS.split(".")[0]))
    return lake.uri(f"{reports_dir}/{docs_name}")


def gate(
    lake: Storage,
    pipeline: Pipeline,
    suite: dict[str, Any],
    ds: str,
    *,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    period: str | None = None,
    context: Any = None,
) -> GateReport:
    """Validate the committed raw partition of ``ds`` and write validated, quarantine and reports.

    Reports are written whatever the verdict (a failed day's Data Docs is what a user opens first, and
    training tells a rejected day from one not ingested yet by it); ``validated`` and ``quarantine``
    only when the partition passes. A rejected day has no validated data, even from an earlier run.
    """
    import html

    from mlops.ingest.data_docs import render_data_docs
    from mlops.ingest.parsing import BadInputError
    from mlops.ingest.validation import QUARANTINE_REASONS, validate_partition

    raw_dir = partition_dir(pipeline.name, "raw", ds)
    period = period or pipeline.grain.describe(ds)

    def unreadable(message: str) -> PartitionRejected:
        page = f"<html><body><h1>{html.escape(pipeline.name)} {ds}: unreadable</h1><pre>{html.escape(message)}</pre></body></html>"
        failure = {"expectation": "readable_file", "level": "table", "message": message}
        uri = _commit_reports(
            lake,
            pipeline,
            ds,
            {"success": False, "error": message},
            page,
            {"passed": False, "failures": [failure]},
        )
        rejected = _reject(lake, pipeline, ds, message, uri)
        _index(lake, pipeline, ds, passed=False, failures=[failure], message=message)
        return rejected

    try:
        frames = read_file_frames(
            read_partition(lake, raw_dir), pipeline, lambda name: lake.uri(f"{raw_dir}/{name}")
        )
    except BadInputError as exc:
        raise unreadable(str(exc)) from None
    try:
        outcome = validate_partition(
            _concat(frames),
            pipeline,
            suite,
            interval_start=interval_start,
            interval_end=interval_end,
            period=period,
            context=context,
        )
    except BadInputError as exc:  # a column of a stored type that cannot take its declared one
        raise unreadable(f"{lake.uri(raw_dir)}: {exc}") from None
    notes = quarantine_notes(frames, outcome.quarantined, pipeline, period) if outcome.passed else Notes()
    report_uri = _commit_reports(
        lake,
        pipeline,
        ds,
        outcome.result,
        render_data_docs(outcome.result, summary=outcome.message, failures=outcome.failures),
        {"passed": outcome.passed, "failures": outcome.failures, "notes": notes.lines},
    )
    if not outcome.passed:
        rejected = _reject(lake, pipeline, ds, outcome.message, report_uri)
        _index(
            lake,
            pipeline,
            ds,
            passed=False,
            rows=outcome.rows,
            failures=outcome.failures,
            message=outcome.message,
        )
        raise rejected

    validated_dir = partition_dir(pipeline.name, "validated", ds)
    counts = {
        "rows": outcome.rows,
        "validated": len(outcome.validated),
        "quarantined": len(outcome.quarantined),
    }
    # Quarantine first: once validated is visible, its quarantined rows are already accounted for.
    # Its manifest keeps the day's quarantine summary (share, reasons, rows per landed file).
    from mlops.quarantine.summary import summarise

    file_rows = [(name, len(frame)) for name, frame in frames]
    commit_partition(
        lake,
        partition_dir(pipeline.name, "quarantine", ds),
        {"part.parquet": _parquet(outcome.quarantined)},
        extra={**counts, **summarise(outcome.quarantined, outcome.rows, file_rows)},
    )
    commit_partition(lake, validated_dir, {"part.parquet": _parquet(outcome.validated)}, extra=counts)
    _index(
        lake,
        pipeline,
        ds,
        passed=True,
        **counts,
        reasons=reason_counts(outcome.quarantined[QUARANTINE_REASONS]),
        message=outcome.message,
    )
    return GateReport(
        ds=ds,
        passed=True,
        rows=outcome.rows,
        validated=counts["validated"],
        quarantined=counts["quarantined"],
        message=outcome.message,
        path=lake.uri(validated_dir),
        report_uri=report_uri,
        warnings=list(outcome.warnings),
        notes=notes,
    )
