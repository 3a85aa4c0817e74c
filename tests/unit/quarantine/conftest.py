"""A gated day with known bad rows, and the demo pipeline with fixes, for the quarantine tests.

The day is the churn schema's clean frame (``churn_frame``) with three kinds of defect put in by row:
a plan level the config does not know (``platinum``), text in a number (``N/A`` tenure) and a charge
in cents (above ``max: 500``). It is landed and gated for real (GX runs the committed suite).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.unit.ingest.test_validation import END, INCLUDE, START, churn_frame

from mlops.config.pipeline import Pipeline, parse_pipeline
from mlops.ingest.stage import gate, land
from mlops.ingest.suite import load_suite
from mlops.lake.storage import LocalStorage

DS = START.date().isoformat()
PLATINUM = [3, 10, 20]
NOT_A_NUMBER = [5, 30]
IN_CENTS = [40]
BAD = sorted(PLATINUM + NOT_A_NUMBER + IN_CENTS)
FIXES = {
    "plan_renamed": [{"column": "plan", "map": {"platinum": "premium"}}],
    "charges_in_cents": [{"column": "monthly_charges", "scale": 0.01}],
}


def with_fixes(fixes: dict | None = None, **changes) -> Pipeline:
    """The demo pipeline as YAML would give it, with ``fixes`` (default ``FIXES``) and other keys."""
    data = yaml.safe_load((INCLUDE / "pipelines" / "churn.yaml").read_text())
    data["fixes"] = FIXES if fixes is None else fixes
    data.update(changes)
    return parse_pipeline(data, source="churn.yaml")


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return with_fixes()


@pytest.fixture(scope="module")
def suite(pipeline: Pipeline) -> dict:
    return load_suite(pipeline, INCLUDE)


def bad_day(n: int = 1200) -> pd.DataFrame:
    frame = churn_frame(n)
    frame.loc[PLATINUM, "plan"] = "platinum"
    frame.loc[NOT_A_NUMBER, "tenure_months"] = "N/A"
    frame.loc[IN_CENTS, "monthly_charges"] = "4999"
    return frame


def ingest_day(base: Path, pipeline: Pipeline, suite: dict, frames: dict[str, pd.DataFrame]) -> LocalStorage:
    """Land ``frames`` (file name -> rows) as the day's files and gate them; the lake."""
    for name, frame in frames.items():
        target = base / "landing" / f"ds={DS}" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(target, index=False)
    landing, lake = LocalStorage(base / "landing"), LocalStorage(base / "lake")
    land(landing, lake, pipeline, DS)
    gate(lake, pipeline, suite, DS, interval_start=START, interval_end=END)
    return lake


@pytest.fixture
def lake(tmp_path: Path, pipeline: Pipeline, suite: dict) -> LocalStorage:
    """The bad day in two landed files (rows 0-599 in a.csv, 600-1199 in b.csv), gated."""
    day = bad_day()
    return ingest_day(tmp_path, pipeline, suite, {"a.csv": day.iloc[:600], "b.csv": day.iloc[600:]})
