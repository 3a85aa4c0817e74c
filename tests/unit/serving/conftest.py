"""What the serving unit tests share: the demo pipeline, valid request rows and a fake model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.config.pipeline import Pipeline, load_pipeline

CHURN = Path(__file__).resolve().parents[3] / "include" / "pipelines" / "churn.yaml"


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    return load_pipeline(CHURN)


def record(**changes: Any) -> dict[str, Any]:
    """One valid churn row as a JSON client sends it (the key included)."""
    row = {
        "customer_id": 7,
        "tenure_months": 12,
        "monthly_charges": 50.5,
        "data_usage_gb": None,
        "support_calls": 1,
        "late_payments": 0,
        "plan": "basic",
        "contract": "monthly",
        "region": "north",
        "payment_method": "card",
        "autopay": True,
    }
    row.update(changes)
    return row


class FakeModel:
    """Scores a row by its tenure (a pyfunc's ``predict`` over ``model_input``); ``offset`` tells
    two versions apart. ``gate`` (an Event), when set, holds each prediction until it is set."""

    def __init__(self, offset: float = 0.0, gate: Any = None) -> None:
        self.offset, self.gate, self.calls = offset, gate, 0

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(10), "the test never released the prediction"
        assert frame.dtypes["tenure_months"] == "float64" and frame.dtypes["plan"] == "string"
        return np.clip(frame["tenure_months"].to_numpy() / 120 + self.offset, 0, 1)


SERVED_AT = dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC)
