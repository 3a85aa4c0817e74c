"""EmitDriftOperator: the champion's version records the trigger, then the drift event fires."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowSkipException

from mlops.airflow.operators.monitor import EmitDriftOperator
from mlops.registry.champion import DRIFT_TRIGGERS_TAG

DRIFT = Asset("churn.drift")
PAYLOAD = {
    "ds": "2026-03-02",
    "champion_version": "3",
    "features": {"monthly_charges": {"psi": 1.4}},
    "reason": "drift declared for 2026-03-02",
}


@pytest.mark.parametrize("payload", [None, {}], ids=["monitor-returned-none", "empty-payload"])
def test_no_payload_is_skipped_and_records_nothing(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    fake_mlflow: Any,
    payload: dict[str, Any] | None,
) -> None:
    fake_mlflow.client.add("3")
    op = make_operator(EmitDriftOperator, task_id="emit_drift", payload=payload, outlets=[DRIFT])
    context = make_context()

    with pytest.raises(AirflowSkipException, match="no drift to act on"):
        op.execute(context)

    assert DRIFT_TRIGGERS_TAG not in fake_mlflow.client.versions["3"].tags
    assert DRIFT not in context["outlet_events"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(None, "2026-03-02", id="first-trigger"),
        pytest.param("2026-02-20", "2026-02-20,2026-03-02", id="added-to-earlier-triggers"),
        pytest.param("2026-03-02", "2026-03-02", id="re-run-of-the-same-day-is-idempotent"),
        pytest.param("2026-03-09", "2026-03-02,2026-03-09", id="kept-in-day-order"),
    ],
)
def test_the_payload_is_recorded_on_the_champion_and_fired(
    make_operator: Callable[..., Any],
    make_context: Callable[..., dict[str, Any]],
    fake_mlflow: Any,
    before: str | None,
    after: str,
) -> None:
    fake_mlflow.client.add("2")
    fake_mlflow.client.add("3", **({DRIFT_TRIGGERS_TAG: before} if before else {}))
    op = make_operator(EmitDriftOperator, task_id="emit_drift", payload=dict(PAYLOAD), outlets=[DRIFT])
    context = make_context()

    returned = op.execute(context)

    assert fake_mlflow.client.versions["3"].tags[DRIFT_TRIGGERS_TAG] == after
    assert DRIFT_TRIGGERS_TAG not in fake_mlflow.client.versions["2"].tags
    assert context["outlet_events"][DRIFT].extra == PAYLOAD
    assert returned == PAYLOAD
