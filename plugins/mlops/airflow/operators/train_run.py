"""What the tasks of a train run share: the names they hand things on by, the readers of what earlier
tasks handed on, the review a promotion needs, and the run's training record.

One module so that no operator imports another (train, approval, settle, rollback and monitor all
read these).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlops.airflow.operators.base import logical_day, run_type
from mlops.training.review import ReviewNeed

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.airflow.operators.base import ModelOperator
    from mlops.clock.logical import TrainingRecord
    from mlops.config.pipeline import Pipeline
    from mlops.grain import Grain
    from mlops.training.plan import TrainingPlan, Trigger
    from mlops.training.promotion import GateDecision
    from mlops.training.review import Review

# The train run's conf key that carries the drift event's extra (set by the monitor's ``retrain``).
DRIFT_CONF = "drift"
# What ``prepare`` pushes once for every later task of the run.
PLAN_KEY = "plan"
# The task between the gate and promote when the pipeline asks a person (``promotion.approval``).
APPROVAL_TASK = "approve"


def trigger_of(context: Context, grain: Grain) -> Trigger:
    """Why this run trains and on which window: drift (with its payload), schedule, backfill or manual.

    A drift retrain (started by the monitor's ``retrain`` with the drift event's extra in its conf)
    trains on the window ending at the drifted day; any other run on the window ending the day
    before its logical date (that day's partition is the last one complete).
    """
    from mlops.training.plan import Trigger

    drift = (getattr(context["dag_run"], "conf", None) or {}).get(DRIFT_CONF)
    if drift:
        as_of = grain.key(str(drift["ds"]))
        return Trigger(kind="drift", as_of=as_of, payload=dict(drift), effective=grain.shift(as_of, 1))
    # The partition holding the logical date is never complete at that moment: the one before it is.
    current = logical_day(context, grain)
    as_of = grain.shift(current, -1)
    reason = (context["params"].get("reason") or "").strip()
    kind = {"backfill": "backfill", "manual": "manual"}.get(run_type(context), "schedule")
    payload = {"reason": reason} if reason else {}
    return Trigger(kind=kind, as_of=as_of, payload=payload, effective=current)


def plan_of(context: Context) -> TrainingPlan:
    """The run's plan, pushed once by ``prepare``."""
    from mlops.training.plan import TrainingPlan

    data = context["ti"].xcom_pull(task_ids="prepare", key=PLAN_KEY)
    if not data:
        raise AirflowFailException("no training plan from prepare in this run")
    return TrainingPlan.from_dict(data)


def gate_of(context: Context) -> GateDecision | None:
    """The gate's decision in this run, or None when the gate did not decide."""
    from mlops.training.promotion import GateDecision

    gate = context["ti"].xcom_pull(task_ids="gate")
    return GateDecision.from_dict(gate) if gate else None


def promotion_review(
    operator: ModelOperator, context: Context, decision: GateDecision, answer: Any
) -> Review | None:
    """The review that decides a promotion the gate chose.

    Whether one is required comes from the YAML as it is now (``promotion.approval.enabled``), never
    from the absence of an answer: when it is, a missing, unreadable or refused approval raises
    ``ApprovalMissing`` (``mlops.training.review.counted_review``); when it is not, only a rejection
    already given counts. A run that does not promote (a backfill, a gate that says no) never
    gets here.
    """
    from mlops.training.review import counted_review, given_review

    if not operator.pipeline.promotion.approval.enabled:
        return given_review(answer)
    need = review_need(
        operator.pipeline,
        context,
        subject=f"promoting {operator.pipeline.name} version {decision.version}",
        setting="promotion.approval.enabled",
        forced=decision.forced,
    )
    return counted_review(answer, need)


def record_outcome(
    operator: ModelOperator, context: Context, outcome: str, reason: str, *, review: Review | None = None
) -> TrainingRecord:
    """Write the run's ``TrainingRecord`` (what the logical clock waits on) with ``outcome``; who
    triggered the run, and who reviewed its promotion when someone did."""
    from mlops.clock.logical import TrainingRecord, write_record

    trigger, decision = trigger_of(context, operator.pipeline.grain), gate_of(context)
    record = TrainingRecord(
        as_of=trigger.as_of,
        kind=trigger.kind,
        outcome=outcome,
        airflow_run_id=context["run_id"],
        version=decision.version if decision else None,
        champion_version=decision.champion_version if decision else None,
        reason=reason,
        metrics={"challenger": decision.challenger, "champion": decision.champion} if decision else None,
        effective=trigger.effective_day,
        triggered_by=triggered_by(context),
        reviewed_by=review.by if review else None,
    )
    write_record(operator.lake_hook().storage, operator.pipeline.name, record)
    return record


def triggered_by(context: Context) -> str | None:
    """The user who triggered the run (Airflow records it for the UI, the REST API and the CLI)."""
    return getattr(context["dag_run"], "triggering_user_name", None) or None


def review_need(
    pipeline: Pipeline, context: Context, *, subject: str, setting: str, forced: bool = False
) -> ReviewNeed:
    """What an approval of this run's move must satisfy, from the YAML as it is now and the run."""
    return ReviewNeed(
        subject=subject,
        setting=setting,
        assigned=pipeline.promotion.approval.approver_ids,
        triggered_by=triggered_by(context),
        forced=forced,
    )
