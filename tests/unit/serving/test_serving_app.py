"""The HTTP application over a fake model: answers, refusals, readiness, metrics, served rows."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tests.unit.serving.conftest import FakeModel, record

from mlops.config.pipeline import Pipeline
from mlops.lake.batches import parquet_batches
from mlops.lake.storage import LocalStorage, partition_dir
from mlops.serving.app import Service, create_app
from mlops.serving.champion import ChampionHolder, Target
from mlops.serving.metrics import ServingMetrics
from mlops.serving.served import ServedWriter


class Registry:
    def __init__(self) -> None:
        self.target = Target(None, note="no signed champion move yet")
        self.models: dict[str, FakeModel] = {}

    def answer(self, _pipeline: str) -> Target:
        return self.target

    def load(self, _pipeline: str, version: str) -> FakeModel:
        return self.models.setdefault(version, FakeModel(offset=float(version) / 100))


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def lake(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path)


@pytest.fixture
def service(pipeline: Pipeline, registry: Registry, lake: LocalStorage) -> Service:
    metrics = ServingMetrics(["churn"])
    holder = ChampionHolder({"churn": 0.02}, target=registry.answer, load=registry.load, metrics=metrics)
    writer = ServedWriter(lake, pipeline, metrics=metrics)
    return Service(pipelines={"churn": pipeline}, holder=holder, metrics=metrics, writers={"churn": writer})


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as client:
        yield client


def promote(client: TestClient, registry: Registry, version: str) -> None:
    registry.target = Target(version, f"sig-{version}")
    deadline = time.monotonic() + 10
    while client.get("/ready").json()["models"].get("churn") != version:
        assert time.monotonic() < deadline, "the poll never put the version in force"
        time.sleep(0.01)


def metric(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_not_ready_and_503_until_a_champion_is_in_force(client: TestClient, registry: Registry) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json() == {"ready": False, "models": {}, "missing": {"churn": "no signed champion move yet"}}
    answer = client.post("/churn/predict", json=[record()])
    assert answer.status_code == 503 and "no verified champion" in answer.json()["detail"]
    promote(client, registry, "3")
    assert client.get("/ready").json() == {"ready": True, "models": {"churn": "3"}, "missing": {}}


def test_scores_name_the_version_and_echo_the_key(client: TestClient, registry: Registry) -> None:
    promote(client, registry, "3")
    answer = client.post(
        "/churn/predict", json={"records": [record(tenure_months=60), record(customer_id=9)]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "model_version": "3",
        "predictions": [
            {"score": pytest.approx(0.53), "label": 1, "customer_id": 7},
            {"score": pytest.approx(0.13), "label": 0, "customer_id": 9},
        ],
    }
    keyless = {k: v for k, v in record().items() if k != "customer_id"}
    csv = pd.DataFrame([keyless]).to_csv(index=False)
    answer = client.post(
        "/churn/predict", content=csv, headers={"Content-Type": "text/csv", "X-Request-ID": "abc"}
    )
    assert answer.status_code == 200 and answer.headers["X-Request-ID"] == "abc"
    assert answer.json()["predictions"] == [{"score": pytest.approx(0.13), "label": 0}]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        pytest.param([record(tenure_months=-5)], 422, [{"row": 0, "field": "tenure_months"}], id="bad-value"),
        pytest.param([record(), record(plan=3)], 422, [{"row": 1, "field": "plan"}], id="bad-category"),
        pytest.param({"records": "x"}, 400, None, id="not-rows"),
    ],
)
def test_bad_input_gets_a_4xx_never_a_500(
    client: TestClient, registry: Registry, body, status, detail
) -> None:
    promote(client, registry, "3")
    answer = client.post("/churn/predict", json=body)
    assert answer.status_code == status, answer.text
    if detail is not None:
        assert [{"row": d["row"], "field": d["field"]} for d in answer.json()["detail"]] == detail
    assert metric(client, "mlops_serving_requests_total", pipeline="churn", status=str(status)) == 1
    assert client.post("/sales/predict", json=[record()]).status_code == 404


def test_metrics_count_requests_rows_latency_and_the_version(client: TestClient, registry: Registry) -> None:
    promote(client, registry, "3")
    for _ in range(3):
        assert client.post("/churn/predict", json=[record(), record()]).status_code == 200
    client.post("/churn/predict", json=[record(plan="gold")])
    labels = {"pipeline": "churn", "model_version": "3"}
    assert metric(client, "mlops_serving_requests_total", status="200", **labels) == 3
    assert metric(client, "mlops_serving_requests_total", status="422", **labels) == 1
    assert metric(client, "mlops_serving_rows_total", **labels) == 6
    assert metric(client, "mlops_serving_request_seconds_count", **labels) == 4
    assert metric(client, "mlops_serving_request_seconds_sum", **labels) > 0
    assert metric(client, "mlops_serving_request_seconds_bucket", le="+Inf", **labels) == 4
    assert metric(client, "mlops_serving_model_version", pipeline="churn") == 3
    assert metric(client, "mlops_serving_model_loads_total", pipeline="churn", outcome="loaded") == 1
    promote(client, registry, "4")
    client.post("/churn/predict", json=[record()])
    assert (
        metric(client, "mlops_serving_requests_total", pipeline="churn", model_version="4", status="200") == 1
    )
    assert metric(client, "mlops_serving_model_version", pipeline="churn") == 4


def test_answered_rows_reach_the_served_zone_at_shutdown(
    service: Service, registry: Registry, lake: LocalStorage, pipeline: Pipeline
) -> None:
    with TestClient(create_app(service)) as client:
        promote(client, registry, "3")
        client.post(
            "/churn/predict",
            json=[record(customer_id=1), record(customer_id=2)],
            headers={"X-Request-ID": "r1"},
        )
        client.post("/churn/predict", json=[record(plan="gold")])  # refused: not kept
    days = [
        p.split("ds=")[1].split("/")[0] for p in lake.list_files("churn/served") if p.endswith("_SUCCESS")
    ]
    assert len(days) == 1
    rows = pd.concat(parquet_batches(lake, partition_dir("churn", "served", days[0])))
    assert rows["customer_id"].tolist() == [1, 2] and rows["_request_id"].tolist() == ["r1", "r1"]
    assert rows["_model_version"].tolist() == ["3", "3"] and rows["score"].tolist() == pytest.approx(
        [0.13, 0.13]
    )
