"""The typed contracts between a train run's tasks: why it trains, and on which window.

``Trigger`` says why and as of which day; ``TrainingPlan`` is what ``prepare`` decided once for the
whole run (window, parent MLflow run, champion as of the run's effective day). Both travel through
XCom as plain dicts (``to_dict``/``from_dict``), so a mistyped field fails where it is read, at
once. Pure Python.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mlops.clock.logical import ORDER, effective_day
from mlops.grain import DAY


def _from(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return cls(**data)


@dataclass(frozen=True)
class Trigger:
    """Why a train run trains: ``schedule``, ``drift`` (payload: the drift event), ``manual``, ``backfill``.

    ``as_of`` is the window's last partition: the drifted one for a drift retrain, else the last
    complete partition before the logical date. ``effective`` is the partition after it, where the
    run's decision takes effect (empty: the day after ``as_of``, the daily grain).
    """

    kind: str
    as_of: str
    payload: dict[str, Any] = field(default_factory=dict)
    effective: str = field(default="", compare=False)

    @property
    def backfill(self) -> bool:
        return self.kind == "backfill"

    @property
    def effective_day(self) -> str:
        # A trigger carries no pipeline; one without ``effective`` is at the daily grain (see above).
        return self.effective or effective_day(self.as_of, DAY)

    @property
    def order(self) -> int:
        return ORDER[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trigger:
        return _from(cls, data)


@dataclass(frozen=True)
class TrainingPlan:
    """What ``prepare`` decided for the whole run; passed once, read by every later task."""

    trigger: Trigger
    ready: list[str]
    failed: list[str]
    parent_run_id: str
    champion_at_start: str | None
    lineage: dict[str, str]
    tags: dict[str, str]

    @property
    def as_of(self) -> str:
        return self.trigger.as_of

    @property
    def attempts(self) -> dict[str, str]:
        """The attempt of each partition the window read (empty for a plan made before they were
        recorded: those read the committed attempt)."""
        return json.loads(self.lineage.get("attempts") or "{}")

    def split(self, holdout: int) -> tuple[list[str], list[str]]:
        """The partitions the challenger was fitted on (train and validation), and its holdout."""
        return self.ready[:-holdout], self.ready[-holdout:]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trigger": self.trigger.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingPlan:
        return _from(cls, {**data, "trigger": Trigger.from_dict(data["trigger"])})


@dataclass(frozen=True)
class TrialResult:
    """What one trial trained and logged: its nested run, the logged model, its metrics."""

    trial: int
    run_id: str
    model_uri: str
    model_id: str | None
    valid_metric: float
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        return _from(cls, data)
