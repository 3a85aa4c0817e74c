"""The partition grain: how long one partition of a pipeline is (an hour, a day, a week, a month).

The grain follows the ingest schedule: one ingest run fills one partition. A partition is named by
its period's start (``ds``): ``YYYY-MM-DD`` for a day, a week or a month (the day the period
starts), and ``YYYY-MM-DDTHH`` for an hour. Both forms sort as they fall in time and hold no
character a lake path or an S3 key would need to escape.

Windows, ranges and distances are counted in partitions of the grain. A duration (``12h``,
``28d``, ``2w``) converts to partitions only when it is a whole number of them; a month has no
fixed length, so a monthly pipeline counts in ``partitions`` only.
Pure Python: no Airflow import.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

GrainName = Literal["hour", "day", "week", "month"]
HOUR_KEY = "%Y-%m-%dT%H"
# The nominal length of a partition, in hours, for turning durations into partitions.
HOURS: dict[str, int | None] = {"hour": 1, "day": 24, "week": 168, "month": None}
UNIT_HOURS = {"h": 1, "d": 24, "w": 168}
SPAN = re.compile(r"^\s*(\d+)\s*(h|d|w|partitions?)?\s*$")


@contextmanager
def _calendar(what: object) -> Iterator[None]:
    """Python's calendar ends at 9999-12-31 (and starts at 0001-01-01): a partition past either end
    is a clear ``ValueError``, not an ``OverflowError`` from deep inside ``datetime``."""
    try:
        yield
    except OverflowError:
        raise ValueError(f"{what}: outside the calendar (0001-01-01 .. 9999-12-31)") from None
    except ValueError as exc:
        if "out of range" not in str(exc):
            raise
        raise ValueError(f"{what}: outside the calendar (0001-01-01 .. 9999-12-31)") from None


def _utc(when: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(when, dt.datetime):
        return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)


def parse_key(ds: str | dt.date | dt.datetime) -> dt.datetime:
    """The start (UTC) a partition key names: ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH``."""
    if isinstance(ds, dt.date):
        return _utc(ds)
    text = str(ds)
    try:
        if "T" in text or " " in text:
            return _utc(dt.datetime.fromisoformat(text))
        return _utc(dt.date.fromisoformat(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a partition key (YYYY-MM-DD, or YYYY-MM-DDTHH for an hour)"
        ) from None


def normalize_key(ds: str | dt.date | dt.datetime) -> str:
    """A key in its one spelling: a day as ``YYYY-MM-DD``, an hour as ``YYYY-MM-DDTHH``."""
    if isinstance(ds, dt.date) and not isinstance(ds, dt.datetime):
        return ds.isoformat()
    start = parse_key(ds)
    if start.minute or start.second or start.microsecond:
        raise ValueError(f"{ds!r} is not a partition key: a partition starts on the hour")
    if isinstance(ds, str) and "T" not in ds and " " not in ds:
        return start.date().isoformat()
    return Grain("hour").format(start)


@dataclass(frozen=True)
class Grain:
    """One partition's length; ``week_start`` is the weekday a week starts on (Monday is 0)."""

    name: GrainName = "day"
    week_start: int = 6  # @weekly fires on Sundays

    @property
    def hours(self) -> int | None:
        return HOURS[self.name]

    @property
    def per_year(self) -> int:
        """Partitions in a (non-leap) year: the longest training window."""
        return self.distance(self.key(dt.date(2025, 1, 1)), self.key(dt.date(2026, 1, 1)))

    def floor(self, when: dt.datetime | dt.date) -> dt.datetime:
        """The start of the partition holding ``when``."""
        with _calendar(f"the {self.name} holding {when.isoformat()}"):
            return self._floor(when)

    def _floor(self, when: dt.datetime | dt.date) -> dt.datetime:
        at = _utc(when)
        if self.name == "hour":
            return at.replace(minute=0, second=0, microsecond=0)
        day = dt.datetime(at.year, at.month, at.day, tzinfo=dt.UTC)
        if self.name == "week":
            return day - dt.timedelta(days=(day.weekday() - self.week_start) % 7)
        if self.name == "month":
            return day.replace(day=1)
        return day

    def format(self, start: dt.datetime) -> str:
        # Not strftime: its %Y drops the leading zeros of years before 1000 on some platforms.
        day = start.date().isoformat()
        return f"{day}T{start.hour:02d}" if self.name == "hour" else day

    def key(self, when: str | dt.datetime | dt.date) -> str:
        """The key of the partition holding ``when`` (a key of a finer grain, a date or a time)."""
        return self.format(self.floor(parse_key(when) if isinstance(when, str) else when))

    def start(self, ds: str | dt.date) -> dt.datetime:
        return self.floor(parse_key(ds))

    def _add(self, start: dt.datetime, n: int) -> dt.datetime:
        with _calendar(f"{self.format(start)} {n:+d} {self.name} partition(s)"):
            if self.name == "month":
                months = start.year * 12 + start.month - 1 + n
                return start.replace(year=months // 12, month=months % 12 + 1)
            return start + dt.timedelta(hours=n * (self.hours or 0))

    def end(self, ds: str | dt.date) -> dt.datetime:
        """The start of the next partition: ``[start(ds), end(ds))`` is the partition's period."""
        return self._add(self.start(ds), 1)

    def shift(self, ds: str | dt.date, n: int) -> str:
        """The key ``n`` partitions after (before, for a negative ``n``) ``ds``."""
        return self.format(self._add(self.start(ds), n))

    def last(self, as_of: str | dt.date, n: int) -> list[str]:
        """The ``n`` partitions ending with ``as_of``, oldest first."""
        return [self.shift(as_of, -offset) for offset in range(n - 1, -1, -1)]

    def span(self, first: str | dt.date, last: str | dt.date) -> list[str]:
        """Every partition from ``first`` to ``last``, inclusive, oldest first."""
        start, stop = self.start(first), self.start(last)
        keys = []
        while start <= stop:
            keys.append(self.format(start))
            if start == stop:  # never step past the last: it may be the calendar's last partition
                break
            start = self._add(start, 1)
        return keys

    def distance(self, first: str | dt.date, last: str | dt.date) -> int:
        """How many partitions ``last`` is after ``first`` (negative when before)."""
        a, b = self.start(first), self.start(last)
        if self.name == "month":
            return (b.year - a.year) * 12 + b.month - a.month
        return round((b - a).total_seconds() / 3600) // (self.hours or 1)

    def describe(self, ds: str | dt.date) -> str:
        """The period in words, for messages: ``the hour 2026-01-01 05:00 .. 06:00 UTC``."""
        start, end = self.start(ds), self.end(ds)
        if self.name == "hour":
            return f"the hour {start:%Y-%m-%d %H:00} .. {end:%H:00} UTC"
        if self.name == "day":
            return f"the day {start.date().isoformat()} (UTC)"
        last = (end - dt.timedelta(days=1)).date().isoformat()
        return f"the {self.name} {start.date().isoformat()} .. {last} (UTC)"


def run_range(grain: Grain, first: str, last: str) -> list[str]:
    """The partitions ``first .. last`` (inclusive) of a manual run over history, oldest first.

    Refused before a single key is listed when the range is reversed, holds more than a year of
    partitions (``Grain.per_year``: the train form's window cap too) or ends at the calendar's last
    partition, which has no end to read up to.
    """
    first, last = grain.key(first), grain.key(last)
    if last < first:
        raise ValueError(f"end_ds {last} is before start_ds {first}")
    count, cap = grain.distance(first, last) + 1, grain.per_year
    if count > cap:
        raise ValueError(
            f"start_ds {first} .. end_ds {last} is {count} {grain.name} partitions; one run takes at most "
            f"a year of them ({cap}): split the range into several runs"
        )
    try:
        grain.end(last)
    except ValueError:
        raise ValueError(
            f"the {grain.name} {last} runs past 9999-12-31, where the calendar ends: it has no end to "
            "read up to; pick an earlier range"
        ) from None
    return grain.span(first, last)


DAY = Grain("day")
PRESETS = {"@hourly": Grain("hour"), "@daily": DAY, "@weekly": Grain("week", 6), "@monthly": Grain("month")}


@lru_cache(maxsize=64)
def grain_of(schedule: str) -> Grain:
    """The grain of an ingest schedule: a preset, or a cron that fires once an hour, day, week or
    month at the same point of the period. Anything else raises ``ValueError``."""
    if schedule in PRESETS:
        return PRESETS[schedule]
    from croniter import croniter

    try:
        fires = croniter(schedule, dt.datetime(2026, 1, 1, tzinfo=dt.UTC) - dt.timedelta(microseconds=1))
        times = [fires.get_next(dt.datetime) for _ in range(40)]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"not a valid cron expression: {schedule!r} ({exc})") from None
    gaps = {round((b - a).total_seconds()) for a, b in itertools.pairwise(times)}
    if gaps == {3600}:
        return Grain("hour")
    if gaps == {86400}:
        return DAY
    if gaps == {7 * 86400}:
        return Grain("week", times[0].weekday())
    months = [t.year * 12 + t.month for t in times]
    consecutive = all(b - a == 1 for a, b in itertools.pairwise(months))
    if consecutive and {(t.day, t.time()) for t in times} == {(1, times[0].time())}:
        return Grain("month")  # a month partition is the calendar month: the cron fires on the 1st
    raise ValueError(
        f"{schedule!r} does not fire once per hour, day, week or month: the ingest schedule sets the "
        "partition grain (use @hourly, @daily, @weekly, @monthly or a cron with one of those periods; a monthly one "
        "fires on the 1st)"
    )


def partitions(value: int | str, grain: Grain, key: str) -> int:
    """A window or distance in partitions of ``grain``: an int (partitions), ``"N partitions"``, or
    a duration ``Nh``/``Nd``/``Nw`` that is a whole number of partitions. Errors name ``key``."""
    if isinstance(value, int):
        return value
    match = SPAN.match(str(value))
    if not match:
        raise ValueError(
            f"{key}: {value!r} is neither a number of partitions nor a duration "
            "(e.g. 12, '12 partitions', '12h', '28d', '2w')"
        )
    count, unit = int(match.group(1)), match.group(2)
    if unit is None or unit.startswith("partition"):
        return count
    hours = count * UNIT_HOURS[unit]
    if grain.hours is None or hours % grain.hours:
        length = "a month has no fixed length" if grain.hours is None else f"one is {grain.hours}h"
        raise ValueError(
            f"{key}: {value!r} is not a whole number of {grain.name} partitions ({length}); "
            f"give it as 'N partitions'"
        )
    return hours // grain.hours


# A month's mean length (365.25 days / 12), for rounding a duration to months.
MEAN_MONTH_HOURS = 730.5


def nearest_partitions(value: int | str, grain: Grain, key: str) -> int:
    """``partitions``, but a duration that is no whole number of partitions is rounded to the nearest.

    For a cycle (``drift.cycle``): a season comes back after a year, which is no whole number of
    weeks or months, and ``365d`` should mean "a year" at every grain (52 weeks, 12 months).
    """
    try:
        return partitions(value, grain, key)
    except ValueError:
        match = SPAN.match(str(value))
        if not match:
            raise
        hours = int(match.group(1)) * UNIT_HOURS[str(match.group(2))]
        return round(hours / (grain.hours or MEAN_MONTH_HOURS))  # 0 below half a partition
