"""What a person does in the Airflow UI, end to end, asserted on the page and on what happened underneath.

The tests share one stack that has caught up on the short history (``stack_config``) and run in
file order: the train form's forced promotion makes the champion that the rollback form then moves
back.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from mlflow import MlflowClient
from playwright.sync_api import expect
from tests.embedded_stack import Api, EmbeddedStack
from tests.ui.airflow_ui import (
    field,
    new_run,
    open_section,
    open_trigger_form,
    pick_datetime,
    submit_button,
    toggle,
    wait_for_run,
)
from tests.ui.stack_config import CORRUPT_DAY

from mlops.lake.storage import LocalStorage, partition_dir, read_manifest, read_partition
from mlops.monitor.report_store import read_report

GOOD_DAY = "2026-03-02"  # the first champion's first day
MONITORED = ("2026-03-02", "2026-03-03")


def ingest_run(api: Api, ds: str) -> str:
    """The ingest run of day ``ds`` (its logical date; Airflow names runs by when they were due)."""
    return next(r["dag_run_id"] for r in api.runs("churn_ingest") if r["logical_date"].startswith(ds))


def mlflow(stack: EmbeddedStack) -> MlflowClient:
    return MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)


def champion(stack: EmbeddedStack) -> str:
    return mlflow(stack).get_model_version_by_alias("churn", "champion").version


def test_the_corrupt_day_names_the_file_and_the_problem_in_the_task_log(
    page: Any, stack: EmbeddedStack
) -> None:
    run_id = ingest_run(stack.api(), CORRUPT_DAY)
    page.goto(f"/dags/churn_ingest/runs/{run_id}/tasks/validate")
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
    message = page.get_by_text(re.compile(r"part-000\.csv: not a readable CSV file")).first
    expect(message).to_be_visible()
    assert f"churn {CORRUPT_DAY} rejected" in message.inner_text()


def test_the_data_docs_link_opens_the_days_expectations_and_failed_row_counts(
    page: Any, stack: EmbeddedStack
) -> None:
    run_id = ingest_run(stack.api(), GOOD_DAY)
    page.goto(f"/dags/churn_ingest/runs/{run_id}/tasks/validate/details")
    page.get_by_role("link", name="Data Docs").click()
    page.wait_for_url(re.compile(rf"/mlops/reports/churn/ds={GOOD_DAY}/data_docs\.html$"))
    counts = read_manifest(LocalStorage(stack.lake_root), partition_dir("churn", "validated", GOOD_DAY)).extra
    rows = counts["validated"] + counts["quarantined"]
    expect(page.get_by_text("Must have greater than or equal to 1000").first).to_be_visible()
    expect(
        page.get_by_text(re.compile(rf"unexpected values found\. .* of {rows} total rows")).first
    ).to_be_visible()


def test_the_report_pages_are_behind_the_login(stack: EmbeddedStack, browser: Any) -> None:
    anonymous = browser.new_context(base_url=stack.airflow_url)
    try:
        response = anonymous.request.get(f"/mlops/reports/churn/ds={GOOD_DAY}/data_docs.html")
        assert response.status == 401
    finally:
        anonymous.close()


def test_the_drift_report_link_opens_the_report_with_its_charts(page: Any, stack: EmbeddedStack) -> None:
    day = MONITORED[-1]
    run = next(r for r in stack.api().runs("churn_monitor") if r.get("partition_key") == day)
    page.goto(f"/dags/churn_monitor/runs/{run['dag_run_id']}/tasks/monitor/details")
    page.get_by_role("link", name="Drift report").click()
    page.wait_for_url(re.compile(rf"/mlops/reports/churn/ds={day}/drift/drift\.html$"))
    expect(page.locator("img[src^='data:image/png']").first).to_be_visible()
    assert read_report(LocalStorage(stack.lake_root), "churn", day)["ds"] == day


def test_the_trials_mlflow_link_opens_its_run_in_the_mlflow_ui(page: Any, stack: EmbeddedStack) -> None:
    run = next(r for r in stack.api().runs("churn_train") if r["state"] == "success")
    page.goto(f"/dags/churn_train/runs/{run['dag_run_id']}/tasks/train_trial/mapped/0/details")
    link = page.get_by_role("link", name="MLflow")
    assert link.get_attribute("href").startswith(stack.mlflow_url)
    with page.context.expect_page() as opened:
        link.click()
    mlflow_page = opened.value
    run_id = link.get_attribute("href").rsplit("/", 1)[-1]
    expect(mlflow_page.get_by_text(run_id).first).to_be_visible(timeout=60_000)


def test_a_backfill_from_the_dialog_reruns_each_day_and_changes_no_partition(
    page: Any, stack: EmbeddedStack
) -> None:
    api, lake = stack.api(), LocalStorage(stack.lake_root)
    days = ("2026-02-27", "2026-02-28")
    zones = ("validated", "quarantine")

    def partitions() -> dict[tuple[str, str], tuple[str, dict[str, bytes]]]:
        found = {}
        for zone in zones:
            for day in days:
                directory = partition_dir("churn", zone, day)
                found[zone, day] = (read_manifest(lake, directory).attempt, read_partition(lake, directory))
        return found

    before, runs_before = partitions(), {r["dag_run_id"] for r in api.runs("churn_ingest")}
    page.goto("/dags/churn_ingest")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Backfill", exact=True).click()
    pick_datetime(page, 0, days[0])
    pick_datetime(page, 1, days[-1])
    dialog.get_by_text("All Runs", exact=True).click()  # reprocess the completed days too
    expect(dialog.get_by_text(f"{len(days)} runs will be triggered")).to_be_visible()
    backfill = None
    for _ in range(3):
        # On SQLite, Airflow may answer 503 "Database is locked" while the scheduler writes; the
        # dialog then stays open with the error, and a person clicks again.
        dialog.get_by_role("button", name="Run Backfill").click()
        for _ in range(20):
            if found := api.get("/api/v2/backfills?dag_id=churn_ingest")["backfills"]:
                backfill = found[-1]
                break
            page.wait_for_timeout(1000)
        if backfill or not dialog.is_visible():
            break
    assert backfill, "no backfill was created"
    runs = [r for r in api.runs("churn_ingest") if r["run_type"] == "backfill"]
    for _ in range(120):
        if len(runs) == len(days) and all(r["state"] in ("success", "failed") for r in runs):
            break
        page.wait_for_timeout(5000)
        runs = [r for r in api.runs("churn_ingest") if r["run_type"] == "backfill"]
    assert sorted(r["logical_date"][:10] for r in runs) == list(days), "one run per day"
    assert [r["state"] for r in runs] == ["success"] * len(days)
    # Reprocessing re-runs the days' existing runs: no day gets a second run.
    assert {r["dag_run_id"] for r in runs} <= runs_before
    assert len(api.runs("churn_ingest")) == len(runs_before)
    after = partitions()
    for key, (attempt, files) in after.items():
        assert attempt != before[key][0], f"{key}: the backfill did not re-commit it"
        assert files == before[key][1], f"{key}: the same source gave different bytes"


def test_score_and_monitor_from_the_form_over_a_range_write_one_partition_per_day(
    page: Any, stack: EmbeddedStack
) -> None:
    api, lake = stack.api(), LocalStorage(stack.lake_root)
    for stage in ("score", "monitor"):
        dag_id = f"churn_{stage}"
        before = {r["dag_run_id"] for r in api.runs(dag_id)}
        dialog = open_trigger_form(page, dag_id)
        open_section(dialog, "Date range")
        field(dialog, "First day").fill(MONITORED[0])
        field(dialog, "Last day").fill(MONITORED[-1])
        submit_button(dialog).click()
        run = new_run(api, dag_id, before)
        assert run["conf"]["start_ds"] == MONITORED[0] and run["conf"]["end_ds"] == MONITORED[-1]
        assert wait_for_run(api, dag_id, run["dag_run_id"])["state"] == "success"
        for day in MONITORED:
            if stage == "score":
                directory = partition_dir("churn", "predictions", day)
                assert read_partition(lake, directory), f"no predictions for {day}"
                assert read_manifest(lake, directory).extra["airflow_run_id"] == run["dag_run_id"]
            else:
                assert read_report(lake, "churn", day)["ds"] == day


def test_train_from_the_form_with_a_changed_hyperparameter_and_a_reason(
    page: Any, stack: EmbeddedStack
) -> None:
    api = stack.api()
    before = {r["dag_run_id"] for r in api.runs("churn_train")}
    reason = "shallower trees after the February review"
    dialog = open_trigger_form(page, "churn_train")
    # Trains through 03-03; the time of day keeps the logical date unique when the test is re-run.
    pick_datetime(page, 0, "2026-03-04", dt.datetime.now(dt.UTC).strftime("%H:%M"))
    open_section(dialog, "Hyperparameters")
    field(dialog, "Max tree depth").fill("3")
    open_section(dialog, "Promotion")
    toggle(dialog, "Force promotion")
    field(dialog, "Reason").fill(reason)
    submit_button(dialog).click()
    run = new_run(api, "churn_train", before)
    assert run["logical_date"].startswith("2026-03-04")
    assert run["conf"]["max_depth"] == 3 and run["conf"]["reason"] == reason and run["conf"]["force_promote"]
    ended = wait_for_run(api, "churn_train", run["dag_run_id"], timeout_s=900)
    assert ended["state"] == "success", {
        k: v["state"] for k, v in api.tasks("churn_train", run["dag_run_id"]).items()
    }

    client = mlflow(stack)
    experiment = client.get_experiment_by_name("churn")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`airflow.run_id` = '{run['dag_run_id']}'"
    )
    trials = [r for r in runs if r.data.params.get("max_depth") is not None]
    assert trials and all(r.data.params["max_depth"] == "3" for r in trials)
    parents = [r for r in runs if "trigger.payload" in r.data.tags]
    assert parents and all(json.loads(r.data.tags["trigger.payload"]) == {"reason": reason} for r in parents)
    assert {r.data.tags["trigger"] for r in parents} == {"manual"}


def test_rollback_from_the_form_moves_champion_back_and_records_the_reason(
    page: Any, stack: EmbeddedStack
) -> None:
    api, client = stack.api(), mlflow(stack)
    promoted = champion(stack)
    before = {r["dag_run_id"] for r in api.runs("churn_rollback")}
    reason = "the shallow model misses the annual-contract segment"
    dialog = open_trigger_form(page, "churn_rollback")
    open_section(dialog, "Rollback")
    field(dialog, "Reason").fill(reason)
    submit_button(dialog).click()
    run = new_run(api, "churn_rollback", before)
    assert wait_for_run(api, "churn_rollback", run["dag_run_id"])["state"] == "success"

    restored = champion(stack)
    assert restored != promoted
    assert reason in json.dumps(client.get_model_version("churn", restored).tags)
    # The MLflow UI's model page shows the alias on the restored version.
    page.goto(f"{stack.mlflow_url}/#/models/churn/versions/{restored}")
    expect(page.get_by_text("champion").first).to_be_visible(timeout=60_000)
