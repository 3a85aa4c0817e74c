"""The champion holder: what the signed history names, loaded off the request path, swapped whole."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from tests.unit.registry.test_champion import KEY, Versions, move
from tests.unit.serving.conftest import FakeModel

from mlops.registry.signing import SIGNATURE_TAG, UnverifiedModel
from mlops.serving.champion import ChampionHolder, Target, champion_target
from mlops.serving.metrics import ServingMetrics


class Registry(Versions):
    """The two calls ``champion_target`` makes: the version search and the alias."""

    def __init__(self, *moves, alias: str | None) -> None:
        super().__init__(*moves)
        self.alias = alias
        for found in self.versions.values():
            found.tags[SIGNATURE_TAG] = f"sig-{found.version}"

    def alias_version(self, model: str, alias: str) -> str | None:
        assert (model, alias) == ("churn", "champion")
        return self.alias


def test_the_champion_is_the_newest_signed_move_when_the_alias_agrees() -> None:
    registry = Registry(
        move("1", None, "2026-01-12"),
        move("2", "1", "2026-01-19"),
        move("1", "2", "2026-01-20", order=2, kind="rollback"),
        alias="1",
    )
    assert champion_target(registry, "churn", KEY) == Target("1", signature="sig-1")


def test_no_champion_while_the_alias_and_the_history_disagree() -> None:
    registry = Registry(move("1", None, "2026-01-12"), move("2", "1", "2026-01-19"), alias="1")
    target = champion_target(registry, "churn", KEY)
    assert target.version is None and "names version 2 champion, the alias 1" in target.note


def test_a_move_whose_signature_does_not_verify_decides_nothing() -> None:
    registry = Registry(move("1", None, "2026-01-12"), move("2", "1", "2026-01-19"), alias="2")
    registry.versions["2"].tags["promotion.reason"] = "edited by hand"
    target = champion_target(registry, "churn", KEY)
    assert target.version is None and "names version 1 champion, the alias 2" in target.note
    assert champion_target(Registry(alias=None), "churn", KEY).note.startswith(
        "churn: no signed champion move"
    )


class Script:
    """A registry answer and loads scripted by the test; counts the loads."""

    def __init__(self) -> None:
        self.target = Target(None, note="nothing yet")
        self.refuse: set[str] = set()
        self.fail: set[str] = set()
        self.loads: list[str] = []

    def answer(self, _pipeline: str) -> Target:
        if isinstance(self.target, Exception):
            raise self.target
        return self.target

    def load(self, _pipeline: str, version: str) -> FakeModel:
        self.loads.append(version)
        if version in self.refuse:
            raise UnverifiedModel(f"model churn version {version}: artifact file x was altered after signing")
        if version in self.fail:
            raise OSError("the artifact store is away")
        return FakeModel(offset=float(version))


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def metrics() -> ServingMetrics:
    return ServingMetrics(["churn"])


@pytest.fixture
def holder(script: Script, metrics: ServingMetrics) -> ChampionHolder:
    return ChampionHolder({"churn": 0.01}, target=script.answer, load=script.load, metrics=metrics)


def value(metrics: ServingMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_new_champion_is_loaded_then_put_in_force_whole(
    holder: ChampionHolder, script: Script, metrics: ServingMetrics
) -> None:
    assert holder.refresh("churn") == "unsettled" and holder.get("churn") is None
    assert holder.missing() == {"churn": "nothing yet"}
    script.target = Target("1", "sig-1")
    assert holder.refresh("churn") == "loaded"
    in_flight = holder.get("churn")  # what a request read at its start
    script.target = Target("2", "sig-2")
    assert holder.refresh("churn") == "loaded"
    assert (in_flight.version, in_flight.model.offset) == ("1", 1.0)  # it finishes on version 1
    assert holder.get("churn").version == "2" and holder.missing() == {}
    assert holder.refresh("churn") == "unchanged" and script.loads == ["1", "2"]
    assert value(metrics, "mlops_serving_model_loads_total", pipeline="churn", outcome="loaded") == 2
    assert value(metrics, "mlops_serving_model_version", pipeline="churn") == 2


def test_a_version_that_fails_verification_never_serves(
    holder: ChampionHolder, script: Script, metrics: ServingMetrics
) -> None:
    script.target = Target("1", "sig-1")
    holder.refresh("churn")
    script.refuse.add("2")
    script.target = Target("2", "sig-2")
    assert holder.refresh("churn") == "unverified"
    assert holder.refresh("churn") == "refused"  # not downloaded again at every poll
    assert holder.get("churn").version == "1" and script.loads == ["1", "2"]
    assert value(metrics, "mlops_serving_model_loads_total", pipeline="churn", outcome="unverified") == 1
    assert value(metrics, "mlops_serving_model_version", pipeline="churn") == 1
    script.refuse.clear()
    script.target = Target("2", "sig-2-resigned")  # re-signed: tried again
    assert holder.refresh("churn") == "loaded" and holder.get("churn").version == "2"


def test_an_unverified_first_champion_leaves_the_service_not_ready(
    holder: ChampionHolder, script: Script
) -> None:
    script.refuse.add("1")
    script.target = Target("1", "sig-1")
    holder.refresh("churn")
    assert holder.get("churn") is None
    assert "version 1 does not verify" in holder.missing()["churn"]


def test_a_failed_load_or_an_unreachable_registry_keeps_the_version_in_force(
    holder: ChampionHolder, script: Script, metrics: ServingMetrics
) -> None:
    script.target = Target("1", "sig-1")
    holder.refresh("churn")
    script.fail.add("2")
    script.target = Target("2", "sig-2")
    assert holder.refresh("churn") == "failed" and holder.refresh("churn") == "failed"  # retried
    assert value(metrics, "mlops_serving_model_loads_total", pipeline="churn", outcome="failed") == 2
    script.target = ConnectionError("MLflow at http://x is unreachable")
    assert holder.refresh("churn") == "registry"
    script.target = Target(None, note="a move in progress")
    assert holder.refresh("churn") == "unsettled"
    assert holder.get("churn").version == "1"


def test_readers_never_see_a_gap_while_the_poll_thread_swaps(holder: ChampionHolder, script: Script) -> None:
    script.target = Target("1", "sig-1")
    holder.refresh("churn")
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            loaded = holder.get("churn")
            seen.append(loaded.version)
            assert loaded.model.offset == float(loaded.version)  # a version and its own model

    reader = threading.Thread(target=read)
    reader.start()
    holder.start()
    try:
        for version in ("2", "3", "4"):
            script.target = Target(version, f"sig-{version}")
            for _ in range(500):
                if holder.get("churn").version == version:
                    break
                threading.Event().wait(0.01)
        for _ in range(500):  # on a busy machine the reader may not have run since the last swap
            if seen and seen[-1] == "4":
                break
            threading.Event().wait(0.01)
    finally:
        done.set()
        reader.join(5)
        holder.stop()
    assert holder.get("churn").version == "4"
    assert "1" in seen and "4" in seen and seen == sorted(seen, key=int)  # in order, never None


def test_the_poll_thread_survives_a_failing_poll(holder: ChampionHolder, script: Script) -> None:
    script.target = SimpleNamespace()  # not a Target: refresh fails with AttributeError
    holder.start()
    threading.Event().wait(0.05)
    script.target = Target("1", "sig-1")
    for _ in range(300):
        if holder.get("churn") is not None:
            break
        threading.Event().wait(0.01)
    holder.stop()
    assert holder.get("churn").version == "1"
