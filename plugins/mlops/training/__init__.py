"""Training: the window split, XGBoost on CPU or GPU, MLflow runs, the gate, promotion and review.

``fit`` (features, time split, device, XGBoost), ``experiment`` (one MLflow parent run and its
trials), ``plan`` (the contracts between a train run's tasks), ``evaluation`` (holdout metrics),
``gate`` (challenger against champion), ``promotion`` (the pure promotion rule), ``review`` (what an
approver sees and what their answer records). Pure Python, no Airflow import.

Named ``training`` rather than ``train`` because registered models import ``mlops.training``: the
names of the old ``mlops.training`` module resolve here, lazily, so such a model still loads.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any


def __getattr__(name: str) -> Any:
    # The module this package replaced: its names, for models pickled against it. Lazy, so that
    # importing the package (DAG parsing does, through its sub-modules) imports no XGBoost.
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)  # a sub-module not imported yet: the import system imports it
    fit = importlib.import_module(f"{__name__}.fit")

    try:
        return getattr(fit, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
