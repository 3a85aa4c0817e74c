"""The approval gate end to end on the embedded stack: a train run reaches the approval and waits
in ``awaiting_input``; it is approved through the REST API, rejected, left to time out, approved
in the browser under Browse → Required Actions, and approved by the user who forced it (refused).
Each test checks the registry's aliases and tags and the run's record.

The tests run in this order on one stack: the first promotes the first model; the others force a
promotion (``force_promote`` still asks) against it, triggered by ``TRAINER`` and answered by the
admin (the only assigned approver), except the last, which the admin both forces and approves.
"""

from __future__ import annotations

import re
import time
from typing import Any

import yaml
from mlflow import MlflowClient
from tests.approvals.stack_config import TRAIN_DAY, TRAINER, WINDOW_END
from tests.embedded_stack import Api, EmbeddedStack
from tests.ui.airflow_ui import wait_for_run

from mlops.clock.logical import read_record
from mlops.lake.storage import LocalStorage
from mlops.training.review import REMEDY

DAG = "churn_train"
TASK = "approve"
MODELS_API = "/mlops-models/api/pipelines/churn"
PARKED_S = 8


def mlflow(stack: EmbeddedStack) -> MlflowClient:
    return MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)


def alias(client: MlflowClient, name: str) -> str | None:
    try:
        return client.get_model_version_by_alias("churn", name).version
    except Exception:
        return None


def trigger(api: Api, run_id: str, hour: int, **conf: Any) -> str:
    """A manual train run on TRAIN_DAY (the window is the same for all), at ``hour``: a DAG takes one
    run per logical date."""
    logical = f"{TRAIN_DAY}T{hour:02d}:00:00Z"
    api.call(
        "POST", f"/api/v2/dags/{DAG}/dagRuns", {"dag_run_id": run_id, "logical_date": logical, "conf": conf}
    )
    return run_id


def hitl_path(run_id: str) -> str:
    return f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{TASK}/-1/hitlDetails"


def wait_for_request(api: Api, run_id: str, timeout_s: float = 420) -> dict:
    """The approval request once the task waits for it (``awaiting_input``)."""
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {k: v["state"] for k, v in api.tasks(DAG, run_id).items()}
        if states.get(TASK) == "awaiting_input":
            # A person answers after seconds, not within the one in which the scheduler still
            # processes the parked workload's exit: an answer inside it is lost to a retry.
            time.sleep(PARKED_S)
            return api.get(hitl_path(run_id))
        run = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed") or "failed" in states.values():
            break
        time.sleep(3)
    raise AssertionError(f"{run_id} did not reach the approval: {states}")


def answer(api: Api, run_id: str, option: str, comment: str) -> None:
    api.call("PATCH", hitl_path(run_id), {"chosen_options": [option], "params_input": {"comment": comment}})


def record_of(stack: EmbeddedStack) -> Any:
    return read_record(LocalStorage(stack.lake_root), "churn", WINDOW_END, "manual")


def test_approved_through_the_rest_api_the_champion_moves_and_the_approver_is_recorded(
    stack: EmbeddedStack,
) -> None:
    api, client = stack.api(), mlflow(stack)
    assert alias(client, "champion") is None
    run_id = trigger(api, "approval_api", 0, reason="first model for the approval test")

    request = wait_for_request(api, run_id)

    body = request["body"]
    assert request["subject"].startswith("churn: promote version ") and request["options"] == [
        "Approve",
        "Reject",
    ]
    assert "| challenger v" in body and "| champion none yet | — |" in body
    assert "Trigger: manual run, reason: first model for the approval test" in body
    assert re.search(
        r"Training window: trained on 2026-02-22 \.\. 2026-02-26, holdout 2026-02-27, 2026-02-28", body
    )
    assert re.search(r"\[challenger v\d+ \(MLflow\)\]\(http://127\.0\.0\.1:\d+/#/runs/\w+\)", body)
    version = alias(client, "challenger")
    assert version and alias(client, "champion") is None  # nothing moves while it waits
    assert record_of(stack).outcome == "awaiting_approval"  # the days after are not held up
    # The Models view lists the review as pending (Airflow's own record of it).
    pending = api.get(MODELS_API)["approvals"]["pending"]
    assert [(p["run_id"], p["task_id"]) for p in pending] == [(run_id, TASK)]

    started = time.monotonic()
    answer(api, run_id, "Approve", "holdout and slices look right")
    while alias(client, "champion") != version and time.monotonic() - started < 180:
        time.sleep(0.5)
    moved_s = time.monotonic() - started
    print(f"\napproval to champion moved: {moved_s:.1f}s")

    assert alias(client, "champion") == version, f"champion did not move to {version} in {moved_s:.0f}s"
    assert wait_for_run(api, DAG, run_id)["state"] == "success"
    tags = client.get_model_version("churn", version).tags
    assert tags["approval.promotion.decision"] == "approved" and tags["approval.promotion.by"] == "admin"
    assert tags["approval.promotion.comment"] == "holdout and slices look right"
    assert tags["approval.promotion.timed_out"] == "false"
    assert (
        "approved by admin" in tags["promotion.reason"] and "holdout and slices" in tags["promotion.reason"]
    )
    assert tags["promotion.effective_day"] == TRAIN_DAY
    assert tags["approval.promotion.triggered_by"] == "admin"  # not forced: its trigger may approve
    record = record_of(stack)
    assert (record.outcome, record.triggered_by, record.reviewed_by) == ("promoted", "admin", "admin")
    # ... and then the decision, with the reviewer and the comment (the view keeps the registry 15 s).
    deadline, approvals = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        approvals = api.get(MODELS_API)["approvals"]
        if any(d["version"] == version for d in approvals["decisions"]):
            break
        time.sleep(3)
    assert not approvals["pending"]
    decided = [d for d in approvals["decisions"] if d["version"] == version]
    assert [(d["decision"], d["by"], d["comment"]) for d in decided] == [
        ("approved", "admin", "holdout and slices look right")
    ]


def test_rejected_the_challenger_keeps_its_alias_and_the_run_ends_without_failing(
    stack: EmbeddedStack,
) -> None:
    api, client = stack.api(), mlflow(stack)
    champion = alias(client, "champion")
    assert champion, "the first test promotes the first model"
    trainer = stack.api(TRAINER)
    run_id = trigger(trainer, "approval_reject", 1, force_promote=True, reason="forced, to be rejected")

    request = wait_for_request(api, run_id)
    assert "force promotion requested" in request["body"]
    assert f"champion: {champion}" in request["subject"]
    assert request["assigned_users"] == [{"id": "admin", "name": "admin"}]
    try:
        answer(trainer, run_id, "Approve", "my own")
        raise AssertionError("a user who is not assigned answered the request")
    except RuntimeError as refused:
        assert ": 403 " in str(refused) and f"User={TRAINER}" in str(refused)
    answer(api, run_id, "Reject", "premium slice regresses")

    assert wait_for_run(api, DAG, run_id)["state"] == "success"
    states = {k: v["state"] for k, v in api.tasks(DAG, run_id).items()}
    assert (states[TASK], states["promote"], states["record"]) == ("success", "skipped", "success")
    challenger = alias(client, "challenger")
    assert challenger != champion and alias(client, "champion") == champion
    tags = client.get_model_version("churn", challenger).tags
    assert (tags["approval.promotion.decision"], tags["approval.promotion.by"]) == ("rejected", "admin")
    assert tags["approval.promotion.comment"] == "premium slice regresses"
    assert "promotion.at" not in tags
    assert tags["approval.promotion.triggered_by"] == TRAINER
    record = record_of(stack)
    assert record.outcome == "rejected" and "rejected by admin" in record.reason
    assert (record.triggered_by, record.reviewed_by) == (TRAINER, "admin")


def test_timed_out_the_configured_outcome_rejects(stack: EmbeddedStack) -> None:
    api, client = stack.api(), mlflow(stack)
    champion = alias(client, "champion")
    path = stack.state / "include" / "pipelines" / "churn.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    config["promotion"]["approval"]["timeout"] = "20s"  # read when the approval task runs
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        run_id = trigger(
            stack.api(TRAINER), "approval_timeout", 2, force_promote=True, reason="left to time out"
        )
        wait_for_request(api, run_id)
        assert wait_for_run(api, DAG, run_id, timeout_s=240)["state"] == "success"
    finally:
        path.write_text(original)

    challenger = alias(client, "challenger")
    assert alias(client, "champion") == champion and challenger != champion
    tags = client.get_model_version("churn", challenger).tags
    assert (tags["approval.promotion.decision"], tags["approval.promotion.timed_out"]) == ("rejected", "true")
    assert tags["approval.promotion.by"] == "timeout"
    record = record_of(stack)
    assert (record.outcome, record.reviewed_by) == ("rejected", "timeout")


def test_approved_in_the_browser_under_required_actions(stack: EmbeddedStack, page: Any) -> None:
    from playwright.sync_api import expect

    api, client = stack.api(), mlflow(stack)
    champion = alias(client, "champion")
    run_id = trigger(
        stack.api(TRAINER), "approval_browser", 3, force_promote=True, reason="approved in the browser"
    )
    request = wait_for_request(api, run_id)

    page.goto("/required_actions")
    page.get_by_text(request["subject"]).first.click()
    expect(page.get_by_text("Trigger: manual run, reason: approved in the browser")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Training window: trained on"))).to_be_visible()
    # The form names a request's field ``element_<param>``; its label is not tied to the input.
    page.locator("input[name='element_comment']").fill("checked in the UI")
    page.get_by_role("button", name="Approve").click()

    assert wait_for_run(api, DAG, run_id)["state"] == "success"
    version = alias(client, "champion")
    assert version != champion and version == client.get_model_version_by_alias("churn", "challenger").version
    tags = client.get_model_version("churn", version).tags
    assert (tags["approval.promotion.decision"], tags["approval.promotion.by"]) == ("approved", "admin")
    assert tags["approval.promotion.comment"] == "checked in the UI"
    assert tags["promotion.previous_champion"] == champion
    assert tags["approval.promotion.triggered_by"] == TRAINER


def test_a_forced_promotion_approved_by_the_user_who_forced_it_moves_nothing(stack: EmbeddedStack) -> None:
    api, client = stack.api(), mlflow(stack)
    champion = alias(client, "champion")
    run_id = trigger(api, "approval_self", 4, force_promote=True, reason="forced and self-approved")
    wait_for_request(api, run_id)
    answer(api, run_id, "Approve", "my own promotion")

    assert wait_for_run(api, DAG, run_id)["state"] == "failed"
    states = {k: v["state"] for k, v in api.tasks(DAG, run_id).items()}
    assert (states[TASK], states["promote"], states["record"]) == ("success", "failed", "failed")
    challenger = alias(client, "challenger")
    assert alias(client, "champion") == champion and challenger != champion
    tags = client.get_model_version("churn", challenger).tags
    assert (tags["approval.promotion.by"], tags["approval.promotion.triggered_by"]) == ("admin", "admin")
    assert "promotion.at" not in tags
    record = record_of(stack)
    assert record.outcome == "failed" and record.triggered_by == "admin"
    assert record.reason == (
        f"failed in promote: promoting churn version {challenger}: approved by admin, who triggered this "
        f"forced run: a forced promotion needs another user's approval; {REMEDY}"
    )
