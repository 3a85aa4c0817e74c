"""ScorePartitionsOperator: each day of the run scored by the champion as of that day."""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.airflow.operators.score import ScorePartitionsOperator
from mlops.config.pipeline import load_pipeline
from mlops.lake.storage import (
    LocalStorage,
    commit_partition,
    is_committed,
    partition_dir,
    read_manifest,
    read_partition,
)
from mlops.settings import get_settings
from mlops.tools.scenario import ScenarioConfig, generate_day

SCENARIO = ScenarioConfig(
    rows_per_day=40, bad_row_fraction=0.0, corrupt_day=None, missing_column_day=None, shift_start=None
)


@functools.cache
def day_parquet(ds: str) -> bytes:
    buffer = io.BytesIO()
    generate_day(SCENARIO, dt.date.fromisoformat(ds)).to_parquet(buffer, index=False)
    return buffer.getvalue()


def publish(lake: LocalStorage, *days: str) -> None:
    """Commit ``validated/ds=...`` for each day, as the ingest gate would."""
    for ds in days:
        commit_partition(lake, partition_dir("churn", "validated", ds), {"part.parquet": day_parquet(ds)})


class FakeModel:
    """A pyfunc model: the churn features as its signature, a constant score per version."""

    def __init__(self, version: str, features: list[str]) -> None:
        self.score = int(version) / 10
        self.metadata = SimpleNamespace(
            get_input_schema=lambda: SimpleNamespace(input_names=lambda: list(features))
        )

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), self.score)


@pytest.fixture(autouse=True)
def models(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``mlops.registry.signing.load_model`` without MLflow; returns the versions loaded, in order."""
    features = load_pipeline(get_settings().pipelines_dir / "churn.yaml").features
    loaded: list[str] = []

    def load_model(tracking_uri: str, model: str, version: str, key: object) -> FakeModel:
        assert (tracking_uri, model) == ("http://mlflow.test", "churn")
        loaded.append(version)
        return FakeModel(version, features)

    monkeypatch.setattr("mlops.registry.signing.load_model", load_model)
    return loaded


def validated_events(*days: str) -> dict[str, list[Any]]:
    return {"churn.validated": [SimpleNamespace(extra={"ds": ds}) for ds in days]}


# (version, effective day, order) of each recorded champion move
TWO_CHAMPIONS = [("1", "2026-01-05", 0), ("2", "2026-01-07", 0)]


@pytest.mark.parametrize(
    ("moves", "run", "expected"),
    [
        pytest.param(
            TWO_CHAMPIONS,
            {"run_type": "manual", "params": {"start_ds": "2026-01-05", "end_ds": "2026-01-08"}},
            {"2026-01-05": "1", "2026-01-06": "1", "2026-01-07": "2", "2026-01-08": "2"},
            id="rescored-range-splits-between-two-champions",
        ),
        pytest.param(
            TWO_CHAMPIONS,
            {
                "run_type": "asset_triggered",
                "logical": None,
                "events": validated_events("2026-01-08", "2026-01-04"),
            },
            {"2026-01-04": None, "2026-01-08": "2"},
            id="merged-events-day-before-any-champion-is-skipped",
        ),
        pytest.param(
            [("2", "2026-01-05", 0), ("3", "2026-01-06", 0), ("2", "2026-01-06", 2)],
            {"run_type": "manual", "params": {"start_ds": "2026-01-05", "end_ds": "2026-01-06"}},
            {"2026-01-05": "2", "2026-01-06": "2"},
            id="same-day-rollback-comes-after-the-promotion",
        ),
        pytest.param(
            TWO_CHAMPIONS,
            {
                "run_type": "manual",
                "params": {"start_ds": "2026-01-05", "end_ds": "2026-01-07", "model_version": 1},
            },
            {"2026-01-05": "1", "2026-01-06": "1", "2026-01-07": "1"},
            id="named-earlier-champion-overrides-the-champion",
        ),
        pytest.param(
            TWO_CHAMPIONS,
            {
                "run_type": "asset_triggered",
                "logical": None,
                "partition_key": "2026-01-06",
                "events": validated_events("2026-01-06"),
            },
            {"2026-01-06": "1"},
            id="run-for-one-validated-day-scores-its-partition-key",
        ),
        pytest.param(
            TWO_CHAMPIONS,
            {"logical": dt.datetime(2026, 1, 6, tzinfo=dt.UTC)},
            {"2026-01-06": "1"},
            id="scheduled-run-scores-its-logical-day",
        ),
    ],
)
def test_days_are_scored_by_the_champion_as_of_each_day(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    lake: LocalStorage,
    fake_mlflow: Any,
    models: list[str],
    moves: list[tuple[str, str, int]],
    run: dict[str, Any],
    expected: dict[str, str | None],
) -> None:
    for version, effective_day, order in moves:
        fake_mlflow.client.moved(
            version, effective_day, order=order, kind="rollback" if order == 2 else "promotion"
        )
    publish(lake, *expected)
    op = make_operator(ScorePartitionsOperator, task_id="score")

    results = op.execute(make_context(**run))

    scored = {ds: v for ds, v in expected.items() if v is not None}
    assert [(r["ds"], r["version"]) for r in results] == sorted(scored.items())
    for ds, version in expected.items():
        directory = partition_dir("churn", "predictions", ds)
        if version is None:
            assert not is_committed(lake, directory), f"{ds} had no champion but was scored"
            continue
        assert read_manifest(lake, directory).extra["model_version"] == version
        predictions = pd.read_parquet(io.BytesIO(read_partition(lake, directory)["part.parquet"]))
        assert set(predictions["model_version"]) == {version}
        assert np.allclose(predictions["score"], int(version) / 10)
        assert len(predictions) == len(pd.read_parquet(io.BytesIO(day_parquet(ds))))
    assert sorted(set(models)) == sorted(set(scored.values()))
    [recorded] = fake_mlflow.runs
    assert recorded["role"] == "scoring"
    assert recorded["tags"]["model_version"] == ",".join(sorted(set(scored.values()), key=int))
    assert recorded["tags"]["partitions"] == ",".join(sorted(scored))
    assert recorded["metrics"]["rows_scored"] == sum(r["rows"] for r in results)
    assert op.mlflow_url == "http://mlflow-ui.test/#/runs/run-1"


@pytest.mark.parametrize(
    "moves",
    [
        pytest.param([], id="no-champion-ever"),
        pytest.param([("1", "2026-01-09", 0)], id="first-champion-only-after-these-days"),
    ],
)
def test_a_run_with_no_champion_for_any_day_is_skipped(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    lake: LocalStorage,
    fake_mlflow: Any,
    moves: list[tuple[str, str, int]],
) -> None:
    for version, effective_day, order in moves:
        fake_mlflow.client.moved(version, effective_day, order=order)
    publish(lake, "2026-01-05", "2026-01-06")
    op = make_operator(ScorePartitionsOperator, task_id="score")

    with pytest.raises(AirflowSkipException, match="no champion as of 2026-01-05, 2026-01-06"):
        op.execute(make_context(run_type="manual", params={"start_ds": "2026-01-05", "end_ds": "2026-01-06"}))

    assert not lake.list_files("churn/predictions")
    assert fake_mlflow.runs == []


def test_a_missing_validated_partition_fails_naming_the_day(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    lake: LocalStorage,
    fake_mlflow: Any,
) -> None:
    fake_mlflow.client.moved("1", "2026-01-01")
    publish(lake, "2026-01-05")  # 2026-01-06 was never published
    op = make_operator(ScorePartitionsOperator, task_id="score")

    with pytest.raises(AirflowFailException, match=r"churn 2026-01-06: no validated partition to score"):
        op.execute(make_context(run_type="manual", params={"start_ds": "2026-01-05", "end_ds": "2026-01-06"}))

    assert fake_mlflow.runs == []  # the run failed: no scoring run recorded


def test_a_named_version_that_was_never_champion_is_refused(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    lake: LocalStorage,
    fake_mlflow: Any,
    models: list[str],
) -> None:
    """A signed version the gate rejected must not overwrite production's predictions."""
    fake_mlflow.client.moved("1", "2026-01-01")
    fake_mlflow.client.add("7")  # registered and signed, never promoted
    fake_mlflow.client.gated("7", cleared=False)
    publish(lake, "2026-01-05")
    op = make_operator(ScorePartitionsOperator, task_id="score")
    context = make_context(
        run_type="manual", params={"start_ds": "2026-01-05", "end_ds": "2026-01-05", "model_version": "7"}
    )

    with pytest.raises(
        AirflowFailException,
        match=r"churn: model_version 7 was never champion \(no signed promotion or rollback to it",
    ):
        op.execute(context)

    assert models == [] and fake_mlflow.runs == []
    assert not lake.list_files("churn/predictions")


def hand_set_promotion(fake_mlflow: Any, version: str, *, copied_from: str | None = None) -> None:
    """Promotion tags written on ``version`` by someone without the key: typed in, or copied."""
    target = fake_mlflow.client.versions.get(version) or fake_mlflow.client.add(version)
    if copied_from is not None:
        source = fake_mlflow.client.versions[copied_from].tags
        target.tags.update({k: v for k, v in source.items() if k.startswith("promotion.")})
        return
    target.tags.update(
        {
            "promotion.at": "2026-01-06T00:00:00.000000+00:00",
            "promotion.effective_day": "2026-01-06",
            "promotion.order": "0",
            "promotion.previous_champion": "1",
        }
    )


@pytest.mark.parametrize("copied", [False, True], ids=["typed-in", "copied-from-the-champion"])
def test_promotion_tags_without_a_valid_signature_decide_nothing(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    lake: LocalStorage,
    fake_mlflow: Any,
    models: list[str],
    copied: bool,
) -> None:
    fake_mlflow.client.moved("1", "2026-01-01")
    hand_set_promotion(fake_mlflow, "9", copied_from="1" if copied else None)
    publish(lake, "2026-01-06")
    op = make_operator(ScorePartitionsOperator, task_id="score")

    results = op.execute(make_context(logical=dt.datetime(2026, 1, 6, tzinfo=dt.UTC)))

    assert [(r["ds"], r["version"]) for r in results] == [("2026-01-06", "1")]
    assert models == ["1"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param(
            {"start_ds": "0001-01-01", "end_ds": "9999-12-30"},
            "is 3652058 day partitions; one run takes at most a year of them (365)",
            id="range-over-a-year",
        ),
        pytest.param(
            {"start_ds": "9999-12-31"}, "the day 9999-12-31 runs past 9999-12-31", id="calendar-end"
        ),
    ],
)
def test_a_range_it_cannot_process_fails_at_once_without_retries(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    fake_mlflow: Any,
    params: dict[str, str],
    message: str,
) -> None:
    fake_mlflow.client.moved("1", "2026-01-01")
    op = make_operator(ScorePartitionsOperator, task_id="score")

    with pytest.raises(AirflowFailException, match=re.escape(message)):
        op.execute(make_context(run_type="manual", params=params))

    assert fake_mlflow.runs == []
