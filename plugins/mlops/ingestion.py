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

from mlops.grain import DAY, Grain
from mlops.lake import Storage, commit_partition, partition_dir, read_partition, withdraw_partition

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config import Pipeline

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


FORMATS = ("csv", "parquet")


class WrongFormat(ValueError):
    """The day's folder holds data files, but of another format than the pipeline reads."""


def source_files(source: Storage, pipeline: Pipeline, ds: str) -> list[str]:
    """The day's landed files of the configured format (CSV also gzipped), sorted; empty if none
    arrived yet. Raises ``WrongFormat`` when only files of another format arrived: waiting longer
    would not help."""
    fmt = pipeline.source.format
    suffixes = (f".{fmt}", f".{fmt}.gz") if fmt == "csv" else (f".{fmt}",)
    landed = source.list_files(source_dir(ds))
    found = [p for p in landed if p.endswith(suffixes)]
    if not found and (others := [p for p in landed if p.removesuffix(".gz").endswith(FORMATS)]):
        raise WrongFormat(
            f"{source.uri(source_dir(ds))} holds {', '.join(o.rsplit('/', 1)[-1] for o in others[:3])} but "
            f"pipeline {pipeline.name} reads {fmt} (source.format): land {fmt} files or change the format"
        )
    return found


def landed_files(source: Storage, pipeline: Pipeline, ds: str) -> list[str]:
    """``source_files``, refusing a day with none (``SourceMissing``)."""
    paths = source_files(source, pipeline, ds)
    if not paths:
        raise SourceMissing(f"no {pipeline.source.format} file for {ds} at {source.uri(source_dir(ds))}")
    return paths


def partition_interval(ds: str, grain: Grain = DAY) -> tuple[dt.datetime, dt.datetime]:
    """The half-open UTC interval a partition's event times must fall in: its period."""
    return grain.start(ds), grain.end(ds)


def read_files(files: dict[str, bytes], pipeline: Pipeline, uri: Any) -> pd.DataFrame:
    """A partition's files (name -> bytes) parsed into one frame of raw values.

    ``uri(name)`` names a file in messages. Raises ``BadInputError`` for an unreadable file or one
    that lacks a declared column: the gate and ``mlops check`` read landed files with this.
    """
    import pandas as pd

    from mlops.parsing import BadInputError, parse_file

    frames = []
    for name, data in sorted(files.items()):
        source = uri(name)
        frame = parse_file(
            data, pipeline.source.format, source=source, null_values=pipeline.source.null_values
        )
        # Each file on its own: concatenated, a file without a column would only add nulls.
        if missing := [c for c in pipeline.columns if c not in frame.columns]:
            raise BadInputError(f"{source}: lacks the declared column(s) {missing}")
        frames.append(frame)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def land(source: Storage, lake: Storage, pipeline: Pipeline, ds: str) -> dict[str, Any]:
    """Copy the day's source files byte for byte into ``raw/ds=...`` and commit them."""
    paths = landed_files(source, pipeline, ds)
    files = {}
    for path in paths:
        # Keyed by the path under the day's folder: files of the same name in different sub-folders
        # are different files (an export split by region), never one overwriting the other.
        name = path[len(source_dir(ds)) + 1 :].replace("/", "__")
        if name in files:
            raise ValueError(f"{source.uri(path)}: two landed files map to the raw name {name!r}; rename one")
        files[name] = source.read_bytes(path)
    checksums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    extra = {
        "source": [source.uri(p) for p in paths],
        "sha256": checksums,
        "bytes": sum(map(len, files.values())),
    }
    directory = partition_dir(pipeline.name, "raw", ds)
    manifest = commit_partition(lake, directory, files, extra=extra)
    log.info("landed %d file(s), %d bytes, for %s in %s", len(files), extra["bytes"], ds, lake.uri(directory))
    return {"ds": ds, "path": lake.uri(directory), "files": manifest.files, **extra}


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


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

    def asset_extra(self) -> dict[str, Any]:
        return {"ds": self.ds, "rows": self.rows, "quarantined": self.quarantined, "path": self.path}


def _reject(lake: Storage, pipeline: Pipeline, ds: str, message: str, report_uri: str) -> PartitionRejected:
    """Withdraw what an earlier run of the day committed (the day's source changed and now fails):
    its validated and quarantined rows, and what score and monitor made of them."""
    from mlops.drift_reports import report_dir

    for zone in ("validated", "quarantine", "predictions"):
        withdraw_partition(lake, partition_dir(pipeline.name, zone, ds))
    withdraw_partition(lake, report_dir(pipeline.name, ds))
    return PartitionRejected(
        f"{pipeline.name} {ds} rejected: {message} (Data Docs: {report_uri})", report_uri
    )


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

    from mlops.data_docs import render_data_docs
    from mlops.parsing import BadInputError
    from mlops.validation import validate_partition

    raw_dir = partition_dir(pipeline.name, "raw", ds)
    try:
        raw = read_files(read_partition(lake, raw_dir), pipeline, lambda name: lake.uri(f"{raw_dir}/{name}"))
    except BadInputError as exc:
        page = f"<html><body><h1>{html.escape(pipeline.name)} {ds}: unreadable</h1><pre>{html.escape(str(exc))}</pre></body></html>"
        failure = {"expectation": "readable_file", "level": "table", "message": str(exc)}
        uri = _commit_reports(
            lake,
            pipeline,
            ds,
            {"success": False, "error": str(exc)},
            page,
            {"passed": False, "failures": [failure]},
        )
        raise _reject(lake, pipeline, ds, str(exc), uri) from None
    outcome = validate_partition(
        raw,
        pipeline,
        suite,
        interval_start=interval_start,
        interval_end=interval_end,
        period=period or pipeline.grain.describe(ds),
        context=context,
    )
    report_uri = _commit_reports(
        lake,
        pipeline,
        ds,
        outcome.result,
        render_data_docs(outcome.result, summary=outcome.message, failures=outcome.failures),
        {"passed": outcome.passed, "failures": outcome.failures},
    )
    if not outcome.passed:
        raise _reject(lake, pipeline, ds, outcome.message, report_uri)

    validated_dir = partition_dir(pipeline.name, "validated", ds)
    counts = {
        "rows": outcome.rows,
        "validated": len(outcome.validated),
        "quarantined": len(outcome.quarantined),
    }
    # Quarantine first: once validated is visible, its quarantined rows are already accounted for.
    commit_partition(
        lake,
        partition_dir(pipeline.name, "quarantine", ds),
        {"part.parquet": _parquet(outcome.quarantined)},
        extra=counts,
    )
    commit_partition(lake, validated_dir, {"part.parquet": _parquet(outcome.validated)}, extra=counts)
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
    )
