"""The probe operator against a real HTTP service on loopback and a real lake, its notifications and the
monitor's ``performance_decay`` received by a real HTTP server; MLflow is the fake registry."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.fake_service import FakeService, fake_service, tenure_score
from tests.receivers import Received, http_server

from mlops.airflow.operators.monitor import MonitorDriftOperator
from mlops.airflow.operators.probe import ProbeServiceOperator
from mlops.lake.storage import LocalStorage
from mlops.monitor.stage import MonitorOutcome
from mlops.serving.probe import recent_probes

ROOT = Path(__file__).resolve().parents[4]
BASE = "http://airflow.example.test:8080"
EVENTS = ["service_down", "slo_breached", "performance_decay"]


class TenureModel:
    """The offline copy of the fake service's model (or, with ``offset``, of another one)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([tenure_score(r) + self.offset for r in frame.to_dict("records")])


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Received]]:
    """``setup(**serving)``: churn with ``serving`` settings and EVENTS on a webhook; yields the receiver."""
    with http_server() as web:

        def write(**serving: Any) -> Received:
            include = tmp_path / "include"
            shutil.copytree(ROOT / "include" / "pipelines", include / "pipelines", dirs_exist_ok=True)
            path = include / "pipelines" / "churn.yaml"
            config = yaml.safe_load(path.read_text())
            config["notifications"] = {"webhook": {"url": web.url("/hook"), "events": EVENTS}}
            config["serving"] = serving
            path.write_text(yaml.safe_dump(config))
            monkeypatch.setenv("MLOPS_INCLUDE_DIR", str(include))
            monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
            return web

        yield write


@pytest.fixture
def service() -> Iterator[FakeService]:
    with fake_service() as running:
        yield running


def test_a_right_answer_is_up_a_wrong_one_is_down_and_notified(
    setup: Callable[..., Received], service: FakeService, lake: LocalStorage,
    make_operator: Callable[..., Any], make_context: Callable[..., Any], fake_mlflow: Any,
) -> None:  # fmt: skip
    web = setup(url=service.url)
    loaded: list[str] = []

    def load_model(model: str, version: str) -> TenureModel:
        loaded.append(version)
        return TenureModel(offset=0.0 if len(loaded) == 1 else 0.2)  # the second load: another model

    fake_mlflow.load_model = load_model
    first = make_operator(ProbeServiceOperator, task_id="probe").execute(make_context())
    later = {**make_context(), "run_id": "scheduled__2026-01-07T00:05:00+00:00"}
    second = make_operator(ProbeServiceOperator, task_id="probe").execute(later)

    assert first["up"] is True and first["model_version"] == "3" and first["alerts"] == []
    assert second["up"] is False and second["alerts"] == ["service_down"]
    assert second["status"] == "wrong answer: score 0.5, version 3 gives 0.7 offline" and loaded == ["3", "3"]
    [hook] = web.at("/hook")
    assert (hook["event"], hook["pipeline"], hook["day"]) == ("service_down", "churn", first["ds"])
    assert hook["title"] == f"serving service down: {second['status']}"
    assert hook["details"][1].startswith("last 30 min: 1 of 2 probes up")
    assert hook["links"]["Airflow run"].startswith(f"{BASE}/dags/churn_test/runs/")
    ids = [headers["x-request-id"] for _, headers, _ in service.requests]
    assert ids == ["probe-scheduled__2026-01-07T00:00:00+00:00", "probe-scheduled__2026-01-07T00:05:00+00:00"]


def test_without_mlflow_the_answer_is_judged_by_its_form_and_the_probe_still_records(
    setup: Callable[..., Received], service: FakeService, lake: LocalStorage,
    make_operator: Callable[..., Any], make_context: Callable[..., Any], fake_mlflow: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    setup(url=service.url)

    def unreachable(model: str, version: str) -> None:
        raise ConnectionError("MLflow is down")

    fake_mlflow.load_model = unreachable
    op = make_operator(ProbeServiceOperator, task_id="probe")
    answer = op.execute(make_context())

    assert answer["up"] is True
    logged = "".join(capfd.readouterr())  # Airflow's task logger writes to the process's streams
    assert "known answer of version 3 was not checked (ConnectionError: MLflow is down)" in logged
    assert "the probe was not logged to MLflow" in logged  # the fake registry has no runs
    probes = recent_probes(lake, op.pipeline, until=dt.datetime.now(dt.UTC), minutes=5)
    assert probes["up"].tolist() == [True] and probes["model_version"].tolist() == ["3"]


def test_the_service_is_found_through_the_serving_connection(
    setup: Callable[..., Received], service: FakeService, lake: LocalStorage,
    make_operator: Callable[..., Any], make_context: Callable[..., Any], fake_mlflow: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    setup()  # no serving.url
    fake_mlflow.load_model = lambda model, version: TenureModel()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SERVING_DEFAULT",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": service.port}),
    )
    assert make_operator(ProbeServiceOperator, task_id="probe").service_url() == service.url
    assert make_operator(ProbeServiceOperator, task_id="probe").execute(make_context())["up"] is True

    monkeypatch.setenv("AIRFLOW_CONN_SERVING_DEFAULT", json.dumps({"conn_type": "http"}))
    with pytest.raises(
        ValueError, match=r"no serving\.url in the YAML and connection 'serving_default' has no host"
    ):
        make_operator(ProbeServiceOperator, task_id="probe").service_url()


def test_online_decay_sends_performance_decay_with_the_figures(
    setup: Callable[..., Received], lake: LocalStorage, make_operator: Callable[..., Any],
    make_context: Callable[..., Any],
) -> None:  # fmt: skip
    web = setup()
    decay = {"model_version": "3", "auc": 0.61, "auc_drop": 0.2, "reference_auc": 0.81, "threshold": 0.03,
             "rows_labelled": 2000, "days": ["2026-02-25"], "decay": True}  # fmt: skip
    outcome = MonitorOutcome(
        "2026-02-26", "unconfirmed", "3", False, "no drift declared", report={"online": {"champion": decay}}
    )
    op = make_operator(MonitorDriftOperator, task_id="monitor")

    op._announce_decay(make_context(), outcome)
    op._announce_decay(make_context(), MonitorOutcome("2026-02-27", "no_drift", "3", False, "-", report={}))

    [hook] = web.at("/hook")
    assert (hook["event"], hook["day"], hook["version"]) == ("performance_decay", "2026-02-26", "3")
    assert hook["title"] == "online AUC of version 3 is 0.610, 0.200 below its reference"
    assert "2000 served rows labelled, served on 2026-02-25" in hook["details"]
    assert hook["links"]["Drift report"] == f"{BASE}/mlops/reports/churn/ds=2026-02-26/drift/drift.html"
