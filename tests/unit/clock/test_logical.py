"""The logical clock: the same days replayed in any interleaving give the same outcome.

A small simulation drives the real settle predicate (``mlops.clock.logical.Past``), the real lake records
and drift reports, and the registry's real ordering (``champion_on``, ``superseding``) with stage
stand-ins whose decisions depend only on what they read: the champion as of their day and the
reports before it. A scheduler picks any ready task at each step; different seeds and policies are
different machine speeds. With the waits switched off the outcome changes, which is what the waits
are for.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlops.clock.logical import (
    ORDER,
    AirflowRuns,
    Past,
    TrainingRecord,
    effective_day,
    read_record,
    scheduled_fires,
    shift,
    write_record,
)
from mlops.config.pipeline import load_pipeline
from mlops.lake.storage import LocalStorage, commit_partition, is_committed, partition_dir, read_manifest
from mlops.monitor.report_store import fired, read_report, write_report
from mlops.registry.champion import Move, RecordedMove, champion_on, move_key, superseding
from mlops.training.plan import TrainingPlan, Trigger
from mlops.training.promotion import holdout_leak

ROOT = Path(__file__).resolve().parents[3]
START, END = dt.date(2026, 1, 1), dt.date(2026, 2, 14)
SHIFT = "2026-01-27"
REJECTED = {"2026-01-09", "2026-01-20"}


@pytest.fixture(scope="module")
def pipeline():
    base = load_pipeline(ROOT / "include/pipelines/churn.yaml")
    return base.model_copy(update={"start_date": START, "end_date": END})


def days() -> list[str]:
    return [(START + dt.timedelta(days=i)).isoformat() for i in range((END - START).days + 1)]


@dataclass
class Replay:
    """One replay: the lake, the registry's moves, and the tasks Airflow would have queued."""

    pipeline: object
    lake: LocalStorage
    wait: bool
    moves: list[RecordedMove] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # version -> as_of it was trained through
    done: set[tuple[str, str]] = field(default_factory=set)

    # -- Airflow's side of the clock ------------------------------------------------------------
    def runs(self) -> AirflowRuns:
        def ingest(ds: str) -> str:
            return "finished" if ("ingest", ds) in self.done else "active"

        def scheduled(fire: dt.datetime) -> str:
            return "finished" if ("schedule", fire.date().isoformat()) in self.done else "active"

        return AirflowRuns(ingest=ingest, scheduled_train=scheduled)

    def past(self) -> Past:
        return Past(self.lake, self.pipeline, lambda ds: champion_on(self.moves, ds), self.runs())

    # -- stand-ins of the stages, deciding only from what they read ------------------------------
    def quality(self, version: str | None, ds: str) -> float:
        """A model is good on days like the ones it was trained on: pre- or post-shift."""
        if version is None:
            return 0.0
        trained = self.versions[version]
        same_regime = (trained >= SHIFT) == (ds >= SHIFT)
        return (
            0.8 + (0.05 if same_regime else 0.0) + 0.0001 * (dt.date.fromisoformat(trained).toordinal() % 7)
        )

    def ingest(self, ds: str) -> None:
        if ds in REJECTED:
            commit_partition(self.lake, partition_dir("churn", "reports", ds), {}, extra={"passed": False})
        else:
            commit_partition(self.lake, partition_dir("churn", "validated", ds), {"part.parquet": b"x"})
        self.done.add(("ingest", ds))

    def train(self, kind: str, as_of: str) -> None:
        trigger = Trigger(kind=kind, as_of=as_of)
        grain = self.pipeline.grain
        window = [shift(as_of, -i, grain) for i in range(28)]
        if sum(is_committed(self.lake, partition_dir("churn", "validated", d)) for d in window) < 7:
            write_record(self.lake, "churn", TrainingRecord(as_of, kind, "failed", "run", reason="window"))
            self.done.add((kind, effective_day(as_of, grain)))
            return
        champion = champion_on(self.moves, trigger.effective_day)
        version = str(len(self.versions) + 1)
        self.versions[version] = as_of
        holdout = [shift(as_of, -i, grain) for i in (2, 1, 0)]
        new = sum(self.quality(version, d) for d in holdout)
        old = sum(self.quality(champion, d) for d in holdout)
        outcome = "not_promoted"
        if champion is None or new > old + 0.01:
            move = Move("churn", version, champion, kind, "r", {}, trigger.effective_day, trigger.order)
            if superseding(self.moves, move) is not None:
                outcome = "superseded"
            else:
                self.moves.append(RecordedMove(version, move.effective_day, move.order, previous=champion))
                self.moves.sort(key=move_key)
                outcome = "promoted"
        write_record(self.lake, "churn", TrainingRecord(as_of, kind, outcome, "run", version, champion))
        self.done.add((kind, effective_day(as_of, grain)))

    def monitor(self, ds: str) -> None:
        champion = champion_on(self.moves, ds)
        if champion is None:
            return
        drifted = self.quality(champion, ds) < 0.85
        grain = self.pipeline.grain
        before = read_report(self.lake, "churn", shift(ds, -1, grain))
        confirmed = drifted and bool(before and before["drifted"])
        earlier = [
            r
            for d in (shift(ds, -i, grain) for i in range(1, 15))
            if fired(r := read_report(self.lake, "churn", d))
        ]
        fire = confirmed and not any(r["champion_version"] == champion for r in earlier)
        report = {"ds": ds, "drifted": drifted, "champion_version": champion, "verdict": {"status": "x"}}
        write_report(self.lake, "churn", {**report, "trigger": {"fire": fire}}, "")

    def score(self, ds: str) -> None:
        version = champion_on(self.moves, ds)
        if version is not None:
            commit_partition(
                self.lake, partition_dir("churn", "predictions", ds), {}, extra={"model_version": version}
            )

    # -- outcome -----------------------------------------------------------------------------------
    def outcome(self) -> dict[str, tuple]:
        out = {}
        for ds in days():
            predictions = partition_dir("churn", "predictions", ds)
            out[ds] = (
                champion_on(self.moves, ds),
                read_manifest(self.lake, predictions).extra["model_version"]
                if is_committed(self.lake, predictions)
                else None,
                tuple(
                    (r.kind, r.version, r.outcome)
                    for kind in ("schedule", "drift")
                    if (r := read_record(self.lake, "churn", ds, kind))
                ),
            )
        return out


def replay(pipeline, tmp_path: Path, *, seed: int, policy: str, wait: bool = True) -> dict[str, tuple]:
    """Run every task Airflow would run for the days, in an order the seed and the policy choose.

    Catch-up: every ingest and scheduled train run exists from the start; score and monitor runs
    appear when their day is published, a drift retrain when a verdict fires. A task runs only
    when its wait (if any) is over.
    """
    sim = Replay(pipeline, LocalStorage(tmp_path / f"{policy}-{seed}-{wait}"), wait)
    rng = random.Random(seed)
    queue: list[tuple[str, str]] = [("ingest", d) for d in days()]
    queue += [("schedule", shift(d, -1, pipeline.grain)) for d in days() if scheduled_fires(pipeline, d)]
    for _ in range(10_000):
        if not queue:
            return sim.outcome()
        past = sim.past()

        def ready(task: tuple[str, str], past: Past = past) -> bool:
            kind, ds = task
            if not wait:
                # Without the waits, only what Airflow itself orders: a train needs its window's last
                # day ingested, a drift train its verdict.
                return kind != "schedule" or ("ingest", ds) in sim.done
            if kind == "ingest":
                return not past.before_publish(ds)
            if kind in ("schedule", "drift"):
                return not past.before_training(kind, ds)
            return True

        candidates = [t for t in queue if ready(t)]
        assert candidates, f"nothing can run; waiting: {[(t, past.before_publish(t[1])) for t in queue][:3]}"
        if policy == "trains_first":
            candidates.sort(key=lambda t: t[0] not in ("schedule", "drift"))
            task = candidates[0]
        elif policy == "trains_last":
            candidates.sort(key=lambda t: t[0] in ("schedule", "drift"))
            task = candidates[0]
        else:
            task = rng.choice(candidates)
        queue.remove(task)
        kind, ds = task
        if kind == "ingest":
            sim.ingest(ds)
            if ds not in REJECTED:
                queue += [("monitor", ds), ("score", ds)]
        elif kind in ("schedule", "drift"):
            sim.train(kind, ds)
        elif kind == "monitor":
            sim.monitor(ds)
            if fired(read_report(sim.lake, "churn", ds)):
                queue.append(("drift", ds))
        else:
            sim.score(ds)
    raise AssertionError("the replay did not finish")


def test_every_interleaving_gives_the_same_outcome(pipeline, tmp_path: Path) -> None:
    reference = replay(pipeline, tmp_path, seed=0, policy="trains_first")
    # The scenario has the events the demo has: a first champion, a shift, a drift retrain.
    assert reference["2026-01-05"][0] is None and reference["2026-01-12"][0] is not None
    assert any(kind == "drift" for *_, decisions in reference.values() for kind, *_ in decisions)
    assert len({v[0] for v in reference.values()} - {None}) >= 2, "the champion changes"
    for day, (champion, scored, _) in reference.items():
        if day not in REJECTED and champion is not None:
            assert scored == champion, f"{day} scored by the champion of its day"
    for policy, seed in [("trains_last", 0), ("random", 1), ("random", 2), ("random", 3), ("random", 4)]:
        assert replay(pipeline, tmp_path, seed=seed, policy=policy) == reference, (policy, seed)


def test_without_the_waits_the_outcome_depends_on_the_interleaving(pipeline, tmp_path: Path) -> None:
    outcomes = [
        replay(pipeline, tmp_path, seed=seed, policy=policy, wait=False)
        for policy, seed in [("trains_first", 0), ("trains_last", 0), ("random", 1)]
    ]
    assert any(o != outcomes[0] for o in outcomes[1:])


def test_scheduled_fires_follow_the_cron_within_the_pipeline_dates(pipeline) -> None:
    assert scheduled_fires(pipeline, "2026-01-05") == [dt.datetime(2026, 1, 5, 4, tzinfo=dt.UTC)]
    assert scheduled_fires(pipeline, "2026-01-06") == []
    assert scheduled_fires(pipeline, "2026-02-16") == [], "after end_date"


def test_an_ingest_still_running_or_not_yet_created_is_waited_for(pipeline, tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path)
    states = {"2026-01-01": "finished", "2026-01-02": "active"}
    runs = AirflowRuns(ingest=lambda ds: states.get(ds, "absent"), scheduled_train=lambda f: "finished")
    past = Past(lake, pipeline, lambda ds: None, runs)
    assert past.before_publish("2026-01-03") == ["the churn_ingest run of 2026-01-02"]
    states["2026-01-02"] = "finished"  # failed before the lake heard of it: over
    assert past.before_publish("2026-01-03") == []
    # A weekly train whose window's last day has no ingest run yet: catch-up will create it (the
    # scheduler creates them one after another), so the train waits instead of training on less.
    assert past.before_training("schedule", "2026-01-04") == ["the churn_ingest run of 2026-01-04"]
    schedules = pipeline.schedules.model_copy(update={"catchup": False})
    no_catchup = Past(lake, pipeline.model_copy(update={"schedules": schedules}), lambda ds: None, runs)
    assert no_catchup.before_training("schedule", "2026-01-04") == [], "never created: over"


def test_a_published_day_with_a_champion_waits_for_its_verdict(pipeline, tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path)
    commit_partition(lake, partition_dir("churn", "validated", "2026-01-07"), {"p": b""})
    runs = AirflowRuns(ingest=lambda ds: "finished", scheduled_train=lambda f: "finished")
    past = Past(lake, pipeline, lambda ds: "1", runs)
    assert past.before_publish("2026-01-08") == ["the drift verdict of 2026-01-07 (churn_monitor)"]
    write_report(lake, "churn", {"ds": "2026-01-07", "trigger": {"fire": True}}, "")
    assert past.before_publish("2026-01-08") == [
        "the drift retrain fired by 2026-01-07's verdict (churn_train)"
    ]
    write_record(lake, "churn", TrainingRecord("2026-01-07", "drift", "not_promoted", "r"))
    assert past.before_publish("2026-01-08") == []


def test_without_catchup_a_scheduled_train_that_never_ran_is_not_due(pipeline, tmp_path: Path) -> None:
    runs = AirflowRuns(ingest=lambda ds: "finished", scheduled_train=lambda f: "absent")
    with_catchup = Past(LocalStorage(tmp_path), pipeline, lambda ds: None, runs)
    # The walk back stops at the first open item: the weekly train of 01-05, never run.
    assert with_catchup.before_publish("2026-01-12") == [
        "the scheduled churn_train run of 2026-01-05T04:00:00+00:00 (absent)",
        "the scheduled churn_train run of 2026-01-12T04:00:00+00:00 (absent)",
    ]
    schedules = pipeline.schedules.model_copy(update={"catchup": False})
    without = Past(
        LocalStorage(tmp_path), pipeline.model_copy(update={"schedules": schedules}), lambda ds: None, runs
    )
    assert without.before_publish("2026-01-12") == []


def test_a_drift_retrain_comes_after_the_weekly_train_of_its_effective_day(pipeline, tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path)
    runs = AirflowRuns(
        ingest=lambda ds: "finished",
        scheduled_train=lambda fire: "active" if fire.day == 12 else "finished",
    )
    past = Past(lake, pipeline, lambda ds: None, runs)
    # Drift on Sunday 01-11 takes effect on Monday 01-12, like the weekly train of 01-12.
    assert past.before_training("drift", "2026-01-11") == [
        "the scheduled churn_train run of 2026-01-12T04:00:00+00:00 (active)"
    ]
    assert past.before_training("schedule", "2026-01-11") == []


def test_champion_on_follows_the_logical_order_not_the_wall_clock() -> None:
    moves = [
        RecordedMove("1", "2026-01-12", 0),
        RecordedMove("3", "2026-01-19", 0),
        RecordedMove("4", "2026-01-19", ORDER["drift"]),
    ]
    assert champion_on(moves, "2026-01-11") is None
    assert champion_on(moves, "2026-01-18") == "1"
    assert champion_on(moves, "2026-01-19") == "4"
    late = Move("m", "5", "1", "r", "run", {}, effective_day="2026-01-15", order=0)
    assert superseding(moves, late) == moves[2]
    assert superseding(moves, Move("m", "5", "4", "r", "run", {}, "2026-01-26")) is None


def test_the_leak_guard_refuses_holdout_days_a_model_trained_on() -> None:
    holdout = ["2026-02-13", "2026-02-14", "2026-02-15"]
    assert holdout_leak(holdout, {"champion version 6": ("2026-02-10", "2026-03-06")}).startswith(
        "refused: the holdout days 2026-02-13, 2026-02-14, 2026-02-15 are days champion version 6"
    )
    assert holdout_leak(holdout, {"champion version 3": ("2025-12-29", "2026-01-22"), "x": None}) is None


def test_the_training_plan_round_trips_and_rejects_unknown_fields() -> None:
    plan = TrainingPlan(
        trigger=Trigger("drift", "2026-03-02", {"ds": "2026-03-02"}),
        ready=["2026-03-01", "2026-03-02"],
        failed=[],
        parent_run_id="abc",
        champion_at_start="3",
        lineage={"partitions": "x"},
        tags={},
    )
    assert TrainingPlan.from_dict(plan.to_dict()) == plan
    assert plan.trigger.effective_day == "2026-03-03" and plan.trigger.order == 1
    with pytest.raises(ValueError, match="unknown fields"):
        TrainingPlan.from_dict({**plan.to_dict(), "champion": "3"})


def test_a_move_never_takes_effect_on_a_day_already_acted_on(pipeline, tmp_path: Path) -> None:
    from mlops.clock.logical import first_open_day
    from mlops.monitor.report_store import write_report

    lake = LocalStorage(tmp_path)
    assert first_open_day(lake, "churn", "2026-01-12", pipeline.grain) == "2026-01-12", (
        "nothing acted on: as decided"
    )
    # A train of 01-12 failed in an outage; 01-12 and 01-13 were scored, 01-14 only monitored.
    for ds in ("2026-01-12", "2026-01-13"):
        commit_partition(lake, partition_dir("churn", "predictions", ds), {}, extra={"model_version": "1"})
    write_report(lake, "churn", {"ds": "2026-01-14", "trigger": {"fire": False}}, "")
    assert first_open_day(lake, "churn", "2026-01-12", pipeline.grain) == "2026-01-15"
