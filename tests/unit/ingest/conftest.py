"""The demo pipeline and its committed suite, shared by the ingest tests (read-only: module scope)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.config.pipeline import Pipeline, load_pipeline
from mlops.ingest.suite import load_suite

INCLUDE = Path(__file__).resolve().parents[3] / "include"


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return load_pipeline(INCLUDE / "pipelines" / "churn.yaml")


@pytest.fixture(scope="module")
def suite(pipeline: Pipeline) -> dict:
    return load_suite(pipeline, INCLUDE)
