"""The lake: partitions on local disk or S3 behind one ``Storage`` interface, committed atomically.

``storage``: the layout (``<pipeline>/<zone>/ds=<key>/``), the manifest commit protocol and the
readers every stage uses. ``report_pages``: which committed report files may be served over HTTP
and under which headers, and the links that point to them. Pure Python, no Airflow import.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any


def __getattr__(name: str) -> Any:
    # ``mlops.lake`` was one module before it was a package: its names still resolve, from ``storage``.
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)  # a sub-module not imported yet: the import system imports it
    storage = importlib.import_module(f"{__name__}.storage")

    try:
        return getattr(storage, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
