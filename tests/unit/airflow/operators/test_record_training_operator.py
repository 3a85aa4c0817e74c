"""RecordTrainingOperator: the outcome a train run records, whatever happened upstream (all_done).

From the run's task states, the gate's decision and the approve task's answer it records one of
failed, not_promoted, promoted, rejected or superseded with its reason, in the lake, where the
logical clock reads it; a failed run fails the task after recording, so the run stays failed.
The parent MLflow run is ended with the outcome, on a real MLflow server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from tests.unit.airflow.operators.conftest import RUN_ID
from tests.unit.airflow.operators.test_promote_operator import decision  # the same gate decision

from mlops.airflow.operators.train import RecordTrainingOperator
from mlops.clock.logical import TrainingRecord, read_record
from mlops.lake.storage import LocalStorage
from mlops.training.plan import TrainingPlan, Trigger
from mlops.training.review import REMEDY, Review

# The default context: a scheduled run of 2026-01-07 trains on the window as of the day before.
AS_OF, KIND = "2026-01-06", "schedule"
BEATS = "auc 0.812 beats champion 0.790 by 0.022"
METRICS = {"challenger": {"auc": 0.812}, "champion": {"auc": 0.79}}
AT = "2026-01-07T09:30:00+00:00"


def answer(*, approved: bool, comment: str = "ok") -> dict[str, Any]:
    """What the approve task hands on once bob answered."""
    return {"asked": True, "review": Review(approved, "bob", comment, AT, by_id="bob").to_dict()}


def states(*, approve: str | None = None, **changed: str) -> dict[str, str]:
    """The run's task states as ``get_task_states`` gives them (a mapped trial as ``<task>_<index>``),
    all success but ``changed``; ``approve`` adds the approve task in that state."""
    found = {
        "wait_for_window": "success",
        "prepare": "success",
        "train_trial_0": "success",
        "train_trial_1": "success",
        "register_challenger": "success",
        "gate": "success",
        "promote": "success",
        "record": "running",
    }
    if approve is not None:
        found["approve"] = approve
    return {**found, **changed}


@pytest.fixture
def run(
    make_operator: Callable[..., Any], make_context: Callable[..., dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    """``run(task_states, gate, approval, plan)``: execute ``record`` in a run whose tasks ended in
    ``task_states``, whose gate handed on ``gate`` and whose approve task handed on ``approval``."""

    def execute(
        task_states: dict[str, str],
        gate: dict[str, Any] | None,
        approval: dict[str, Any] | None = None,
        plan: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        asked: list[dict[str, Any]] = []
        context = make_context(
            xcom={("gate", None): gate, ("approve", None): approval, ("prepare", "plan"): plan}
        )
        ti = context["ti"]
        ti.task_id = "record"

        def get_task_states(**query: Any) -> dict[str, dict[str, str]]:
            asked.append(query)
            return {RUN_ID: task_states}

        ti.get_task_states = get_task_states
        operator = make_operator(RecordTrainingOperator, task_id="record")
        try:
            return operator.execute(context)
        finally:
            assert asked == [{"dag_id": "churn_test", "run_ids": [RUN_ID]}]

    return execute


def record(outcome: str, reason: str, *, gate: bool = True, reviewed_by: str | None = None) -> TrainingRecord:
    """The record a run of the default context writes."""
    return TrainingRecord(
        as_of=AS_OF,
        kind=KIND,
        outcome=outcome,
        airflow_run_id=RUN_ID,
        version="4" if gate else None,
        champion_version="3" if gate else None,
        reason=reason,
        metrics=METRICS if gate else None,
        effective="2026-01-07",
        triggered_by=None,
        reviewed_by=reviewed_by,
    )


@pytest.mark.parametrize(
    ("task_states", "gate", "approval", "expected"),
    [
        pytest.param(
            states(promote="skipped"),
            decision(promote=False, reason="auc 0.790 does not beat champion 0.795 by 0.002"),
            None,
            record("not_promoted", "auc 0.790 does not beat champion 0.795 by 0.002"),
            id="not-promoted-with-the-gates-reason",
        ),
        pytest.param(states(), decision(), None, record("promoted", BEATS), id="promoted"),
        pytest.param(
            states(approve="success"),
            decision(),
            answer(approved=True),
            record("promoted", f"{BEATS}; approved by bob at {AT}: ok", reviewed_by="bob"),
            id="promoted-after-an-approval",
        ),
        pytest.param(
            states(approve="success", promote="skipped"),
            decision(),
            answer(approved=False, comment="the holdout is too small"),
            record(
                "rejected", f"{BEATS}; rejected by bob at {AT}: the holdout is too small", reviewed_by="bob"
            ),
            id="skipped-because-rejected",
        ),
        pytest.param(
            states(promote="skipped"),
            decision(),
            None,
            record("superseded", "a decision later in the logical order already holds"),
            id="skipped-because-superseded",
        ),
        pytest.param(
            states(approve="success", promote="skipped"),
            decision(),
            answer(approved=True),
            record("superseded", "a decision later in the logical order already holds", reviewed_by="bob"),
            id="approved-then-superseded",
        ),
    ],
)
def test_a_run_that_ended_records_its_outcome_and_reason(
    run: Callable[..., dict[str, Any]],
    lake: LocalStorage,
    approval_on: Callable[..., None],
    task_states: dict[str, str],
    gate: dict[str, Any],
    approval: dict[str, Any] | None,
    expected: TrainingRecord,
) -> None:
    if "approve" in task_states:
        approval_on()
    returned = run(task_states, gate, approval)
    assert returned == expected.to_dict()
    assert read_record(lake, "churn", AS_OF, KIND) == expected


def test_without_approval_on_a_rejection_given_still_records_rejected(
    run: Callable[..., dict[str, Any]], lake: LocalStorage
) -> None:
    """Approval turned off after the approve task answered: a person's no still counts."""
    returned = run(
        states(approve="success", promote="skipped"), decision(), answer(approved=False, comment="no")
    )
    assert (
        returned == record("rejected", f"{BEATS}; rejected by bob at {AT}: no", reviewed_by="bob").to_dict()
    )


@pytest.mark.parametrize(
    ("task_states", "gate", "reason"),
    [
        pytest.param(
            states(
                train_trial_1="failed",
                register_challenger="upstream_failed",
                gate="upstream_failed",
                promote="upstream_failed",
            ),
            None,
            "failed in train_trial_1",
            id="a-trial-failed",
        ),
        pytest.param(
            states(wait_for_window="failed", prepare="failed", train_trial_0="upstream_failed"),
            None,
            "failed in prepare, wait_for_window",
            id="every-failed-task-named-in-order",
        ),
        pytest.param(
            states(
                prepare="skipped",
                train_trial_0="skipped",
                train_trial_1="skipped",
                register_challenger="skipped",
                gate="skipped",
                promote="skipped",
            ),
            None,
            "no gate decision",
            id="no-gate-decision",
        ),
    ],
)
def test_a_run_without_a_decision_records_failed_and_fails_the_task(
    run: Callable[..., dict[str, Any]],
    lake: LocalStorage,
    task_states: dict[str, str],
    gate: dict[str, Any] | None,
    reason: str,
) -> None:
    with pytest.raises(AirflowFailException) as raised:
        run(task_states, gate)
    assert type(raised.value) is AirflowFailException
    assert str(raised.value) == f"{KIND} run as of {AS_OF} {reason} (recorded)"
    assert read_record(lake, "churn", AS_OF, KIND) == record("failed", reason, gate=False)


def test_a_failed_promote_records_why_it_failed(
    run: Callable[..., dict[str, Any]], lake: LocalStorage, approval_on: Callable[..., None]
) -> None:
    """The approve task marked success by hand: promote refused to move, and the record says why."""
    approval_on()
    why = (
        "promoting churn version 4 needs an approval (promotion.approval.enabled is on) and this run has "
        "no review: the approve task returned none (marked success by hand, or the DAG has no approve "
        f"task); {REMEDY}"
    )
    with pytest.raises(AirflowFailException) as raised:
        run(states(approve="success", promote="failed"), decision(), None)
    assert str(raised.value) == f"{KIND} run as of {AS_OF} failed in promote: {why} (recorded)"
    assert read_record(lake, "churn", AS_OF, KIND) == record("failed", f"failed in promote: {why}")


def test_a_gate_that_decided_then_a_failure_elsewhere_is_still_failed(
    run: Callable[..., dict[str, Any]], lake: LocalStorage
) -> None:
    with pytest.raises(
        AirflowFailException, match=r"^schedule run as of 2026-01-06 failed in promote \(recorded\)$"
    ):
        run(states(promote="failed"), decision())
    assert read_record(lake, "churn", AS_OF, KIND) == record("failed", "failed in promote")


# --- the parent MLflow run ends with the outcome (a real MLflow server) -------------------------


@pytest.fixture
def parent_run(mlflow_server: str, fake_mlflow: Any) -> dict[str, Any]:
    """A parent run of this Airflow run left RUNNING, with a trial a dead attempt left RUNNING too,
    on the session's MLflow server; the operator's client is a real one."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    fake_mlflow.client = client
    experiment = client.create_experiment(f"record_operator_{uuid.uuid4().hex}")
    tags = {"airflow.run_id": RUN_ID}
    parent = client.create_run(experiment, tags=tags).info.run_id
    trial = client.create_run(experiment, tags={**tags, "mlflow.parentRunId": parent}).info.run_id
    other = client.create_run(experiment, tags={"airflow.run_id": "another-run"}).info.run_id
    plan = TrainingPlan(
        trigger=Trigger(KIND, AS_OF),
        ready=["2026-01-05", "2026-01-06"],
        failed=[],
        parent_run_id=parent,
        champion_at_start="3",
        lineage={"partitions": "2026-01-05,2026-01-06", "skipped_failed": ""},
        tags={},
    ).to_dict()
    return {"client": client, "plan": plan, "parent": parent, "trial": trial, "other": other}


def _statuses(found: dict[str, Any]) -> tuple[str, str, str]:
    client = found["client"]
    return tuple(client.get_run(found[name]).info.status for name in ("parent", "trial", "other"))


@pytest.mark.integration
def test_a_recorded_outcome_ends_the_parent_run_finished(
    run: Callable[..., dict[str, Any]], parent_run: dict[str, Any]
) -> None:
    assert run(states(), decision(), None, parent_run["plan"])["outcome"] == "promoted"
    # The trial a dead attempt left RUNNING is ended FAILED; another Airflow run's is left alone.
    assert _statuses(parent_run) == ("FINISHED", "FAILED", "RUNNING")


@pytest.mark.integration
def test_a_failed_run_ends_the_parent_run_failed(
    run: Callable[..., dict[str, Any]], parent_run: dict[str, Any]
) -> None:
    with pytest.raises(AirflowFailException, match=r"failed in train_trial_0 \(recorded\)$"):
        run(states(train_trial_0="failed"), None, None, parent_run["plan"])
    assert _statuses(parent_run) == ("FAILED", "FAILED", "RUNNING")
