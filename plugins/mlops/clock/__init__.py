"""The logical clock: every stage acts as of its partition, never on the wall clock.

``logical`` says when a decision takes effect, in which order decisions fall, and whether the past
of a partition is settled (with the training records it reads); ``window`` is the as-of window of
validated partitions a training run reads. Pure Python, no Airflow import.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any


def __getattr__(name: str) -> Any:
    # ``mlops.clock`` was one module before it was a package: its names still resolve, from ``logical``.
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)  # a sub-module not imported yet: the import system imports it
    logical = importlib.import_module(f"{__name__}.logical")

    try:
        return getattr(logical, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
