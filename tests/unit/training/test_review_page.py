"""The approval page a reviewer reads: values from the data are literal text, never Markdown."""

from __future__ import annotations

import re

from mlops.config.pipeline import Promotion
from mlops.training.plan import TrainingPlan, Trigger
from mlops.training.promotion import SLICE_PREFIX, GateDecision
from mlops.training.review import md_text, review_body

HOSTILE = "<img src=x onerror=alert(1)> [approve here](http://evil.example.test) | **x**"


def test_md_text_escapes_markup_links_cells_and_line_breaks() -> None:
    text = md_text(HOSTILE + "\n# heading")
    assert "\n" not in text and "<" not in text and ">" not in text
    assert re.search(r"(?<!\\)[\[\]()|*#]", text) is None  # every Markdown character escaped
    unescaped = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("\\", "")
    assert unescaped == " ".join((HOSTILE + "\n# heading").split())


def test_a_hostile_slice_and_drift_reason_reach_the_page_as_text() -> None:
    decision = GateDecision(
        version="7",
        champion_version="6",
        would_promote=True,
        promote=True,
        reason="auc improved",
        challenger={"auc": 0.81, f"{SLICE_PREFIX}plan={HOSTILE}": 0.7},
        champion={"auc": 0.8, f"{SLICE_PREFIX}plan={HOSTILE}": 0.72},
    )
    trigger = Trigger(kind="drift", as_of="2026-03-02", payload={"features": [HOSTILE], "reason": HOSTILE})
    plan = TrainingPlan(trigger, ["2026-03-01", "2026-03-02"], [], "run", "6", {}, {})

    body = review_body("churn", Promotion(), decision, plan, 1, {"MLflow": "http://mlflow.test/#/v/7"})

    assert "<img" not in body and "](http://evil" not in body and "| **x**" not in body
    assert body.count(md_text(HOSTILE)) >= 4  # slice row, worst slice, drift features, drift reason
    assert "- [MLflow](http://mlflow.test/#/v/7)" in body  # the page's own links stay links
