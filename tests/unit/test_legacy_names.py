"""The flat layout's names still work for a release: old imports, old commands, old pickled paths."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import mlops

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


MODULES = sorted((old, new) for old, new in mlops.MOVED.items() if not old.endswith(".__main__"))
MODULES += [
    ("mlops.hooks.lake", "mlops.airflow.hooks.lake"),
    ("mlops.operators.train", "mlops.airflow.operators.train"),
]


@pytest.mark.parametrize(("old", "new"), MODULES)
def test_an_old_module_name_is_the_new_module_with_a_warning(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert [str(w.message) for w in caught if w.category is DeprecationWarning] == [
        f"{old} moved to {new}; the old name goes in the next release"
    ]


def test_the_names_of_a_module_that_became_a_package_still_resolve() -> None:
    from mlops.clock import shift
    from mlops.clock.logical import shift as new_shift
    from mlops.config import Pipeline, load_pipeline
    from mlops.config.pipeline import Pipeline as NewPipeline
    from mlops.config.pipeline import load_pipeline as new_load
    from mlops.lake import LocalStorage
    from mlops.lake.storage import LocalStorage as NewStorage
    from mlops.model import TabularModel
    from mlops.model.pyfunc import TabularModel as NewModel
    from mlops.onboard import draft_pipeline
    from mlops.onboard.draft import draft_pipeline as new_draft
    from mlops.registry import history
    from mlops.registry.champion import history as new_history
    from mlops.training import feature_frame
    from mlops.training.fit import feature_frame as new_frame

    assert (shift, Pipeline, load_pipeline, LocalStorage, TabularModel, draft_pipeline, history, feature_frame) == (
        new_shift, NewPipeline, new_load, NewStorage, NewModel, new_draft, new_history, new_frame,
    )  # fmt: skip
    with pytest.raises(AttributeError, match=r"module 'mlops\.config' has no attribute 'nothing'"):
        mlops.config.nothing  # noqa: B018


@pytest.mark.parametrize(
    ("old", "line"),
    [
        (["mlops.signing", "--help"], "python -m mlops.signing is deprecated: use python -m mlops signing"),
        (
            ["mlops.registry", "--help"],
            "python -m mlops.registry is deprecated: use python -m mlops registry",
        ),
        (
            ["mlops.scenario", "--help"],
            "python -m mlops.scenario is deprecated: use python -m mlops scenario",
        ),
        (
            ["mlops.validation", "suites", "--help"],
            "python -m mlops.validation is deprecated: use python -m mlops suites",
        ),
    ],
)
def test_an_old_command_runs_its_new_one_after_a_deprecation_line(old: list[str], line: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *old],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(PLUGINS)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines()[0] == line
    assert done.stdout.startswith("usage: python -m mlops ")
