"""WaitForPastSensor.poke: day D is published only once every decision effective on or before D is taken."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import structlog

from mlops.airflow.operators.settle import WaitForPastSensor
from mlops.clock.logical import AirflowRuns
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir


def airflow_runs_stub(ingest: dict[str, str], train: str = "finished") -> Callable[..., AirflowRuns]:
    """``airflow_runs`` answering ``ingest[ds]`` (default finished) and ``train`` for every fire."""

    def airflow_runs(context: Any, pipeline: str) -> AirflowRuns:
        assert pipeline == "churn"
        return AirflowRuns(ingest=lambda ds: ingest.get(ds, "finished"), scheduled_train=lambda fire: train)

    return airflow_runs


@pytest.fixture(autouse=True)
def no_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlops.registry.champion.history", lambda client, model, key: [])


def publish(lake: LocalStorage, ds: str) -> None:
    commit_partition(lake, partition_dir("churn", "validated", ds), {"part.parquet": b"rows"})


def poke(sensor: WaitForPastSensor, context: dict[str, Any]) -> tuple[bool, list[str]]:
    with structlog.testing.capture_logs() as logs:
        done = sensor.poke(context)
    return done, [entry["event"] for entry in logs]


def test_manual_runs_never_wait(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(*args: Any) -> Any:
        raise AssertionError("a manual run looked at the past")

    monkeypatch.setattr("mlops.airflow.operators.settle.airflow_runs", unreachable)
    monkeypatch.setattr("mlops.registry.champion.history", unreachable)
    sensor = make_operator(WaitForPastSensor, task_id="wait_for_past")

    done, logged = poke(
        sensor, make_context(run_type="manual", logical=dt.datetime(2026, 1, 7, tzinfo=dt.UTC))
    )

    assert done and sensor.last_waiting == [] and logged == []


WEDNESDAY = dt.datetime(2026, 1, 7, tzinfo=dt.UTC)
MONDAY = dt.datetime(2026, 1, 12, tzinfo=dt.UTC)  # the weekly train fires at 04:00


@pytest.mark.parametrize(
    ("run_type", "logical", "ingest", "train", "published", "waiting"),
    [
        pytest.param(
            "scheduled",
            WEDNESDAY,
            {"2026-01-06": "active"},
            "finished",
            [],
            ["the churn_ingest run of 2026-01-06"],
            id="previous-days-ingest-still-running",
        ),
        pytest.param(
            "backfill",
            WEDNESDAY,
            {"2026-01-06": "active"},
            "finished",
            [],
            ["the churn_ingest run of 2026-01-06"],
            id="backfill-runs-wait-like-scheduled-ones",
        ),
        pytest.param(
            "scheduled",
            WEDNESDAY,
            {"2026-01-04": "active"},
            "finished",
            ["2026-01-06"],
            [],
            id="a-published-previous-day-settles-the-days-before-it",
        ),
        pytest.param(
            "scheduled",
            WEDNESDAY,
            {"2026-01-03": "active"},
            "finished",
            [],
            ["the churn_ingest run of 2026-01-03"],
            id="walks-back-over-days-never-published",
        ),
        pytest.param(
            "scheduled",
            MONDAY,
            {},
            "active",
            ["2026-01-11"],
            ["the scheduled churn_train run of 2026-01-12T04:00:00+00:00 (active)"],
            id="the-days-scheduled-train-comes-first",
        ),
        pytest.param("scheduled", WEDNESDAY, {}, "finished", [], [], id="everything-before-is-over"),
    ],
)
def test_scheduled_runs_wait_for_what_is_still_open_and_say_so(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    lake: LocalStorage,
    monkeypatch: pytest.MonkeyPatch,
    run_type: str,
    logical: dt.datetime,
    ingest: dict[str, str],
    train: str,
    published: list[str],
    waiting: list[str],
) -> None:
    monkeypatch.setattr("mlops.airflow.operators.settle.airflow_runs", airflow_runs_stub(ingest, train))
    for ds in published:
        publish(lake, ds)
    sensor = make_operator(WaitForPastSensor, task_id="wait_for_past")

    done, logged = poke(sensor, make_context(run_type=run_type, logical=logical))

    assert done == (not waiting)
    assert sensor.last_waiting == waiting
    assert logged == ([f"waiting for: {'; '.join(waiting)}"] if waiting else [])
