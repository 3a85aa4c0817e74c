"""Which window a training run reads, and why it runs: drift payload, schedule, backfill, manual."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from mlops.airflow.operators.train_run import trigger_of
from mlops.grain import DAY
from mlops.training.plan import Trigger


def context(run_type: str, *, logical: dt.datetime | None, conf=None, reason: str = "") -> dict:
    run = SimpleNamespace(
        run_type=run_type, run_after=dt.datetime(2026, 3, 9, 4, tzinfo=dt.UTC), conf=conf or {}
    )
    return {"dag_run": run, "logical_date": logical, "params": {"reason": reason}}


MONDAY = dt.datetime(2026, 3, 9, 4, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("run_type", "kind", "backfill"),
    [("scheduled", "schedule", False), ("backfill", "backfill", True), ("manual", "manual", False)],
)
def test_time_runs_train_on_the_window_ending_the_day_before(
    run_type: str, kind: str, backfill: bool
) -> None:
    trigger = trigger_of(context(run_type, logical=MONDAY), DAY)
    assert trigger.as_of == "2026-03-08" and trigger.effective_day == "2026-03-09"
    assert trigger.kind == kind and trigger.backfill is backfill


def test_manual_reason_is_recorded() -> None:
    assert trigger_of(context("manual", logical=MONDAY, reason=" new features "), DAY).payload == {
        "reason": "new features"
    }


def test_drift_runs_train_on_the_window_ending_at_the_drifted_day() -> None:
    payload = {"ds": "2026-03-02", "champion_version": "3", "features": {"monthly_charges": {"psi": 1.4}}}
    # The monitor's retrain task starts the run with the drift event's extra as its conf.
    trigger = trigger_of(context("manual", logical=None, conf={"drift": payload}, reason="ignored"), DAY)
    assert trigger == Trigger(kind="drift", as_of="2026-03-02", payload=payload)
    # Trained through the drifted day, it serves from the next, after that day's weekly train.
    assert trigger.effective_day == "2026-03-03" and trigger.order > Trigger("schedule", "2026-03-02").order
