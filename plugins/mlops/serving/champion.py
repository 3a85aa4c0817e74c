"""The champion each pipeline serves: resolved from the registry's signed history, swapped atomically.

What serves is the version the signed move history names as champion now (its newest move: the
version ``registry.champion._withdraw`` would restore), provided the ``champion`` alias points at it
too. The two differ for a moment during a move (the record is written before the alias moves) and
when someone moved the alias by hand; in both cases the version in force keeps serving, and nothing
serves before they agree. A poll thread per pipeline asks every ``serving.poll_seconds``, over MLflow's
REST API (``RegistryReader``: two small HTTP calls, no MLflow import on the poll path).

A new version is downloaded, verified against its signature and loaded in that thread, off the
request path; only then does one assignment put it in force. A request reads the holder once, at its
start, and scores with what it read: in-flight requests finish on the old model, and the old one is
freed when the last of them ends. A version that fails verification never serves: the refusal is
counted and logged once, and the version is tried again only if its signature changes (re-signed).
No Airflow import.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.registry.champion import CHAMPION, moves_of, quote, search_versions
from mlops.registry.signing import SIGNATURE_TAG, UnverifiedModel

if TYPE_CHECKING:
    from mlops.registry.rest import RegistryReader
    from mlops.registry.signing import SigningKey
    from mlops.serving.metrics import ServingMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """What should serve now: ``version`` None when nothing is settled (``note`` says why)."""

    version: str | None
    signature: str = ""  # the version's signature tag: a re-signed version is tried again
    note: str = ""


@dataclass(frozen=True)
class Loaded:
    """A verified, loaded version; immutable, so a request's reference to it never changes under it."""

    version: str
    model: Any
    loaded_at: float


def champion_target(reader: RegistryReader, model: str, key: SigningKey) -> Target:
    """The champion now by the signed history, if the alias agrees."""
    versions = search_versions(reader, f"name = {quote(model)}")
    moves = moves_of(versions, model, key)
    if not moves:
        return Target(None, note=f"{model}: no signed champion move yet (run {model}_train)")
    newest = moves[-1].version
    alias = reader.alias_version(model, CHAMPION)
    if alias != newest:
        return Target(
            None,
            note=f"{model}: the signed history names version {newest} champion, the alias {alias}: "
            "a move in progress, or an alias moved by hand; keeping the version in force",
        )
    tags = next(v.tags for v in versions if v.version == newest)
    return Target(newest, signature=tags.get(SIGNATURE_TAG, ""))


class ChampionHolder:
    """The loaded champion of each pipeline, kept current by one poll thread per pipeline.

    ``target(pipeline)`` says what should serve (``champion_target``); ``load(pipeline, version)``
    returns the verified model or raises ``UnverifiedModel``.
    """

    def __init__(
        self,
        poll_seconds: Mapping[str, float],
        *,
        target: Callable[[str], Target],
        load: Callable[[str, str], Any],
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.poll_seconds = dict(poll_seconds)
        self._target, self._load, self._metrics = target, load, metrics
        self._loaded: dict[str, Loaded] = {}
        self._refused: dict[str, tuple[str, str]] = {}
        self._notes: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def get(self, pipeline: str) -> Loaded | None:
        """The version in force (one dict read: atomic under the GIL)."""
        return self._loaded.get(pipeline)

    def missing(self) -> dict[str, str]:
        """Pipelines with no champion loaded, and why."""
        return {
            name: self._notes.get(name, "not loaded yet")
            for name in self.poll_seconds
            if name not in self._loaded
        }

    def refresh(self, pipeline: str) -> str:
        """One poll: load and put in force a new champion if there is one; returns what happened."""
        try:
            target = self._target(pipeline)
        except (ConnectionError, RuntimeError, OSError, ValueError) as exc:
            # The registry is away: keep serving what is loaded, and ask again at the next poll.
            return self._note(pipeline, "registry", f"{pipeline}: could not ask the registry: {exc}")
        current = self._loaded.get(pipeline)
        if target.version is None:
            return self._note(pipeline, "unsettled", target.note)
        if current is not None and current.version == target.version:
            self._notes.pop(pipeline, None)
            return "unchanged"
        if self._refused.get(pipeline) == (target.version, target.signature):
            return "refused"
        try:
            model = self._load(pipeline, target.version)
        except UnverifiedModel as exc:
            self._refused[pipeline] = (target.version, target.signature)
            self._count(pipeline, "unverified")
            log.error("%s: refusing version %s, which does not verify: %s", pipeline, target.version, exc)
            self._notes[pipeline] = f"version {target.version} does not verify: {exc}"
            return "unverified"
        except Exception as exc:  # any load failure leaves the old model serving
            # Counted and logged, never hidden: the version in force keeps serving, the next poll retries.
            self._count(pipeline, "failed")
            log.exception(
                "%s: loading version %s failed; keeping the version in force", pipeline, target.version
            )
            self._notes[pipeline] = f"loading version {target.version} failed: {type(exc).__name__}: {exc}"
            return "failed"
        self._loaded[pipeline] = Loaded(target.version, model, time.time())
        self._notes.pop(pipeline, None)
        self._count(pipeline, "loaded", target.version)
        previous = current.version if current else "none"
        log.info("%s: version %s in force (was %s)", pipeline, target.version, previous)
        return "loaded"

    def _note(self, pipeline: str, outcome: str, note: str) -> str:
        if self._notes.get(pipeline) != note:  # logged when it changes, not at every poll
            log.warning("%s", note)
            self._notes[pipeline] = note
        return outcome

    def _count(self, pipeline: str, outcome: str, version: str | None = None) -> None:
        if self._metrics is not None:
            self._metrics.loaded(pipeline, outcome, version)

    def start(self) -> None:
        """A poll thread per pipeline; the first poll runs at once."""
        for pipeline, every in self.poll_seconds.items():
            thread = threading.Thread(
                target=self._poll, args=(pipeline, every), name=f"champion-{pipeline}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _poll(self, pipeline: str, every: float) -> None:
        while not self._stop.is_set():
            try:
                self.refresh(pipeline)
            except Exception:  # a bug in one poll must not end the polling for good
                log.exception("%s: the champion poll failed; polling again in %gs", pipeline, every)
            self._stop.wait(every)

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
