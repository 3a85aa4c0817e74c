"""The package's two layering rules, checked on every module rather than promised in docstrings.

1. Only ``mlops.airflow`` and ``mlops.cli`` import Airflow: every other module is imported in a
   fresh interpreter, which must end with no ``airflow`` module loaded.
2. Imports point down: no circle among the package's modules (function-level imports included),
   and no core module imports ``mlops.airflow`` or ``mlops.cli``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "mlops"
AIRFLOW_SIDE = ("mlops.airflow", "mlops.cli")


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # running it runs a command
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def core_modules() -> list[str]:
    return [n for n in module_names() if not n.startswith(AIRFLOW_SIDE)]


def test_no_core_module_imports_airflow() -> None:
    probe = (
        "import importlib, json, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PACKAGE.parent,
        env={"PYTHONPATH": str(PACKAGE.parent), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the core loaded Airflow: {loaded[:10]}"


def imports_of(name: str) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (function bodies included)."""
    known = set(module_names())
    path = PACKAGE.parent / (name.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlops"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mlops"))
    # A package's __init__ is imported by its modules' imports; it is not an edge of its own.
    return {m for m in found & known if m != name and not name.startswith(m + ".")}


def test_imports_form_no_circle_and_point_down() -> None:
    graph = {name: imports_of(name) for name in module_names()}
    upward = sorted(
        f"{name} -> {dep}"
        for name, deps in graph.items()
        if not name.startswith(AIRFLOW_SIDE) and name != "mlops"
        for dep in deps
        if dep.startswith(AIRFLOW_SIDE)
    )
    assert upward == [], upward

    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                circles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert circles == [], " | ".join(" -> ".join(c) for c in circles)


def test_at_most_eight_modules_stand_directly_in_the_package() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 8, top
