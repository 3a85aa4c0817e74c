"""The logical clock: when a decision takes effect, in which order decisions fall, and whether the
past of a day is settled.

Every decision that moves ``champion`` has an **effective day**: a model trained on data through
day A (its window's ``as_of``) serves from A + 1. A weekly train with logical date L trains through
L - 1, so it takes effect on L; a drift retrain for the drifted day D trains through D and takes
effect on D + 1; a rollback takes effect on its own logical day. Decisions are ordered by
``(effective day, order)``: on one day the scheduled train comes before a drift retrain, and a
rollback comes last. "The champion as of D" is the last move in that order effective on or before D.

A replay gives the same result at any speed only if no stage acts before everything that could
change its "as of" is decided. The items of one day D, in order:

1. the scheduled train effective D (logical date on D, trains through D - 1);
2. the drift retrain effective D (fired by the verdict of D - 1);
3. publishing D (``validate`` of the ingest run emits ``<pipeline>.validated``), after which score
   and monitor run for D, against the champion as of D.

Each item waits until every earlier item is settled: ``before_publish`` for 3, ``before_training``
for 1 and 2. "Settled through D" means: D's ingest run is over (published, rejected or never run),
and when D was published with a champion in force, D's drift verdict is in. A published day's own
barrier covered the days before it, so the walk back stops there.

What the lake cannot tell (whether Airflow has a run for a day, and whether it is over) comes from
``AirflowRuns``, which the operators back with the Task SDK and the tests with plain functions. A
day with no ingest run yet is still to come when catch-up will create it (the scheduler creates
them one after another), and over otherwise (catch-up off: days before the DAG was unpaused).
A "day" here is a partition of the pipeline's grain (``mlops.grain``): an hour, a day, a week or
a month; ``Past`` steps through partitions of that grain. Pure Python over ``Storage``; no Airflow
import.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlops.clock.window import day_state
from mlops.grain import DAY, Grain
from mlops.lake.storage import Storage, commit_partition, is_committed, partition_dir, read_partition
from mlops.monitor.report_store import fired, read_report, report_dir
from mlops.names import dag_id

if TYPE_CHECKING:
    from mlops.config.pipeline import Pipeline

RunState = Literal["finished", "active", "absent"]
# Order of decisions that take effect on the same day.
ORDER: dict[str, int] = {"schedule": 0, "manual": 0, "backfill": 0, "drift": 1, "rollback": 2}
RECORD = "decision.json"
# How far back the settle check walks over days that were never published (a first run long after
# the pipeline's start date, with catch-up off).
MAX_WALK_DAYS = 400


def as_date(value: str | dt.date) -> dt.date:
    """A day from a date or an ISO date/time string (a report's ``ds``, a tag)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def shift(ds: str | dt.date, days: int, grain: Grain) -> str:
    """The partition ``days`` partitions of ``grain`` after ``ds`` (a day, for the daily grain)."""
    return grain.shift(ds, days)


def effective_day(as_of: str, grain: Grain) -> str:
    """A model trained through partition ``as_of`` serves from the next partition."""
    return shift(as_of, 1, grain)


def scheduled_fires(pipeline: Pipeline, ds: str) -> list[dt.datetime]:
    """The train cron's fire times within partition ``ds`` (UTC) and the pipeline's dates."""
    from croniter import croniter

    grain = pipeline.grain
    start, end = grain.start(ds), grain.end(ds)
    last_day = pipeline.end_date
    if end.date() <= pipeline.start_date or (last_day and start.date() > last_day):
        return []
    fires = croniter(pipeline.schedules.train, start - dt.timedelta(microseconds=1))
    found = []
    while (fire := fires.get_next(dt.datetime)) < end:
        found.append(fire)
    return found


def first_open_day(lake: Storage, pipeline: str, day: str, grain: Grain) -> str:
    """The first day from ``day`` on that no stage has acted on yet (no predictions, no drift report).

    A move of the champion takes effect from here, never earlier: a run re-made after an outage
    (or a manual run dated in the past) does not change the champion of days already scored or
    monitored. In an undisturbed replay nothing is acted on before its decisions, so this is ``day``.
    """
    while is_committed(lake, partition_dir(pipeline, "predictions", day)) or is_committed(
        lake, report_dir(pipeline, day)
    ):
        day = shift(day, 1, grain)
    return day


# --- what a training run decided, in the lake ----------------------------------------------------


@dataclass(frozen=True)
class TrainingRecord:
    """The end of one train run, written whatever happened: what waits on the run reads it.

    ``outcome``: promoted, not_promoted, superseded (a later decision already held), failed,
    rejected (a reviewer said no), or awaiting_approval (written while a reviewer decides: the champion
    in force stays, and the days after are not held up).
    """

    as_of: str
    kind: str
    outcome: str
    airflow_run_id: str
    version: str | None = None
    champion_version: str | None = None
    reason: str = ""
    metrics: dict[str, Any] | None = None
    effective: str | None = None  # the partition after ``as_of``; None: the next day
    triggered_by: str | None = None  # the user who triggered the run (None: the scheduler or an Asset)
    reviewed_by: str | None = None  # who approved or rejected its promotion ("timeout": nobody did)

    @property
    def effective_day(self) -> str:
        # A record carries no pipeline; one without ``effective`` was written at the daily grain.
        return self.effective or effective_day(self.as_of, DAY)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingRecord:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})


def record_dir(pipeline: str, as_of: str, kind: str) -> str:
    return f"{partition_dir(pipeline, 'reports', as_of)}/training/{kind}"


def write_record(lake: Storage, pipeline: str, record: TrainingRecord) -> None:
    commit_partition(
        lake,
        record_dir(pipeline, record.as_of, record.kind),
        {RECORD: json.dumps(record.to_dict(), sort_keys=True, default=str).encode()},
    )


def read_record(lake: Storage, pipeline: str, as_of: str, kind: str) -> TrainingRecord | None:
    directory = record_dir(pipeline, as_of, kind)
    if not is_committed(lake, directory):
        return None
    return TrainingRecord.from_dict(json.loads(read_partition(lake, directory)[RECORD]))


# --- is the past settled? ------------------------------------------------------------------------


@dataclass(frozen=True)
class AirflowRuns:
    """Airflow's side: the ingest run of a day, the scheduled train run of a fire time."""

    ingest: Callable[[str], RunState]
    scheduled_train: Callable[[dt.datetime], RunState]


class Past:
    """One look at the pipeline's past: the lake, the champion moves, and Airflow's runs."""

    def __init__(
        self,
        lake: Storage,
        pipeline: Pipeline,
        champion_on: Callable[[str], str | None],
        runs: AirflowRuns,
    ) -> None:
        self.lake, self.pipeline, self.champion_on, self.runs = lake, pipeline, champion_on, runs

    def _ingest(self, ds: str) -> Literal["published", "over", "pending"]:
        state = day_state(self.lake, self.pipeline.name, ds)
        if state == "ready":
            return "published"
        if state == "failed":
            return "over"
        run = self.runs.ingest(ds)
        if run == "active":
            return "pending"
        if run == "absent" and self._scheduled_day(ds):
            return "pending"  # catch-up creates every day's run, one after another: not yet created
        return "over"

    def _shift(self, ds: str, n: int) -> str:
        return self.pipeline.grain.shift(ds, n)

    def _scheduled_day(self, ds: str) -> bool:
        """Whether the ingest schedule will run ``ds``: catch-up on, and the partition in the pipeline's dates."""
        day, end = self.pipeline.grain.start(ds).date(), self.pipeline.end_date
        return (
            self.pipeline.schedules.catchup
            and self.pipeline.grain.key(self.pipeline.start_date) <= ds
            and (end is None or day <= end)
        )

    def scheduled_pending(self, ds: str) -> list[str]:
        """The scheduled train effective on ``ds``, if it is due and not over."""
        name = self.pipeline.name
        waiting = []
        for fire in scheduled_fires(self.pipeline, ds):
            if read_record(self.lake, name, self._shift(ds, -1), "schedule") is not None:
                continue
            state = self.runs.scheduled_train(fire)
            if state == "finished" or (state == "absent" and not self.pipeline.schedules.catchup):
                continue
            waiting.append(f"the scheduled {dag_id(name, 'train')} run of {fire.isoformat()} ({state})")
        return waiting

    def drift_pending(self, ds: str) -> list[str]:
        """The drift retrain effective on ``ds`` (fired by the verdict of the day before), if not over."""
        name, before = self.pipeline.name, self._shift(ds, -1)
        if (
            fired(read_report(self.lake, name, before))
            and read_record(self.lake, name, before, "drift") is None
        ):
            return [f"the drift retrain fired by {before}'s verdict ({dag_id(name, 'train')})"]
        return []

    def unsettled_through(self, ds: str) -> list[str]:
        """What is still open among the items of every day up to and including ``ds``."""
        start = self.pipeline.grain.key(self.pipeline.start_date)
        day = ds
        for _ in range(MAX_WALK_DAYS):
            if day < start:
                return []
            state = self._ingest(day)
            if state == "pending":
                return [f"the {dag_id(self.pipeline.name, 'ingest')} run of {day}"]
            open_items = self.scheduled_pending(day) + self.drift_pending(day)
            if open_items:
                return open_items
            if state == "published":
                if self.champion_on(day) and read_report(self.lake, self.pipeline.name, day) is None:
                    return [f"the drift verdict of {day} ({self.pipeline.name}_monitor)"]
                return []  # its own publication waited for the days before it
            day = self._shift(day, -1)
        return []

    def before_publish(self, ds: str) -> list[str]:
        """What must be over before day ``ds`` is published (score and monitor then act on it)."""
        return (
            self.unsettled_through(self._shift(ds, -1)) + self.scheduled_pending(ds) + self.drift_pending(ds)
        )

    def before_training(self, kind: str, as_of: str) -> list[str]:
        """What must be over before a train run through ``as_of`` decides.

        Scheduled and drift runs wait for the whole past; manual and backfill runs only for their
        window's last day (a backfill never promotes; a manual run is a person acting now).
        """
        if kind == "schedule":
            return self.unsettled_through(as_of)
        if kind == "drift":
            return self.unsettled_through(as_of) + self.scheduled_pending(self._shift(as_of, 1))
        return (
            [f"the {dag_id(self.pipeline.name, 'ingest')} run of {as_of}"]
            if self._ingest(as_of) == "pending"
            else []
        )


def describe(waiting: Sequence[str]) -> str:
    return "; ".join(waiting) if waiting else "nothing"
