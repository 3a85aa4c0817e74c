"""What a person does in Airflow 3's UI, as Playwright steps: open a trigger form, fill it, submit.

Selectors follow what the user sees (roles, labels, texts); where the UI offers nothing better, its
test ids (``trigger-dag-submit``, ``datetime-input``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from tests.embedded_stack import Api

SECTION = "[data-scope=accordion][data-part=item-trigger]"


def open_trigger_form(page: Any, dag_id: str) -> Any:
    """The DAG's page, then its Trigger button: the dialog."""
    page.goto(f"/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_test_id("trigger-dag-submit").wait_for()
    return dialog


def open_section(dialog: Any, name: str) -> None:
    """Expand the form's section ``name`` (the form shows one section at a time)."""
    section = dialog.locator(SECTION).filter(has_text=name).first
    if section.get_attribute("aria-expanded") != "true":
        section.click()


def every_section_text(dialog: Any) -> str:
    """What the form shows, section by section: each expanded in turn."""
    texts = []
    for i in range(dialog.locator(SECTION).count()):
        section = dialog.locator(SECTION).nth(i)
        if section.get_attribute("aria-expanded") != "true":
            section.click()
        dialog.page.wait_for_timeout(300)  # the section's content animates in
        texts.append(dialog.inner_text())
    return "\n".join(texts)


def submit_button(dialog: Any) -> Any:
    return dialog.get_by_test_id("trigger-dag-submit")


def pick_datetime(page: Any, index: int, day: str, at: str = "00:00") -> None:
    """Set the ``index``-th date-time field of the open dialog (``day`` as ``YYYY-MM-DD``)."""
    page.get_by_role("dialog").get_by_test_id("datetime-input").nth(index).click()
    popover = page.locator("[data-scope=popover][data-part=content][data-state=open]")
    popover.get_by_placeholder("YYYY/MM/DD").fill(day.replace("-", "/"))
    popover.get_by_placeholder("HH:mm").fill(at)
    page.keyboard.press("Escape")


def _group(dialog: Any, title: str) -> Any:
    """The form field labelled ``title`` (a required field's label ends in ``*``)."""
    label = dialog.page.locator("label").filter(has_text=re.compile(rf"^{re.escape(title)}\s*\*?$"))
    return dialog.get_by_role("group").filter(has=label)


def field(dialog: Any, title: str) -> Any:
    """The input of the form field labelled ``title``."""
    return _group(dialog, title).locator("input").first


def lines_field(dialog: Any, title: str) -> Any:
    """The text area of the list field labelled ``title`` (one item a line)."""
    return _group(dialog, title).locator("textarea").first


def toggle(dialog: Any, title: str) -> None:
    """Flip the switch of the boolean field labelled ``title``."""
    _group(dialog, title).locator("[data-scope=switch][data-part=control]").click()


def new_run(api: Api, dag_id: str, before: set[str], timeout_s: float = 60) -> dict:
    """The run of ``dag_id`` that is not in ``before`` (the one the form just created)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if fresh := [r for r in api.runs(dag_id) if r["dag_run_id"] not in before]:
            return fresh[-1]
        time.sleep(1)
    raise AssertionError(f"no new {dag_id} run within {timeout_s:.0f}s")


def wait_for_run(api: Api, dag_id: str, run_id: str, timeout_s: float = 600) -> dict:
    """The run once it has ended; its task states are in the message when it did not succeed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(3)
    states = {k: v["state"] for k, v in api.tasks(dag_id, run_id).items()}
    raise AssertionError(f"{dag_id} {run_id} did not end within {timeout_s:.0f}s: {states}")
