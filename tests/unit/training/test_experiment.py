"""The dataset input of a trial survives the insert race parallel trials run into on PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from mlops.training import experiment

RACE = MlflowException(
    '(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "dataset_pk"'
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(experiment.time, "sleep", lambda _seconds: None)
    return []


def _log_input_failing(times: int, error: Exception, calls: list[str]):
    def log_input(dataset, context: str, tags: dict[str, str]) -> None:
        calls.append(context)
        if len(calls) <= times:
            raise error

    return log_input


def test_a_lost_race_is_retried(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    import mlflow

    monkeypatch.setattr(mlflow, "log_input", _log_input_failing(1, RACE, calls))
    experiment._log_dataset(pd.DataFrame({"x": [1, 2]}), {"source": "s3://lake/x", "partitions": "a"})
    assert calls == ["training", "training"]


def test_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    import mlflow

    monkeypatch.setattr(
        mlflow, "log_input", _log_input_failing(1, MlflowException("permission denied"), calls)
    )
    with pytest.raises(MlflowException, match="permission denied"):
        experiment._log_dataset(pd.DataFrame({"x": [1]}), {})
    assert calls == ["training"]


def test_a_race_that_keeps_failing_raises(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    import mlflow

    monkeypatch.setattr(mlflow, "log_input", _log_input_failing(10, RACE, calls))
    with pytest.raises(MlflowException, match="dataset_pk"):
        experiment._log_dataset(pd.DataFrame({"x": [1]}), {}, attempts=3)
    assert len(calls) == 3
