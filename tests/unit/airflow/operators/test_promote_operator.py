"""PromoteOperator: the gate's decision applied by compare-and-set, as of the run's effective day."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.airflow.operators.train import PromoteOperator
from mlops.registry.champion import ChampionChanged, Move, Superseded
from mlops.training.plan import TrainingPlan, Trigger
from mlops.training.promotion import GateDecision
from mlops.training.review import REMEDY, Review

CHAMPION = Asset("churn.champion")


def decision(
    *, promote: bool = True, reason: str = "auc 0.812 beats champion 0.790 by 0.022"
) -> dict[str, Any]:
    return GateDecision(
        version="4",
        champion_version="3",
        would_promote=promote,
        promote=promote,
        reason=reason,
        challenger={"auc": 0.812},
        champion={"auc": 0.79},
    ).to_dict()


def plan(trigger: Trigger) -> dict[str, Any]:
    return TrainingPlan(
        trigger=trigger,
        ready=["2026-03-01", "2026-03-02"],
        failed=[],
        parent_run_id="parent",
        champion_at_start="3",
        lineage={"partitions": "2026-03-01,2026-03-02", "skipped_failed": ""},
        tags={},
    ).to_dict()


@pytest.fixture
def run_with_plan(make_context: Callable[..., dict[str, Any]]) -> Callable[[Trigger], dict[str, Any]]:
    """A context whose ``ti.xcom_pull(task_ids="prepare", key="plan")`` gives the plan of ``trigger``."""
    return lambda trigger: make_context(xcom={("prepare", "plan"): plan(trigger)})


def _raise(exc: Exception) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


def test_a_decision_not_to_promote_is_skipped_with_its_reason(
    make_operator: Callable[..., Any],
    run_with_plan: Callable[[Trigger], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion", _raise(AssertionError("moved without a promote decision"))
    )
    reason = "auc 0.790 does not beat champion 0.795 by 0.002"
    op = make_operator(PromoteOperator, task_id="promote", decision=decision(promote=False, reason=reason))
    context = run_with_plan(Trigger("schedule", "2026-03-08"))

    with pytest.raises(AirflowSkipException) as raised:
        op.execute(context)

    assert str(raised.value) == f"not promoted: {reason}"
    assert CHAMPION not in context["outlet_events"]


@pytest.mark.parametrize(
    ("trigger", "effective_day", "order"),
    [
        pytest.param(
            Trigger("schedule", "2026-03-08"), "2026-03-09", 0, id="weekly-train-serves-from-its-logical-day"
        ),
        pytest.param(
            Trigger("drift", "2026-03-02", {"ds": "2026-03-02"}),
            "2026-03-03",
            1,
            id="drift-retrain-after-that-days-train",
        ),
        pytest.param(Trigger("manual", "2026-03-10"), "2026-03-11", 0, id="manual-train"),
    ],
)
def test_the_move_is_made_as_of_the_plans_effective_day(
    make_operator: Callable[..., Any],
    run_with_plan: Callable[[Trigger], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    trigger: Trigger,
    effective_day: str,
    order: int,
) -> None:
    seen: list[tuple[Move, str | None]] = []
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion",
        lambda client, move, *, expected, key: seen.append((move, expected)),
    )
    op = make_operator(PromoteOperator, task_id="promote", decision=decision(), outlets=[CHAMPION])
    context = run_with_plan(trigger)

    extra = op.execute(context)

    [(move, expected)] = seen
    assert (move.effective_day, move.order, move.kind) == (effective_day, order, "promotion")
    assert (move.version, move.previous, expected) == ("4", "3", "3")
    assert move.metrics == {"challenger": {"auc": 0.812}, "champion": {"auc": 0.79}}
    assert extra["effective_day"] == effective_day and extra["version"] == "4"
    assert context["outlet_events"][CHAMPION].extra == extra


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            Superseded("churn: version 4 (as of 2026-03-09) is superseded by version 5 as of 2026-03-10"),
            AirflowSkipException,
            id="superseded-is-a-skip",
        ),
        pytest.param(
            ChampionChanged("churn: champion is now version 5, not 3 as when this run started"),
            AirflowFailException,
            id="champion-changed-is-a-failure",
        ),
    ],
)
def test_a_refused_move_fires_nothing(
    make_operator: Callable[..., Any],
    run_with_plan: Callable[[Trigger], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    expected: type[Exception],
) -> None:
    monkeypatch.setattr("mlops.registry.champion.move_champion", _raise(error))
    op = make_operator(PromoteOperator, task_id="promote", decision=decision(), outlets=[CHAMPION])
    context = run_with_plan(Trigger("schedule", "2026-03-08"))

    with pytest.raises(expected) as raised:
        op.execute(context)

    assert type(raised.value) is expected and str(raised.value) == str(error)
    assert CHAMPION not in context["outlet_events"]


def test_no_plan_from_prepare_fails(
    make_operator: Callable[..., Any], make_context: Callable[..., dict[str, Any]]
) -> None:
    op = make_operator(PromoteOperator, task_id="promote", decision=decision())
    with pytest.raises(AirflowFailException, match="no training plan from prepare"):
        op.execute(make_context())


def test_a_late_re_run_takes_effect_after_the_days_already_scored(
    make_operator: Callable[..., Any],
    run_with_plan: Callable[[Trigger], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    lake: Any,
) -> None:
    """A weekly train of 03-09 re-run after an outage, once 03-09 and 03-10 were scored with the
    champion of their day: the move holds from 03-11, so history is never rewritten."""
    from mlops.lake.storage import commit_partition, partition_dir

    for ds in ("2026-03-09", "2026-03-10"):
        commit_partition(lake, partition_dir("churn", "predictions", ds), {}, extra={"model_version": "3"})
    seen: list[Move] = []
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion", lambda client, move, *, expected, key: seen.append(move)
    )
    op = make_operator(PromoteOperator, task_id="promote", decision=decision(), outlets=[CHAMPION])
    extra = op.execute(run_with_plan(Trigger("schedule", "2026-03-08")))
    assert seen[0].effective_day == extra["effective_day"] == "2026-03-11"


def test_an_unsigned_challenger_is_refused_and_nothing_moves(
    make_operator: Callable[..., Any],
    run_with_plan: Callable[[Trigger], dict[str, Any]],
    fake_mlflow: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion", _raise(AssertionError("moved an unsigned version"))
    )
    fake_mlflow.client.add("4", signed=False)
    op = make_operator(PromoteOperator, task_id="promote", decision=decision(), outlets=[CHAMPION])
    context = run_with_plan(Trigger("schedule", "2026-03-08"))

    with pytest.raises(AirflowFailException, match="not moving champion: model churn version 4 is unsigned"):
        op.execute(context)
    assert CHAMPION not in context["outlet_events"]


# --- with promotion.approval.enabled: only an approval that counts moves champion ---------------

REVIEWED = {
    "asked": True,
    "review": Review(True, "bob", "ok", "2026-03-02T09:30:00+00:00", by_id="bob").to_dict(),
}


def forced() -> dict[str, Any]:
    return {**decision(reason="forced; promoted without the gate"), "forced": True}


def reviewed(**review: Any) -> dict[str, Any]:
    return {"asked": True, "review": {**REVIEWED["review"], **review}}


@pytest.mark.parametrize(
    ("gate", "approval", "settings", "why"),
    [
        pytest.param(
            decision(),
            None,
            {},
            " needs an approval (promotion.approval.enabled is on) and this run has no review: the approve "
            "task returned none (marked success by hand, or the DAG has no approve task)",
            id="approve-marked-success-by-hand",
        ),
        pytest.param(
            decision(),
            {"asked": True, "review": {"approved": True}},
            {},
            " needs an approval (promotion.approval.enabled is on) and the approve task's review is "
            "unreadable (by is None, not a str)",
            id="malformed-review",
        ),
        pytest.param(
            forced(),
            reviewed(by="alice", by_id="alice"),
            {},
            ": approved by alice, who triggered this forced run: a forced promotion needs another user's approval",
            id="self-approval-of-a-forced-run",
        ),
        pytest.param(
            decision(),
            REVIEWED,
            {"assigned_users": ["carol"]},
            ": approved by bob, who is not among promotion.approval.assigned_users (carol)",
            id="not-an-assigned-approver",
        ),
    ],
)
def test_with_approval_on_no_approval_that_counts_fails_and_moves_nothing(
    make_operator: Callable[..., Any],
    run_with_plan: Callable[[Trigger], dict[str, Any]],
    approval_on: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    gate: dict[str, Any],
    approval: Any,
    settings: dict[str, Any],
    why: str,
) -> None:
    approval_on(**settings)
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion", _raise(AssertionError("moved without an approval"))
    )
    op = make_operator(
        PromoteOperator, task_id="promote", decision=gate, approval=approval, outlets=[CHAMPION]
    )
    context = run_with_plan(Trigger("manual", "2026-03-08"))
    context["dag_run"].triggering_user_name = "alice"

    with pytest.raises(AirflowFailException) as raised:
        op.execute(context)

    assert str(raised.value) == f"promoting churn version 4{why}; {REMEDY}"
    assert CHAMPION not in context["outlet_events"]


@pytest.mark.parametrize(
    ("gate", "approval", "settings"),
    [
        pytest.param(forced(), REVIEWED, {}, id="forced-approved-by-another-user"),
        pytest.param(
            decision(), reviewed(by="Carol C.", by_id="carol"), {"assigned_users": ["carol"]}, id="assigned"
        ),
    ],
)
def test_with_approval_on_an_approval_that_counts_moves_champion_and_says_who(
    make_operator: Callable[..., Any],
    run_with_plan: Callable[[Trigger], dict[str, Any]],
    approval_on: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    gate: dict[str, Any],
    approval: dict[str, Any],
    settings: dict[str, Any],
) -> None:
    approval_on(**settings)
    seen: list[Move] = []
    monkeypatch.setattr("mlops.registry.champion.move_champion", lambda client, move, **_: seen.append(move))
    op = make_operator(
        PromoteOperator, task_id="promote", decision=gate, approval=approval, outlets=[CHAMPION]
    )
    context = run_with_plan(Trigger("manual", "2026-03-08"))
    context["dag_run"].triggering_user_name = "alice"

    op.execute(context)

    [move] = seen
    by = approval["review"]["by"]
    assert move.version == "4" and move.reason.endswith(
        f"; approved by {by} at 2026-03-02T09:30:00+00:00: ok"
    )


def test_the_user_who_forced_a_promotion_may_still_reject_it(
    make_operator: Callable[..., Any],
    run_with_plan: Callable[[Trigger], dict[str, Any]],
    approval_on: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    approval_on()
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion", _raise(AssertionError("moved a rejected version"))
    )
    op = make_operator(
        PromoteOperator, task_id="promote", decision=forced(), approval=reviewed(approved=False, by="alice")
    )
    context = run_with_plan(Trigger("manual", "2026-03-08"))
    context["dag_run"].triggering_user_name = "alice"

    with pytest.raises(
        AirflowSkipException, match=r"^not promoted: rejected by alice .*; version 4 stays challenger$"
    ):
        op.execute(context)


def test_the_approval_request_names_the_assigned_users_and_who_triggered_the_run(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    approval_on: Callable[..., None],
    fake_mlflow: Any,
    monkeypatch: pytest.MonkeyPatch,
    lake: Any,
) -> None:
    from airflow.providers.standard.operators.hitl import HITLOperator

    from mlops.airflow.operators.approval import ApprovePromotionOperator
    from mlops.clock.logical import read_record

    approval_on(assigned_users=["carol", {"id": "7", "name": "Dave D."}])
    for version in ("3", "4"):
        fake_mlflow.client.add(version)
    monkeypatch.setattr(HITLOperator, "execute", lambda self, context: self.assigned_users)
    context = make_context(run_type="manual")
    context["dag_run"].triggering_user_name = "alice"
    context["ti"].xcom_pull = lambda task_ids, key=None: (
        decision() if task_ids == "gate" else plan(Trigger(kind="manual", as_of="2026-01-06"))
    )
    approve = make_operator(ApprovePromotionOperator, task_id="approve", decision=decision())

    assert approve.execute(context) == [{"id": "carol", "name": "carol"}, {"id": "7", "name": "Dave D."}]
    assert fake_mlflow.client.versions["4"].tags["approval.promotion.triggered_by"] == "alice"
    record = read_record(lake, "churn", "2026-01-06", "manual")
    assert (record.outcome, record.triggered_by, record.reviewed_by) == ("awaiting_approval", "alice", None)
