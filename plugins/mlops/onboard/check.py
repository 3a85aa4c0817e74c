"""``python -m mlops check <pipeline>``: config, suite and one landing partition, without Airflow.

Each step is the one the DAGs run, with their messages: the config model (and its warnings for
settings that can never be met), the committed suite's staleness check, then the ingest gate's
reading and validation of a landed partition (``ingestion.landed_files``, ``read_files``,
``validation.validate_partition``), without writing anything to the lake. When drift compares a
partition with the holdout (or the training window), it also reads a landed partition or two of
each month of the last year and warns about features that follow the calendar (``calendar_features``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops.config.pipeline import ConfigError, Pipeline, load_pipeline, pipeline_warnings
from mlops.ingest.stage import (
    LandingRefused,
    SourceMissing,
    landed_files,
    partition_interval,
    read_files,
)
from mlops.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from mlops.lake.storage import Storage

_DAY_FOLDER = re.compile(r"^ds=(\d{4}-\d{2}-\d{2}(?:T\d{2})?)/")
# Periods of the calendar a feature can follow: the coarsest grain whose partitions they still
# split (a weekly partition holds every weekday), and the cycle after which they come back ('365d'
# is 12 partitions at the monthly grain, see ``grain.nearest_partitions``).
CALENDAR = {"month": ("month", "365d"), "day of the week": ("day", "7d"), "hour of the day": ("hour", "1d")}
_FINER = ("hour", "day", "week", "month")
SAMPLE_MONTHS, PER_MONTH = 12, 2  # the calendar check reads 2 partitions of each of the last 12 months


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


def landed_days(landing: Storage) -> list[str]:
    """The ``ds=...`` folders under a pipeline's landing root, oldest first."""
    return sorted({m.group(1) for path in landing.list_files("") if (m := _DAY_FOLDER.match(path))})


def newest_day(landing: Storage) -> str | None:
    """The newest ``ds=YYYY-MM-DD`` (or ``ds=YYYY-MM-DDTHH``) folder under a landing root, or None."""
    days = landed_days(landing)
    return days[-1] if days else None


def calendar_sample(days: list[str], through: str) -> list[str]:
    """The partitions the calendar check reads: the newest ``PER_MONTH`` landed of each of the last
    ``SAMPLE_MONTHS`` months through ``through``, oldest first."""
    months: dict[str, list[str]] = {}
    for ds in (d for d in days if d <= through):
        months.setdefault(ds[:7], []).append(ds)
    return [ds for month in sorted(months)[-SAMPLE_MONTHS:] for ds in months[month][-PER_MONTH:]]


def calendar_features(frame: pd.DataFrame, pipeline: Pipeline) -> dict[str, str]:
    """Features whose value on ``frame`` is a function of the event time's month, day of the week or
    hour of the day (constant within each, not across them), feature -> period.

    Only periods that split the pipeline's partitions count (a weekly partition holds every weekday),
    and only periods seen on at least two dates each, twice: a value constant within a day would
    otherwise look like a function of any period that the sample meets on one day only.
    """
    import pandas as pd

    times = pd.to_datetime(frame[pipeline.event_time], utc=True, errors="coerce")
    dates = times.dt.date
    grain = _FINER.index(pipeline.grain.name)
    periods = {
        "month": times.dt.month,
        "day of the week": times.dt.dayofweek,
        "hour of the day": times.dt.hour,
    }
    found: dict[str, str] = {}
    for period, keys in periods.items():
        if grain > _FINER.index(CALENDAR[period][0]):
            continue
        seen = dates.groupby(keys).nunique()
        if int((seen >= 2).sum()) < 2:
            continue
        for feature in pipeline.features:
            if feature in found or feature not in frame.columns:
                continue
            values = frame[feature].astype("string")
            within = values.groupby(keys).nunique()
            if int(within.max()) <= 1 and values.nunique() >= 2:
                found[feature] = period
    return found


def calendar_warnings(frame: pd.DataFrame, pipeline: Pipeline, partitions: list[str]) -> list[str]:
    """One warning per calendar feature (``calendar_features``) while drift compares a partition with
    the holdout or the training window: every change of period would read as drift."""
    reference = pipeline.drift.reference
    if reference == "same_period_last_cycle" or not partitions:
        return []
    out = []
    for feature, period in calendar_features(frame, pipeline).items():
        cycle = CALENDAR[period][1]
        out.append(
            f"features: {feature} is a function of the event time's {period} on {len(partitions)} landed "
            f"partition(s) ({partitions[0]} .. {partitions[-1]}): with drift.reference {reference}, a "
            f"{period} compared with other ones reads as drift; compare each partition with its own "
            f"period a cycle earlier (drift.reference: same_period_last_cycle, drift.cycle: {cycle})"
        )
    return out


def quarantine_summary(quarantined: pd.DataFrame, limit: int = 10) -> list[str]:
    """``<count> rows: <reasons>`` for the most frequent reasons of a quarantine frame."""
    from mlops.ingest.validation import QUARANTINE_REASONS

    if quarantined.empty:
        return []
    counts = quarantined[QUARANTINE_REASONS].astype(str).value_counts()
    return [f"{count} row(s): {reasons}" for reasons, count in counts.head(limit).items()]


def check_pipeline(
    name: str,
    settings: Settings,
    *,
    open_landing: Callable[[str], Storage],
    day: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> CheckReport:
    """Check pipeline ``name`` as the DAGs would see it: its YAML, its suite, one landed partition.

    ``open_landing(root)`` gives the storage of a landing root (local or S3): the caller builds it.
    """
    from mlops.ingest.parsing import BadInputError
    from mlops.ingest.suite import load_suite
    from mlops.ingest.validation import validate_partition

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

    landing = open_landing(settings.source_root(pipeline.source.uri))
    days = landed_days(landing)
    day = day or (days[-1] if days else None)
    if day is None:
        report.error(f"no ds=YYYY-MM-DD folder under {landing.uri('')}: land a partition, or pass --day")
        return report
    progress(f"reading {pipeline.name} {day} from {landing.uri('')}")
    try:
        files = {p.rsplit("/", 1)[-1]: landing.read_bytes(p) for p in landed_files(landing, pipeline, day)}
        raw = read_files(files, pipeline, lambda file: landing.uri(f"ds={day}/{file}"))
        start, end = partition_interval(day, pipeline.grain)
        outcome = validate_partition(raw, pipeline, suite, interval_start=start, interval_end=end)
    except (SourceMissing, LandingRefused, BadInputError) as exc:
        report.error(f"{pipeline.name} {day} rejected: {exc}")
        return report
    (report.info if outcome.passed else report.error)(outcome.message)
    for warning in outcome.warnings:
        report.warn(warning)
    for line in quarantine_summary(outcome.quarantined):
        report.info(f"  quarantined: {line}")
    if pipeline.drift.reference != "same_period_last_cycle":
        for warning in _calendar_check(landing, pipeline, calendar_sample(days, day), progress):
            report.warn(warning)
    return report


def _calendar_check(
    landing: Storage, pipeline: Pipeline, partitions: list[str], progress: Callable[[str], None]
) -> list[str]:
    """Read the sampled partitions (those that cannot be read are left out) and warn about calendar features."""
    import pandas as pd

    from mlops.ingest.parsing import BadInputError, coerce

    progress(f"reading {len(partitions)} landed partition(s) of the last year for the calendar check")
    frames, read = [], []
    for ds in partitions:
        try:
            files = {p.rsplit("/", 1)[-1]: landing.read_bytes(p) for p in landed_files(landing, pipeline, ds)}
            raw = read_files(files, pipeline, lambda file, ds=ds: landing.uri(f"ds={ds}/{file}"))
        except (SourceMissing, LandingRefused, BadInputError):
            continue
        frames.append(coerce(raw, pipeline)[0])
        read.append(ds)
    if not frames:
        return []
    return calendar_warnings(pd.concat(frames, ignore_index=True), pipeline, read)
