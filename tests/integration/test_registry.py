"""mlops.registry.champion against a real MLflow tracking server: registration, audited compare-and-set moves
of the champion alias under the promotion lock, history, rollback targets.

Every test works on registered models of its own (named after the test), so tests are independent
while sharing one server (``mlflow_server``) and one source run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
import uuid

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from mlops.registry import champion as registry
from mlops.registry.champion import (
    CHALLENGER,
    CHAMPION,
    ChampionChanged,
    Move,
    PromotionRefused,
    RecordedMove,
    alias_version,
    champion_on,
    history,
    move_champion,
    register_version,
    rollback_target,
)
from mlops.registry.rest import RegistryReader
from mlops.registry.signing import SigningKey, VersionRef, sign_version

pytestmark = pytest.mark.integration

# The session's key (tests/conftest.py): versions that clear the floor are signed with it.
KEY = SigningKey.from_text(json.loads(os.environ["AIRFLOW_CONN_MLOPS_SIGNING"])["password"], source="test")
METRICS = {"auc": {"challenger": 0.91, "champion": 0.88, "floor": 0.7}}


@pytest.fixture(scope="module")
def client(mlflow_server: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


@pytest.fixture(scope="module")
def experiment_id(client: mlflow.MlflowClient) -> str:
    return client.create_experiment(f"test-registry-{uuid.uuid4().hex[:8]}")


def new_run(client: mlflow.MlflowClient, experiment_id: str) -> str:
    """A run with a (tiny) model directory, so ``runs:/<id>/model`` is a registrable source."""
    run_id = client.create_run(experiment_id).info.run_id
    client.log_text(run_id, "artifact_path: model\nflavors: {}\n", "model/MLmodel")
    return run_id


@pytest.fixture(scope="module")
def source_run(client: mlflow.MlflowClient, experiment_id: str) -> str:
    return new_run(client, experiment_id)


@pytest.fixture
def model(request: pytest.FixtureRequest) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '-', request.node.name)}-{uuid.uuid4().hex[:6]}"


def add_version(
    client: mlflow.MlflowClient, model: str, run_id: str, *, cleared: bool = True, signed: bool = True
) -> str:
    """A READY version of ``model`` (created directly, not through register_version), with a signed
    gate decision (``cleared``) and, if ``signed``, signed files."""
    registry.ensure_model(client, model)
    mv = client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)
    assert client.get_model_version(model, mv.version).status == "READY"
    ref = VersionRef(model, mv.version, run_id)
    for tag, value in registry.gate_tags(KEY, ref, cleared=cleared, decision="test").items():
        client.set_model_version_tag(model, mv.version, tag, value)
    if signed:
        # These runs hold a bare MLmodel, logged without a trial: sign their files as found.
        sign_version(client, model, mv.version, KEY, require_trial=False)
    return mv.version


def promote(
    client: mlflow.MlflowClient,
    model: str,
    version: str,
    *,
    expected: str | None,
    previous: str | None = "same",
    kind: str = "promotion",
    run_id: str = "manual__test",
    wait_s: float = 20,
    effective_day: str = "2026-01-12",
) -> None:
    move = Move(
        model=model,
        version=version,
        previous=expected if previous == "same" else previous,
        reason=f"{kind} of version {version}",
        airflow_run_id=run_id,
        metrics=METRICS,
        effective_day=effective_day,
        order=2 if kind == "rollback" else 0,
        kind=kind,
    )
    move_champion(client, move, expected=expected, key=KEY, wait_s=wait_s)


def tags_of(client: mlflow.MlflowClient, model: str, version: str) -> dict[str, str]:
    return dict(client.get_model_version(model, version).tags)


def lock_exists(client: mlflow.MlflowClient, model: str) -> bool:
    try:
        client.get_registered_model(f"{model}.promotion-lock")
    except MlflowException as exc:
        assert exc.error_code == "RESOURCE_DOES_NOT_EXIST", exc
        return False
    return True


def hand_made_lock(client: mlflow.MlflowClient, model: str, *, holder: str, clock_skew_s: float = 0) -> None:
    """A lock as a holder whose clock is ``clock_skew_s`` ahead would leave it."""
    client.create_registered_model(
        f"{model}.promotion-lock", tags={"holder": holder, "acquired_at": str(time.time() + clock_skew_s)}
    )


# --- registration ---------------------------------------------------------------------------------


def test_alias_version_is_none_for_a_model_not_registered_yet(client, model, source_run):
    assert alias_version(client, model, CHAMPION) is None
    add_version(client, model, source_run)
    assert alias_version(client, model, CHAMPION) is None  # registered, but no alias yet


def test_register_version_is_idempotent_and_points_challenger_at_it(client, model, experiment_id):
    run_id = new_run(client, experiment_id)
    kwargs = dict(
        run_id=run_id, source=f"runs:/{run_id}/model", airflow_run_id="scheduled__1", tags={"k": "v"}
    )

    first = register_version(client, model, **kwargs)
    again = register_version(client, model, **{**kwargs, "airflow_run_id": "scheduled__1-retry"})

    assert again.version == first.version
    versions = client.search_model_versions(f"name = '{model}'")
    assert [v.version for v in versions] == [first.version]
    assert alias_version(client, model, CHALLENGER) == first.version
    tags = tags_of(client, model, first.version)
    assert tags[registry.AIRFLOW_RUN_TAG] == "scheduled__1"  # the retry did not re-register
    assert tags["k"] == "v"
    assert first.status == "READY"

    # Another run is another version, and challenger follows it.
    other_run = new_run(client, experiment_id)
    other = register_version(
        client, model, **{**kwargs, "run_id": other_run, "source": f"runs:/{other_run}/model"}
    )
    assert other.version != first.version
    assert alias_version(client, model, CHALLENGER) == other.version


# --- moving the champion ------------------------------------------------------------------------------


def test_first_promotion_sets_champion_and_records_it(client, model, source_run):
    v1 = add_version(client, model, source_run)
    before = dt.datetime.now(dt.UTC)

    promote(client, model, v1, expected=None, run_id="scheduled__first")

    assert alias_version(client, model, CHAMPION) == v1
    tags = tags_of(client, model, v1)
    at = dt.datetime.fromisoformat(tags["promotion.at"])
    assert at.tzinfo is not None
    assert before - dt.timedelta(seconds=5) <= at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    assert tags["promotion.previous_champion"] == "none"
    assert tags["promotion.reason"] == f"promotion of version {v1}"
    assert tags["promotion.airflow_run_id"] == "scheduled__first"
    assert json.loads(tags["promotion.metrics_compared"]) == METRICS
    assert not any(k.startswith("demoted.") for k in tags)

    [move] = history(client, model, KEY)
    assert move == RecordedMove(
        version=v1,
        effective_day="2026-01-12",
        order=0,
        kind="promotion",
        previous=None,
        at=tags["promotion.at"],
        reason=f"promotion of version {v1}",
        airflow_run_id="scheduled__first",
    )
    assert not lock_exists(client, model)


def test_second_promotion_records_previous_champion_and_demotes_it(client, model, source_run, mlflow_server):
    v1, v2, v3 = (add_version(client, model, source_run) for _ in range(3))
    promote(client, model, v1, expected=None)
    promote(client, model, v2, expected=v1, run_id="scheduled__second")

    assert alias_version(client, model, CHAMPION) == v2
    assert tags_of(client, model, v2)["promotion.previous_champion"] == v1
    demoted = tags_of(client, model, v1)
    assert demoted["demoted.by_version"] == v2
    assert dt.datetime.fromisoformat(demoted["demoted.at"]).tzinfo is not None
    assert [(m.version, m.previous) for m in history(client, model, KEY)] == [(v1, None), (v2, v1)]

    # What is recorded is the champion actually replaced, not what the caller believed it was.
    promote(client, model, v3, expected=v2, previous=None)
    assert tags_of(client, model, v3)["promotion.previous_champion"] == v2
    assert tags_of(client, model, v2)["demoted.by_version"] == v3
    assert [m.version for m in history(client, model, KEY)] == [v1, v2, v3]
    # The REST reader that score and monitor use (no MLflow import) reads the same history.
    assert history(RegistryReader(mlflow_server), model, KEY) == history(client, model, KEY)


def test_the_rest_reader_names_an_unreachable_server() -> None:
    with pytest.raises(ConnectionError, match=r"MLflow at http://127.0.0.1:9 is unreachable"):
        RegistryReader("http://127.0.0.1:9", timeout_s=5).search_model_versions("name = 'x'")


def test_compare_and_set_refuses_when_the_champion_moved(client, model, source_run):
    v1, v2, v3 = (add_version(client, model, source_run) for _ in range(3))
    promote(client, model, v1, expected=None)
    promote(client, model, v2, expected=v1)

    with pytest.raises(ChampionChanged, match=rf"champion is now version {v2}, not {v1}"):
        promote(client, model, v3, expected=v1)  # decided against v1, but v2 is champion now

    assert alias_version(client, model, CHAMPION) == v2
    assert not any(k.startswith(("promotion.", "rollback.")) for k in tags_of(client, model, v3))
    assert "demoted.by_version" not in tags_of(client, model, v2)
    assert [m.version for m in history(client, model, KEY)] == [v1, v2]
    assert not lock_exists(client, model)  # released on the error path too

    with pytest.raises(ChampionChanged):  # expected=None ("no champion") is compared as well
        promote(client, model, v3, expected=None)
    assert alias_version(client, model, CHAMPION) == v2


def test_retry_of_a_move_that_already_happened_is_a_noop(client, model, source_run):
    v1, v2 = (add_version(client, model, source_run) for _ in range(2))
    promote(client, model, v1, expected=None, run_id="scheduled__a")
    promote(client, model, v2, expected=v1, run_id="scheduled__b")
    before = {v: tags_of(client, model, v) for v in (v1, v2)}
    time.sleep(0.01)  # a rewrite would carry a different ``at``

    promote(client, model, v2, expected=v1, run_id="scheduled__b")  # the task's retry
    promote(client, model, v2, expected=v1, run_id="scheduled__b-other-try")

    assert alias_version(client, model, CHAMPION) == v2
    assert {v: tags_of(client, model, v) for v in (v1, v2)} == before
    assert len(history(client, model, KEY)) == 2
    assert not lock_exists(client, model)


def test_retry_completes_a_move_that_died_before_the_demotion(client, model, source_run):
    v1, v2 = (add_version(client, model, source_run) for _ in range(2))
    promote(client, model, v1, expected=None)
    # The first attempt wrote v2's record and moved the alias, then died.
    for key, value in Move(model, v2, v1, "r", "scheduled__c", METRICS, "2026-01-12").tags(KEY).items():
        client.set_model_version_tag(model, v2, key, value)
    client.set_registered_model_alias(model, CHAMPION, v2)
    record = tags_of(client, model, v2)

    promote(client, model, v2, expected=v1, run_id="scheduled__c")

    assert tags_of(client, model, v1)["demoted.by_version"] == v2
    assert tags_of(client, model, v2) == record


def test_concurrent_promotions_exactly_one_wins(mlflow_server, client, model, source_run):
    v1, v2, v3 = (add_version(client, model, source_run) for _ in range(3))
    promote(client, model, v1, expected=None)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def contender(version: str) -> None:
        own = mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
        barrier.wait()
        try:
            promote(own, model, version, expected=v1, run_id=f"scheduled__{version}")
            outcomes[version] = "moved"
        except Exception as exc:
            outcomes[version] = exc

    threads = [threading.Thread(target=contender, args=(v,)) for v in (v2, v3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    winners = [v for v, outcome in outcomes.items() if outcome == "moved"]
    losers = [v for v, outcome in outcomes.items() if isinstance(outcome, ChampionChanged)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    [winner], [loser] = winners, losers
    assert alias_version(client, model, CHAMPION) == winner
    moves = history(client, model, KEY)
    assert [m.version for m in moves if m.previous == v1] == [winner]
    assert [m.version for m in moves] == [v1, winner]
    assert not any(k.startswith("promotion.") for k in tags_of(client, model, loser))
    assert tags_of(client, model, v1)["demoted.by_version"] == winner
    assert not lock_exists(client, model)


# --- the promotion lock ---------------------------------------------------------------------------


def test_a_stale_lock_is_broken_and_the_promotion_goes_through(client, model, source_run, monkeypatch):
    v1 = add_version(client, model, source_run)
    # A crashed holder whose clock ran an hour ahead: its lock still expires, by the registry's clock.
    hand_made_lock(client, model, holder="scheduled__crashed", clock_skew_s=3600)
    monkeypatch.setattr(registry, "LOCK_TTL_S", 2)
    time.sleep(2.5)

    promote(client, model, v1, expected=None, wait_s=10)

    assert alias_version(client, model, CHAMPION) == v1
    assert [m.version for m in history(client, model, KEY)] == [v1]
    assert not lock_exists(client, model)


def test_a_fresh_lock_held_by_someone_else_makes_the_promotion_time_out(client, model, source_run):
    v1 = add_version(client, model, source_run)
    hand_made_lock(client, model, holder="scheduled__busy", clock_skew_s=-3600)  # a clock behind

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"promotion lock .*promotion-lock is held by 'scheduled__busy'"):
        promote(client, model, v1, expected=None, wait_s=1.5)
    assert 1.5 <= time.monotonic() - started < 15

    assert alias_version(client, model, CHAMPION) is None
    assert not any(k.startswith("promotion.") for k in tags_of(client, model, v1))
    # The waiter left the other holder's lock alone.
    assert client.get_registered_model(f"{model}.promotion-lock").tags["holder"] == "scheduled__busy"


# --- rollback ---------------------------------------------------------------------------------------


def test_rollback_target_defaults_to_the_previous_champion_and_refuses_bad_versions(
    client, model, source_run
):
    v1, v2 = (add_version(client, model, source_run) for _ in range(2))
    uncleared = add_version(client, model, source_run, cleared=False)
    promote(client, model, v1, expected=None)
    with pytest.raises(PromotionRefused, match=rf"champion version {v1} has no previous champion"):
        rollback_target(client, model, None, KEY)  # the first champion has nobody before it
    promote(client, model, v2, expected=v1)

    assert rollback_target(client, model, None, KEY) == v1
    assert rollback_target(client, model, v1, KEY) == v1
    with pytest.raises(PromotionRefused, match=r"version 99 does not exist"):
        rollback_target(client, model, "99", KEY)
    with pytest.raises(PromotionRefused, match=rf"version {uncleared} never cleared the promotion floor"):
        rollback_target(client, model, uncleared, KEY)


def test_rollback_target_refuses_an_unsigned_version(client, model, source_run):
    signed = add_version(client, model, source_run)
    unsigned = add_version(client, model, source_run, signed=False)
    promote(client, model, signed, expected=None)
    with pytest.raises(PromotionRefused, match=rf"version {unsigned} is unsigned"):
        rollback_target(client, model, unsigned, KEY)


@pytest.mark.parametrize("how", ["set-by-hand", "copied-from-a-cleared-version"])
def test_rollback_target_refuses_a_gate_decision_nobody_signed(client, model, source_run, how):
    cleared = add_version(client, model, source_run)
    rejected = add_version(client, model, source_run, cleared=False)
    promote(client, model, cleared, expected=None)
    if how == "set-by-hand":
        client.set_model_version_tag(model, rejected, "gate.cleared_floor", "true")
    else:
        for tag in ("gate.cleared_floor", "gate.decision", "gate.signature"):
            client.set_model_version_tag(model, rejected, tag, tags_of(client, model, cleared)[tag])
    with pytest.raises(PromotionRefused, match=rf"version {rejected} has no signed gate decision"):
        rollback_target(client, model, rejected, KEY)


def test_rollback_target_refuses_a_champion_whose_alias_was_moved_by_hand(client, model, source_run):
    v1, v2 = (add_version(client, model, source_run) for _ in range(2))
    promote(client, model, v1, expected=None)
    client.set_registered_model_alias(model, CHAMPION, v2)  # outside the pipeline: no signed move
    with pytest.raises(PromotionRefused, match=rf"champion version {v2} has no signed move record"):
        rollback_target(client, model, None, KEY)


def test_rollback_target_after_a_rollback_uses_the_latest_move(client, model, source_run):
    v1, v2, v3 = (add_version(client, model, source_run) for _ in range(3))
    promote(client, model, v1, expected=None)
    promote(client, model, v2, expected=v1)
    promote(client, model, v3, expected=v2)
    promote(client, model, v2, expected=v3, kind="rollback")  # v3 was bad: back to v2

    assert [(m.version, m.kind, m.previous) for m in history(client, model, KEY)] == [
        (v1, "promotion", None),
        (v2, "promotion", v1),
        (v3, "promotion", v2),
        (v2, "rollback", v3),
    ]
    # v2 carries its old promotion record (previous: v1) and the newer rollback (previous: v3).
    assert rollback_target(client, model, None, KEY) == v3


def test_rollback_target_without_a_champion_is_refused(client, model, source_run):
    with pytest.raises(PromotionRefused, match="no champion to roll back"):
        rollback_target(client, model, None, KEY)  # no registered model at all
    add_version(client, model, source_run)
    with pytest.raises(PromotionRefused, match="no champion to roll back"):
        rollback_target(client, model, None, KEY)  # versions, but no champion


def test_the_champion_as_of_a_day_follows_effective_days_and_a_late_decision_is_superseded(
    client: mlflow.MlflowClient, model: str, source_run: str
) -> None:
    from mlops.registry.champion import Superseded, champion_as_of

    v1, v2, v3 = (add_version(client, model, source_run) for _ in range(3))
    promote(client, model, v1, expected=None, effective_day="2026-01-12")
    promote(client, model, v2, expected=v1, effective_day="2026-01-26")
    assert [
        champion_as_of(client, model, d, KEY)
        for d in ("2026-01-11", "2026-01-12", "2026-01-25", "2026-01-26")
    ] == [
        None,
        v1,
        v1,
        v2,
    ]
    # A slow run decided as of 01-19 against v1: v2, effective 01-26, already holds.
    with pytest.raises(Superseded, match=f"superseded by version {v2} as of 2026-01-26"):
        promote(client, model, v3, expected=v1, effective_day="2026-01-19")
    assert alias_version(client, model, CHAMPION) == v2
    assert tags_of(client, model, v3)["promotion.superseded_by"] == f"version {v2} as of 2026-01-26"
    assert "promotion.at" not in tags_of(client, model, v3), "not in the audit trail"
    assert champion_as_of(client, model, "2026-01-20", KEY) == v1, "history is never rewritten"


# --- signed moves: the history is what the signing key vouches for -----------------------------------

PROMOTION_TAGS = {  # what someone with registry write access but no key would type in
    "promotion.at": "2026-01-20T00:00:00.000000+00:00",
    "promotion.effective_day": "2026-01-20",
    "promotion.order": "0",
    "promotion.previous_champion": "none",
}


@pytest.mark.parametrize("how", ["typed-in", "copied-from-the-champion", "champion-record-edited"])
def test_move_records_without_a_valid_signature_are_ignored(client, model, source_run, mlflow_server, how):
    champion = add_version(client, model, source_run)
    rejected = add_version(client, model, source_run, cleared=False)
    promote(client, model, champion, expected=None, effective_day="2026-01-12")
    if how == "typed-in":
        for tag, value in PROMOTION_TAGS.items():
            client.set_model_version_tag(model, rejected, tag, value)
    elif how == "copied-from-the-champion":
        for tag, value in tags_of(client, model, champion).items():
            if tag.startswith("promotion."):
                client.set_model_version_tag(model, rejected, tag, value)
    else:  # the real record, its effective day moved
        client.set_model_version_tag(model, champion, "promotion.effective_day", "2026-01-01")
    expected = [] if how == "champion-record-edited" else [champion]

    assert [m.version for m in history(client, model, KEY)] == expected
    assert [m.version for m in history(RegistryReader(mlflow_server), model, KEY)] == expected
    assert champion_on(history(client, model, KEY), "2026-01-25") == (expected[0] if expected else None)
    # A record signed with another key counts no more than an unsigned one.
    other = SigningKey.from_text("another-key-" + uuid.uuid4().hex, source="test")
    assert history(client, model, other) == []


def test_a_holder_that_stalls_past_the_ttl_after_its_check_withdraws_its_move(
    mlflow_server, client, model, source_run, monkeypatch
):
    """The holder checks its lock, stalls past the TTL; another breaks the stale lock and promotes.
    When the first one's alias write lands, it must see its lock is gone and put the alias back."""
    v1, v2, v3 = (add_version(client, model, source_run) for _ in range(3))
    promote(client, model, v1, expected=None)
    monkeypatch.setattr(registry, "LOCK_TTL_S", 1)

    class StallingClient(mlflow.MlflowClient):
        """Stalls once, right before it moves the champion alias, while another holder promotes."""

        stalled = False

        def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
            if alias == CHAMPION and not self.stalled:
                self.stalled = True
                time.sleep(1.5)  # past the TTL: the lock is stale now
                promote(client, model, v3, expected=v1, run_id="scheduled__other", wait_s=10)
            super().set_registered_model_alias(name, alias, version)

    slow = StallingClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    with pytest.raises(registry.PromotionLockLost, match=rf"withdrawn and champion restored to version {v3}"):
        promote(slow, model, v2, expected=v1, run_id="scheduled__slow")

    assert alias_version(client, model, CHAMPION) == v3
    assert [(m.version, m.previous) for m in history(client, model, KEY)] == [(v1, None), (v3, v1)]
    assert "promotion.signature" not in tags_of(client, model, v2)
    assert not lock_exists(client, model)


def test_a_key_rotation_re_signs_the_moves_and_gate_decisions(client, model, source_run):
    from mlops.registry.champion import resign

    v1 = add_version(client, model, source_run)
    promote(client, model, v1, expected=None)
    new = SigningKey.from_text("rotated-" + uuid.uuid4().hex, source="test")
    lines: list[str] = []

    assert resign(client, model, old=KEY, new=new, log=lines.append) == ([v1], [])

    assert f"re-signed the promotion record of model {model} version {v1} with key {new.key_id}" in lines
    assert f"re-signed the gate record of model {model} version {v1} with key {new.key_id}" in lines
    assert [m.version for m in history(client, model, new)] == [v1]
    assert history(client, model, KEY) == []
    assert rollback_target(client, model, v1, new) == v1


def test_moves_recorded_before_signing_count_once_signed_by_hand(client, model, source_run):
    """The migration: ``python -m mlops signing sign`` signs a version's older records as they stand."""
    v1 = add_version(client, model, source_run)
    for tag, value in {"promotion.at": "2026-01-05T10:00:00+00:00", "promotion.reason": "old"}.items():
        client.set_model_version_tag(model, v1, tag, value)  # as moves were recorded before
    assert history(client, model, KEY) == []

    lines = registry.sign_legacy_records(client, model, v1, KEY)

    assert lines == [
        f"signed the promotion record of model {model} version {v1} as it stands: effective "
        f"2026-01-05, previous none, reason 'old'"
    ]
    assert [(m.version, m.effective_day, m.order) for m in history(client, model, KEY)] == [
        (v1, "2026-01-05", 0)
    ]
    assert registry.sign_legacy_records(client, model, v1, KEY) == []  # already signed: nothing to do
