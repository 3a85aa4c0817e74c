"""The model registry side of promotion: idempotent registration, audited compare-and-set alias moves.

MLflow has no atomic "move the alias if it still points here". A registered model *name* is unique
in the registry's database, so creating ``<model>.promotion-lock`` is a mutex every writer of the
registry shares (workers on other machines included); the check and the move happen under it.
A lock left by a crashed holder expires after ``LOCK_TTL_S``, by the registry's clock. Each acquisition carries a token of
its own: a holder only ever deletes its own lock, and checks it still holds it right before moving
the alias and right after (a holder stalled past the TTL may have had its lock broken: it then
withdraws its move and puts the alias back).

Every record that decides what runs is signed with the model-signing key (``mlops.signing``): a
champion move (``<kind>.signature`` over the model, version, kind and every field of the move) and
a gate decision (``gate.signature``). Readers of the history verify each move and ignore, with a
warning, one that does not verify: tags set by hand or copied from another version decide nothing.

No Airflow import; takes an ``MlflowClient``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.registry.signing import (
    KEY_ID_TAG,
    MANIFEST_TAG,
    SIGNATURE_TAG,
    SigningKey,
    UnverifiedModel,
    VersionRef,
    check,
    download_version,
    is_signed,
    record_verifies,
    sign_record,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mlops.training.promotion import GateDecision

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
LOCK_TTL_S = 300
AIRFLOW_RUN_TAG = "airflow.run_id"
MOVE_KINDS = ("promotion", "rollback")
# The fields of a move record, ``<kind>.<field>`` tags, all of them under its signature.
MOVE_FIELDS = (
    "previous_champion",
    "reason",
    "airflow_run_id",
    "metrics_compared",
    "effective_day",
    "order",
    "at",
)
GATE_FIELDS = ("cleared_floor", "decision")
GATE_SIGNATURE_TAG = "gate.signature"


class ChampionChanged(RuntimeError):
    """The champion moved while this run was deciding; nothing was overwritten."""


class PromotionRefused(ValueError):
    """A version that cannot become champion (absent, or never cleared the floor)."""


class PromotionLockLost(RuntimeError):
    """This holder's promotion lock was broken as stale before the alias moved; nothing moved."""


class Superseded(RuntimeError):
    """A decision effective later than this move already holds; the alias stays where it is."""


def now_iso() -> str:
    # Microseconds: moves are ordered by this stamp, and two can fall within one second.
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "error_code", "") or "")


def _not_found(exc: Exception) -> bool:
    """A missing registered model or version (RESOURCE_DOES_NOT_EXIST), or a missing alias (the
    registry answers that one with INVALID_PARAMETER_VALUE "... alias X not found.")."""
    code, text = _code(exc), str(exc)
    if code == "RESOURCE_DOES_NOT_EXIST" or "RESOURCE_DOES_NOT_EXIST" in text:
        return True
    invalid = code == "INVALID_PARAMETER_VALUE" or "INVALID_PARAMETER_VALUE" in text
    return invalid and "alias" in text and "not found" in text


def _already_exists(exc: Exception) -> bool:
    return _code(exc) == "RESOURCE_ALREADY_EXISTS" or "RESOURCE_ALREADY_EXISTS" in str(exc)


def alias_version(client: MlflowClient, model: str, alias: str) -> str | None:
    """The version an alias points at, or None (no alias, or no registered model yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model, alias).version
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def ensure_model(client: MlflowClient, model: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(model)
    except MlflowException as exc:
        if not _already_exists(exc):
            raise


def register_version(
    client: MlflowClient,
    model: str,
    *,
    run_id: str,
    source: str,
    airflow_run_id: str,
    tags: dict[str, str],
    model_id: str | None = None,
) -> ModelVersion:
    """Register the run's model once: a retried task finds the version it registered before.

    ``source`` is the model's URI: ``models:/m-...`` with its ``model_id`` for a model logged by
    MLflow 3, or ``runs:/<run_id>/<path>``.
    """
    ensure_model(client, model)
    existing = search_versions(client, f"name = {quote(model)} and run_id = {quote(run_id)}")
    if existing:
        # The first one registered (two racing retries may have left two).
        version = min(existing, key=lambda v: int(v.version))
    else:
        version = client.create_model_version(
            model,
            source,
            run_id=run_id,
            tags={AIRFLOW_RUN_TAG: airflow_run_id, **tags},
            model_id=model_id,
        )
    # A found version too: the attempt that registered it may have died before it was READY.
    version = _wait_ready(client, model, version.version)
    client.set_registered_model_alias(model, CHALLENGER, version.version)
    return version


def quote(value: str) -> str:
    """A string literal for a registry search filter."""
    if "'" in value:
        raise ValueError(f"cannot search the registry for a value containing a single quote: {value!r}")
    return f"'{value}'"


def search_versions(client: MlflowClient, filter_string: str) -> list[ModelVersion]:
    """Every matching version: the registry pages its search results."""
    found: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(filter_string, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _wait_ready(client: MlflowClient, model: str, version: str, timeout_s: float = 60) -> ModelVersion:
    deadline = time.monotonic() + timeout_s
    while True:
        current = client.get_model_version(model, version)
        if current.status == "READY":
            return current
        if current.status == "FAILED_REGISTRATION":
            raise RuntimeError(
                f"model {model} version {version} failed to register: {current.status_message}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"model {model} version {version} did not become READY in {timeout_s:.0f}s")
        time.sleep(0.5)


def lock_name(model: str) -> str:
    return f"{model}.promotion-lock"


@contextmanager
def promotion_lock(client: MlflowClient, model: str, *, holder: str, wait_s: float = 120) -> Iterator[str]:
    """Hold ``<model>.promotion-lock``; yields this acquisition's token (for ``check_lock``).

    Waits up to ``wait_s`` while someone else holds it, breaking a lock older than ``LOCK_TTL_S``,
    then raises ``TimeoutError``. On exit the lock is deleted only if it is still this acquisition's.
    """
    from mlflow.exceptions import MlflowException

    name = lock_name(model)
    token = f"{holder}:{uuid.uuid4().hex}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client.create_registered_model(
                name, tags={"holder": holder, "token": token, "acquired_at": repr(time.time())}
            )
            break
        except MlflowException as exc:
            if not _already_exists(exc):
                raise
            seen = _break_if_stale(client, name)
            if time.monotonic() >= deadline:
                who = (
                    f" by {seen.get('holder', '?')!r} for {time.time() - _acquired_at(seen):.0f}s"
                    if seen
                    else ""
                )
                raise TimeoutError(
                    f"{model}: the promotion lock {name} is held{who}; gave up after {wait_s:g}s "
                    f"(a lock older than {LOCK_TTL_S}s is broken as stale); retry later"
                ) from None
            time.sleep(max(0.0, min(0.5, deadline - time.monotonic())))
    try:
        yield token
    finally:
        try:
            if _lock_tags(client, name).get("token") == token:
                client.delete_registered_model(name)
            else:
                log.warning("promotion lock %s was broken while %s held it; leaving it", name, holder)
        except MlflowException as exc:
            if not _not_found(exc):
                log.warning(
                    "could not release promotion lock %s (expires after %ss): %s", name, LOCK_TTL_S, exc
                )


def check_lock(client: MlflowClient, model: str, token: str) -> None:
    """Raise ``PromotionLockLost`` unless the acquisition ``token`` still holds the model's lock."""
    if not holds_lock(client, model, token):
        raise PromotionLockLost(
            f"{model}: the promotion lock was broken as stale (held over {LOCK_TTL_S}s) before the "
            f"champion alias moved; the alias was not touched, retry"
        )


def holds_lock(client: MlflowClient, model: str, token: str) -> bool:
    return _lock_tags(client, lock_name(model)).get("token") == token


def _lock_tags(client: MlflowClient, name: str) -> dict[str, str]:
    """The lock's tags, with ``created_at``: when the registry created it, by the registry's clock
    (a holder's clock may run ahead or behind). Empty when nobody holds it."""
    from mlflow.exceptions import MlflowException

    try:
        lock = client.get_registered_model(name)
    except MlflowException as exc:
        if _not_found(exc):
            return {}
        raise
    return {**lock.tags, "created_at": repr((lock.creation_timestamp or 0) / 1000)}


def _acquired_at(tags: dict[str, str]) -> float:
    """When the lock was taken, by the registry's clock: its age never depends on the holder's."""
    try:
        return float(tags.get("created_at", "0"))
    except ValueError:
        return 0.0  # unreadable: as good as ancient, so it can be broken


def _break_if_stale(client: MlflowClient, name: str) -> dict[str, str] | None:
    """Delete the lock if it is older than ``LOCK_TTL_S``; returns its tags (None: no lock)."""
    from mlflow.exceptions import MlflowException

    tags = _lock_tags(client, name)
    if not tags:
        return None
    if time.time() - _acquired_at(tags) > LOCK_TTL_S:
        # Re-read right before deleting: another waiter may have broken it and taken a fresh one
        # since. The registry has no conditional delete; this narrows that window to one call.
        if _lock_tags(client, name).get("token") != tags.get("token"):
            return tags
        log.warning("breaking stale promotion lock %s held by %r", name, tags.get("holder"))
        try:
            client.delete_registered_model(name)
        except MlflowException as exc:
            if not _not_found(exc):  # not found: another waiter broke it first
                raise
    return tags


@dataclass(frozen=True)
class Move:
    """One audited move of the champion alias.

    ``effective_day`` is the logical day from which the move holds (see ``mlops.clock``); ``order``
    ranks moves effective on the same day (scheduled train, then drift retrain, then rollback).
    """

    model: str
    version: str
    previous: str | None
    reason: str
    airflow_run_id: str
    metrics: dict[str, Any]
    effective_day: str
    order: int = 0
    kind: str = "promotion"

    def tags(self, key: SigningKey) -> dict[str, str]:
        """In write order: the signature last, so a version carrying it has the whole record."""
        if self.kind not in MOVE_KINDS:
            raise ValueError(f"unknown move kind {self.kind!r}; known: {MOVE_KINDS}")
        fields = {
            f"{self.kind}.previous_champion": self.previous or "none",
            f"{self.kind}.reason": self.reason,
            f"{self.kind}.airflow_run_id": self.airflow_run_id,
            f"{self.kind}.metrics_compared": json.dumps(self.metrics, sort_keys=True),
            f"{self.kind}.effective_day": self.effective_day,
            f"{self.kind}.order": str(self.order),
            f"{self.kind}.at": now_iso(),
        }
        signature = sign_record(key, *_move_record(self.model, str(self.version), self.kind, fields))
        return {**fields, f"{self.kind}.signature": signature}

    @property
    def key(self) -> tuple[str, int]:
        return (self.effective_day, self.order)


def _move_record(model: str, version: str, kind: str, tags: dict[str, str]) -> tuple[str, dict[str, str]]:
    """What a move's signature covers: the model, the version, the kind and every field of the record."""
    fields = {field: tags.get(f"{kind}.{field}", "") for field in MOVE_FIELDS}
    return f"champion-{kind}", {"model": model, "version": version, **fields}


def move_verifies(key: SigningKey, model: str, version: str, kind: str, tags: dict[str, str]) -> bool:
    """Whether the ``kind`` move recorded on the version's ``tags`` carries its valid signature."""
    return record_verifies(key, *_move_record(model, version, kind, tags), tags.get(f"{kind}.signature"))


def _gate_record(ref: VersionRef, tags: dict[str, str]) -> tuple[str, dict[str, str]]:
    fields = {field: tags.get(f"gate.{field}", "") for field in GATE_FIELDS}
    return "gate-decision", {"model": ref.model, "version": ref.version, "run_id": ref.run_id, **fields}


def gate_tags(key: SigningKey, ref: VersionRef, *, cleared: bool, decision: str) -> dict[str, str]:
    """A gate decision's tags, in write order: the signature last, once the record is whole."""
    tags = {"gate.cleared_floor": str(cleared).lower(), "gate.decision": decision[:4000]}
    return {**tags, GATE_SIGNATURE_TAG: sign_record(key, *_gate_record(ref, tags))}


def gate_verifies(key: SigningKey, ref: VersionRef, tags: dict[str, str]) -> bool:
    """Whether the version's gate decision carries its valid signature."""
    return record_verifies(key, *_gate_record(ref, tags), tags.get(GATE_SIGNATURE_TAG))


@dataclass(frozen=True)
class RecordedMove:
    """A signed champion move as ``history`` reads it back from the version's ``<kind>.*`` tags.

    ``previous`` is None where the record says ``none`` (the move made the first champion); ``at``
    is when the record was written, by the writer's clock, and orders moves with the same ``key``
    only; ``airflow_run_id`` is the run that made it.
    """

    version: str
    effective_day: str
    order: int = 0
    kind: str = "promotion"
    previous: str | None = None
    at: str = ""
    reason: str = ""
    airflow_run_id: str = ""

    @property
    def key(self) -> tuple[str, int]:
        """Its place in the logical order, comparable with ``Move.key``."""
        return (self.effective_day, self.order)

    @classmethod
    def from_tags(cls, version: str, kind: str, tags: dict[str, str]) -> RecordedMove:
        """The ``kind`` move recorded on a version's ``tags`` (as ``Move.tags`` writes them)."""
        previous = tags[f"{kind}.previous_champion"]
        return cls(
            version=str(version),
            effective_day=tags[f"{kind}.effective_day"],
            order=int(tags[f"{kind}.order"]),
            kind=kind,
            previous=None if previous == "none" else previous,
            at=tags[f"{kind}.at"],
            reason=tags.get(f"{kind}.reason", ""),
            airflow_run_id=tags.get(f"{kind}.airflow_run_id", ""),
        )


def move_key(move: Move | RecordedMove) -> tuple[str, int]:
    """A move's place in the logical order (a sort key for ``history``'s records)."""
    return move.key


def champion_on(moves: Sequence[RecordedMove], ds: str) -> str | None:
    """The champion as of day ``ds``: the last move (in ``history``'s order) effective on or before it."""
    holding = None
    for move in moves:
        if move.effective_day > ds:
            break
        holding = move.version
    return holding


def superseding(moves: Sequence[RecordedMove], move: Move) -> RecordedMove | None:
    """The recorded move that comes after ``move`` in the logical order (the last such), or None."""
    later = [m for m in moves if m.key > move.key and m.version != str(move.version)]
    return later[-1] if later else None


def champion_as_of(client: MlflowClient, model: str, ds: str, key: SigningKey) -> str | None:
    return champion_on(history(client, model, key), ds)


def was_champion(moves: Sequence[RecordedMove], version: str) -> bool:
    """Whether a signed move in ``moves`` (``history``) ever made ``version`` champion."""
    return any(move.version == str(version) for move in moves)


def move_champion(
    client: MlflowClient, move: Move, *, expected: str | None, key: SigningKey, wait_s: float = 120
) -> None:
    """Point ``champion`` at ``move.version`` if it still points at ``expected`` (None: no champion).

    Raises ``Superseded`` (tagging the version with what holds) when a move effective later in the
    logical order is already recorded: a decision as of an earlier day never replaces a later one,
    so the alias stays. Raises ``ChampionChanged`` when someone else moved it since ``expected`` was
    read, and ``TimeoutError`` when another holder keeps the promotion lock longer than ``wait_s``.
    The tags are written before the alias moves: a crash in between leaves tags on a version that
    is not champion (visible, harmless), never a champion without its record. The previous
    champion recorded, and tagged ``demoted.*``, is the version the alias pointed at under the lock.
    The record is signed with ``key``. Raises ``PromotionLockLost`` when this holder's lock was
    broken as stale before the alias moved (nothing moved) or while it moved it: then the record is
    withdrawn and the alias put back where the signed history says it belongs.
    """
    target = str(move.version)
    expected = None if expected is None else str(expected)
    with promotion_lock(client, move.model, holder=move.airflow_run_id, wait_s=wait_s) as token:
        current = alias_version(client, move.model, CHAMPION)
        head = superseding(history(client, move.model, key), move)
        if head is not None:
            note = f"version {head.version} as of {head.effective_day}"
            client.set_model_version_tag(move.model, target, f"{move.kind}.superseded_by", note)
            raise Superseded(
                f"{move.model}: version {target} (as of {move.effective_day}) is superseded by {note}, "
                f"a decision later in the logical order; champion stays version {current}"
            )
        if current == target:
            # A retry of a move that already happened: complete the demotion record if the first
            # attempt died before writing it; change nothing else.
            tags = client.get_model_version(move.model, target).tags
            previous = tags.get(f"{move.kind}.previous_champion")
            if previous and previous != "none":
                _mark_demoted(client, move.model, previous, by=target)
            return
        if current != expected:
            raise ChampionChanged(
                f"{move.model}: champion is now version {current}, not {expected} as when this run "
                f"started; not overwriting it (re-run to compare against the new champion)"
            )
        move = dataclasses.replace(move, version=target, previous=current)
        for tag, value in move.tags(key).items():
            client.set_model_version_tag(move.model, target, tag, value)
        check_lock(client, move.model, token)
        client.set_registered_model_alias(move.model, CHAMPION, target)
        # Stalled past the TTL between the check and the move, another holder may have broken the
        # lock and moved the alias itself: this move must not stand over theirs.
        if not holds_lock(client, move.model, token):
            restored = _withdraw(client, move, key)
            raise PromotionLockLost(
                f"{move.model}: the promotion lock was broken as stale (held over {LOCK_TTL_S}s) while "
                f"this run moved the champion alias to version {target}; the move was withdrawn and "
                f"champion restored to version {restored or 'none'}; retry"
            )
        # A holder stalled past the lock's expiry could still have moved it since the check.
        if (now_holding := alias_version(client, move.model, CHAMPION)) != target:
            raise ChampionChanged(
                f"{move.model}: champion is version {now_holding} right after this run set it to "
                f"{target}: another writer moved it at the same time; check the audit trail"
            )
        if current is not None:
            _mark_demoted(client, move.model, current, by=target)


def _withdraw(client: MlflowClient, move: Move, key: SigningKey) -> str | None:
    """Undo a move that landed after its lock was lost: drop its signed record, then point the alias
    at the champion the signed history names (what the holder that broke the lock left); returns it."""
    for field in ("signature", "at"):
        client.delete_model_version_tag(move.model, str(move.version), f"{move.kind}.{field}")
    moves = history(client, move.model, key)
    restored = moves[-1].version if moves else None
    if restored is None:
        client.delete_registered_model_alias(move.model, CHAMPION)
    else:
        client.set_registered_model_alias(move.model, CHAMPION, restored)
    log.warning(
        "%s: withdrew the move to version %s (lock lost); champion is version %s",
        move.model,
        move.version,
        restored,
    )
    return restored


def _mark_demoted(client: MlflowClient, model: str, version: str, *, by: str) -> None:
    if client.get_model_version(model, version).tags.get("demoted.by_version") == by:
        return
    client.set_model_version_tag(model, version, "demoted.at", now_iso())
    client.set_model_version_tag(model, version, "demoted.by_version", by)


def window_tags(as_of: str, trained: list[str], holdout: list[str]) -> dict[str, str]:
    """A version's training window: the days it was fitted on (train and early stopping) and its
    holdout. The gate's leak guard reads them back (``trained_span``)."""
    tags = {"window.as_of": as_of}
    if trained:
        tags |= {"window.trained_first": trained[0], "window.trained_last": trained[-1]}
    if holdout:
        tags |= {"window.holdout_first": holdout[0], "window.holdout_last": holdout[-1]}
    return tags


def trained_span(client: MlflowClient, model: str, version: str, holdout_days: int) -> tuple[str, str] | None:
    """First and last day ``version`` was fitted on; for versions registered before the window tags,
    its partitions less the last ``holdout_days``. None when unknown."""
    tags = client.get_model_version(model, version).tags
    if "window.trained_first" in tags:
        return tags["window.trained_first"], tags["window.trained_last"]
    days = [d for d in tags.get("window.partitions", "").split(",") if d][:-holdout_days]
    return (days[0], days[-1]) if days else None


def record_gate(
    client: MlflowClient, model: str, decision: GateDecision, *, floor: float, metric: str, key: SigningKey
) -> None:
    """Tag the challenger's version with the gate's decision, signed with ``key`` (and what a
    backfill would have done)."""
    from mlops.training.promotion import clears_floor

    cleared = clears_floor(metric, decision.challenger[metric], floor)
    ref = VersionRef(model, str(decision.version), client.get_model_version(model, decision.version).run_id)
    for tag, value in gate_tags(key, ref, cleared=cleared, decision=decision.reason).items():
        client.set_model_version_tag(model, ref.version, tag, value)
    if decision.would_promote and not decision.promote:
        client.set_model_version_tag(model, ref.version, "gate.backfill_would_promote", "true")
    # For reading only (the Models view's timeline): what decides is the signed record above.
    outcome = "passed" if decision.promote else "would_promote" if decision.would_promote else "refused"
    client.set_model_version_tag(model, ref.version, "gate.outcome", outcome)
    client.set_model_version_tag(
        model, ref.version, f"gate.{metric}", repr(float(decision.challenger[metric]))
    )


DRIFT_TRIGGERS_TAG = "drift.triggered_for"


def drift_triggers(client: MlflowClient, model: str, version: str) -> list[str]:
    """The days (ds) whose drift this version, as champion, has triggered a retrain for."""
    raw = client.get_model_version(model, version).tags.get(DRIFT_TRIGGERS_TAG, "")
    return [ds for ds in raw.split(",") if ds]


def record_drift_trigger(client: MlflowClient, model: str, version: str, ds: str) -> None:
    """Note on the champion's version that its drift on ``ds`` triggered a retrain (idempotent)."""
    days = drift_triggers(client, model, version)
    if ds not in days:
        client.set_model_version_tag(model, version, DRIFT_TRIGGERS_TAG, ",".join(sorted([*days, ds])))


def history(client: MlflowClient, model: str, key: SigningKey) -> list[RecordedMove]:
    """Every signed champion move in the logical order (effective day, order, then wall clock).

    One record per version and kind: a version rolled back to twice keeps its latest rollback only.
    A record whose signature does not verify under ``key`` (tags set by hand, copied from another
    version, or written before moves were signed: ``python -m mlops signing sign``) is left out with
    a warning.
    """
    return moves_of(search_versions(client, f"name = {quote(model)}"), model, key)


def moves_of(versions: Sequence[Any], model: str, key: SigningKey) -> list[RecordedMove]:
    """``history`` over versions already read (objects with ``version`` and ``tags``)."""
    moves = []
    for version in versions:
        for kind in MOVE_KINDS:
            tags = version.tags
            if f"{kind}.at" not in tags:
                continue
            if not move_verifies(key, model, version.version, kind, tags):
                log.warning(
                    "%s version %s: ignoring its %s record, whose signature does not verify (tags set by "
                    "hand or copied from another version?)",
                    model,
                    version.version,
                    kind,
                )
                continue
            moves.append(RecordedMove.from_tags(version.version, kind, tags))
    return sorted(moves, key=lambda m: (*m.key, _stamp(m.at), int(m.version)))


def _stamp(at: str) -> dt.datetime:
    """An ``at`` tag as a time (older records have second precision): order by time, not text."""
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def rollback_target(client: MlflowClient, model: str, requested: str | None, key: SigningKey) -> str:
    """The version to roll back to: ``requested``, or the champion before the current one.

    Both from signed records only: the default is the previous champion that the latest signed move
    onto the current one names, and the target must carry a signed gate decision that cleared the
    floor, and a signature over its files.
    """
    from mlflow.exceptions import MlflowException

    if requested is None:
        current = alias_version(client, model, CHAMPION)
        if current is None:
            raise PromotionRefused(f"{model}: there is no champion to roll back")
        # The latest move onto the current champion: a version promoted once and later rolled
        # back to carries both records, and the newer one is the truth.
        onto = [m for m in history(client, model, key) if m.version == current]
        if not onto:
            raise PromotionRefused(
                f"{model}: champion version {current} has no signed move record (was the alias moved "
                f"by hand?); name the version to roll back to"
            )
        if onto[-1].previous is None:
            raise PromotionRefused(
                f"{model}: champion version {current} has no previous champion to roll back to"
            )
        requested = onto[-1].previous
    try:
        version = client.get_model_version(model, str(requested))
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        raise PromotionRefused(f"{model}: version {requested} does not exist") from exc
    ref = VersionRef(model, str(version.version), version.run_id or "")
    if not gate_verifies(key, ref, version.tags):
        raise PromotionRefused(
            f"{model}: version {requested} has no signed gate decision (a gate.* tag set by hand or "
            f"copied does not count); refusing it"
        )
    if version.tags.get("gate.cleared_floor") != "true":
        raise PromotionRefused(f"{model}: version {requested} never cleared the promotion floor; refusing it")
    if not is_signed(version.tags):
        raise PromotionRefused(
            f"{model}: version {requested} is unsigned; refusing it (mlops.registry.signing)"
        )
    return version.version


def resign_records(
    client: MlflowClient, ref: VersionRef, tags: dict[str, str], *, old: SigningKey, new: SigningKey
) -> list[str]:
    """After a key rotation: re-sign with ``new`` the records on the version (moves, gate decision)
    that verify under ``old``; returns the kinds re-signed."""
    done = []
    for kind in MOVE_KINDS:
        if move_verifies(old, ref.model, ref.version, kind, tags):
            signature = sign_record(new, *_move_record(ref.model, ref.version, kind, tags))
            client.set_model_version_tag(ref.model, ref.version, f"{kind}.signature", signature)
            done.append(kind)
    if gate_verifies(old, ref, tags):
        client.set_model_version_tag(
            ref.model, ref.version, GATE_SIGNATURE_TAG, sign_record(new, *_gate_record(ref, tags))
        )
        done.append("gate")
    return done


def sign_legacy_records(
    client: MlflowClient, model: str, version: str, key: SigningKey, *, force: bool = False
) -> list[str]:
    """Sign the records on a version written before records were signed, as they stand (for
    ``python -m mlops signing sign``, after a manual check); returns a line per record.

    A record carrying a signature that does not verify is left alone (it was altered, or signed with
    another key) unless ``force``. Fields older records lack get the values readers assumed for them.
    """
    found = client.get_model_version(model, str(version))
    ref, tags = VersionRef(model, str(found.version), found.run_id or ""), dict(found.tags)
    lines = []
    for kind in [k for k in MOVE_KINDS if f"{k}.at" in tags]:
        label = f"the {kind} record of model {model} version {ref.version}"
        if move_verifies(key, model, ref.version, kind, tags):
            continue
        if f"{kind}.signature" in tags and not force:
            lines.append(
                f"left {label} unsigned: its signature does not verify (altered?); --force re-signs it"
            )
            continue
        defaults = {
            "effective_day": tags[f"{kind}.at"][:10],
            "order": "2" if kind == "rollback" else "0",
            "previous_champion": "none",
        }
        for field, value in defaults.items():
            if f"{kind}.{field}" not in tags:
                tags[f"{kind}.{field}"] = value
                client.set_model_version_tag(model, ref.version, f"{kind}.{field}", value)
        client.set_model_version_tag(
            model,
            ref.version,
            f"{kind}.signature",
            sign_record(key, *_move_record(model, ref.version, kind, tags)),
        )
        lines.append(
            f"signed {label} as it stands: effective {tags[f'{kind}.effective_day']}, previous "
            f"{tags[f'{kind}.previous_champion']}, reason {tags.get(f'{kind}.reason', '')!r}"
        )
    if "gate.cleared_floor" in tags and not gate_verifies(key, ref, tags):
        if GATE_SIGNATURE_TAG in tags and not force:
            lines.append(f"left the gate decision of {ref.label} unsigned: its signature does not verify")
        else:
            client.set_model_version_tag(
                model, ref.version, GATE_SIGNATURE_TAG, sign_record(key, *_gate_record(ref, tags))
            )
            lines.append(
                f"signed the gate decision of {ref.label} as it stands: cleared_floor={tags['gate.cleared_floor']}"
            )
    return lines


def resign(
    client: MlflowClient,
    model: str,
    *,
    old: SigningKey,
    new: SigningKey,
    log: Callable[[str], None] = print,
) -> tuple[list[str], list[str]]:
    """After a key rotation: re-sign with ``new`` every version whose files verify under ``old``,
    and the registry's records on it (champion moves, gate decision) that verify under ``old``.

    Versions already signed with ``new`` are checked and kept; versions that verify under neither
    (unsigned, altered, or signed with a third key) are left as they are, so loading refuses them.
    Returns (versions signed with ``new`` now, versions refused).
    """
    good, refused = [], []
    for found in sorted(search_versions(client, f"name = {quote(model)}"), key=lambda v: int(v.version)):
        ref = VersionRef(model, found.version, found.run_id or "")
        with tempfile.TemporaryDirectory(prefix=f"mlops-resign-{model}-v{ref.version}-") as tmp:
            try:
                root = download_version(client, model, ref.version, Path(tmp))
                signer = new if found.tags.get(KEY_ID_TAG) == new.key_id else old
                check(found.tags, root, signer, ref)
            except UnverifiedModel as exc:
                log(f"refused: {exc}")
                refused.append(ref.version)
                continue
        if signer is old:
            # The files match the manifest the old key signed: the same manifest, under the new key.
            manifest = found.tags[MANIFEST_TAG]
            client.set_model_version_tag(model, ref.version, KEY_ID_TAG, new.key_id)
            client.set_model_version_tag(model, ref.version, SIGNATURE_TAG, ref.signature(new, manifest))
            log(f"re-signed {ref.label} with key {new.key_id}")
        for record in resign_records(client, ref, found.tags, old=old, new=new):
            log(f"re-signed the {record} record of {ref.label} with key {new.key_id}")
        good.append(ref.version)
    return good, refused
