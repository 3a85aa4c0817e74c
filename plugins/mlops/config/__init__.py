"""Pipeline configuration: one YAML file per pipeline, loaded into typed models (``pipeline``).

Owns the YAML keys, their defaults and limits, the per-pipeline config errors, and discovery of a
pipelines folder. Pure Python, no Airflow import; imported while DAG files parse, so it stays light.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any


def __getattr__(name: str) -> Any:
    # ``mlops.config`` was one module before it was a package: its names still resolve, from ``pipeline``.
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)  # a sub-module not imported yet: the import system imports it
    pipeline = importlib.import_module(f"{__name__}.pipeline")

    try:
        return getattr(pipeline, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
