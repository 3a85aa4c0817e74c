"""The operators' notifications, received by a real local SMTP server and HTTP server: drift fired,
champion changed, a task failed after its last try; and the approval task's answers."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowSkipException
from tests.receivers import Mailbox, Received, http_server, smtp_server
from tests.unit.airflow.operators.test_promote_operator import decision, plan

from mlops.airflow.operators.approval import ApprovePromotionOperator
from mlops.airflow.operators.base import FailureNotifier
from mlops.airflow.operators.monitor import EmitDriftOperator
from mlops.airflow.operators.train import PromoteOperator
from mlops.training.plan import Trigger

ROOT = Path(__file__).resolve().parents[4]
BASE = "http://airflow.example.test:8080"
EVENTS = ["rejected_day", "drift_fired", "champion_changed", "approval_requested", "task_failed"]


@pytest.fixture
def endpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, Received]]:
    """The churn pipeline with every event on email and the webhook, and ``[api] base_url`` set."""
    with smtp_server() as box, http_server() as web:
        include = tmp_path / "include"
        shutil.copytree(ROOT / "include" / "pipelines", include / "pipelines")
        path = include / "pipelines" / "churn.yaml"
        config = yaml.safe_load(path.read_text())
        config["notifications"] = {
            "email": {"conn_id": "mlops_smtp", "to": ["team@example.com"], "from_email": "mlops@example.com", "events": EVENTS},
            "webhook": {"url": web.url("/hook"), "events": EVENTS},
        }  # fmt: skip
        config["promotion"]["approval"] = {"enabled": True, "timeout": "2h"}
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("MLOPS_INCLUDE_DIR", str(include))
        monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SMTP", box.connection())
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
        yield box, web


RUN = f"{BASE}/dags/churn_test/runs/scheduled__2026-01-07T00:00:00%2B00:00"


def test_drift_fired_names_the_day_the_features_and_links_the_report(
    endpoints: tuple[Mailbox, Received],
    make_operator: Callable[..., Any],
    make_context: Callable[..., Any],
    fake_mlflow: Any,
) -> None:
    box, web = endpoints
    fake_mlflow.client.add("3")
    payload = {"ds": "2026-03-02", "champion_version": "3", "features": {"monthly_charges": {"psi": 1.4}}, "reason": "psi 1.4 > 0.2"}  # fmt: skip
    op = make_operator(
        EmitDriftOperator, task_id="emit_drift", payload=payload, outlets=[Asset("churn.drift")]
    )

    op.execute(make_context())

    [hook] = web.at("/hook")
    assert (hook["event"], hook["day"], hook["version"]) == ("drift_fired", "2026-03-02", "3")
    assert "drifted features: monthly_charges" in hook["details"]
    assert hook["links"] == {
        "Airflow run": RUN,
        "Drift report": f"{BASE}/mlops/reports/churn/ds=2026-03-02/drift/drift.html",
        "MLflow champion version": "http://mlflow-ui.test/#/models/churn/versions/3",
    }
    [mail] = box.messages
    assert mail["Subject"] == "[churn] drift fired on 2026-03-02: a retrain starts (day 2026-03-02 v3)"
    assert f'href="{BASE}/mlops/reports/churn/ds=2026-03-02/drift/drift.html"' in Mailbox.html(mail)


def test_an_approved_promotion_moves_champion_says_who_approved_and_notifies(
    endpoints: tuple[Mailbox, Received], make_operator: Callable[..., Any], make_context: Callable[..., Any],
    fake_mlflow: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _, web = endpoints
    for version in ("3", "4"):
        fake_mlflow.client.add(version)
    moves = []
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion", lambda client, move, *, expected, key: moves.append(move)
    )
    context = make_context(xcom={("prepare", "plan"): plan(Trigger(kind="schedule", as_of="2026-03-01"))})
    approve = make_operator(ApprovePromotionOperator, task_id="approve", decision=decision())
    answer = approve.execute_complete(context, _answer("Approve", "admin", "holdout looks right"))

    assert fake_mlflow.client.versions["4"].tags["approval.promotion.by"] == "admin"
    assert fake_mlflow.client.versions["4"].tags["approval.promotion.comment"] == "holdout looks right"
    promote = make_operator(PromoteOperator, task_id="promote", decision=decision(), approval=answer)
    promote.execute(context)

    [move] = moves
    assert move.version == "4" and "approved by admin" in move.reason and "holdout looks right" in move.reason
    [hook] = web.at("/hook")
    assert hook["event"] == "champion_changed" and hook["version"] == "4"
    assert hook["links"]["MLflow version"] == "http://mlflow-ui.test/#/models/churn/versions/4"
    assert "previous champion: 3" in hook["details"]


@pytest.mark.parametrize(
    ("answer", "by", "timed_out"),
    [
        pytest.param(("Reject", "reviewer", "slice premium regresses"), "reviewer", "false", id="rejected"),
        pytest.param(("Reject", None, ""), "timeout", "true", id="timed-out"),
    ],
)
def test_a_rejected_or_timed_out_promotion_is_recorded_and_moves_nothing(
    endpoints: tuple[Mailbox, Received], make_operator: Callable[..., Any], make_context: Callable[..., Any],
    fake_mlflow: Any, monkeypatch: pytest.MonkeyPatch, answer: tuple[str, str | None, str], by: str, timed_out: str,
) -> None:  # fmt: skip
    _, web = endpoints
    fake_mlflow.client.add("4")
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion", lambda *a, **k: pytest.fail("the alias must not move")
    )
    context = make_context(xcom={("prepare", "plan"): plan(Trigger(kind="schedule", as_of="2026-03-01"))})
    approve = make_operator(ApprovePromotionOperator, task_id="approve", decision=decision())
    returned = approve.execute_complete(context, _answer(*answer))

    tags = fake_mlflow.client.versions["4"].tags
    assert (tags["approval.promotion.decision"], tags["approval.promotion.by"]) == ("rejected", by)
    assert (tags["approval.promotion.timed_out"], tags["approval.promotion.comment"]) == (
        timed_out,
        answer[2],
    )
    promote = make_operator(PromoteOperator, task_id="promote", decision=decision(), approval=returned)
    with pytest.raises(AirflowSkipException, match=r"rejected .* version 4 stays challenger"):
        promote.execute(context)
    assert web.at("/hook") == []


def test_the_approval_page_shows_the_comparison_the_trigger_the_window_and_both_runs(
    endpoints: tuple[Mailbox, Received],
    make_operator: Callable[..., Any],
    make_context: Callable[..., Any],
    fake_mlflow: Any,
) -> None:
    for version in ("3", "4"):
        fake_mlflow.client.add(version)
    gate = decision()
    gate["challenger"] = {"auc": 0.812, "auc_slice_basic": 0.80, "auc_slice_premium": 0.77}
    gate["champion"] = {"auc": 0.79, "auc_slice_basic": 0.78, "auc_slice_premium": 0.785}
    trigger = Trigger(
        kind="drift", as_of="2026-03-01", payload={"ds": "2026-03-01", "features": {"plan": {}}}
    )
    days = [f"2026-02-{d}" for d in range(20, 29)] + ["2026-03-01"]
    context = make_context(xcom={("prepare", "plan"): {**plan(trigger), "ready": days}})
    approve = make_operator(ApprovePromotionOperator, task_id="approve", decision=gate)

    version, subject, body = approve.request(context)

    assert (version, subject) == ("4", "churn: promote version 4 (champion: 3)?")
    assert "| challenger v4 | 0.8120 |" in body and "| champion version 3 | 0.7900 |" in body
    assert "| improvement (required 0.0020) | +0.0220 (meets) |" in body
    assert "| premium | 0.7700 | 0.7850 | -0.0150 |" in body
    assert "Worst slice change: premium -0.0150 (allowed regression 0.0200)" in body
    assert "Trigger: drift on 2026-03-01 (plan)" in body
    assert "| auc on the holdout 2026-02-27, 2026-02-28, 2026-03-01 | value |" in body
    assert (
        "Training window: trained on 2026-02-20 .. 2026-02-26, holdout 2026-02-27, 2026-02-28, 2026-03-01 (10 days through 2026-03-01)"
        in body
    )
    assert "- [challenger v4 (MLflow)](http://mlflow-ui.test/#/runs/run-4)" in body
    assert "- [champion v3 (MLflow)](http://mlflow-ui.test/#/runs/run-3)" in body


def test_a_task_that_failed_its_last_try_is_announced(
    endpoints: tuple[Mailbox, Received], make_context: Callable[..., Any]
) -> None:
    box, web = endpoints
    context = make_context()
    context["exception"] = RuntimeError("MLflow answered 503\nat line 2")

    FailureNotifier("churn")(context)

    [hook] = web.at("/hook")
    assert (hook["event"], hook["day"]) == ("task_failed", "2026-01-07")
    assert "try 1: MLflow answered 503" in hook["details"]
    assert hook["links"] == {"Airflow run": RUN}
    assert box.messages[0]["Subject"] == "[churn] task task failed after its last try (day 2026-01-07)"


def _answer(option: str, user: str | None, comment: str) -> dict[str, Any]:
    """The event Airflow resumes an approval task with: a person's answer, or a timeout's default."""
    return {
        "chosen_options": [option],
        "params_input": {"comment": comment},
        "responded_at": dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC),
        "responded_by_user": {"id": user, "name": user} if user else None,
        "timedout": user is None,
    }


def test_the_notifications_config_round_trips() -> None:
    from mlops.config.pipeline import Notifications

    raw = {"webhook": {"url": "http://x.test/hook", "events": ["drift_fired"]}}
    assert json.loads(Notifications.model_validate(raw).model_dump_json(exclude_none=True))["webhook"][
        "events"
    ] == ["drift_fired"]


def test_a_rollback_asks_too_when_rollback_approval_is_on_and_a_rejection_moves_nothing(
    endpoints: tuple[Mailbox, Received], make_operator: Callable[..., Any], make_context: Callable[..., Any],
    fake_mlflow: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from mlops.airflow.operators.approval import ApproveRollbackOperator
    from mlops.airflow.operators.rollback import RollbackOperator

    fake_mlflow.client.gated("1")
    fake_mlflow.client.moved("2", "2026-02-02", previous="1")
    monkeypatch.setattr(
        "mlops.registry.champion.move_champion", lambda *a, **k: pytest.fail("the alias must not move")
    )
    context = make_context(params={"target_version": None, "reason": "v2 mis-scores premium"})
    approve = make_operator(ApproveRollbackOperator, task_id="approve")
    assert approve.required() is False  # approval.rollback is off in this YAML

    version, subject, body = approve.request(context)
    assert (version, subject) == ("1", "churn: roll champion back from version 2 to 1?")
    assert (
        "Reason: v2 mis-scores premium" in body
        and "(http://mlflow-ui.test/#/models/churn/versions/1)" in body
    )
    answer = approve.execute_complete(context, _answer("Reject", "reviewer", "v2 is fine"))
    assert fake_mlflow.client.versions["1"].tags["approval.rollback.decision"] == "rejected"
    rollback = make_operator(RollbackOperator, task_id="rollback", approval=answer)
    with pytest.raises(AirflowSkipException, match=r"not rolled back: rejected by reviewer .*: v2 is fine"):
        rollback.execute(context)


def test_asking_records_awaiting_approval_and_announces_the_required_actions_page(
    endpoints: tuple[Mailbox, Received], make_operator: Callable[..., Any], make_context: Callable[..., Any],
    fake_mlflow: Any, monkeypatch: pytest.MonkeyPatch, lake: Any,
) -> None:  # fmt: skip
    from airflow.providers.standard.operators.hitl import HITLOperator

    from mlops.clock.logical import read_record

    _, web = endpoints
    for version in ("3", "4"):
        fake_mlflow.client.add(version)
    # Airflow's part (write the request, park the task) runs on a worker; here it only says it was reached.
    monkeypatch.setattr(HITLOperator, "execute", lambda self, context: "parked")
    context = make_context(xcom={("prepare", "plan"): plan(Trigger(kind="schedule", as_of="2026-03-01"))})
    context["ti"].run_id, context["ti"].map_index = context["run_id"], -1
    context["ti"].xcom_pull = lambda task_ids, key=None: (
        decision() if task_ids == "gate" else plan(Trigger(kind="schedule", as_of="2026-03-01"))
    )
    approve = make_operator(ApprovePromotionOperator, task_id="approve", decision=decision())

    assert approve.execute(context) == "parked"

    assert approve.response_timeout == dt.timedelta(hours=2) and approve.defaults == ["Reject"]
    assert read_record(lake, "churn", "2026-01-06", "schedule").outcome == "awaiting_approval"
    [hook] = web.at("/hook")
    assert hook["event"] == "approval_requested" and hook["version"] == "4"
    page = f"{BASE}/dags/churn_test/runs/scheduled__2026-01-07T00:00:00+00:00/tasks/task/required_actions?map_index=-1"
    assert hook["links"]["Approve or reject"] == page
    assert "waits up to 2h, then: reject" in hook["details"]


def test_a_backfill_never_asks(
    endpoints: tuple[Mailbox, Received], make_operator: Callable[..., Any], make_context: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from airflow.providers.standard.operators.hitl import HITLOperator

    _, web = endpoints
    monkeypatch.setattr(HITLOperator, "execute", lambda self, context: pytest.fail("a backfill must not ask"))
    backfill = {**decision(), "promote": False}  # the gate would promote; a backfill run never does
    approve = make_operator(ApprovePromotionOperator, task_id="approve", decision=backfill)

    assert approve.execute(make_context(run_type="backfill")) == {"asked": False}
    assert web.at("/hook") == []
