"""Outages on the distributed stack (CeleryExecutor, PostgreSQL, Redis, moto S3, MLflow as real processes).

In order, on one stack whose tasks retry once after 30 s:

1. the scheduler is SIGKILLed in the middle of a 10-day backfill of ``churn_ingest`` and started
   again: the backfill completes, each day once;
2. the MLflow server is stopped while ``churn_train`` runs: the task that needed it fails within two
   minutes naming MLflow, and once the server is back its retry succeeds, with one registered
   version and no MLflow run left RUNNING;
3. the MLflow server is stopped when ``churn_score`` and ``churn_monitor`` run for a day: the same.

Services are stopped, killed and started with ``scripts/distributed.sh kill|stop|start``, as an
operator would. Run by ``make test-faults``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from tests.distributed.conftest import (
    SCRIPT,
    Stack,
    _answers,
    _in_session,
    _sessions,
    _stack_env,
)
from tests.distributed.test_celery_pipeline import (
    TERMINAL,
    AirflowApi,
    S3Storage,
    day_run_id,
    midnight,
    wait_for_runs,
    wait_until,
)
from tests.embedded_stack import free_port

from mlops.lake.storage import MANIFEST, partition_dir, read_partition

DAYS = [f"2026-01-{d:02d}" for d in range(1, 11)]  # the backfill
LATE_DAY = "2026-01-11"  # ingested, scored and monitored once a champion exists
TRAIN_RUN = "faults__train"
ROWS_PER_DAY = 1500
RETRY_DELAY_S = 30
FAIL_WITHIN_S = 120
PORTS = ("PG", "REDIS", "S3", "MLFLOW", "AIRFLOW", "WORKER_LOG", "TRIGGERER_LOG")
ENV_KEYS = ("DIST_DIR", *(f"DIST_{n}_PORT" for n in PORTS))


def _script(*args: str, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_", "AWS_"))}
    done = subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"distributed.sh {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """A distributed stack of the module's own: its own state and ports; tasks retry once after 30 s."""
    from pathlib import Path

    saved = {k: os.environ.get(k) for k in (*ENV_KEYS, "DIST_PIPELINE_SETS")}
    state = Path(
        os.environ.get("FAULTS_DIST_DIR") or Path(__file__).resolve().parents[2] / ".local" / "faults"
    )
    os.environ["DIST_DIR"] = str(state)
    for key in ENV_KEYS[1:]:
        os.environ[key] = str(free_port())
    os.environ["DIST_PIPELINE_SETS"] = f"--set retries=1 --set retry_delay_minutes={RETRY_DELAY_S / 60}"
    ports: list[int] = []
    try:
        _script("down", timeout=180)
        started = time.monotonic()
        _script("up", timeout=900)
        print(f"\ndistributed.sh up: {time.monotonic() - started:.0f}s")
        running = Stack(state=state, env=_stack_env(state))
        ports = running.ports()
        yield running
    finally:
        sessions = _sessions(state)
        _script("down", timeout=300)
        left = {name: procs for name, sid in sessions.items() if (procs := _in_session(sid))}
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert not left, f"processes left after down: {left}"
        assert not [p for p in ports if _answers(p)], "ports still answering after down"


@pytest.fixture(scope="module")
def api(stack: Stack) -> AirflowApi:
    return AirflowApi(stack.api_url)


@pytest.fixture(scope="module")
def lake(stack: Stack, s3) -> S3Storage:
    return S3Storage(s3, stack.env["MLOPS_LAKE_ROOT"])


@pytest.fixture(scope="module")
def landed(stack: Stack, api: AirflowApi) -> None:
    """Clean demo data for 2026-01-01..11 in the S3 landing area; the DAGs parsed."""
    scenario = ["--start", DAYS[0], "--end", LATE_DAY, "--rows-per-day", str(ROWS_PER_DAY)]
    events = ["--corrupt-day", "none", "--missing-column-day", "none", "--shift-start", "none"]
    landing = stack.env["MLOPS_LANDING_ROOT"]
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "scenario", "--landing", landing, *scenario, *events],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wait_until(
        "the DAGs are parsed",
        lambda: {d["dag_id"] for d in api.get("/dags", limit=50)["dags"]} >= {"churn_ingest", "churn_train"},
        timeout=120,
        diagnose=lambda: stack.log_tail("dag-processor"),
    )


def tries(api: AirflowApi, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every try of every task instance of a run (the current one and the ones before)."""
    found = []
    for ti in api.task_instances(dag_id, run_id):
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/{ti['map_index']}/tries"
        found.extend(api.get(path)["task_instances"])
    return found


def first_failed_try(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, Any] | None:
    failed = [t for t in tries(api, dag_id, run_id) if t["try_number"] == 1 and t["state"] == "failed"]
    current = [t for t in api.task_instances(dag_id, run_id) if t["state"] in ("up_for_retry", "failed")]
    return (failed or current or [None])[0]


def seconds(a: str, b: str) -> float:
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def test_the_scheduler_killed_mid_backfill_comes_back_and_every_day_runs_once(
    stack: Stack, api: AirflowApi, lake: S3Storage, landed
) -> None:
    api.set_paused("churn_ingest", False)
    body = {
        "dag_id": "churn_ingest",
        "from_date": midnight(DAYS[0]),
        "to_date": midnight(DAYS[-1]),
        "max_active_runs": 2,
        "reprocess_behavior": "none",
    }
    api.call("POST", "/backfills", json=body)

    def backfill_runs() -> list[dict[str, Any]]:
        return [r for r in api.runs("churn_ingest") if r["run_type"] == "backfill"]

    wait_until(
        "three backfilled days done",
        lambda: sum(r["state"] == "success" for r in backfill_runs()) >= 3,
        timeout=600,
        diagnose=lambda: f"{[(r['dag_run_id'], r['state']) for r in backfill_runs()]}",
    )
    _script("kill", "scheduler")
    killed_at = time.monotonic()
    time.sleep(5)
    _script("start", "scheduler")
    print(f"\nscheduler SIGKILLed mid-backfill, started again {time.monotonic() - killed_at:.0f}s later")

    def finished() -> list[dict[str, Any]] | None:
        runs = backfill_runs()
        return runs if len(runs) == len(DAYS) and all(r["state"] in TERMINAL for r in runs) else None

    runs = wait_until(
        "the backfill, after the scheduler's restart",
        finished,
        timeout=900,
        diagnose=lambda: (
            f"{[(r['dag_run_id'], r['state']) for r in backfill_runs()]}\n{stack.log_tail('scheduler')}"
        ),
    )
    assert sorted(r["logical_date"][:10] for r in runs) == DAYS, "each day exactly once"
    assert all(r["state"] == "success" for r in runs), [(r["dag_run_id"], r["state"]) for r in runs]
    for run in runs:
        for ti in api.task_instances("churn_ingest", run["dag_run_id"]):
            assert ti["state"] == "success", (run["dag_run_id"], ti["task_id"], ti["state"])
    for ds in DAYS:  # no row lost: each landed row is validated or quarantined
        raw = read_partition(lake, partition_dir("churn", "raw", ds))  # type: ignore[arg-type]
        landed = sum(len(pd.read_csv(io.BytesIO(data))) for data in raw.values())
        kept = len(lake.frame("churn", "validated", ds)) + len(lake.frame("churn", "quarantine", ds))
        assert kept == landed > 0.9 * ROWS_PER_DAY, (ds, kept, landed)


def test_mlflow_stopped_during_training_fails_fast_and_the_retry_succeeds(
    stack: Stack, api: AirflowApi, mlflow_client, landed
) -> None:
    api.set_paused("churn_train", False)
    api.trigger("churn_train", TRAIN_RUN, midnight(LATE_DAY), conf={"reason": "faults test", "n_trials": 2})
    states = lambda: {t["task_id"]: t["state"] for t in api.task_instances("churn_train", TRAIN_RUN)}  # noqa: E731
    wait_until(
        "prepare done",
        lambda: states().get("prepare") == "success",
        timeout=300,
        diagnose=lambda: str(states()),
    )
    _script("stop", "mlflow")
    failed = wait_until(
        "a task failing while MLflow is down",
        lambda: first_failed_try(api, "churn_train", TRAIN_RUN),
        timeout=FAIL_WITHIN_S + 60,
        diagnose=lambda: str(states()),
        interval=2,
    )
    _script("start", "mlflow")
    took = seconds(failed["start_date"], failed["end_date"])
    log = api.task_log("churn_train", TRAIN_RUN, failed["task_id"], 1, failed["map_index"])
    print(f"\nMLflow stopped during training: {failed['task_id']} failed in {took:.0f}s")
    assert took < FAIL_WITHIN_S, log[-3000:]
    assert stack.mlflow_uri in log or "MLflow" in log, log[-3000:]

    run = wait_for_runs(api, stack, "churn_train", [TRAIN_RUN], timeout=600)[TRAIN_RUN]
    api.set_paused("churn_train", True)
    assert run["state"] == "success", api.failures("churn_train", TRAIN_RUN)
    versions = mlflow_client.search_model_versions("name = 'churn'")
    registered = [v for v in versions if v.tags.get("airflow.run_id") == TRAIN_RUN]
    assert len(registered) == 1, [(v.version, v.status) for v in registered]
    assert registered[0].status == "READY"
    assert mlflow_client.get_model_version_by_alias("churn", "champion").version == registered[0].version
    no_running_mlflow_runs(mlflow_client)


def no_running_mlflow_runs(client) -> None:
    experiment = client.get_experiment_by_name("churn").experiment_id
    running = client.search_runs([experiment], "attributes.status = 'RUNNING'")
    assert not running, [(r.info.run_name, r.data.tags.get("airflow.task_id")) for r in running]


def test_mlflow_stopped_when_score_and_monitor_run_fails_fast_and_the_retry_succeeds(
    stack: Stack, api: AirflowApi, lake: S3Storage, mlflow_client, landed
) -> None:
    # The day is published with score and monitor paused, so only the runs below process it.
    api.trigger("churn_ingest", day_run_id(LATE_DAY), midnight(LATE_DAY))
    ingest = wait_for_runs(api, stack, "churn_ingest", [day_run_id(LATE_DAY)], timeout=300)
    assert ingest[day_run_id(LATE_DAY)]["state"] == "success", api.failures(
        "churn_ingest", day_run_id(LATE_DAY)
    )
    _script("stop", "mlflow")
    runs = {"churn_score": "faults__score", "churn_monitor": "faults__monitor"}
    for dag_id, run_id in runs.items():
        api.set_paused(dag_id, False)
        api.call(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": {"start_ds": LATE_DAY}},
        )
    failed = {
        dag_id: wait_until(
            f"{dag_id} failing while MLflow is down",
            lambda d=dag_id, r=run_id: first_failed_try(api, d, r),
            timeout=FAIL_WITHIN_S + 120,
            diagnose=lambda d=dag_id, r=run_id: str(api.task_instances(d, r)),
            interval=2,
        )
        for dag_id, run_id in runs.items()
    }
    _script("start", "mlflow")
    for dag_id, ti in failed.items():
        took = seconds(ti["start_date"], ti["end_date"])
        log = api.task_log(dag_id, runs[dag_id], ti["task_id"], 1, ti["map_index"])
        print(f"\nMLflow stopped: {dag_id}.{ti['task_id']} failed in {took:.0f}s")
        assert took < FAIL_WITHIN_S, log[-3000:]
        assert stack.mlflow_uri in log or "MLflow" in log, log[-3000:]
    for dag_id, run_id in runs.items():
        run = wait_for_runs(api, stack, dag_id, [run_id], timeout=600)[run_id]
        assert run["state"] == "success", api.failures(dag_id, run_id)
    champion = mlflow_client.get_model_version_by_alias("churn", "champion").version
    predictions = lake.frame("churn", "predictions", LATE_DAY)
    assert len(predictions) == len(lake.frame("churn", "validated", LATE_DAY))
    assert set(predictions["model_version"].astype(str)) == {str(champion)}
    assert lake.exists(f"{partition_dir('churn', 'reports', LATE_DAY)}/drift/{MANIFEST}")
    no_running_mlflow_runs(mlflow_client)
