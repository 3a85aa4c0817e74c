"""An MLOps pipeline for tabular models on Apache Airflow 3.

The package map (``docs/architecture.md`` has a paragraph on each): ``config``, ``lake``,
``ingest``, ``training``, ``registry``, ``score``, ``monitor``, ``clock``, ``model`` and ``onboard``
are the core, pure Python without Airflow; ``airflow`` is the only part that knows Airflow (the DAG
kit, hooks, operators, notifications, the report pages' app); ``cli`` holds the ``python -m mlops``
commands; ``tools`` the preflight, the demo scenarios and the replay report. ``settings``, ``grain``,
``names`` and ``cost`` are leaf modules every layer may use.

Modules of the flat layout this package had before (``mlops.signing``, ``mlops.scenario``, ...) are
still found, for one release, as aliases of their new homes: ``import mlops.signing`` gives
``mlops.registry.signing`` with a ``DeprecationWarning``, and ``python -m mlops.signing ...`` runs
``python -m mlops signing ...`` after a line saying so. This file stays light: DAG files import it
while they parse.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any

# old module -> its new home
MOVED = {
    "mlops.report_pages": "mlops.lake.report_pages",
    "mlops.parsing": "mlops.ingest.parsing",
    "mlops.suite": "mlops.ingest.suite",
    "mlops.validation": "mlops.ingest.validation",
    "mlops.data_docs": "mlops.ingest.data_docs",
    "mlops.ingestion": "mlops.ingest.stage",
    "mlops.drift": "mlops.monitor.drift",
    "mlops.monitoring": "mlops.monitor.report",
    "mlops.drift_reports": "mlops.monitor.report_store",
    "mlops.drift_page": "mlops.monitor.page",
    "mlops.monitor_stage": "mlops.monitor.stage",
    "mlops.signing": "mlops.registry.signing",
    "mlops.registry_reader": "mlops.registry.rest",
    "mlops.window": "mlops.clock.window",
    "mlops.experiment": "mlops.training.experiment",
    "mlops.plan": "mlops.training.plan",
    "mlops.gate_stage": "mlops.training.gate",
    "mlops.promotion": "mlops.training.promotion",
    "mlops.approval": "mlops.training.review",
    "mlops.evaluation": "mlops.training.evaluation",
    "mlops.scoring": "mlops.score.batch",
    "mlops.pipeline_check": "mlops.onboard.check",
    "mlops.preflight": "mlops.tools.preflight",
    "mlops.stack_tools": "mlops.tools.stack",
    "mlops.scenario": "mlops.tools.scenario",
    "mlops.sensor_scenario": "mlops.tools.sensor_scenario",
    "mlops.report": "mlops.tools.replay_report",
    "mlops.dagkit": "mlops.airflow.dagkit",
    "mlops.notify": "mlops.airflow.notifications",
    "mlops.hooks": "mlops.airflow.hooks",
    "mlops.operators": "mlops.airflow.operators",
    # ``python -m mlops.registry``: the module became a package; runpy asks for its ``__main__``
    "mlops.registry.__main__": "mlops.cli.registry",
}
# old ``python -m`` module -> the command that replaces it (its first argument renamed, if any)
COMMANDS = {
    "mlops.signing": ("signing", {}),
    "mlops.validation": ("suites", {"suites": "write"}),
    "mlops.scenario": ("scenario", {}),
    "mlops.sensor_scenario": ("scenario sensors", {}),
    "mlops.report": ("report", {}),
    "mlops.preflight": ("preflight", {}),
    "mlops.stack_tools": ("stack-tools", {}),
    "mlops.registry.__main__": ("registry", {}),
}


def names_of(package: str, module: str) -> Callable[[str], Any]:
    """A package's ``__getattr__`` that resolves the names of the module the package replaced.

    ``mlops.config`` was one module before it was a package; ``from mlops.config import Pipeline``
    (old code, notebooks, pickled models naming ``mlops.model.TabularModel``) still works, and the
    module is imported only when such a name is asked for, so the package stays light to import.
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("__") or importlib.util.find_spec(f"{package}.{name}") is not None:
            raise AttributeError(name)  # a sub-module not imported yet: the import system imports it
        try:
            return getattr(importlib.import_module(f"{package}.{module}"), name)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return __getattr__


def new_name(old: str) -> str | None:
    """Where module ``old`` lives now: a moved module, or a module inside a moved package."""
    if old in MOVED:
        return MOVED[old]
    package = old.rpartition(".")[0]
    while package:
        if package in MOVED:
            return f"{MOVED[package]}.{old[len(package) + 1 :]}"
        package = package.rpartition(".")[0]
    return None


class _Alias(importlib.abc.Loader):
    """Loads an old name as the module at its new home (the same object, not a copy); as a
    ``python -m`` target, runs the command that replaced it."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{self.old} moved to {self.new}; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module at the new home is already executed

    def get_code(self, fullname: str) -> CodeType:
        command, renamed = COMMANDS.get(fullname, (None, {}))
        if command is None:
            raise ImportError(f"{fullname} is not a command; it moved to {self.new}")
        source = (
            "import sys\n"
            f"print('python -m {fullname.removesuffix('.__main__')} is deprecated: "
            f"use python -m mlops {command}', file=sys.stderr)\n"
            "from mlops.cli.main import main\n"
            f"args = [{renamed!r}.get(a, a) if i == 0 else a for i, a in enumerate(sys.argv[1:])]\n"
            f"sys.exit(main([*{command.split()!r}, *args]))\n"
        )
        return compile(source, f"<{fullname}>", "exec")


class _MovedModules(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None):
        new = new_name(fullname) if fullname.startswith("mlops.") else None
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(fullname, new), origin=new)


# First in line: a module inside a moved package (``mlops.hooks.lake``) would otherwise be found by
# the path finder in the package it is aliased to, and imported a second time under its old name.
if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())
