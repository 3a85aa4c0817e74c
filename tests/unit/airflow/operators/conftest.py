"""Operator tests: the real core and a real local lake, the boundary stubbed.

An operator builds its lake hook from ``mlops.settings.get_settings()``, so ``MLOPS_LAKE_ROOT``
points it at a ``LocalStorage`` under ``tmp_path``. MLflow is the boundary: the operator's
``mlflow`` cached property (an ``MlflowHook``) is replaced by ``FakeMlflow``, whose client keeps
model versions and their tags in memory and answers the few calls the registry code makes. The
Airflow context is a plain dict with ``SimpleNamespace`` stand-ins for ``ti`` and ``dag_run``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from mlops.airflow.hooks.mlflow import MlflowHook
from mlops.lake.storage import LocalStorage
from mlops.registry import signing
from mlops.registry.champion import Move, gate_tags
from mlops.registry.signing import SigningKey, VersionRef

PIPELINE = "churn"
RUN_ID = "scheduled__2026-01-07T00:00:00+00:00"
# The key the fake registry's records are signed with (the hook's ``signing_key``).
KEY = SigningKey.from_text("unit-test-signing-key", source="test")


class Page(list):
    """A page of ``search_model_versions``: the last one (no ``token``)."""

    token = None


class FakeClient:
    """The registry calls the operators make, over versions held in memory."""

    def __init__(self) -> None:
        self.versions: dict[str, SimpleNamespace] = {}
        self.aliases: dict[str, str] = {}

    def add(self, version: str, *, signed: bool = True, **tags: str) -> SimpleNamespace:
        """A version; ``signed`` gives it signature tags (their files are checked in test_signing)."""
        signature = (
            {signing.MANIFEST_TAG: "", signing.KEY_ID_TAG: "test", signing.SIGNATURE_TAG: "test"}
            if signed
            else {}
        )
        found = SimpleNamespace(version=str(version), tags={**signature, **tags}, run_id=f"run-{version}")
        self.versions[str(version)] = found
        return found

    def moved(
        self,
        version: str,
        effective_day: str,
        *,
        order: int = 0,
        kind: str = "promotion",
        previous: str | None = None,
    ) -> None:
        """Record a champion move on ``version`` with the signed tags ``move_champion`` writes."""
        move = Move(
            model=PIPELINE,
            version=str(version),
            previous=previous,
            reason="test",
            airflow_run_id="earlier-run",
            metrics={},
            effective_day=effective_day,
            order=order,
            kind=kind,
        )
        target = self.versions.get(str(version)) or self.add(str(version))
        target.tags.update(move.tags(KEY))
        self.aliases["champion"] = str(version)

    def gated(self, version: str, *, cleared: bool = True) -> None:
        """Record a signed gate decision on ``version``, as the gate does."""
        target = self.versions.get(str(version)) or self.add(str(version))
        ref = VersionRef(PIPELINE, target.version, target.run_id)
        target.tags.update(gate_tags(KEY, ref, cleared=cleared, decision="test"))

    def search_model_versions(self, filter_string: str, page_token: str | None = None) -> Page:
        return Page(self.versions.values())

    def get_model_version(self, model: str, version: str) -> SimpleNamespace:
        return self.versions[str(version)]

    def get_model_version_by_alias(self, model: str, alias: str) -> SimpleNamespace:
        return self.versions[self.aliases[alias]]

    def set_model_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        self.versions[str(version)].tags[key] = value


class FakeMlflow:
    """What the operators use of ``MlflowHook``; ``runs`` collects ``record_run`` calls."""

    tracking_uri = "http://mlflow.test"
    ui_url = "http://mlflow-ui.test"
    signing_key = KEY

    def __init__(self) -> None:
        self.client = FakeClient()
        self.reader = self.client  # the REST reader offers the same version search
        self.runs: list[dict[str, Any]] = []

    # The hook's own pure helpers: links from ``ui_url``, tags from the context.
    run_url = MlflowHook.run_url
    version_url = MlflowHook.version_url
    run_tags = staticmethod(MlflowHook.run_tags)

    def record_run(self, experiment: str, context: Any, **run: Any) -> str:
        self.runs.append({"experiment": experiment, **run})
        return self.run_url(f"run-{len(self.runs)}")

    def load_model(self, model: str, version: str) -> Any:
        from mlops.registry import signing

        return signing.load_model(self.tracking_uri, model, str(version), None)

    def verify_version(self, model: str, version: str) -> None:
        # A version the test did not add stands for a signed one.
        found = self.client.versions.get(str(version)) or self.client.add(str(version))
        if not signing.is_signed(found.tags):
            raise signing.UnverifiedModel(f"model {model} version {version} is unsigned")

    def reference(self, model: str, version: str) -> tuple[dict[str, Any], float | None]:
        return {"features": {}}, None


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStorage:
    """The lake the operators reach through their settings."""
    root = tmp_path / "lake"
    monkeypatch.setenv("MLOPS_LAKE_ROOT", str(root))
    return LocalStorage(root)


@pytest.fixture
def fake_mlflow() -> FakeMlflow:
    return FakeMlflow()


@pytest.fixture
def approval_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``approval_on(**settings)``: the operators read churn with ``promotion.approval`` on (and ``settings``)."""

    def write(**settings: Any) -> None:
        include = tmp_path / "include"
        shutil.copytree(
            Path(__file__).resolve().parents[4] / "include" / "pipelines",
            include / "pipelines",
            dirs_exist_ok=True,
        )
        path = include / "pipelines" / "churn.yaml"
        config = yaml.safe_load(path.read_text())
        config["promotion"]["approval"] = {"enabled": True, "timeout": "2h", **settings}
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("MLOPS_INCLUDE_DIR", str(include))

    return write


@pytest.fixture
def make_operator(lake: LocalStorage, fake_mlflow: FakeMlflow) -> Callable[..., Any]:
    """``make_operator(cls, **kwargs)``: an operator on the churn pipeline, the test lake and ``fake_mlflow``."""

    def make(cls: type, **kwargs: Any) -> Any:
        op = cls(task_id=kwargs.pop("task_id", "task"), pipeline=PIPELINE, **kwargs)
        op.mlflow = fake_mlflow  # the cached property, already "computed"
        return op

    return make


def context(
    *,
    run_type: str = "scheduled",
    logical: dt.datetime | None = dt.datetime(2026, 1, 7, tzinfo=dt.UTC),
    run_after: dt.datetime | None = None,
    params: dict[str, Any] | None = None,
    events: dict[Any, list[Any]] | None = None,
    partition_key: str | None = None,
    xcom: dict[tuple[str, str | None], Any] | None = None,
) -> dict[str, Any]:
    """An Airflow context as the operators read it; ``xcom`` maps ``(task_ids, key)`` to a value."""
    pulls = xcom or {}
    ti = SimpleNamespace(
        dag_id=f"{PIPELINE}_test",
        task_id="task",
        try_number=1,
        xcom_pull=lambda task_ids, key=None: pulls.get((task_ids, key)),
    )
    return {
        "dag_run": SimpleNamespace(
            run_type=run_type, run_after=run_after or logical, partition_key=partition_key, conf={}
        ),
        "logical_date": logical,
        "run_id": RUN_ID,
        "params": params or {},
        "triggering_asset_events": events or {},
        "ti": ti,
        "outlet_events": defaultdict(lambda: SimpleNamespace(extra={})),
    }


@pytest.fixture
def make_context() -> Callable[..., dict[str, Any]]:
    return context
