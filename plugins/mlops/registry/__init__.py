"""The model registry: registration, signed champion moves under a lock, verified model loading.

``champion`` registers versions and moves the ``champion`` alias by compare-and-set, with the signed
move history that says who was champion on which day; ``signing`` signs and verifies versions,
records and the files a trial uploaded, and loads only verified copies; ``rest`` reads the registry
over MLflow's REST API without importing MLflow. Pure Python, no Airflow import.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any


def __getattr__(name: str) -> Any:
    # ``mlops.registry`` was one module before it was a package: its names still resolve, from ``champion``.
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)  # a sub-module not imported yet: the import system imports it
    champion = importlib.import_module(f"{__name__}.champion")

    try:
        return getattr(champion, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
