"""The pipeline on the scaled-out topology: CeleryExecutor, PostgreSQL, Redis, S3, MLflow on PostgreSQL.

Driven only through Airflow's REST API v2, as an operator would: unpause, trigger a run per day,
poll. Checked from the outside: the lake in the S3 bucket, the MLflow registry, the worker's log.

The story, in order (each phase is a module fixture, so any single test can run alone):
1. ingest 2026-01-01..08 (2026-01-04 is corrupt), with score and monitor paused;
2. train on that window (one manual run): the first champion, its artifacts in S3;
3. with score and monitor unpaused, ingest 2026-01-09: its `churn.validated` event makes both run.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
import requests

from mlops.lake.storage import MANIFEST, partition_dir, read_partition

if TYPE_CHECKING:
    from conftest import Stack  # tests/distributed/conftest.py

FIRST_DAYS = [f"2026-01-{d:02d}" for d in range(1, 9)]
CORRUPT_DAY = "2026-01-04"
GOOD_DAYS = [d for d in FIRST_DAYS if d != CORRUPT_DAY]
LATE_DAY = "2026-01-09"  # ingested once a champion exists
TRAIN_RUN = "dist__train"
N_TRIALS = 2  # training.n_trials in the generated YAML: two trials run at once on the worker
ROWS_PER_DAY = 1500
TERMINAL = {"success", "failed"}


class AirflowApi:
    """Airflow's REST API v2 with a JWT from the simple auth manager's ``/auth/token``."""

    def __init__(self, base_url: str, username: str = "admin", password: str = "admin") -> None:
        self.base_url = base_url
        self.session = requests.Session()
        token = self.session.post(
            f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        token.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)
        if response.status_code not in ok:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        body = self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})
        assert body["is_paused"] is paused

    def trigger(self, dag_id: str, run_id: str, logical_date: str, conf: dict[str, Any] | None = None) -> Any:
        return self.call(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": logical_date, "conf": conf or {}},
        )

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        body = self.call(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        return "\n".join(str(entry) for entry in body["content"])

    def failures(self, dag_id: str, run_id: str) -> str:
        """The states of a run's task instances and the last log lines of the failed ones."""
        lines = []
        for ti in self.task_instances(dag_id, run_id):
            lines.append(f"{ti['task_id']}[{ti['map_index']}]: {ti['state']}")
            if ti["state"] == "failed":
                log = self.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
                lines.extend(f"    {line[:1500]}" for line in log.splitlines()[-4:])
        return "\n".join(lines)


@pytest.fixture(scope="module")
def api(stack: Stack) -> AirflowApi:
    return AirflowApi(stack.api_url)


def wait_until(
    what: str, done: Callable[[], Any], *, timeout: float, diagnose: Callable[[], str], interval: float = 3
) -> Any:
    """Poll ``done`` until it returns something truthy; fail with ``diagnose()`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = done()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not done after {timeout:.0f}s\n{diagnose()}")
        time.sleep(interval)


class S3Storage:
    """The lake under ``s3://bucket/prefix`` through plain boto3: read-only, what ``read_partition`` needs."""

    def __init__(self, client: Any, root: str) -> None:
        self.client = client
        self.bucket, _, prefix = root.removeprefix("s3://").partition("/")
        self.prefix = prefix.strip("/")

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def read_bytes(self, path: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(path))["Body"].read()

    def exists(self, path: str) -> bool:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(path), MaxKeys=1)
        return any(o["Key"] == self._key(path) for o in listed.get("Contents", []))

    def uri(self, path: str) -> str:
        return f"s3://{self.bucket}/{self._key(path)}"

    def frame(self, pipeline: str, zone: str, ds: str) -> pd.DataFrame:
        files = read_partition(self, partition_dir(pipeline, zone, ds))  # type: ignore[arg-type]
        return pd.concat([pd.read_parquet(io.BytesIO(b)) for b in files.values()], ignore_index=True)


def day_run_id(ds: str) -> str:
    return f"dist__{ds}"


def midnight(ds: str) -> str:
    # A manual run's logical date is the day it processes (see PipelineOperator.interval).
    return f"{ds}T00:00:00Z"


def wait_for_runs(api: AirflowApi, stack: Stack, dag_id: str, run_ids: list[str], timeout: float) -> dict:
    def finished() -> dict[str, dict] | None:
        runs = {r: api.run(dag_id, r) for r in run_ids}
        return runs if all(run["state"] in TERMINAL for run in runs.values()) else None

    def diagnose() -> str:
        states = {r: api.run(dag_id, r)["state"] for r in run_ids}
        return f"{dag_id} runs: {states}\nworker log:\n{stack.log_tail('worker')}"

    return wait_until(f"{dag_id} runs {run_ids}", finished, timeout=timeout, diagnose=diagnose)


@pytest.fixture(scope="module")
def lake(stack: Stack, s3) -> S3Storage:
    return S3Storage(s3, stack.env["MLOPS_LAKE_ROOT"])


@pytest.fixture(scope="module")
def ingested(stack: Stack, api: AirflowApi) -> dict[str, dict]:
    """Phase 1: the demo data for 2026-01-01..09 in the S3 landing area, days 1..8 ingested."""
    scenario = ["--start", FIRST_DAYS[0], "--end", LATE_DAY, "--rows-per-day", str(ROWS_PER_DAY)]
    events = ["--corrupt-day", CORRUPT_DAY, "--missing-column-day", "none", "--shift-start", "none"]
    landed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops",
            "scenario",
            "--landing",
            stack.env["MLOPS_LANDING_ROOT"],
            *scenario,
            *events,
        ],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert landed.returncode == 0, landed.stderr[-3000:]
    wait_until(
        "the DAGs are parsed",
        lambda: (
            {d["dag_id"] for d in api.get("/dags", limit=50)["dags"]}
            >= {"churn_ingest", "churn_train", "churn_score", "churn_monitor"}
        ),
        timeout=120,
        diagnose=lambda: stack.log_tail("dag-processor"),
    )
    api.set_paused("churn_ingest", False)
    for ds in FIRST_DAYS:
        api.trigger("churn_ingest", day_run_id(ds), midnight(ds))
    runs = wait_for_runs(api, stack, "churn_ingest", [day_run_id(d) for d in FIRST_DAYS], timeout=480)
    return {ds: runs[day_run_id(ds)] for ds in FIRST_DAYS}


def test_good_days_succeed_and_the_corrupt_day_fails_in_validate(api: AirflowApi, ingested) -> None:
    states = {ds: run["state"] for ds, run in ingested.items()}
    expected = {ds: ("failed" if ds == CORRUPT_DAY else "success") for ds in FIRST_DAYS}
    wrong = [ds for ds in FIRST_DAYS if states[ds] != expected[ds]]
    assert not wrong, "\n".join(f"{ds}:\n{api.failures('churn_ingest', day_run_id(ds))}" for ds in wrong)
    tasks = {ti["task_id"]: ti["state"] for ti in api.task_instances("churn_ingest", day_run_id(CORRUPT_DAY))}
    assert tasks == {
        "wait_for_source": "success",
        "land": "success",
        "wait_for_past": "success",  # a manual run acts now
        "validate": "failed",
    }


def test_the_task_log_names_the_corrupt_file(api: AirflowApi, lake: S3Storage, ingested) -> None:
    log = api.task_log("churn_ingest", day_run_id(CORRUPT_DAY), "validate")
    assert f"churn {CORRUPT_DAY} rejected" in log
    assert f"{lake.uri(partition_dir('churn', 'raw', CORRUPT_DAY))}/part-000.csv" in log
    assert "not a readable CSV file" in log


def test_validated_partitions_are_committed_in_the_s3_lake(lake: S3Storage, ingested) -> None:
    for ds in GOOD_DAYS:
        validated = partition_dir("churn", "validated", ds)
        assert lake.exists(f"{validated}/{MANIFEST}"), f"no {lake.uri(validated)}/{MANIFEST}"
        rows = len(lake.frame("churn", "validated", ds))
        quarantined = len(lake.frame("churn", "quarantine", ds))
        assert 0.9 * ROWS_PER_DAY < rows + quarantined < 1.1 * ROWS_PER_DAY
        assert quarantined < 0.05 * (rows + quarantined)
    # The rejected day: its raw copy is kept, nothing validated, and the rejection is on record.
    assert lake.exists(f"{partition_dir('churn', 'raw', CORRUPT_DAY)}/{MANIFEST}")
    assert not lake.exists(f"{partition_dir('churn', 'validated', CORRUPT_DAY)}/{MANIFEST}")
    report = json.loads(lake.read_bytes(f"{partition_dir('churn', 'reports', CORRUPT_DAY)}/{MANIFEST}"))
    assert report["extra"]["passed"] is False


def run_by_worker(stack: Stack) -> set[str]:
    """Ids of the task instances the Celery worker received, from its log."""
    found = set()
    for line in stack.log("worker").splitlines():
        if "Executing workload in Celery" in line and (match := _TI_ID.search(line)):
            found.add(match.group(1))
    return found


_TI_ID = re.compile(r"ti=TaskInstanceDTO\(id=UUID\('([0-9a-f-]+)'\)")


def test_every_task_ran_on_the_celery_worker(api: AirflowApi, stack: Stack, ingested) -> None:
    on_worker = run_by_worker(stack)
    for ds in FIRST_DAYS:
        for ti in api.task_instances("churn_ingest", day_run_id(ds)):
            assert ti["queue"] == "default", ti  # the Celery queue the worker consumes
            assert ti["hostname"], ti
            assert ti["id"] in on_worker, f"{ti['task_id']} of {ds} was not run by the Celery worker"


@pytest.fixture(scope="module")
def trained(stack: Stack, api: AirflowApi, ingested) -> dict:
    """Phase 2: one manual churn_train run on the window 2026-01-01..08."""
    api.set_paused("churn_train", False)
    # Logical date 2026-01-09: the window ends the day before, the last complete day.
    api.trigger("churn_train", TRAIN_RUN, midnight(LATE_DAY), conf={"reason": "distributed test"})
    run = wait_for_runs(api, stack, "churn_train", [TRAIN_RUN], timeout=420)[TRAIN_RUN]
    # No further training behind the test's back (a drift event from phase 3, say).
    api.set_paused("churn_train", True)
    return run


def test_training_promotes_a_champion_whose_artifacts_are_in_s3(
    api: AirflowApi, stack: Stack, s3, mlflow_client, trained
) -> None:
    assert trained["state"] == "success", api.failures("churn_train", TRAIN_RUN)
    tis = api.task_instances("churn_train", TRAIN_RUN)
    assert sorted(t["map_index"] for t in tis if t["task_id"] == "train_trial") == list(range(N_TRIALS))
    assert {t["task_id"]: t["state"] for t in tis}["promote"] == "success"
    assert {t["id"] for t in tis} <= run_by_worker(stack)

    champion = mlflow_client.get_model_version_by_alias("churn", "champion")
    run = mlflow_client.get_run(champion.run_id)
    assert run.data.tags["airflow.run_id"] == TRAIN_RUN
    # The window (8 days ending the day before the logical date) read the S3 lake and named the gap.
    assert run.data.tags["window.partitions"].split(",") == GOOD_DAYS
    assert run.data.tags["window.skipped_failed"] == CORRUPT_DAY
    # The model's files went through the MLflow server (proxied artifacts) into the S3 bucket.
    bucket, _, prefix = stack.env["MLOPS_MLFLOW_ARTIFACTS"].removeprefix("s3://").partition("/")
    uri = mlflow_client.get_model_version_download_uri("churn", champion.version)
    assert uri.startswith("mlflow-artifacts:/"), uri
    location = uri.removeprefix("mlflow-artifacts:").strip("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{location}/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert f"{prefix}/{location}/MLmodel" in keys, keys
    # Signed at registration with the stack's key (never stored in MLflow): every file is listed.
    from mlops.registry.signing import KEY_ID_TAG, MANIFEST_TAG, SIGNATURE_TAG, SigningKey, VersionRef

    secret = json.loads(stack.env["AIRFLOW_CONN_MLOPS_SIGNING"])["password"]
    key = SigningKey.from_text(secret, source="the stack's env")
    assert champion.tags[KEY_ID_TAG] == key.key_id
    ref = VersionRef("churn", champion.version, champion.run_id)
    assert champion.tags[SIGNATURE_TAG] == ref.signature(key, champion.tags[MANIFEST_TAG])
    manifest = {line.split("  ", 1)[1] for line in champion.tags[MANIFEST_TAG].splitlines()}
    assert {"MLmodel", "python_model.pkl", "artifacts/booster.ubj"} <= manifest
    assert secret not in json.dumps([champion.tags, run.data.tags, run.data.params])


@pytest.fixture(scope="module")
def downstream(stack: Stack, api: AirflowApi, trained) -> dict[str, list[dict]]:
    """Phase 3: score and monitor unpaused, then 2026-01-09 ingested; its validated event runs both."""
    for dag_id in ("churn_score", "churn_monitor"):
        api.set_paused(dag_id, False)
    api.trigger("churn_ingest", day_run_id(LATE_DAY), midnight(LATE_DAY))
    wait_for_runs(api, stack, "churn_ingest", [day_run_id(LATE_DAY)], timeout=240)

    def asset_runs() -> dict[str, list[dict]] | None:
        runs = {
            d: [r for r in api.runs(d) if r["run_type"] == "asset_triggered"]
            for d in ("churn_score", "churn_monitor")
        }
        settled = all(runs.values()) and all(r["state"] in TERMINAL for rs in runs.values() for r in rs)
        return runs if settled else None

    def diagnose() -> str:
        states = {
            d: [(r["dag_run_id"], r["state"]) for r in api.runs(d)] for d in ("churn_score", "churn_monitor")
        }
        return f"{states}\nworker log:\n{stack.log_tail('worker')}"

    return wait_until("asset-triggered score and monitor runs", asset_runs, timeout=300, diagnose=diagnose)


def _events_of(api: AirflowApi, dag_id: str, run_id: str) -> list[str]:
    events = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]
    return [str((e.get("extra") or {}).get("ds")) for e in events]


def test_score_writes_predictions_naming_the_champion(
    api: AirflowApi, lake: S3Storage, mlflow_client, downstream
) -> None:
    runs = downstream["churn_score"]
    for run in runs:
        assert run["state"] == "success", api.failures("churn_score", run["dag_run_id"])
    scored = [r for r in runs if LATE_DAY in _events_of(api, "churn_score", r["dag_run_id"])]
    assert scored, f"no churn_score run was triggered by the {LATE_DAY} event"
    champion = mlflow_client.get_model_version_by_alias("churn", "champion")
    predictions = lake.frame("churn", "predictions", LATE_DAY)
    assert len(predictions) == len(lake.frame("churn", "validated", LATE_DAY))
    assert set(predictions["model_version"].astype(str)) == {str(champion.version)}
    assert set(predictions["airflow_run_id"]) <= {r["dag_run_id"] for r in scored}
    assert predictions["score"].between(0, 1).all()


def test_monitor_runs_succeed_and_commit_a_drift_report(api: AirflowApi, lake: S3Storage, downstream) -> None:
    runs = downstream["churn_monitor"]
    for run in runs:
        assert run["state"] == "success", api.failures("churn_monitor", run["dag_run_id"])
    assert any(LATE_DAY in _events_of(api, "churn_monitor", r["dag_run_id"]) for r in runs)
    report = f"{partition_dir('churn', 'reports', LATE_DAY)}/drift"
    assert lake.exists(f"{report}/{MANIFEST}"), f"no drift report at {lake.uri(report)}"
    tis = api.task_instances("churn_monitor", runs[-1]["dag_run_id"])
    assert {t["task_id"]: t["state"] for t in tis}["monitor"] == "success"


def test_every_server_of_the_stack_listens_on_the_loopback_only(stack: Stack, downstream) -> None:
    """After the whole pipeline ran: the sockets of every service, as the kernel bound them."""
    from tests.listening import listeners, pids_of

    found = listeners(pids_of(stack.state / "run"))
    exposed = [str(s) for s in found if not s.loopback]
    assert exposed == [], f"listening beyond the loopback: {exposed}"
    log_servers = {
        int(stack.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]),
        int(stack.env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]),
    }
    served = {s.port for s in found}
    assert set(stack.ports()) - log_servers <= served, [str(s) for s in found]
    assert not served & log_servers, "the log servers bind every interface: the stack runs without them"


def stack_secrets(stack: Stack) -> dict[str, str]:
    """Every secret of the stack: its generated secrets file, the signing key, the S3 secret key."""
    secrets = {}
    for line in (stack.state / "secrets.env").read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip().strip("'\"")
        if value and name.strip() not in ("AWS_ACCESS_KEY_ID",):
            secrets[name.strip()] = value
    secrets["model signing key"] = json.loads(stack.env["AIRFLOW_CONN_MLOPS_SIGNING"])["password"]
    secrets["AWS_SECRET_ACCESS_KEY"] = stack.env["AWS_SECRET_ACCESS_KEY"]
    assert all(len(v) >= 16 for v in secrets.values()), "a secret too short to search for without noise"
    return secrets


def test_no_secret_leaks_into_logs_xcom_templates_mlflow_or_the_lake(
    stack: Stack, s3, mlflow_client, downstream
) -> None:
    """After ingest, train, score and monitor ran: each place read in full, no secret anywhere."""
    from tests.leak_scan import AIRFLOW_QUERIES, database_rows, files, mlflow_store, s3_objects, scan

    secrets = stack_secrets(stack)
    buckets = [
        stack.env[k].removeprefix("s3://").split("/")[0] for k in ("MLOPS_LAKE_ROOT", "MLOPS_LANDING_ROOT")
    ]
    places = {
        "task logs": files(stack.state / "airflow" / "logs"),
        "service logs": files(stack.state / "logs"),
        "xcom and rendered templates": database_rows(
            stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], AIRFLOW_QUERIES
        ),
        "mlflow tracking store": mlflow_store(mlflow_client),
        "lake and landing": (item for bucket in buckets for item in s3_objects(s3, bucket)),
    }
    leaks, counts = [], {}
    for name, items in places.items():
        found, counts[name] = scan(secrets, items)
        leaks.extend(found)
    print(f"\nleak scan: {counts} places read, {len(secrets)} secrets searched")
    assert leaks == [], leaks
    assert all(counts.values()), f"a place was empty, so the scan proved nothing: {counts}"
