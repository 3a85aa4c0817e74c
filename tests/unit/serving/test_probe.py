"""The availability probe against a real HTTP server on loopback, recorded in a real lake on local disk."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.fake_service import FakeService, contract_answer, fake_service, tenure_score

from mlops.config.pipeline import Pipeline, ServingSlo, load_pipeline
from mlops.index.records import IndexReader
from mlops.lake.storage import LocalStorage, read_manifest
from mlops.serving.probe import (
    PROBE_REQUEST_PREFIX,
    ProbeResult,
    alerts,
    check_answer,
    nearest_rank,
    probe_dir,
    probe_row,
    probe_service,
    read_answer,
    recent_probes,
    record_probe,
    run_probe,
    slo_status,
)

ROOT = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2026, 3, 2, 23, 50, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def churn() -> Pipeline:
    return load_pipeline(ROOT / "include" / "pipelines" / "churn.yaml")


@pytest.fixture
def service() -> Iterator[FakeService]:
    with fake_service() as running:
        yield running


@pytest.fixture
def lake(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "lake")


def test_the_probe_row_is_a_valid_row_of_the_schema_without_the_key(churn: Pipeline) -> None:
    row = probe_row(churn)

    assert list(row) == churn.features and churn.key not in row
    for name, value in row.items():
        column = churn.columns[name]
        if column.type == "category":
            assert value in column.values
        elif column.type == "bool":
            assert value is False
        else:
            assert isinstance(value, int if column.type == "int" else float)
            assert (column.min is None or value >= column.min) and (column.max is None or value <= column.max)
    assert row["tenure_months"] == 60 and row["monthly_charges"] == 250.0  # the middle of the range
    assert probe_row(churn) == row  # the same row every time: its answer is known


def test_an_int_feature_with_fractional_bounds_stays_inside_them(churn: Pipeline) -> None:
    columns = dict(churn.columns)
    columns["support_calls"] = columns["support_calls"].model_copy(update={"min": 2.5, "max": 3.4})
    row = probe_row(churn.model_copy(update={"columns": columns}))

    assert row["support_calls"] == 3


def test_a_contract_answer_is_up_with_its_latency_and_version(churn: Pipeline, service: FakeService) -> None:
    result = probe_service(service.url, churn, request_id="probe-run-1")

    assert result.up and result.status == "200" and result.model_version == "3"
    assert result.score == pytest.approx(tenure_score(probe_row(churn)))
    assert 0 < result.latency_ms < 5000
    [(path, headers, body)] = service.requests
    assert path == "/churn/predict" and body == {"records": [probe_row(churn)]}
    assert headers["x-request-id"] == "probe-run-1"


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        pytest.param(500, {"detail": "boom"}, "HTTP 500", id="server-error"),
        pytest.param(503, {"detail": "no champion"}, "HTTP 503", id="not-ready"),
        pytest.param(200, b"<html>", "wrong answer (HTTP 200): the answer is not JSON", id="not-json"),
        pytest.param(200, {"predictions": [{"score": 0.1, "label": 0}]}, "names no model_version", id="no-version"),
        pytest.param(200, {"model_version": "3", "predictions": []}, "one prediction", id="no-prediction"),
        pytest.param(200, {"model_version": "3", "predictions": [{"score": 1.5, "label": 1}]}, "not a probability", id="score-out-of-range"),
        pytest.param(200, {"model_version": "3", "predictions": [{"score": "0.2", "label": 0}]}, "not a probability", id="score-as-text"),
        pytest.param(200, {"model_version": "3", "predictions": [{"score": 0.9, "label": 0}]}, "label 0 is not the one", id="label-against-threshold"),
    ],
)  # fmt: skip
def test_an_error_or_a_malformed_answer_is_down_with_the_reason(
    churn: Pipeline, service: FakeService, status: int, answer: object, expected: str
) -> None:
    service.answer = lambda path, body: (status, answer)

    result = probe_service(service.url, churn, request_id="probe-x")

    assert not result.up and result.latency_ms is None and result.model_version is None
    assert expected in result.status


def test_a_stopped_service_and_a_slow_one_are_down(churn: Pipeline, service: FakeService) -> None:
    service.answer = contract_answer(delay_s=1.0)
    slow = probe_service(service.url, churn, request_id="probe-slow", timeout_s=0.3)
    service.stop()
    stopped = probe_service(service.url, churn, request_id="probe-stopped")

    assert not slow.up and slow.status.startswith("unreachable:") and "timed out" in slow.status
    assert not stopped.up and stopped.status.startswith("unreachable:") and stopped.latency_ms is None


def test_the_known_answer_holds_the_score_to_the_versions_offline_one() -> None:
    result = ProbeResult(T0, True, 12.0, "3", "200", 0.5)

    assert check_answer(result, 0.5 + 1e-9) == result
    assert check_answer(result, None) == result  # nothing to hold it to: judged by its form
    wrong = check_answer(result, 0.25)
    assert not wrong.up and wrong.latency_ms is None
    assert wrong.status == "wrong answer: score 0.5, version 3 gives 0.25 offline"
    with pytest.raises(ValueError, match="label"):
        read_answer(
            json.dumps({"model_version": 3, "predictions": [{"score": 0.5, "label": 0}]}).encode(), 0.5
        )


def probe_at(
    minutes: float, *, up: bool = True, latency: float = 20.0, version: str | None = "3"
) -> ProbeResult:
    at = T0 + dt.timedelta(minutes=minutes)
    if up:
        return ProbeResult(at, True, latency, version, "200", 0.5)
    return ProbeResult(at, False, None, None, "unreachable: refused")


def test_probes_are_committed_part_by_part_and_a_retry_replaces_its_own(
    churn: Pipeline, lake: LocalStorage
) -> None:
    assert record_probe(lake, churn, probe_at(0), airflow_run_id="run-a") == "2026-03-02"
    record_probe(lake, churn, probe_at(5, up=False), airflow_run_id="run-b")
    # The retry of run-b, a minute later: it replaces run-b's probe, not adds one.
    record_probe(lake, churn, probe_at(6, latency=40.0), airflow_run_id="run-b")

    manifest = read_manifest(lake, probe_dir("churn", "2026-03-02"))
    assert manifest.extra["rows"] == 2 and len(manifest.files) == 2
    assert sorted(manifest.extra["runs"].values()) == ["run-a", "run-b"]
    assert manifest.extra["next"] == 3  # part numbers never repeat
    probes = recent_probes(lake, churn, until=T0 + dt.timedelta(minutes=6), minutes=30)
    assert list(probes.columns) == [
        "_probed_at",
        "up",
        "latency_ms",
        "model_version",
        "status",
        "airflow_run_id",
    ]
    assert probes["airflow_run_id"].tolist() == ["run-a", "run-b"]
    assert probes["latency_ms"].tolist() == [20.0, 40.0] and probes["up"].tolist() == [True, True]
    assert str(probes["_probed_at"].dtype) == "datetime64[us, UTC]"
    # The day's summary in the lake's index (what the Models view draws), the retry counted once.
    record_probe(lake, churn, probe_at(8, up=False), airflow_run_id="run-c")
    summary = IndexReader(lake).read("churn")["2026-03-02"]["probe"]
    assert (summary["probes"], summary["up"], summary["availability"]) == (3, 2, 2 / 3)
    assert (summary["p50_ms"], summary["p95_ms"]) == (20.0, 40.0)


def test_the_window_spans_partitions_and_leaves_older_probes_out(churn: Pipeline, lake: LocalStorage) -> None:
    for i, minutes in enumerate([-40, -20, 0, 15, 25]):  # 23:10 .. 00:15 (the next day)
        record_probe(lake, churn, probe_at(minutes, latency=10.0 * (i + 1)), airflow_run_id=f"run-{i}")

    window = recent_probes(lake, churn, until=T0 + dt.timedelta(minutes=25), minutes=30)

    assert window["latency_ms"].tolist() == [30.0, 40.0, 50.0]  # 23:50 (day 1), 00:05 and 00:15 (day 2)
    assert read_manifest(lake, probe_dir("churn", "2026-03-03")).extra["rows"] == 2
    assert recent_probes(lake, churn, until=T0 - dt.timedelta(hours=5), minutes=30).empty


def test_the_slo_status_is_the_availability_and_the_nearest_rank_p95() -> None:
    slo = ServingSlo(p95_ms=100, availability=0.99, window_minutes=30)
    probes = frame(
        [probe_at(0, latency=10), probe_at(5, latency=300), probe_at(10, up=False), probe_at(15, latency=50)]
    )

    status = slo_status(probes, slo)

    assert (status.probes, status.up, status.availability) == (4, 3, 0.75)
    assert status.p95_ms == 300 and status.latency_breached and status.availability_breached
    assert nearest_rank([float(v) for v in range(1, 101)], 0.95) == 95.0 and nearest_rank([], 0.95) is None
    assert slo_status(frame([]), slo).availability is None


def frame(results: list[ProbeResult]) -> pd.DataFrame:
    from mlops.serving.probe import _frame

    parts = [_frame(r, f"run-{i}") for i, r in enumerate(results)]
    return pd.concat(parts, ignore_index=True) if parts else _frame(probe_at(0), "").iloc[0:0]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        pytest.param([], ["service_down"], id="first-probe-down"),
        pytest.param([probe_at(0)], ["service_down"], id="up-then-down"),
        pytest.param([probe_at(0), probe_at(5, up=False)], [], id="still-down"),
    ],
)
def test_service_down_is_sent_when_it_starts(history: list[ProbeResult], expected: list[str]) -> None:
    slo = ServingSlo()
    now = probe_at(10, up=False)

    found = alerts(now, frame([*history, now]), slo)

    assert [a.event for a in found] == expected
    if found:
        assert found[0].title == "serving service down: unreachable: refused"
        up = sum(p.up for p in history)
        assert found[0].details[0].startswith(f"last 30 min: {up} of {len(history) + 1} probes up")


def test_slo_breached_is_sent_when_the_p95_goes_over_not_while_it_stays_over() -> None:
    slo = ServingSlo(p95_ms=100)
    fast = [probe_at(0, latency=20), probe_at(5, latency=30)]

    first = alerts(slow := probe_at(10, latency=400), frame([*fast, slow]), slo)
    again = alerts(slower := probe_at(15, latency=500), frame([*fast, slow, slower]), slo)
    within = alerts(ok := probe_at(10, latency=90), frame([*fast, ok]), slo)

    assert [a.event for a in first] == ["slo_breached"]
    assert first[0].title == "serving p95 latency 400 ms over the 100 ms SLO"
    assert again == [] and within == []


def test_run_probe_records_up_then_down_and_alerts_on_the_outage(
    churn: Pipeline, lake: LocalStorage, service: FakeService
) -> None:
    offline = tenure_score(probe_row(churn))
    asked: list[str] = []

    def expected(version: str) -> float:
        asked.append(version)
        return offline

    up = run_probe(lake, churn, service.url, airflow_run_id="run-1", expected=expected)
    service.stop()
    down = run_probe(lake, churn, service.url, airflow_run_id="run-2", expected=expected)

    assert up.result.up and up.alerts == [] and asked == ["3"]
    assert service.requests[0][1]["x-request-id"] == f"{PROBE_REQUEST_PREFIX}run-1"
    assert not down.result.up and [a.event for a in down.alerts] == ["service_down"]
    assert (down.window.probes, down.window.up) == (2, 1) and down.window.p95_ms == up.result.latency_ms
    probes = recent_probes(lake, churn, until=down.result.probed_at, minutes=30)
    assert probes["up"].tolist() == [True, False]
    assert probes["latency_ms"].isna().tolist() == [False, True]
    assert probes["model_version"].tolist() == ["3", None]


def test_run_probe_counts_a_wrong_known_answer_as_down(
    churn: Pipeline, lake: LocalStorage, service: FakeService
) -> None:
    outcome = run_probe(lake, churn, service.url, airflow_run_id="run-1", expected=lambda version: 0.01)

    assert not outcome.result.up and outcome.result.status.startswith("wrong answer: score 0.5")
    assert [a.event for a in outcome.alerts] == ["service_down"]
