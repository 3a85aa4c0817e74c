"""The promotion gate: should a challenger model replace the champion? Pure logic, no I/O.

Both metric dicts are expected to come from the same holdout (the caller scores the champion on
the challenger's holdout); the gate only compares numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlops.config.pipeline import Promotion

SLICE_PREFIX = "auc_slice_"
# Direction of each metric the gate may compare; slice metrics are AUCs.
_HIGHER_IS_BETTER = {"auc": True, "log_loss": False}
# Metric values are float computations: differences within this are treated as exact.
_EPS = 1e-12


def higher_is_better(metric: str) -> bool:
    if metric.startswith(SLICE_PREFIX):
        return True
    try:
        return _HIGHER_IS_BETTER[metric]
    except KeyError:
        raise ValueError(
            f"unknown metric direction for {metric!r}; known: {sorted(_HIGHER_IS_BETTER)}"
        ) from None


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (negative: worse), whatever the metric's direction."""
    return new - old if higher_is_better(metric) else old - new


def better(metric: str, a: float, b: float) -> bool:
    """``a`` is strictly better than ``b`` on ``metric``."""
    return improvement(metric, a, b) > _EPS


def clears_floor(metric: str, value: float, floor: float) -> bool:
    """For a higher-is-better metric the floor is a minimum; for log_loss it is a maximum."""
    return improvement(metric, value, floor) >= -_EPS


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    compared: dict[str, Any]  # JSON-serialisable: the numbers the reason talks about
    forced: bool = False  # force was requested (recorded even when the floor still refused it)


def _value(metrics: dict[str, float], metric: str, who: str) -> float:
    if metric not in metrics:
        raise ValueError(f"{who} metrics have no {metric!r}; got {sorted(metrics)}")
    value = float(metrics[metric])
    if math.isnan(value):
        raise ValueError(f"{who} {metric} is NaN")
    return value


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    cfg: Promotion,
    *,
    force: bool = False,
) -> Decision:
    """Apply the gate.

    1. The challenger's primary metric must clear ``cfg.floor`` — always, even when forced: a
       model worse than the floor is not fit to serve, whoever asks.
    2. No champion: promote (the first model).
    3. ``force``: promote, and the reason says it was forced (the comparison is still recorded).
    4. Otherwise promote iff the primary metric improves by > 0 and >= ``cfg.min_improvement``
       and no ``auc_slice_*`` present in both dicts drops by more than ``cfg.max_slice_regression``.
    """
    metric = cfg.primary_metric
    new = _value(challenger, metric, "challenger")
    compared: dict[str, Any] = {metric: {"challenger": new, "floor": cfg.floor}}

    if not clears_floor(metric, new, cfg.floor):
        bound = "minimum" if higher_is_better(metric) else "maximum"
        note = "; force does not override the floor" if force else ""
        return Decision(
            False,
            f"not promoted: challenger {metric}={new:.4f} does not clear the floor ({bound}) {cfg.floor:.4f}{note}",
            compared,
            forced=force,
        )

    if champion is None:
        compared[metric]["champion"] = None
        prefix = "forced; " if force else ""
        return Decision(
            True,
            f"{prefix}promoted: first model, {metric}={new:.4f} clears the floor {cfg.floor:.4f}",
            compared,
            forced=force,
        )

    old = _value(champion, metric, "champion")
    delta = improvement(metric, new, old)
    compared[metric].update(champion=old, improvement=delta, min_improvement=cfg.min_improvement)

    slices: dict[str, dict[str, float]] = {}
    regressed: list[str] = []
    for key in sorted(k for k in challenger if k.startswith(SLICE_PREFIX) and k in champion):
        c_new, c_old = float(challenger[key]), float(champion[key])
        if math.isnan(c_new) or math.isnan(c_old):
            continue
        change = improvement(key, c_new, c_old)
        slices[key] = {"challenger": c_new, "champion": c_old, "change": change}
        if -change > cfg.max_slice_regression + _EPS:
            regressed.append(f"{key} {c_old:.4f} -> {c_new:.4f} ({change:+.4f})")
    if slices:
        compared["slices"] = slices
        compared["max_slice_regression"] = cfg.max_slice_regression

    summary = f"{metric} {new:.4f} vs champion {old:.4f} (improvement {delta:+.4f}, needed {cfg.min_improvement:.4f})"
    if force:
        return Decision(True, f"forced; promoted without the gate: {summary}", compared, forced=True)
    if delta <= _EPS or delta < cfg.min_improvement - _EPS:
        return Decision(False, f"not promoted: {summary}", compared)
    if regressed:
        return Decision(
            False,
            f"not promoted: {summary}, but slices regress by more than "
            f"{cfg.max_slice_regression:.4f}: {'; '.join(regressed)}",
            compared,
        )
    return Decision(
        True, f"promoted: {summary}; no slice regresses by more than {cfg.max_slice_regression:.4f}", compared
    )


def holdout_leak(holdout: list[str], trained_on: dict[str, tuple[str, str] | None]) -> str | None:
    """Why comparing models on ``holdout`` would be a leak, or None when it is fair.

    ``trained_on`` maps each model ("challenger", "champion version 3") to the first and last day it
    was fitted on (training and early-stopping days), or None when unknown. A holdout day inside
    that range is a day the model has seen: its score there says nothing about new data.
    """
    for who, span in trained_on.items():
        if span is None:
            continue
        first, last = span
        seen = [d for d in holdout if first <= d <= last]
        if seen:
            return (
                f"refused: the holdout days {', '.join(seen)} are days {who} was trained on "
                f"({first} .. {last}); a comparison there is a leak, not a comparison"
            )
    return None


@dataclass(frozen=True)
class GateDecision:
    """What the gate of one train run decided, as handed to ``promote`` and recorded.

    ``would_promote`` is the gate's verdict; ``promote`` is what happens (a backfill run, or a refused
    comparison, never promotes).
    """

    version: str
    champion_version: str | None
    would_promote: bool
    promote: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    forced: bool = False

    @classmethod
    def of(
        cls,
        decision: Decision,
        *,
        version: str,
        champion_version: str | None,
        challenger: dict[str, float],
        champion: dict[str, float] | None,
        leak: str | None,
        backfill: bool,
    ) -> GateDecision:
        would = decision.promote and leak is None
        return cls(
            version=version,
            champion_version=champion_version,
            would_promote=would,
            promote=would and not backfill,
            reason=leak or decision.reason,
            challenger=challenger,
            champion=champion,
            forced=decision.forced,
        )

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        return cls(**data)
