"""RollbackOperator: an audited move back, effective on the run's logical day, after the day's other moves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from tests.unit.airflow.operators.test_promote_operator import REVIEWED

from mlops.airflow.operators.rollback import RollbackOperator
from mlops.clock.logical import ORDER
from mlops.registry.champion import ChampionChanged, Move, PromotionRefused, Superseded
from mlops.training.review import REMEDY

CHAMPION = Asset("churn.champion")


@pytest.fixture
def moves(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Move, str | None]]:
    """``move_champion`` without a registry: records ``(move, expected)``."""
    seen: list[tuple[Move, str | None]] = []
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion",
        lambda client, move, *, expected, key: seen.append((move, expected)),
    )
    return seen


@pytest.fixture
def rollback(
    make_operator: Callable[..., Any], fake_mlflow: Any, monkeypatch: pytest.MonkeyPatch
) -> RollbackOperator:
    """Version 2 is champion; the default target is version 1, the champion before it."""
    fake_mlflow.client.add("1")
    fake_mlflow.client.moved("2", "2026-02-02")

    def rollback_target(client: Any, model: str, requested: str | None, key: Any) -> str:
        return "1" if requested is None else requested

    monkeypatch.setattr("mlops.registry.champion.rollback_target", rollback_target)
    return make_operator(RollbackOperator, task_id="rollback", outlets=[CHAMPION])


@pytest.mark.parametrize(
    ("run", "day"),
    [
        pytest.param({"logical": dt.datetime(2026, 2, 10, tzinfo=dt.UTC)}, "2026-02-10", id="logical-date"),
        pytest.param(
            {"logical": dt.datetime(2026, 2, 10, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))},
            "2026-02-11",
            id="logical-date-in-another-zone-is-its-utc-day",
        ),
        pytest.param(
            {"logical": None, "run_after": dt.datetime(2026, 2, 12, 9, 30, tzinfo=dt.UTC)},
            "2026-02-12",
            id="no-logical-date-uses-run-after",
        ),
    ],
)
def test_the_move_takes_effect_on_the_runs_logical_day_last_in_its_order(
    rollback: RollbackOperator,
    moves: list[tuple[Move, str | None]],
    make_context: Callable[..., dict[str, Any]],
    run: dict[str, Any],
    day: str,
) -> None:
    context = make_context(run_type="manual", params={"reason": "bad release"}, **run)

    extra = rollback.execute(context)

    [(move, expected)] = moves
    assert (move.effective_day, move.order, move.kind) == (day, 2, "rollback")
    assert move.order == ORDER["rollback"] > ORDER["drift"]
    assert (move.version, move.previous, expected) == ("1", "2", "2")
    assert move.reason == "rollback: bad release" and move.airflow_run_id == context["run_id"]
    assert context["outlet_events"][CHAMPION].extra == extra
    assert extra == {
        "version": "1",
        "previous": "2",
        "reason": "rollback: bad release",
        "run_id": context["run_id"],
        "effective_day": day,
    }
    assert rollback.mlflow_url == "http://mlflow-ui.test/#/models/churn/versions/1"


def test_a_requested_version_is_passed_on_as_a_string(
    rollback: RollbackOperator,
    moves: list[tuple[Move, str | None]],
    make_context: Callable[..., dict[str, Any]],
) -> None:
    rollback.execute(make_context(run_type="manual", params={"target_version": 5}))
    [(move, _)] = moves
    assert move.version == "5" and move.reason == "rollback: no reason given"


def _raise(exc: Exception) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param(
            {"move_champion": _raise(ChampionChanged("churn: champion is now version 3, not 2"))},
            "champion is now version 3",
            id="champion-changed-meanwhile",
        ),
        pytest.param(
            {"move_champion": _raise(Superseded("churn: version 1 is superseded by version 4"))},
            "superseded by version 4",
            id="superseded-by-a-later-decision",
        ),
        pytest.param(
            {
                "rollback_target": _raise(
                    PromotionRefused("churn: version 9 never cleared the promotion floor")
                )
            },
            "never cleared the promotion floor",
            id="target-refused",
        ),
        pytest.param(
            {"rollback_target": lambda client, model, requested, key: "2"},
            "version 2 is already the champion",
            id="target-is-the-champion",
        ),
    ],
)
def test_refusals_fail_without_retry_and_fire_nothing(
    rollback: RollbackOperator,
    make_context: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    patch: dict[str, Callable[..., Any]],
    message: str,
) -> None:
    for name, stub in patch.items():
        monkeypatch.setattr(f"mlops.registry.champion.{name}", stub)
    context = make_context(run_type="manual")

    with pytest.raises(AirflowFailException, match=message):
        rollback.execute(context)

    assert CHAMPION not in context["outlet_events"]
    assert rollback.mlflow_url is None


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        pytest.param(
            None,
            " needs an approval (promotion.approval.rollback is on) and this run has no review: the approve "
            "task returned none (marked success by hand, or the DAG has no approve task)",
            id="approve-marked-success-by-hand",
        ),
        pytest.param(
            REVIEWED,
            ": approved by bob, who is not among promotion.approval.assigned_users (carol)",
            id="not-an-assigned-approver",
        ),
    ],
)
def test_with_rollback_approval_on_no_approval_that_counts_fails_and_moves_nothing(
    rollback: RollbackOperator,
    moves: list[tuple[Move, str | None]],
    make_context: Callable[..., dict[str, Any]],
    approval_on: Callable[..., None],
    answer: Any,
    why: str,
) -> None:
    approval_on(rollback=True, assigned_users=["carol"])
    rollback.approval = answer
    context = make_context(run_type="manual", params={"reason": "bad release"})

    with pytest.raises(AirflowFailException) as raised:
        rollback.execute(context)

    assert str(raised.value) == f"rolling churn back to version 1{why}; {REMEDY}"
    assert moves == [] and CHAMPION not in context["outlet_events"]
