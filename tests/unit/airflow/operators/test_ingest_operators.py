"""The ingest operators on a real landing folder and lake: the wait sensor's readiness rule, landing
that refuses what it must not copy, and the ``rows_quarantined`` notice, received by a real HTTP server."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import AirflowFailException
from tests.receivers import Received, http_server
from tests.unit.ingest.test_validation import churn_frame

from mlops.airflow.operators.ingest import (
    LandPartitionOperator,
    ValidatePartitionOperator,
    WaitForSourceSensor,
)

ROOT = Path(__file__).resolve().parents[4]
BASE = "http://airflow.example.test:8080"
DS = "2026-01-07"


@pytest.fixture
def include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``include(notifications=..., **source)``: the churn pipeline with ``source`` keys set, and its
    suite; returns the day's landing folder."""

    def make(notifications: dict[str, Any] | None = None, **source: Any) -> Path:
        from mlops.config.pipeline import load_pipeline
        from mlops.ingest.suite import write_suite

        target = tmp_path / "include"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ROOT / "include" / "pipelines", target / "pipelines")
        path = target / "pipelines" / "churn.yaml"
        config = yaml.safe_load(path.read_text())
        config["source"].update(source)
        if notifications:
            config["notifications"] = notifications
        path.write_text(yaml.safe_dump(config))
        write_suite(load_pipeline(path), target)
        monkeypatch.setenv("MLOPS_INCLUDE_DIR", str(target))
        monkeypatch.setenv("MLOPS_LANDING_ROOT", str(tmp_path / "landing"))
        return tmp_path / "landing" / "churn" / f"ds={DS}"

    return make


def day_csv(n: int = 1200, seed: int = 0, offset: int = 0) -> bytes:
    frame = churn_frame(n, seed=seed)
    frame["event_ts"] = frame["event_ts"].str.replace("2026-01-05", DS)
    frame["customer_id"] = (frame["customer_id"].astype(int) + offset).astype(str)
    return frame.to_csv(index=False).encode()


def put(folder: Path, name: str, data: bytes, *, age: float = 0.0) -> Path:
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    if age:
        os.utime(target, (time.time() - age, time.time() - age))
    return target


def test_the_sensor_waits_while_a_file_is_still_written_and_takes_it_once_unchanged(
    include: Callable[..., Path], make_operator: Callable[..., Any], make_context: Callable[..., Any]
) -> None:
    day = include(settle_seconds=600)
    sensor = make_operator(WaitForSourceSensor, task_id="wait_for_source")
    context = make_context()
    assert sensor.poke(context) is False and sensor.last_why == "no csv file yet"

    data = day_csv()
    target = put(day, "part-000.csv", data[:5000])  # the sensor fires while the copy runs
    assert sensor.poke(context) is False
    with target.open("ab") as handle:
        handle.write(data[5000:])
    assert sensor.poke(context) is False, "it changed since the previous poke"
    assert sensor.poke(context) is True
    assert sensor.last_why == "unchanged since the previous look"


def test_a_short_settle_period_is_waited_out_within_one_poke(
    include: Callable[..., Path], make_operator: Callable[..., Any], make_context: Callable[..., Any]
) -> None:
    day = include(settle_seconds=3)
    put(day, "part-000.csv", day_csv())
    sensor = make_operator(WaitForSourceSensor, task_id="wait_for_source")
    started = time.monotonic()
    assert sensor.poke(make_context()) is True
    assert time.monotonic() - started >= 2.5 and sensor.last_why == "unchanged since the previous look"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("part-001.csv.tmp", r"holds part-001\.csv\.tmp but pipeline churn reads csv"),
        ("link.csv", r"link\.csv is a symbolic link, and landing never follows a link"),
    ],
)
def test_the_sensor_and_landing_fail_naming_a_file_they_must_not_copy(
    tmp_path: Path,
    include: Callable[..., Path],
    make_operator: Callable[..., Any],
    make_context: Callable[..., Any],
    name: str,
    message: str,
) -> None:
    day = include(settle_seconds=60)
    put(day, "part-000.csv", day_csv(), age=120)
    if name == "link.csv":
        secret = put(tmp_path, "signing.key", b"-----BEGIN PRIVATE KEY-----\n")
        (day / name).symlink_to(secret)
        os.utime(day / name, (time.time() - 120,) * 2, follow_symlinks=False)
    else:
        put(day, name, b"half", age=120)
    with pytest.raises(AirflowFailException, match=message):
        make_operator(WaitForSourceSensor, task_id="wait_for_source").poke(make_context())
    with pytest.raises(AirflowFailException, match=message):
        make_operator(LandPartitionOperator, task_id="land").execute(make_context())


@pytest.fixture
def webhook(include: Callable[..., Path]) -> Iterator[tuple[Received, Path]]:
    with http_server() as web:
        notifications = {"webhook": {"url": web.url("/hook"), "events": ["rows_quarantined"]}}
        yield web, include(notifications=notifications)


def ingest(make_operator: Callable[..., Any], context: dict[str, Any]) -> None:
    make_operator(LandPartitionOperator, task_id="land").execute(context)
    make_operator(ValidatePartitionOperator, task_id="validate").execute(context)


def test_rows_quarantined_names_the_keys_two_files_share(
    webhook: tuple[Received, Path],
    make_operator: Callable[..., Any],
    make_context: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web, day = webhook
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
    put(day, "a.csv", day_csv(700, seed=1))
    put(day, "b.csv", day_csv(600, seed=2, offset=690))  # 10 customers in both files
    ingest(make_operator, make_context())

    [hook] = web.at("/hook")
    assert (hook["event"], hook["day"]) == ("rows_quarantined", DS)
    assert hook["title"] == f"day {DS}: 20 of 1300 rows quarantined (1.54%)"
    assert hook["details"][-1] == (
        "10 customer_id values are in each of a.csv, b.csv (duplicated keys are quarantined; the "
        "first: row 691 of a.csv, row 1 of b.csv)"
    )
    assert hook["links"]["Data Docs"] == f"{BASE}/mlops/reports/churn/ds={DS}/data_docs.html"


def test_a_clean_day_sends_no_quarantine_notice(
    webhook: tuple[Received, Path], make_operator: Callable[..., Any], make_context: Callable[..., Any]
) -> None:
    web, day = webhook
    put(day, "part-000.csv", day_csv())
    ingest(make_operator, make_context())
    assert web.at("/hook") == []
