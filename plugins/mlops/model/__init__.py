"""The logged model: the MLflow pyfunc that scores validated rows (``pyfunc``).

Registered versions pickle ``mlops.model.TabularModel``: the name resolves here, lazily (MLflow is
imported only when a model is loaded or logged).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)  # a sub-module not imported yet: the import system imports it
    pyfunc = importlib.import_module(f"{__name__}.pyfunc")

    try:
        return getattr(pyfunc, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
