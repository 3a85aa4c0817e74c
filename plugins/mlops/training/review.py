"""What a reviewer sees before ``champion`` moves, and what their answer records. Pure; no Airflow import.

``review_body`` renders the approval page (Markdown, shown under Required Actions): challenger and
champion on the same holdout, the improvement against the required margin, per-slice metrics and
the worst regression, the trigger, the training window and links to both MLflow runs.
``Review`` is a person's answer (or the configured outcome of a timeout), recorded on the version.
``counted_review`` decides whether the answer an approval task handed on lets the move happen: with
approval required, a missing, unreadable or ineligible approval stops the move (``ApprovalMissing``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from mlops.training.promotion import SLICE_PREFIX, improvement

if TYPE_CHECKING:
    from mlops.config.pipeline import Promotion
    from mlops.training.plan import TrainingPlan, Trigger
    from mlops.training.promotion import GateDecision

APPROVE, REJECT = "Approve", "Reject"


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md_text(value: object) -> str:
    """``value`` as literal Markdown text on one line: a category or a reason from the data cannot add
    markup, a link or a table cell to the page a reviewer trusts."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def describe_trigger(trigger: Trigger, *, forced: bool = False) -> str:
    """The trigger in one line: schedule, drift with its features, manual with its reason."""
    payload = trigger.payload or {}
    if trigger.kind == "drift":
        features = payload.get("features") or []
        names = ", ".join(md_text(f) for f in features) if features else "prediction or performance drift"
        text = f"drift on {md_text(payload.get('ds', trigger.as_of))} ({names})"
        if payload.get("reason"):
            text += f": {md_text(payload['reason'])}"
    elif trigger.kind == "manual":
        text = f"manual run, reason: {md_text(payload.get('reason') or 'none given')}"
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
        f"Gate: {md_text(decision.reason)}",
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
        lines += [f"| {md_text(k)} | {_num(c)} | {_num(o)} | {_change(d)} |" for k, c, o, d in slices]
        worst = min((s for s in slices if s[3] is not None), key=lambda s: s[3], default=None)
        if worst is not None:
            lines.append(
                f"\nWorst slice change: {md_text(worst[0])} {worst[3]:+.4f} "
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
    by_id: str = ""  # the user's id in Airflow's auth manager (what ``assigned_users`` names)

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
            by_id=str(user.get("id") or ""),
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
            f"approval.{kind}.by_id": self.by_id,
            f"approval.{kind}.comment": self.comment,
            f"approval.{kind}.timed_out": str(self.timed_out).lower(),
            f"approval.{kind}.at": self.at,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Review:
        """The review an approval task returned; ``ValueError`` when it is not one."""
        if not isinstance(data, dict):
            raise ValueError(f"a review is a mapping, not {type(data).__name__}")
        if unknown := sorted(set(data) - {f.name for f in fields(cls)}):
            raise ValueError(f"unknown fields {', '.join(map(str, unknown))}")
        for name, kind in (("approved", bool), ("by", str), ("comment", str), ("at", str)):
            if not isinstance(data.get(name), kind):
                raise ValueError(f"{name} is {data.get(name)!r}, not a {kind.__name__}")
        if not isinstance(data.get("timed_out", False), bool) or not isinstance(data.get("by_id", ""), str):
            raise ValueError("timed_out must be a boolean and by_id a string")
        return cls(**data)


class ApprovalMissing(Exception):
    """A move that needs a person's approval has none that counts: nothing moves."""


@dataclass(frozen=True)
class ReviewNeed:
    """What one move's approval must satisfy.

    ``subject`` names the move ("promoting churn version 4"), ``setting`` the YAML key that asks for
    approval. ``assigned``: the user ids that may approve (empty: anyone allowed to answer).
    ``triggered_by``: who triggered the run; in a ``forced`` run neither that user nor a timeout's
    configured outcome may approve (the person who forces a promotion cannot wave it through).
    """

    subject: str
    setting: str
    assigned: Collection[str] = ()
    triggered_by: str | None = None
    forced: bool = False

    def refusal(self, review: Review) -> str | None:
        """Why the approval ``review`` does not count, or None when it does."""
        if self.forced and review.timed_out:
            return (
                "approved by the timeout's configured outcome: a forced promotion needs a person's approval"
            )
        if self.forced and not self.triggered_by:
            return (
                f"approved by {review.by}, but who triggered this forced run is not recorded: "
                "a forced promotion needs an approver other than the user who forced it"
            )
        if self.forced and self.triggered_by in (review.by, review.by_id):
            return (
                f"approved by {review.by}, who triggered this forced run: "
                "a forced promotion needs another user's approval"
            )
        if self.assigned and not review.timed_out and review.by_id not in self.assigned:
            return (
                f"approved by {review.by}, who is not among promotion.approval.assigned_users "
                f"({', '.join(self.assigned)})"
            )
        return None


# How to proceed when an approval does not count (said in every ``ApprovalMissing``).
REMEDY = "nothing moved; clear the approve task with its downstream tasks so that a reviewer answers"


def counted_review(answer: Any, need: ReviewNeed) -> Review:
    """The review that decides a move whose approval is required: an approval that counts, or a
    rejection (nothing moves, whoever gave it).

    ``answer`` is what the approval task returned (``{"asked": True, "review": {...}}``). None (the
    task marked success by hand, or not in the run), an answer that did not ask, an unreadable one,
    or an approval ``need`` refuses raise ``ApprovalMissing`` with what is missing and what to do.
    """
    missing = f"{need.subject} needs an approval ({need.setting} is on)"
    if answer is None:
        raise ApprovalMissing(
            f"{missing} and this run has no review: the approve task returned none "
            f"(marked success by hand, or the DAG has no approve task); {REMEDY}"
        )
    if not isinstance(answer, dict) or "asked" not in answer:
        raise ApprovalMissing(
            f"{missing} and the approve task's answer is unreadable: {answer!r:.200}; {REMEDY}"
        )
    if answer["asked"] is not True:
        raise ApprovalMissing(
            f"{missing} and the approve task did not ask for one (approval was off when it ran); {REMEDY}"
        )
    try:
        review = Review.from_dict(answer.get("review"))
    except (TypeError, ValueError) as exc:
        raise ApprovalMissing(
            f"{missing} and the approve task's review is unreadable ({exc}); {REMEDY}"
        ) from None
    if review.approved and (why := need.refusal(review)):
        raise ApprovalMissing(f"{need.subject}: {why}; {REMEDY}")
    return review


def given_review(answer: Any) -> Review | None:
    """The review in ``answer`` when approval is not required: a readable one still counts when it
    rejects (a person said no), anything else is None (the move needs no approval)."""
    try:
        review = Review.from_dict(answer["review"]) if answer["asked"] is True else None
    except (KeyError, TypeError, ValueError):
        return None
    return review
