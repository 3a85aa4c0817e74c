"""Every DAG's trigger form, as a person opens it: valid defaults, every field explained."""

from __future__ import annotations

from typing import Any

import pytest
from tests.embedded_stack import EmbeddedStack
from tests.ui.airflow_ui import (
    every_section_text,
    field,
    lines_field,
    open_section,
    open_trigger_form,
    submit_button,
)

STAGES = ("ingest", "train", "monitor", "score", "rollback", "replay_quarantine")


@pytest.mark.parametrize("stage", STAGES)
def test_every_form_opens_with_valid_defaults_and_explains_each_field(
    page: Any, stack: EmbeddedStack, stage: str
) -> None:
    dag_id = f"churn_{stage}"
    params = stack.api().get(f"/api/v2/dags/{dag_id}/details")["params"]
    dialog = open_trigger_form(page, dag_id)
    text = every_section_text(dialog)
    for name, param in params.items():
        title, description = param["schema"].get("title"), param.get("description")
        assert title and description, f"{dag_id}.{name}: title {title!r}, description {description!r}"
        assert title in text and description in text, f"{dag_id}.{name}: the form does not show them"
    if stage == "rollback":
        # A rollback needs a reason: Trigger waits until one is typed.
        assert submit_button(dialog).is_disabled()
        open_section(dialog, "Rollback")
        field(dialog, "Reason").fill("the new model misses a segment")
    if stage == "replay_quarantine":
        # A replay names its days; the fix defaults to the submitted file.
        assert submit_button(dialog).is_disabled()
        open_section(dialog, "Replay")
        lines_field(dialog, "Partitions").fill("2026-03-03")
    assert submit_button(dialog).is_enabled(), f"{dag_id}: Trigger is disabled with the form's defaults"
