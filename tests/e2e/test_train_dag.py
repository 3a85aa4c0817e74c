"""The train and rollback DAGs, run for real with ``dag.test()`` against a real MLflow server.

The window's validated partitions are made by the ingest core (land + gate) from the demo scenario,
so this file exercises training, registration, the gate, audited alias moves and rollback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.config.pipeline import load_pipeline
from mlops.ingest.stage import gate, land
from mlops.ingest.suite import load_suite
from mlops.lake.storage import LocalStorage
from mlops.monitor.report_store import read_report
from mlops.tools import scenario

ROOT = Path(__file__).resolve().parents[2]
DAYS = [f"2026-01-{d:02d}" for d in range(1, 10)]
SHIFTED = [f"2026-03-{d:02d}" for d in range(1, 5)]  # the demo's shift starts 2026-03-01


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStorage]:
    """Nine validated days in a lake of the module's own."""
    base = tmp_path_factory.mktemp("train")
    old = {k: os.environ.get(k) for k in ("MLOPS_LANDING_ROOT", "MLOPS_LAKE_ROOT")}
    os.environ["MLOPS_LANDING_ROOT"], os.environ["MLOPS_LAKE_ROOT"] = (
        str(base / "landing"),
        str(base / "lake"),
    )
    pipeline = load_pipeline(ROOT / "include" / "pipelines" / "churn.yaml")
    landing, storage = LocalStorage(base / "landing" / "churn"), LocalStorage(base / "lake")
    for start, end in (
        (dt.date(2026, 1, 1), dt.date(2026, 1, 9)),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 4)),
    ):
        config = scenario.ScenarioConfig(start=start, end=end, rows_per_day=1500)
        scenario.write_scenario(config, LocalStorage(base / "landing").write_bytes)
    suite = load_suite(pipeline, ROOT / "include")
    for ds in DAYS + SHIFTED:
        land(landing, storage, pipeline, ds)
        start = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
        gate(storage, pipeline, suite, ds, interval_start=start, interval_end=start + dt.timedelta(days=1))
    yield storage
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def dags(airflow_db: Path, mlflow_server: str, lake):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors
    for dag_id in ("churn_train", "churn_rollback", "churn_score", "churn_monitor"):
        for task in bag.dags[dag_id].tasks:
            task.retries = 0  # a failure here is a test failure, not something to wait out
    return bag.dags


@pytest.fixture(scope="module")
def client(mlflow_server: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


def run(dag, day: str = "2026-01-08", **conf):
    """A manual train run as of ``day``: trains through the day before, takes effect on ``day``."""
    logical = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return dag.test(logical_date=logical, run_conf={"n_trials": 2, **conf})


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            f"{ti.task_id}[{ti.map_index}]": str(ti.state)
            for ti in dag_run.get_task_instances(session=session)
        }


def champion(client) -> str | None:
    from mlops.registry.champion import CHAMPION, alias_version

    return alias_version(client, "churn", CHAMPION)


def champion_events() -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        return [
            dict(e.extra) for e in session.scalars(query.where(AssetModel.name == "churn.champion")).all()
        ]


def test_a_too_small_window_fails_naming_what_is_missing(dags) -> None:
    dag_run = run(dags["churn_train"], "2026-01-05")
    assert str(dag_run.state) == "failed"
    assert states(dag_run)["prepare[-1]"] == "failed"


def test_scoring_without_a_champion_is_skipped(dags) -> None:
    dag_run = dags["churn_score"].test(run_conf={"start_ds": "2026-01-09"})
    assert states(dag_run)["score[-1]"] == "skipped"


def test_first_run_trains_registers_and_promotes(dags, client) -> None:
    dag_run = run(dags["churn_train"], reason="first model")
    assert str(dag_run.state) == "success", states(dag_run)
    assert states(dag_run)["promote[-1]"] == "success"
    version = client.get_model_version("churn", champion(client))
    assert version.tags["promotion.previous_champion"] == "none"
    assert version.tags["gate.cleared_floor"] == "true"
    assert "first model" in version.tags["promotion.reason"]
    # The move and the gate decision are signed records, and the trial vouched for the files it uploaded.
    from mlops.airflow.hooks.signing import signing_key
    from mlops.registry.champion import gate_verifies, move_verifies
    from mlops.registry.signing import TRIAL_SIGNATURE_TAG, VersionRef

    key = signing_key()
    assert move_verifies(key, "churn", version.version, "promotion", version.tags)
    assert gate_verifies(key, VersionRef("churn", version.version, version.run_id), version.tags)

    trial = client.get_run(version.run_id)
    tags = trial.data.tags
    assert TRIAL_SIGNATURE_TAG in tags
    assert tags["airflow.dag_id"] == "churn_train" and tags["airflow.run_id"] == dag_run.run_id
    assert tags["trigger"] == "manual" and json.loads(tags["trigger.payload"]) == {"reason": "first model"}
    assert tags["window.partitions"].split(",") == DAGS_WINDOW
    assert "airflow.try_number" in tags and "airflow.logical_date" in tags
    metrics = trial.data.metrics
    assert metrics["holdout_auc"] > 0.7
    assert {"cost_wall_s", "cost_cpu_s", "cost_peak_rss_mb", "cost_gpu_s"} <= set(metrics)
    assert any(k.startswith("valid_auc_slice_") for k in metrics)
    siblings = client.search_runs(
        [trial.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{tags['mlflow.parentRunId']}'"
    )
    assert len(siblings) == 2, "one nested run per trial"
    artifacts = {a.path for a in client.list_artifacts(trial.info.run_id)}
    assert {"reference_profile.json", "feature_importance.png", "lineage.json"} <= artifacts
    profile = json.loads(
        Path(client.download_artifacts(trial.info.run_id, "reference_profile.json")).read_text()
    )
    assert set(profile["features"]) == set(load_pipeline(ROOT / "include/pipelines/churn.yaml").features)
    assert profile["prediction"]["sample"], "the score distribution is part of the reference"
    assert champion_events()[-1]["version"] == version.version


DAGS_WINDOW = DAYS[:7]  # the window ending 2026-01-07, the day before the run's logical date


def test_an_equal_challenger_is_not_promoted(dags, client) -> None:
    before, events = champion(client), len(champion_events())
    dag_run = run(dags["churn_train"])
    assert str(dag_run.state) == "success", states(dag_run)
    assert states(dag_run)["promote[-1]"] == "skipped"
    assert champion(client) == before
    assert len(champion_events()) == events, "no champion event without a move"
    challenger = client.get_model_version_by_alias("churn", "challenger")
    assert challenger.version != before
    assert (
        "not promoted" in challenger.tags["gate.decision"]
        or "no improvement" in challenger.tags["gate.decision"]
    )


def gate_context(plan, **params) -> dict:
    from types import SimpleNamespace

    ti = SimpleNamespace(
        xcom_pull=lambda task_ids, key=None: plan.to_dict() if task_ids == "prepare" else None
    )
    return {"params": params, "run_id": "test__gate", "ti": ti}


def test_a_backfill_run_never_moves_the_champion(dags, client) -> None:
    from mlops.airflow.operators.train import PromotionGateOperator
    from mlops.training.plan import TrainingPlan, Trigger

    challenger = client.get_model_version_by_alias("churn", "challenger").version
    plan = TrainingPlan(Trigger("backfill", DAYS[-1]), DAYS, [], "parent", champion(client), {}, {})
    operator = PromotionGateOperator(task_id="gate", pipeline="churn", challenger={"version": challenger})
    decision = operator.execute(gate_context(plan, force_promote=True))
    assert decision["promote"] is False and decision["would_promote"] is True
    assert client.get_model_version("churn", challenger).tags["gate.backfill_would_promote"] == "true"


def test_the_gate_refuses_to_compare_on_days_the_champion_trained_on(dags, client) -> None:
    from mlops.airflow.operators.train import PromotionGateOperator
    from mlops.training.plan import TrainingPlan, Trigger

    # A run as of 01-06 holds out 01-04 .. 01-06; the champion (window 01-01 .. 01-07, holdout
    # 01-05 .. 01-07) was fitted on 01-01 .. 01-04.
    challenger = client.get_model_version_by_alias("churn", "challenger").version
    plan = TrainingPlan(Trigger("schedule", "2026-01-06"), DAYS[:6], [], "parent", champion(client), {}, {})
    operator = PromotionGateOperator(task_id="gate", pipeline="churn", challenger={"version": challenger})
    decision = operator.execute(gate_context(plan, force_promote=True))
    assert decision["promote"] is False and decision["champion"] is None
    assert decision["reason"].startswith("refused: the holdout days 2026-01-04 are days champion version")
    assert client.get_model_version("churn", challenger).tags["gate.decision"] == decision["reason"]


def test_a_train_run_records_its_decision_in_the_lake(dags, lake) -> None:
    from mlops.clock.logical import read_record

    record = read_record(lake, "churn", "2026-01-07", "manual")
    assert record is not None and record.outcome in ("promoted", "not_promoted")
    assert record.effective_day == "2026-01-08" and record.version


def test_forced_promotion_then_rollback(dags, client) -> None:
    first = champion(client)
    dag_run = run(dags["churn_train"], force_promote=True, reason="forced for the test")
    assert str(dag_run.state) == "success", states(dag_run)
    second = champion(client)
    assert second != first
    assert client.get_model_version("churn", second).tags["promotion.previous_champion"] == first

    dag_run = dags["churn_rollback"].test(run_conf={"reason": "bad model in production"})
    assert str(dag_run.state) == "success", states(dag_run)
    assert champion(client) == first
    tags = client.get_model_version("churn", first).tags
    assert tags["rollback.previous_champion"] == second
    assert "bad model in production" in tags["rollback.reason"]
    assert champion_events()[-1] == {
        "version": first,
        "previous": second,
        "reason": "rollback: bad model in production",
        "run_id": dag_run.run_id,
        "effective_day": dag_run.logical_date.date().isoformat(),
    }


def test_rollback_refuses_a_missing_version(dags, client) -> None:
    before = champion(client)
    dag_run = dags["churn_rollback"].test(run_conf={"target_version": 999, "reason": "typo"})
    assert str(dag_run.state) == "failed"
    assert champion(client) == before


def test_scoring_writes_predictions_naming_the_champion(dags, client, lake) -> None:
    import mlflow
    import pandas as pd

    from mlops.airflow.hooks.signing import signing_key
    from mlops.lake.storage import read_manifest
    from mlops.model.pyfunc import model_input
    from mlops.registry.champion import champion_as_of

    # Scored by the champion as of the days, not the alias now (a rollback effective today).
    version = champion_as_of(client, "churn", "2026-01-08", signing_key())
    assert version == champion_as_of(client, "churn", "2026-01-09", signing_key()) and version != champion(
        client
    )
    dag_run = dags["churn_score"].test(run_conf={"start_ds": "2026-01-08", "end_ds": "2026-01-09"})
    assert str(dag_run.state) == "success", states(dag_run)
    pipeline = load_pipeline(ROOT / "include/pipelines/churn.yaml")
    model = mlflow.pyfunc.load_model(f"models:/churn/{version}")
    for ds in ("2026-01-08", "2026-01-09"):
        predictions = frame_of(lake, "predictions", ds)
        validated = frame_of(lake, "validated", ds)
        assert len(predictions) == len(validated)
        assert set(predictions["model_version"]) == {version}
        assert set(predictions["airflow_run_id"]) == {dag_run.run_id}
        expected = model.predict(model_input(validated, pipeline))
        assert (abs(predictions["score"].to_numpy() - pd.Series(expected).to_numpy()) < 1e-9).all()
        assert (predictions["label"] == (predictions["score"] >= pipeline.training.threshold)).all()
        assert predictions["customer_id"].tolist() == validated["customer_id"].tolist()
        assert read_manifest(lake, f"churn/predictions/ds={ds}").extra["model_version"] == version
    runs = client.search_runs(
        [client.get_experiment_by_name("churn").experiment_id],
        filter_string=f"tags.`airflow.run_id` = '{dag_run.run_id}' and tags.`mlops.role` = 'scoring'",
    )
    assert runs[0].data.metrics["rows_scored"] == sum(
        len(frame_of(lake, "validated", d)) for d in ("2026-01-08", "2026-01-09")
    )


def test_scoring_an_older_version_on_request(dags, client, lake) -> None:
    dag_run = dags["churn_score"].test(run_conf={"start_ds": "2026-01-07", "model_version": 1})
    assert str(dag_run.state) == "success", states(dag_run)
    assert set(frame_of(lake, "predictions", "2026-01-07")["model_version"]) == {"1"}


def frame_of(lake, zone: str, ds: str):
    import io

    import pandas as pd

    from mlops.lake.storage import partition_dir, read_partition

    files = read_partition(lake, partition_dir("churn", zone, ds))
    return pd.concat([pd.read_parquet(io.BytesIO(b)) for b in files.values()], ignore_index=True)


def drift_events() -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        return [dict(e.extra) for e in session.scalars(query.where(AssetModel.name == "churn.drift")).all()]


def drift_retrains() -> dict[str, dict]:
    """The churn_train runs the monitor's retrain task started: run id -> conf."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == "churn_train")).all()
        drift = [r for r in runs if r.run_id.startswith("drift__")]
        # No logical date: one of "now" would fall after a replayed pipeline's end_date, and
        # Airflow would create the run without its tasks.
        assert all(r.logical_date is None for r in drift), [r.logical_date for r in drift]
        return {r.run_id: dict(r.conf or {}) for r in drift}


def drift_report(lake, ds: str) -> dict:
    from mlops.lake.storage import read_partition
    from mlops.monitor.report_store import report_dir

    files = read_partition(lake, report_dir("churn", ds))
    assert b"data:image/png;base64," in files["drift.html"]
    return json.loads(files["drift.json"])


def test_monitoring_stable_days_raises_nothing(dags, lake) -> None:
    dag_run = dags["churn_monitor"].test(run_conf={"start_ds": "2026-01-07", "end_ds": "2026-01-09"})
    assert str(dag_run.state) == "success", states(dag_run)
    assert states(dag_run)["emit_drift[-1]"] == "skipped"
    assert states(dag_run)["retrain[-1]"] == "skipped"
    assert read_report(lake, "churn", "2026-01-07") is None, "no champion as of 01-07"
    for ds in ("2026-01-08", "2026-01-09"):
        report = drift_report(lake, ds)
        assert report["verdict"]["day_drift"] is False and report["trigger"]["fire"] is False
    assert drift_events() == []


def test_a_shift_triggers_one_retrain_then_cools_down(dags, lake, client) -> None:
    dag_run = dags["churn_monitor"].test(run_conf={"start_ds": "2026-03-01", "end_ds": "2026-03-03"})
    assert str(dag_run.state) == "success", states(dag_run)
    reports = [
        r for ds in ("2026-03-01", "2026-03-02", "2026-03-03") if (r := read_report(lake, "churn", ds))
    ]
    assert reports[0]["verdict"]["day_drift"] is True
    assert "monthly_charges" in [f["feature"] for f in reports[0]["drifted_features"]]
    fired = [r["ds"] for r in reports if r["trigger"]["fire"]]
    assert len(fired) == 1 and fired[0] <= "2026-03-03", "one shift, one trigger"
    # The run stops at the day that fires: the retrain decides the champion of the days after it.
    assert reports[-1]["ds"] == fired[0]
    [event] = drift_events()
    assert event["ds"] == fired[0] and "monthly_charges" in event["features"]
    assert {"ds", "champion_version", "features", "reason"} <= set(event)
    # One train run per drifted day, with the event's extra: the drift retrain.
    assert drift_retrains() == {f"drift__{fired[0]}": {"drift": event}}
    assert states(dag_run)["retrain[-1]"] == "success"

    dag_run = dags["churn_monitor"].test(run_conf={"start_ds": "2026-03-04", "end_ds": "2026-03-04"})
    assert str(dag_run.state) == "success", states(dag_run)
    later = drift_report(lake, "2026-03-04")
    assert later["trigger"]["fire"] is False
    assert "cooldown" in later["trigger"]["reason"] or "already triggered" in later["trigger"]["reason"]
    assert len(drift_events()) == 1
    assert states(dag_run)["retrain[-1]"] == "skipped" and len(drift_retrains()) == 1

    # The champion's version records what it triggered: later monitor runs against the same
    # champion do not retrain on the same shift again.
    from mlops.registry.champion import drift_triggers

    assert drift_triggers(client, "churn", event["champion_version"]) == [fired[0]]


def test_the_trial_resolves_the_device_on_the_worker_that_trains(dags, client, monkeypatch) -> None:
    """``prepare`` hands on the device asked for; the trial resolves it where it runs.

    Asked for ``cuda`` where ``CUDA_VISIBLE_DEVICES`` hides every GPU, the trial falls back to the
    CPU and records why on its run. Had prepare resolved it (on a host with a GPU, under Celery),
    the trial would have been handed "cpu" and said "cpu requested".
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    dag_run = run(dags["churn_train"], device="cuda", n_trials=1)
    assert str(dag_run.state) == "success", states(dag_run)
    query = XComModel.get_many(
        run_id=dag_run.run_id, key="return_value", task_ids="prepare", dag_ids="churn_train"
    )
    with create_session() as session:
        [laid_out] = session.scalars(query).all()
    assert [t["device"] for t in XComModel.deserialize_value(laid_out)] == ["cuda"]
    experiment = client.get_experiment_by_name("churn").experiment_id
    [trial] = client.search_runs(
        [experiment],
        filter_string=f"tags.`airflow.run_id` = '{dag_run.run_id}' and tags.`airflow.task_id` = 'train_trial'",
    )
    assert trial.data.tags["device"] == "cpu"
    assert trial.data.tags["device.reason"] == (
        "cuda requested but no GPU is visible (CUDA_VISIBLE_DEVICES='-1'); falling back to cpu"
    )
    assert trial.data.params["device"] == "cpu"


def test_no_mlflow_run_is_left_running_after_train_score_and_monitor(dags, client) -> None:
    """Earlier tests ran every stage; each ended its MLflow runs, the training parents included."""
    experiment = client.get_experiment_by_name("churn").experiment_id
    ended = client.search_runs([experiment], max_results=1000)
    assert {"training", "scoring", "monitoring"} <= {r.data.tags.get("mlops.role") for r in ended}
    running = client.search_runs([experiment], "attributes.status = 'RUNNING'")
    assert not running, [(r.info.run_name, r.data.tags.get("airflow.task_id")) for r in running]


def test_no_secret_leaks_from_a_train_and_a_score_run(
    dags, client, lake, mlflow_server, monkeypatch, capfd
) -> None:
    """Distinct sentinel secrets in every connection and a variable, a train and a score run, then
    their logs, XCom, rendered templates, the MLflow store and the lake searched for each."""
    import uuid

    from tests.leak_scan import AIRFLOW_QUERIES, database_rows, files, mlflow_store, scan

    sentinels = {name: f"sentinel-{name}-{uuid.uuid4().hex}" for name in ("mlflow", "aws", "variable")}
    sentinels["signing"] = json.loads(os.environ["AIRFLOW_CONN_MLOPS_SIGNING"])["password"]
    mlflow = {"conn_type": "http", "host": mlflow_server, "login": "probe", "password": sentinels["mlflow"]}
    aws = {"conn_type": "aws", "login": "probe", "password": sentinels["aws"]}
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(mlflow))  # the server ignores basic auth
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(aws))  # unused by a local lake: must not show
    monkeypatch.setenv("AIRFLOW_VAR_LEAK_PROBE", sentinels["variable"])
    capfd.readouterr()
    train = run(dags["churn_train"], "2026-01-09", n_trials=1, force_promote=True, reason="leak scan")
    score = dags["churn_score"].test(run_conf={"start_ds": "2026-01-09"})
    assert str(train.state) == "success" and str(score.state) == "success", (states(train), states(score))
    out, err = capfd.readouterr()
    places = {
        "task logs": [("train and score output", out + err)],
        "xcom and rendered templates": database_rows(
            os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], AIRFLOW_QUERIES
        ),
        "mlflow tracking store": mlflow_store(client),
        "lake": files(Path(os.environ["MLOPS_LAKE_ROOT"])),
    }
    leaks, counts = [], {}
    for name, items in places.items():
        found, counts[name] = scan(sentinels, items)
        leaks.extend(found)
    assert leaks == [], leaks
    assert all(counts.values()), f"a place was empty, so the scan proved nothing: {counts}"
    assert "churn_score" in out + err, "the runs' logs were not captured"


def test_with_approval_on_an_approve_task_marked_success_by_hand_moves_nothing(
    dags, client, lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``approve`` marked success instead of answered (no review in its XCom): ``promote`` fails
    saying what is missing and what to do, champion stays, and the run's record says why."""
    import shutil

    import yaml

    from mlops.clock.logical import read_record
    from mlops.registry.champion import alias_version
    from mlops.training.review import REMEDY
    from train import build

    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    path = include / "pipelines" / "churn.yaml"
    config = yaml.safe_load(path.read_text())
    config["promotion"]["approval"] = {"enabled": True, "timeout": "1h"}
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("MLOPS_INCLUDE_DIR", str(include))  # what the tasks read when they run
    dag = build(load_pipeline(path))
    for task in dag.tasks:
        task.retries = 0
    before, events = champion(client), len(champion_events())

    logical = dt.datetime(2026, 1, 8, tzinfo=dt.UTC)
    dag_run = dag.test(
        logical_date=logical,
        run_conf={"n_trials": 1, "force_promote": True, "reason": "marked approved by hand"},
        mark_success_pattern="approve",
    )

    assert str(dag_run.state) == "failed"
    found = states(dag_run)
    assert (found["approve[-1]"], found["promote[-1]"], found["record[-1]"]) == (
        "success",
        "failed",
        "failed",
    )
    assert champion(client) == before and len(champion_events()) == events
    version = alias_version(client, "churn", "challenger")
    assert version != before
    record = read_record(lake, "churn", "2026-01-07", "manual")
    assert record.outcome == "failed" and record.version == version
    assert record.reason == (
        f"failed in promote: promoting churn version {version} needs an approval "
        "(promotion.approval.enabled is on) and this run has no review: the approve task returned none "
        f"(marked success by hand, or the DAG has no approve task); {REMEDY}"
    )
    assert (record.triggered_by, record.reviewed_by) == ("dag_test", None)
