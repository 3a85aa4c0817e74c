"""``promotion.approval`` and ``notifications:`` in the YAML, and the train DAG they shape."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from mlops.config.pipeline import ConfigError, load_pipeline, parse_duration

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "include" / "pipelines" / "churn.yaml"


def churn_with(tmp_path: Path, **sections: dict) -> Path:
    data = yaml.safe_load(CHURN.read_text())
    for key, value in sections.items():
        if key == "approval":
            data["promotion"]["approval"] = value
        else:
            data[key] = value
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_approval_is_off_and_nothing_is_notified_by_default() -> None:
    pipeline = load_pipeline(CHURN)
    approval = pipeline.promotion.approval
    assert (approval.enabled, approval.timeout, approval.on_timeout, approval.rollback) == (
        False,
        "24h",
        "reject",
        False,
    )
    assert approval.timeout_delta == dt.timedelta(hours=24)
    assert all(not pipeline.notifications.channels_for(e) for e in ("drift_fired", "task_failed"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", dt.timedelta(seconds=90)), ("15m", dt.timedelta(minutes=15)), ("2d", dt.timedelta(days=2)), (30, dt.timedelta(seconds=30))],
)  # fmt: skip
def test_durations(text: str | int, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("approval", "phrase"),
    [
        (
            {"enabled": True, "timeout": "soon"},
            "promotion.approval.timeout: Value error, not a duration: 'soon'",
        ),
        ({"enabled": True, "timeout": "0s"}, "must be positive"),
        ({"enabled": True, "on_timeout": "escalate"}, "promotion.approval.on_timeout"),
        ({"enabled": True, "reviewers": ["a"]}, "promotion.approval.reviewers: unknown key"),
    ],
)
def test_a_bad_approval_names_the_file_and_the_key(tmp_path: Path, approval: dict, phrase: str) -> None:
    path = churn_with(tmp_path, approval=approval)
    with pytest.raises(ConfigError) as error:
        load_pipeline(path)
    assert str(path) in str(error.value) and phrase in str(error.value)


def test_a_bad_channel_names_the_key(tmp_path: Path) -> None:
    path = churn_with(tmp_path, notifications={"email": {"to": [], "events": ["drift_fired"]}})
    with pytest.raises(ConfigError, match=r"notifications\.email\.to"):
        load_pipeline(path)


def test_the_train_dag_asks_between_gate_and_promote_only_when_approval_is_on(tmp_path: Path) -> None:
    from train import build

    off = build(load_pipeline(CHURN))
    assert "approve" not in off.task_dict and off.task_dict["promote"].upstream_task_ids == {"gate"}
    on = build(load_pipeline(churn_with(tmp_path, approval={"enabled": True, "timeout": "2h"})))
    assert on.task_dict["approve"].upstream_task_ids == {"gate"}
    assert on.task_dict["promote"].upstream_task_ids == {"gate", "approve"}
    assert on.task_dict["approve"].response_timeout == dt.timedelta(hours=2)
    assert set(on.task_dict["approve"].params) == {"comment"}  # the trigger form's are not asked


def test_task_failed_installs_the_failure_callback_only_when_chosen(tmp_path: Path) -> None:
    from mlops.airflow.dagkit import dag_kwargs

    assert "on_failure_callback" not in dag_kwargs(load_pipeline(CHURN), "train", None)["default_args"]
    hook = {"webhook": {"url": "http://hooks.example.test/x", "events": ["task_failed"]}}
    args = dag_kwargs(load_pipeline(churn_with(tmp_path, notifications=hook)), "train", None)["default_args"]
    assert args["on_failure_callback"].pipeline_name == "churn"
