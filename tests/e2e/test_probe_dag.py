"""The probe DAG, run for real with ``dag.test()``: up against a live HTTP service, then down once it is
stopped, with the ``service_down`` notification received and the probes in the lake and in MLflow.

The service is a tiny stand-in answering as the serving contract says (``tests.fake_service``); the
lake is local disk, MLflow a real tracking server, the notification goes to a real HTTP receiver.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.dag_env import dags_with_roots
from tests.fake_service import FakeService, contract_answer, fake_service
from tests.receivers import Received, http_server

from mlops.config.pipeline import load_pipeline
from mlops.lake.storage import LocalStorage, read_manifest
from mlops.serving.probe import probe_dir, recent_probes

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.e2e]
UNREGISTERED = "9999"


@pytest.fixture
def stack(
    tmp_path: Path, airflow_db: Path, mlflow_server: str
) -> Iterator[tuple[dict, FakeService, Received]]:
    """The DAGs parsed with churn probing a fake service and sending ``service_down`` to a receiver."""
    with fake_service() as service, http_server() as web:
        # A version no registry of the session holds (other tests register churn versions in the
        # shared MLflow server): the probe cannot tell its offline answer and judges the form only.
        service.answer = contract_answer(version=UNREGISTERED)
        include = tmp_path / "include"
        shutil.copytree(ROOT / "include", include)
        path = include / "pipelines" / "churn.yaml"
        config = yaml.safe_load(path.read_text())
        config["serving"] = {"url": service.url, "slo": {"p95_ms": 250, "window_minutes": 30}}
        config["notifications"] = {
            "webhook": {"url": web.url("/hook"), "events": ["service_down", "slo_breached"]}
        }
        path.write_text(yaml.safe_dump(config))
        with dags_with_roots(tmp_path, include) as dags:
            yield dags, service, web


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def test_the_probe_records_up_then_the_outage_and_notifies_it(
    tmp_path: Path, stack: tuple[dict, FakeService, Received], mlflow_server: str
) -> None:
    import mlflow

    dags, service, web = stack
    dag = dags["churn_probe"]
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)

    up = dag.test(logical_date=now - dt.timedelta(minutes=5))
    assert states(up) == {"probe": "success"} and len(service.requests) == 1
    assert web.at("/hook") == []
    service.stop()
    down = dag.test(logical_date=now)

    assert states(down) == {"probe": "success"}  # an outage is recorded, not a failed task
    [hook] = web.at("/hook")
    assert hook["event"] == "service_down" and hook["pipeline"] == "churn"
    assert hook["title"].startswith("serving service down: unreachable:")
    assert hook["details"][-1].startswith("last 30 min: 1 of 2 probes up (availability 50.0%")

    lake, churn = (
        LocalStorage(tmp_path / "lake"),
        load_pipeline(ROOT / "include" / "pipelines" / "churn.yaml"),
    )
    probes = recent_probes(lake, churn, until=dt.datetime.now(dt.UTC), minutes=30)
    assert probes["up"].tolist() == [True, False]
    assert probes["model_version"].tolist() == [UNREGISTERED, None]
    assert probes["latency_ms"].iloc[0] > 0 and probes["latency_ms"].isna().iloc[1]
    assert probes["airflow_run_id"].tolist() == [up.run_id, down.run_id]
    key = churn.grain.key(probes["_probed_at"].iloc[-1].to_pydatetime())
    assert read_manifest(lake, probe_dir("churn", key)).extra["rows"] >= 1

    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("churn")
    [run] = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlops.role` = 'probe' and tags.ds = '{key}'"
    )
    assert run.info.run_name == f"probe {key}"
    history = client.get_metric_history(run.info.run_id, "probe_up")
    if key == churn.grain.key(probes["_probed_at"].iloc[0].to_pydatetime()):  # both probes on one day
        assert [m.value for m in sorted(history, key=lambda m: m.timestamp)] == [1.0, 0.0]
        assert len(client.get_metric_history(run.info.run_id, "probe_latency_ms")) == 1
    else:
        assert [m.value for m in history] == [0.0]
