"""Report pages hold text from landed files: in a real browser, script in that text stays text.

Each hostile file goes through the package's own gate into the stack's lake (days long before the
stack's history, so no stage of the stack reads them), and its Data Docs page is opened through the
report plugin by a logged-in user, as the ``rejected_day`` notification's link would open it. The page
must show the payload as text, make no request but its own, run nothing, and carry the strict CSP.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect
from tests.embedded_stack import EmbeddedStack
from tests.unit.ingest.test_validation import START, churn_frame

from mlops.config.pipeline import load_pipeline
from mlops.ingest.stage import PartitionRejected, gate
from mlops.ingest.suite import load_suite
from mlops.lake.report_pages import report_url
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir

# Each payload, if it ran, would open a dialog, which the test listens for. Short and without quotes:
# messages quote header names as a list, cut at 40 characters.
IN_CATEGORY = "<img src=x onerror=alert(1)>"
IN_HEADER = "<svg onload=alert(2)>"
IN_ERROR = "<script>alert(3)</script>"


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _day_frame(day: str) -> pd.DataFrame:
    frame = churn_frame()
    frame["event_ts"] = frame["event_ts"].str.replace(START.date().isoformat(), day, regex=False)
    return frame


def _category_file(day: str) -> bytes:
    frame = _day_frame(day)
    frame.loc[: len(frame) // 2, "plan"] = IN_CATEGORY  # past the quarantine share: the day is rejected
    return _csv(frame)


def _header_file(day: str) -> bytes:
    return _csv(_day_frame(day).rename(columns={"region": IN_HEADER}))


def _error_file(day: str) -> bytes:
    # A header naming one column twice is an unreadable file; the message names the column.
    text = _csv(_day_frame(day)).decode()
    header, rest = text.split("\n", 1)
    header = header.replace("region", IN_ERROR).replace("contract", IN_ERROR)
    return f"{header}\n{rest}".encode()


CASES = {
    "2025-06-01": (_category_file, IN_CATEGORY),
    "2025-06-02": (_header_file, IN_HEADER),
    "2025-06-03": (_error_file, IN_ERROR),
}


@pytest.fixture(scope="module")
def hostile_days(stack: EmbeddedStack) -> dict[str, str]:
    """Each case's day gated into the stack's lake; returns {day: payload}."""
    lake = LocalStorage(stack.lake_root)
    include = stack.state / "include"
    pipeline = load_pipeline(include / "pipelines" / "churn.yaml")
    suite = load_suite(pipeline, include)
    for day, (make, _) in CASES.items():
        commit_partition(lake, partition_dir("churn", "raw", day), {"part-000.csv": make(day)})
        start = pipeline.grain.start(day)
        with pytest.raises(PartitionRejected):
            gate(lake, pipeline, suite, day, interval_start=start, interval_end=pipeline.grain.end(day))
    return {day: payload for day, (_, payload) in CASES.items()}


@pytest.mark.parametrize("day", list(CASES))
def test_a_payload_in_a_landed_file_renders_as_text_and_runs_nothing(
    page: Any, stack: EmbeddedStack, hostile_days: dict[str, str], day: str
) -> None:
    payload = hostile_days[day]
    url = report_url("churn", day, "data_docs.html")
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    response = page.goto(url)

    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy.split(";")[-1]
    expect(page.get_by_text(payload).first).to_be_visible()
    page.wait_for_timeout(500)  # time for an onload/onerror handler to have fired, if any could
    assert page.locator("img, svg, script, iframe, object, embed").count() == 0
    # The browser's own favicon probe is not the page's doing; anything else would be.
    asked = [r for r in requests if not r.endswith("/favicon.ico")]
    assert asked == [f"{stack.airflow_url}{url}"], "the page asked for more than itself"
    assert dialogs == []
