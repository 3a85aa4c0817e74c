"""``mlops.training.review.counted_review``: whether an approval task's answer lets a move happen.

With approval required, only an approval that counts moves the alias; anything missing, unreadable
or refused stops the move naming what is missing and what to do. Pure: no Airflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.config.pipeline import ConfigError, load_pipeline
from mlops.training.review import REMEDY, ApprovalMissing, Review, ReviewNeed, counted_review, given_review

ROOT = Path(__file__).resolve().parents[3]
NEED = ReviewNeed(subject="promoting churn version 4", setting="promotion.approval.enabled")
MISSING = "promoting churn version 4 needs an approval (promotion.approval.enabled is on)"


def answer(
    approved: bool = True, by: str = "bob", *, by_id: str | None = None, timed_out: bool = False
) -> dict[str, Any]:
    review = Review(approved, by, "looks right", "2026-03-02T09:30:00+00:00", timed_out, by_id or by)
    return {"asked": True, "review": review.to_dict()}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(
            None,
            f"{MISSING} and this run has no review: the approve task returned none (marked success by "
            f"hand, or the DAG has no approve task); {REMEDY}",
            id="marked-success-by-hand",
        ),
        pytest.param(
            {"asked": False},
            f"{MISSING} and the approve task did not ask for one (approval was off when it ran); {REMEDY}",
            id="did-not-ask",
        ),
        pytest.param(
            "Approve",
            f"{MISSING} and the approve task's answer is unreadable: 'Approve'; {REMEDY}",
            id="not-a-mapping",
        ),
        pytest.param(
            {"asked": True},
            f"{MISSING} and the approve task's review is unreadable (a review is a mapping, not "
            f"NoneType); {REMEDY}",
            id="no-review",
        ),
        pytest.param(
            {"asked": True, "review": {**answer()["review"], "approved": "yes"}},
            f"{MISSING} and the approve task's review is unreadable (approved is 'yes', not a bool); {REMEDY}",
            id="approved-not-a-boolean",
        ),
        pytest.param(
            {"asked": True, "review": {**answer()["review"], "role": "admin"}},
            f"{MISSING} and the approve task's review is unreadable (unknown fields role); {REMEDY}",
            id="unknown-field",
        ),
    ],
)
def test_a_required_approval_that_is_missing_or_unreadable_stops_the_move(given: Any, expected: str) -> None:
    with pytest.raises(ApprovalMissing) as raised:
        counted_review(given, NEED)
    assert str(raised.value) == expected


def test_an_approval_counts_and_a_rejection_decides_too() -> None:
    assert counted_review(answer(), NEED) == Review.from_dict(answer()["review"])
    rejected = counted_review(answer(approved=False), NEED)
    assert rejected.approved is False and rejected.by == "bob"


FORCED = ReviewNeed(
    subject="promoting churn version 4",
    setting="promotion.approval.enabled",
    triggered_by="alice",
    forced=True,
)


@pytest.mark.parametrize(
    ("need", "given", "why"),
    [
        pytest.param(
            FORCED,
            answer(by="alice"),
            "approved by alice, who triggered this forced run: a forced promotion needs another user's approval",
            id="self-approval-of-a-forced-run",
        ),
        pytest.param(
            FORCED,
            answer(by="Alice A.", by_id="alice"),
            "approved by Alice A., who triggered this forced run: a forced promotion needs another user's approval",
            id="self-approval-by-id",
        ),
        pytest.param(
            FORCED,
            answer(by="timeout", by_id="", timed_out=True),
            "approved by the timeout's configured outcome: a forced promotion needs a person's approval",
            id="a-timeout-does-not-approve-a-forced-run",
        ),
        pytest.param(
            ReviewNeed(NEED.subject, NEED.setting, forced=True),
            answer(by="bob"),
            "approved by bob, but who triggered this forced run is not recorded: a forced promotion "
            "needs an approver other than the user who forced it",
            id="forced-by-nobody-known",
        ),
        pytest.param(
            ReviewNeed(NEED.subject, NEED.setting, assigned=("carol", "dave")),
            answer(by="bob"),
            "approved by bob, who is not among promotion.approval.assigned_users (carol, dave)",
            id="not-an-assigned-user",
        ),
    ],
)
def test_an_approval_that_does_not_count_is_refused_as_if_missing(
    need: ReviewNeed, given: dict[str, Any], why: str
) -> None:
    with pytest.raises(ApprovalMissing) as raised:
        counted_review(given, need)
    assert str(raised.value) == f"promoting churn version 4: {why}; {REMEDY}"


@pytest.mark.parametrize(
    ("need", "given"),
    [
        pytest.param(FORCED, answer(by="bob"), id="forced-approved-by-another-user"),
        pytest.param(FORCED, answer(approved=False, by="alice"), id="the-forcing-user-may-reject"),
        pytest.param(
            ReviewNeed(NEED.subject, NEED.setting, triggered_by="alice"),
            answer(by="alice"),
            id="an-unforced-run-its-trigger-may-approve",
        ),
        pytest.param(
            ReviewNeed(NEED.subject, NEED.setting, assigned=("carol",)),
            answer(by="Carol C.", by_id="carol"),
            id="an-assigned-user-by-id",
        ),
        pytest.param(
            ReviewNeed(NEED.subject, NEED.setting, assigned=("carol",)),
            answer(by="timeout", by_id="", timed_out=True),
            id="an-unforced-timeout-applies-the-configured-outcome",
        ),
    ],
)
def test_an_approval_that_counts(need: ReviewNeed, given: dict[str, Any]) -> None:
    assert counted_review(given, need) == Review.from_dict(given["review"])


def test_when_approval_is_not_required_only_a_readable_review_is_read() -> None:
    assert given_review(None) is None and given_review({"asked": False}) is None
    assert given_review({"asked": True, "review": {"approved": "yes"}}) is None
    assert given_review(answer(approved=False)) == Review.from_dict(answer(approved=False)["review"])


def test_a_review_recorded_before_by_id_existed_still_reads() -> None:
    old = {
        "approved": True,
        "by": "admin",
        "comment": "",
        "at": "2026-03-02T09:30:00+00:00",
        "timed_out": False,
    }
    assert Review.from_dict(old).by_id == ""


def _churn_with(tmp_path: Path, approval: dict[str, Any]) -> Path:
    data = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
    data["promotion"]["approval"] = approval
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_assigned_users_are_ids_or_id_and_name(tmp_path: Path) -> None:
    path = _churn_with(tmp_path, {"enabled": True, "assigned_users": ["alice", {"id": 7, "name": "Bob B."}]})
    approval = load_pipeline(path).promotion.approval
    assert approval.approver_ids == ("alice", "7")
    assert approval.assignees == [{"id": "alice", "name": "alice"}, {"id": "7", "name": "Bob B."}]
    assert load_pipeline(_churn_with(tmp_path, {"enabled": True})).promotion.approval.assignees == []


@pytest.mark.parametrize(
    ("users", "phrase"),
    [
        pytest.param([""], "promotion.approval.assigned_users.0.id", id="empty-id"),
        pytest.param([{"name": "x"}], "promotion.approval.assigned_users.0.id", id="no-id"),
        pytest.param(
            [{"id": "a", "role": "Op"}], "promotion.approval.assigned_users.0.role", id="unknown-key"
        ),
        pytest.param("alice", "promotion.approval.assigned_users", id="not-a-list"),
    ],
)
def test_a_bad_assigned_user_names_the_key(tmp_path: Path, users: Any, phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase.replace(".", r"\.")):
        load_pipeline(_churn_with(tmp_path, {"enabled": True, "assigned_users": users}))
