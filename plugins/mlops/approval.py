"""What a reviewer sees before ``champion`` moves, and what their answer records. Pure; no Airflow import.

``review_body`` renders the approval page (Markdown, shown under Required Actions): challenger and
champion on the same holdout, the improvement against the required margin, per-slice metrics and
the worst regression, the trigger, the training window and links to both MLflow runs.
``Review`` is a person's answer (or the configured outcome of a timeout), recorded on the version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlops.promotion import SLICE_PREFIX, improvement

if TYPE_CHECKING:
    from mlops.config import Promotion
    from mlops.plan import TrainingPlan, Trigger
    from mlops.promotion import GateDecision

APPROVE, REJECT = "Approve", "Reject"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def describe_trigger(trigger: Trigger, *, forced: bool = False) -> str:
    """The trigger in one line: schedule, drift with its features, manual with its reason."""
    payload = trigger.payload or {}
    if trigger.kind == "drift":
        features = payload.get("features") or []
        names = ", ".join(str(f) for f in features) if features else "prediction or performance drift"
        text = f"drift on {payload.get('ds', trigger.as_of)} ({names})"
        if payload.get("reason"):
            text += f": {payload['reason']}"
    elif trigger.kind == "manual":
        text = f"manual run, reason: {payload.get('reason') or 'none given'}"
    else:
        text = f"{trigger.kind} run"
    return text + ("; force promotion requested" if forced else "")


def review_body(
    pipeline: str,
    cfg: Promotion,
    decision: GateDecision,
    plan: TrainingPlan,
    holdout_days: int,
    links: dict[str, str],
) -> str:
    """The approval page for promoting ``decision.version`` (Markdown)."""
    metric = cfg.primary_metric
    new, old = decision.challenger.get(metric), (decision.champion or {}).get(metric)
    trained, holdout = plan.split(holdout_days)
    champion = f"version {decision.champion_version}" if decision.champion_version else "none yet"
    lines = [
        f"**{pipeline}**: promote version **{decision.version}** to `champion` (now: {champion})?",
        "",
        f"Gate: {decision.reason}",
        "",
        f"| {metric} on the holdout {', '.join(holdout)} | value |",
        "|---|---|",
        f"| challenger v{decision.version} | {_num(new)} |",
        f"| champion {champion} | {_num(old)} |",
    ]
    if new is not None and old is not None:
        delta = improvement(metric, new, old)
        verdict = "meets" if delta >= cfg.min_improvement else "below"
        lines.append(f"| improvement (required {cfg.min_improvement:.4f}) | {delta:+.4f} ({verdict}) |")
    lines.append(f"| floor | {cfg.floor:.4f} |")
    slices = _slices(decision)
    if slices:
        lines += ["", "| slice | challenger | champion | change |", "|---|---|---|---|"]
        lines += [f"| {k} | {_num(c)} | {_num(o)} | {_change(d)} |" for k, c, o, d in slices]
        worst = min((s for s in slices if s[3] is not None), key=lambda s: s[3], default=None)
        if worst is not None:
            lines.append(
                f"\nWorst slice change: {worst[0]} {worst[3]:+.4f} "
                f"(allowed regression {cfg.max_slice_regression:.4f})"
            )
    first, last = (trained[0], trained[-1]) if trained else ("—", "—")
    lines += [
        "",
        f"Trigger: {describe_trigger(plan.trigger, forced=decision.forced)}",
        "",
        f"Training window: trained on {first} .. {last}, holdout {', '.join(holdout) or '—'} "
        f"({len(plan.ready)} days through {plan.as_of})",
        "",
        *(f"- [{label}]({url})" for label, url in links.items()),
    ]
    return "\n".join(lines)


def _slices(decision: GateDecision) -> list[tuple[str, float, float | None, float | None]]:
    champion = decision.champion or {}
    rows = []
    for key in sorted(k for k in decision.challenger if k.startswith(SLICE_PREFIX)):
        new, old = decision.challenger[key], champion.get(key)
        name = key.removeprefix(SLICE_PREFIX)
        rows.append((name, new, old, None if old is None else improvement(key, new, old)))
    return rows


def _change(delta: float | None) -> str:
    return "—" if delta is None else f"{delta:+.4f}"


@dataclass(frozen=True)
class Review:
    """A reviewer's answer: approved or not, by whom, with what comment, when; or a timeout's outcome."""

    approved: bool
    by: str
    comment: str
    at: str
    timed_out: bool = False

    @classmethod
    def of(cls, event: dict[str, Any]) -> Review:
        """From the answer ``HITLOperator.execute_complete`` hands back (its chosen option and inputs)."""
        user = event.get("responded_by_user") or {}
        when = event.get("responded_at")
        at = when.isoformat() if isinstance(when, dt.datetime) else str(when or "")
        comment = (event.get("params_input") or {}).get("comment") or ""
        timed_out = bool(event.get("timedout"))
        by = user.get("name") or user.get("id") or ("timeout" if timed_out else "unknown")
        return cls(
            approved=list(event.get("chosen_options") or []) == [APPROVE],
            by=str(by),
            comment=str(comment)[:1000],
            at=at,
            timed_out=timed_out,
        )

    @property
    def summary(self) -> str:
        verb = "approved" if self.approved else "rejected"
        who = f"on timeout ({verb} by configuration)" if self.timed_out else f"by {self.by}"
        return f"{verb} {who} at {self.at}" + (f": {self.comment}" if self.comment else "")

    def tags(self, kind: str) -> dict[str, str]:
        """The tags recorded on the version reviewed (``kind``: promotion or rollback)."""
        return {
            f"approval.{kind}.decision": "approved" if self.approved else "rejected",
            f"approval.{kind}.by": self.by,
            f"approval.{kind}.comment": self.comment,
            f"approval.{kind}.timed_out": str(self.timed_out).lower(),
            f"approval.{kind}.at": self.at,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Review:
        return cls(**data)
