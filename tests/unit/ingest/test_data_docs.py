"""The Data Docs page: every value from a landed file is escaped, and the page needs nothing else."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from tests.unit.ingest.test_validation import END, START, churn_frame

from mlops.config.pipeline import Pipeline
from mlops.ingest import validation as v
from mlops.ingest.data_docs import render_data_docs
from mlops.lake.report_pages import CONTENT_SECURITY_POLICY, SECURITY_HEADERS

INCLUDE = Path(__file__).resolve().parents[3] / "include"
PAYLOAD = "<img src=x onerror=alert(1)>"


def page_of(raw, pipeline: Pipeline, suite: dict) -> tuple[v.ValidationOutcome, str]:
    outcome = v.validate_partition(raw, pipeline, suite, interval_start=START, interval_end=END)
    return outcome, render_data_docs(outcome.result, summary=outcome.message, failures=outcome.failures)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


SAFE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "b", "br", "table", "tr"}
SAFE_TAGS |= {"th", "td", "code", "ul", "li"}


def assert_inert(page: str) -> None:
    """Only the page's own elements, no event handler, no link or reference to any other resource."""
    parsed = _Elements()
    parsed.feed(page)
    assert parsed.tags <= SAFE_TAGS, parsed.tags - SAFE_TAGS
    assert parsed.attributes <= {"lang", "charset", "class"}, parsed.attributes
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


def test_a_category_payload_is_shown_escaped(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[3, "plan"] = PAYLOAD
    outcome, page = page_of(raw, pipeline, suite)
    assert outcome.passed and len(outcome.quarantined) == 1
    assert "<code>&lt;img src=x onerror=alert(1)&gt;</code>: 1 rows" in page
    assert_inert(page)


def test_a_header_payload_is_shown_escaped(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame().rename(columns={"region": "<svg onload=alert(1)>"})
    outcome, page = page_of(raw, pipeline, suite)
    assert not outcome.passed
    assert page.count("&lt;svg onload=alert(1)&gt;") >= 2  # the observed columns and the gate's message
    assert "<svg" not in page
    assert_inert(page)


def test_an_error_message_and_an_unknown_expectation_are_escaped() -> None:
    result = {
        "success": False,
        "suite_name": "churn</title><script>",
        "statistics": {"evaluated_expectations": 1, "successful_expectations": 0},
        "error": "part-000.csv: duplicated column names in the header: ['<script>alert(1)</script>']",
        "results": [
            {
                "success": False,
                "expectation_config": {
                    "type": "expect_<b>custom</b>",
                    "kwargs": {"column": "<i>c</i>", "value": "<a href=javascript:alert(1)>x</a>"},
                    "meta": {},
                },
                "result": {"observed_value": "</td><script>alert(1)</script>"},
                "exception_info": {"exception_message": "<iframe src=//evil>"},
            }
        ],
    }
    page = render_data_docs(result, summary="<object data=x>")
    for raw in ("<script>", "<b>custom", "<i>c</i>", "<a href", "<iframe", "<object"):
        assert raw not in page.split("</style>", 1)[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;object data=x&gt;" in page
    assert_inert(page)


def test_a_huge_value_is_cut(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[3, "plan"] = "x" * 100_000
    _, page = page_of(raw, pipeline, suite)
    assert "… (100000 characters)" in page and len(page) < 40_000


def test_the_page_names_the_expectations_and_counts_in_gxs_words(pipeline: Pipeline, suite: dict) -> None:
    raw = churn_frame()
    raw.loc[[3, 9], "plan"] = "gold"
    raw.loc[5, "tenure_months"] = "twelve"
    outcome, page = page_of(raw, pipeline, suite)
    assert "Must have greater than or equal to 1000 and less than or equal to 50000 rows." in page
    assert (
        "values must belong to this set: <code>basic</code> <code>standard</code> <code>premium</code>."
        in page
    )
    assert "2 unexpected values found. 0.1667% of 1200 total rows." in page
    assert "<code>gold</code>: 2 rows" in page
    # The type check is the gate's own, not GX's: the page lists it among the failures too.
    assert "expect_column_values_to_be_of_type(tenure_months)" in page
    assert f"<p>Gate: {outcome.message[:40]}" in page


def test_reports_are_served_under_a_policy_that_allows_no_script_and_no_other_host() -> None:
    directives = dict(d.strip().partition(" ")[::2] for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives and "connect-src" not in directives
    assert directives["img-src"] == "data:" and "sandbox" in directives
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
