"""Sensors that hold a stage until its past is settled (``mlops.clock``), in reschedule mode.

``wait_for_past`` sits before ``validate`` in ingest: day D is published only after every decision
effective on or before D is taken, so score and monitor of D see the champion as of D and the
verdicts before D. ``wait_for_window`` starts a train run: a scheduled or drift run decides only
after every decision before it in the logical order.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from mlops.airflow.operators.base import ModelOperator, run_type
from mlops.grain import parse_key
from mlops.names import dag_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.clock.logical import AirflowRuns, Past


def airflow_runs(context: Context, pipeline: str) -> AirflowRuns:
    """``AirflowRuns`` through the Task SDK: the counts ExternalTaskSensor uses."""
    from mlops.clock.logical import AirflowRuns, RunState

    ti = context["ti"]

    def state(dag_id: str, logical: dt.datetime) -> RunState:
        if ti.get_dr_count(dag_id=dag_id, logical_dates=[logical], states=["success", "failed"]):
            return "finished"
        return "active" if ti.get_dr_count(dag_id=dag_id, logical_dates=[logical]) else "absent"

    def ingest(ds: str) -> RunState:
        # A partition's ingest run has the partition's start, which its key names, as logical date.
        return state(dag_id(pipeline, "ingest"), parse_key(ds))

    return AirflowRuns(ingest=ingest, scheduled_train=lambda fire: state(dag_id(pipeline, "train"), fire))


class SettleSensor(ModelOperator, BaseSensorOperator):
    """Base of the waits on the logical clock: pokes ``waiting`` until it is empty."""

    def __init__(self, *, pipeline: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(pipeline=pipeline, **kwargs)
        self.last_waiting: list[str] = []

    def past(self, context: Context) -> Past:
        from mlops.clock.logical import Past
        from mlops.registry.champion import RecordedMove, champion_on, history

        moves: list[RecordedMove] | None = None

        def champion(ds: str) -> str | None:
            nonlocal moves  # the registry is read only when the lake alone cannot settle the day
            if moves is None:
                moves = history(self.mlflow.client, self.pipeline.name, self.mlflow.signing_key)
            return champion_on(moves, ds)

        return Past(
            self.lake_hook().storage, self.pipeline, champion, airflow_runs(context, self.pipeline.name)
        )

    def waiting(self, context: Context) -> list[str]:
        raise NotImplementedError

    def poke(self, context: Context) -> bool:
        from mlops.clock.logical import describe

        self.last_waiting = self.waiting(context)
        if self.last_waiting:
            self.log.info("waiting for: %s", describe(self.last_waiting))
        return not self.last_waiting

    def execute(self, context: Context) -> Any:
        from mlops.clock.logical import describe

        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            raise AirflowSensorTimeout(
                f"{self.pipeline.name}: the past was not settled within {self.timeout:.0f}s; still "
                f"waiting for {describe(self.last_waiting or self.waiting(context))}"
            ) from None


class WaitForPastSensor(SettleSensor):
    """Hold day D's publication until every decision effective on or before D is taken.

    Manual runs do not wait: a person re-running a day acts now.
    """

    def waiting(self, context: Context) -> list[str]:
        if run_type(context) == "manual":
            return []
        ds, _, _ = self.interval(context)
        return self.past(context).before_publish(ds)


class WaitForWindowSensor(SettleSensor):
    """Hold a train run until its window's last day is ingested and, for scheduled and drift runs,
    every decision before it in the logical order is taken."""

    def waiting(self, context: Context) -> list[str]:
        from mlops.airflow.operators.train_run import trigger_of

        trigger = trigger_of(context, self.pipeline.grain)
        return self.past(context).before_training(trigger.kind, trigger.as_of)
