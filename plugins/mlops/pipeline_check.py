"""``python -m mlops check <pipeline>``: config, suite and one landing partition, without Airflow.

Each step is the one the DAGs run, with their messages: the config model (and its warnings for
settings that can never be met), the committed suite's staleness check, then the ingest gate's
reading and validation of a landed partition (``ingestion.landed_files``, ``read_files``,
``validation.validate_partition``), without writing anything to the lake.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops.config import ConfigError, load_pipeline, pipeline_warnings
from mlops.ingestion import SourceMissing, WrongFormat, landed_files, partition_interval, read_files
from mlops.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from mlops.lake import Storage

_DAY_FOLDER = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})/")


@dataclass
class CheckReport:
    """What ``check`` found: ``errors`` fail it, ``warnings`` do not; ``lines`` is the transcript."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, message: str) -> None:
        self.errors.append(message)
        self.lines.append(f"error: {message}")

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.lines.append(f"warning: {message}")

    def info(self, message: str) -> None:
        self.lines.append(message)


def newest_day(landing: Storage) -> str | None:
    """The newest ``ds=YYYY-MM-DD`` folder under a pipeline's landing root, or None."""
    days = {m.group(1) for path in landing.list_files("") if (m := _DAY_FOLDER.match(path))}
    return max(days) if days else None


def quarantine_summary(quarantined: pd.DataFrame, limit: int = 10) -> list[str]:
    """``<count> rows: <reasons>`` for the most frequent reasons of a quarantine frame."""
    from mlops.validation import QUARANTINE_REASONS

    if quarantined.empty:
        return []
    counts = quarantined[QUARANTINE_REASONS].astype(str).value_counts()
    return [f"{count} row(s): {reasons}" for reasons, count in counts.head(limit).items()]


def check_pipeline(
    name: str,
    settings: Settings,
    *,
    day: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> CheckReport:
    """Check pipeline ``name`` as the DAGs would see it: its YAML, its suite, one landed partition."""
    from mlops.hooks.lake import storage_for  # the S3 side needs the Amazon provider, loaded lazily
    from mlops.parsing import BadInputError
    from mlops.suite import load_suite
    from mlops.validation import validate_partition

    report = CheckReport()
    path = settings.pipelines_dir / f"{name}.yaml"
    try:
        pipeline = load_pipeline(path)
    except ConfigError as exc:
        report.error(str(exc))
        return report
    report.info(f"config: {path} is valid")
    for warning in pipeline_warnings(pipeline):
        report.warn(f"{path}: {warning}")
    try:
        suite = load_suite(pipeline, settings.include_dir)
    except ConfigError as exc:
        report.error(str(exc))
        return report
    report.info(f"suite: {settings.include_dir / pipeline.validation.suite} is up to date")

    landing = storage_for(settings.source_root(pipeline.source.uri), settings.aws_conn_id)
    day = day or newest_day(landing)
    if day is None:
        report.error(f"no ds=YYYY-MM-DD folder under {landing.uri('')}: land a partition, or pass --day")
        return report
    progress(f"reading {pipeline.name} {day} from {landing.uri('')}")
    try:
        files = {p.rsplit("/", 1)[-1]: landing.read_bytes(p) for p in landed_files(landing, pipeline, day)}
        raw = read_files(files, pipeline, lambda file: landing.uri(f"ds={day}/{file}"))
    except (SourceMissing, WrongFormat, BadInputError) as exc:
        report.error(f"{pipeline.name} {day} rejected: {exc}")
        return report
    start, end = partition_interval(day, pipeline.grain)
    outcome = validate_partition(raw, pipeline, suite, interval_start=start, interval_end=end)
    (report.info if outcome.passed else report.error)(outcome.message)
    for warning in outcome.warnings:
        report.warn(warning)
    for line in quarantine_summary(outcome.quarantined):
        report.info(f"  quarantined: {line}")
    return report
