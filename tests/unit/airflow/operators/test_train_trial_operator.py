"""TrainTrialOperator resolves the device on the worker that trains, never where ``prepare`` ran.

``prepare`` hands on the device asked for; these tests stub the trial host's GPU probes (visible
or hidden) and capture what the trial hands to ``experiment.train_trial`` and tags its run with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlops.airflow.operators.train import PLAN_KEY, TrainTrialOperator
from mlops.clock import window
from mlops.training import experiment
from mlops.training import fit as training
from mlops.training.plan import TrainingPlan, TrialResult, Trigger

PLAN = TrainingPlan(Trigger("schedule", "2026-01-11"), ["2026-01-05"], [], "parent", None, {}, {"t": "1"})


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_train_trial(client: Any, **kwargs: Any) -> TrialResult:
        seen.update(kwargs)
        return TrialResult(kwargs["trial"], "run-1", "models:/m-1", "m-1", 0.8, {"valid_auc": 0.8})

    monkeypatch.setattr(experiment, "train_trial", fake_train_trial)
    monkeypatch.setattr(window, "load_frames", lambda *a, **k: {})
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return seen


@pytest.mark.parametrize(
    ("asked", "gpu_on_trial_host", "device", "reason"),
    [
        pytest.param(
            "cuda", True, "cuda", "cuda: a GPU is visible and xgboost is built with CUDA", id="gpu-worker"
        ),
        pytest.param(
            "auto", True, "cuda", "auto: a GPU is visible and xgboost is built with CUDA", id="auto-gpu"
        ),
        pytest.param(
            "cuda", False, "cpu", "cuda requested but no GPU is visible; falling back to cpu", id="cpu-worker"
        ),
        pytest.param("cpu", True, "cpu", "cpu requested", id="cpu-asked"),
    ],
)
def test_the_trial_resolves_the_device_on_its_own_host(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    captured: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    asked: str,
    gpu_on_trial_host: bool,
    device: str,
    reason: str,
) -> None:
    monkeypatch.setattr(training, "gpu_hardware_visible", lambda: gpu_on_trial_host)
    monkeypatch.setattr(training, "xgboost_cuda_build", lambda: True)
    trial = {"trial": 0, "params": {"max_depth": 3}, "device": asked}
    operator = make_operator(TrainTrialOperator, task_id="train_trial", trial=trial)
    result = operator.execute(make_context(xcom={("prepare", PLAN_KEY): PLAN.to_dict()}))
    assert captured["device"] == device
    assert captured["tags"]["device"] == device and captured["tags"]["device.reason"] == reason
    assert captured["parent_run_id"] == "parent" and captured["tags"]["t"] == "1", "the plan, passed once"
    assert TrialResult.from_dict(result).run_id == "run-1"
    assert operator.mlflow_url.endswith("/#/runs/run-1")
