"""The partition grain: keys, periods and arithmetic per grain, the grain of a schedule, and the
one unit of windows (partitions or whole durations) with the old ``*_days`` keys deprecated."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
import yaml

from mlops.clock.window import window_days
from mlops.config.pipeline import ConfigError, load_pipeline
from mlops.grain import DAY, Grain, grain_of, normalize_key, partitions
from mlops.lake.storage import partition_dir
from mlops.monitor.report import history_from_reports, should_trigger

ROOT = Path(__file__).resolve().parents[2]
HOUR, WEEK, MONTH = Grain("hour"), grain_of("@weekly"), Grain("month")


@pytest.mark.parametrize(
    ("schedule", "name", "week_start"),
    [
        ("@hourly", "hour", 6),
        ("30 * * * *", "hour", 6),
        ("@daily", "day", 6),
        ("0 4 * * *", "day", 6),
        ("@weekly", "week", 6),
        ("0 0 * * 1", "week", 0),
        ("@monthly", "month", 6),
        ("0 2 1 * *", "month", 6),
    ],
)
def test_the_schedule_sets_the_grain(schedule: str, name: str, week_start: int) -> None:
    grain = grain_of(schedule)
    assert grain.name == name and (name != "week" or grain.week_start == week_start)


@pytest.mark.parametrize("schedule", ["@yearly", "*/5 * * * *", "0 0 * * 1-5", "0 0 15 * *", "0 0 1 1 *"])
def test_a_schedule_of_no_single_period_is_refused(schedule: str) -> None:
    with pytest.raises(ValueError, match="hour, day, week or month"):
        grain_of(schedule)


def test_keys_name_the_period_start_and_sort_in_time() -> None:
    when = dt.datetime(2026, 2, 18, 5, 42, tzinfo=dt.UTC)
    assert (HOUR.key(when), DAY.key(when), WEEK.key(when), MONTH.key(when)) == (
        "2026-02-18T05",
        "2026-02-18",
        "2026-02-15",  # @weekly weeks start on Sunday
        "2026-02-01",
    )
    hours = HOUR.span("2026-01-01T22", "2026-01-02T01")
    assert hours == ["2026-01-01T22", "2026-01-01T23", "2026-01-02T00", "2026-01-02T01"] == sorted(hours)
    assert partition_dir("sensors", "validated", "2026-01-02T00") == "sensors/validated/ds=2026-01-02T00"
    with pytest.raises(ValueError, match="starts on the hour"):
        normalize_key("2026-01-02T00:30")


def test_arithmetic_counts_partitions_of_the_grain() -> None:
    assert MONTH.shift("2026-01-01", -1) == "2025-12-01" and MONTH.shift("2026-01-01", 13) == "2027-02-01"
    assert MONTH.end("2026-02-01") == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert MONTH.distance("2025-11-01", "2026-02-01") == 3
    assert window_days("2026-03-01", 3, MONTH) == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert window_days("2026-01-01T01", 3, HOUR) == ["2025-12-31T23", "2026-01-01T00", "2026-01-01T01"]
    assert WEEK.shift("2026-01-04", 1) == "2026-01-11"
    assert window_days(dt.date(2026, 1, 3), 3, DAY) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert "the month 2026-02-01 .. 2026-02-28" in MONTH.describe("2026-02-01")
    assert HOUR.describe("2026-01-01T05") == "the hour 2026-01-01 05:00 .. 06:00 UTC"


@pytest.mark.parametrize(
    ("value", "grain", "expected"),
    [(12, HOUR, 12), ("12 partitions", MONTH, 12), ("2d", HOUR, 48), ("28d", DAY, 28), ("2w", WEEK, 2)],
)
def test_a_window_is_partitions_or_a_whole_duration(value, grain: Grain, expected: int) -> None:
    assert partitions(value, grain, "training.window") == expected


@pytest.mark.parametrize(
    ("value", "grain", "phrase"),
    [("30h", DAY, "not a whole number of day partitions"), ("28d", MONTH, "month has no fixed length")],
)
def test_a_duration_that_is_no_whole_number_of_partitions_is_refused(value, grain: Grain, phrase) -> None:
    with pytest.raises(ValueError, match=phrase) as info:
        partitions(value, grain, "training.window")
    assert "training.window" in str(info.value)


def churn(tmp_path: Path, **changes: dict) -> Path:
    data = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
    for section, values in changes.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    for section, key in (("training", "window"), ("training", "validation"), ("training", "holdout")):
        if f"{key}_days" in data[section]:
            data[section].pop(key, None)  # the old key alone, as an unmigrated file has it
    if "retrain_cooldown_days" in data["drift"]:
        data["drift"].pop("retrain_cooldown", None)
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_old_day_keys_keep_working_and_name_their_replacement(tmp_path: Path) -> None:
    path = churn(
        tmp_path,
        training={"window_days": 14, "validation_days": 2, "holdout_days": 2},
        drift={"retrain_cooldown_days": 5},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = load_pipeline(path)
    messages = " ".join(str(w.message) for w in caught)
    for old, new in (
        ("training.window_days", "training.window"),
        ("training.holdout_days", "training.holdout"),
        ("drift.retrain_cooldown_days", "drift.retrain_cooldown"),
    ):
        assert f"{old} is deprecated, use {new}" in messages
    windows = pipeline.windows
    assert (windows.window, windows.validation, windows.holdout, windows.retrain_cooldown) == (14, 2, 2, 5)


def test_old_days_become_partitions_of_the_grain(tmp_path: Path) -> None:
    path = churn(
        tmp_path,
        schedules={"ingest": "@hourly"},
        training={"window_days": 2, "validation_days": 3, "holdout_days": 3},
        drift={"retrain_cooldown_days": 1},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        windows = load_pipeline(path).windows
    # window_days and the cooldown counted calendar days; validation and holdout, partitions.
    assert (windows.window, windows.validation, windows.holdout, windows.retrain_cooldown) == (48, 3, 3, 24)


@pytest.mark.parametrize(
    ("changes", "phrases"),
    [
        pytest.param(
            {"schedules": {"ingest": "@monthly"}},
            ["training.window", "'28d'", "month"],
            id="days-at-a-monthly-grain",
        ),
        pytest.param(
            {"schedules": {"ingest": "0 0 * * 1-5"}},
            ["schedules.ingest", "hour, day, week or month"],
            id="schedule-without-a-grain",
        ),
        pytest.param(
            {"training": {"window": 6, "validation": "3", "holdout": "3 partitions"}},
            ["training.window (6 day partitions) must exceed"],
            id="split-does-not-fit",
        ),
        pytest.param(
            {"drift": {"persistence": {"window": "2d", "required": 3}}},
            ["drift.persistence", "required (3) must not exceed window (2 day partitions)"],
            id="persistence-as-a-duration",
        ),
        pytest.param({"training": {"window": "four weeks"}}, ["training.window", "neither"], id="not-a-span"),
    ],
)
def test_bad_windows_name_the_file_the_key_and_the_grain(tmp_path: Path, changes: dict, phrases) -> None:
    path = churn(tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert str(path) in str(info.value)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_both_the_old_key_and_the_new_one_is_an_error(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
    data["training"]["window_days"] = 28
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"give training\.window or its deprecated training\.window_days"):
        load_pipeline(path)


def test_persistence_and_cooldown_count_partitions_of_the_grain() -> None:
    reports = [{"ds": "2026-01-01T03", "day_drift": True}, {"ds": "2026-01-01T04", "day_drift": True}]
    assert history_from_reports(reports, "2026-01-01T05", 3, HOUR) == [True, True]
    # At the daily grain both hours fall in one day: the day before 2026-01-02.
    assert history_from_reports(reports, "2026-01-02", 3, DAY) == [False, True]
    declared = {"ds": "2026-01-01T10", "verdict": {"drift": True, "status": "drift", "reasons": []}}
    kw = {"backfill": False, "allow_backfill_trigger": False, "grain": HOUR}
    fire, why = should_trigger(declared, last_drift_trigger="2026-01-01T05", cooldown_days=12, **kw)
    assert not fire and "5 hour(s) ago, cooldown 12 hours" in why
    fire, _ = should_trigger(declared, last_drift_trigger="2026-01-01T05", cooldown_days=5, **kw)
    assert fire


def _context(logical: dt.datetime | None, params: dict | None = None, key: str | None = None) -> dict:
    from types import SimpleNamespace

    run = SimpleNamespace(run_type="manual", run_after=logical, conf={}, partition_key=key)
    return {"dag_run": run, "logical_date": logical, "params": params or {}}


@pytest.mark.parametrize(
    ("grain", "logical", "as_of", "effective"),
    [
        (DAY, dt.datetime(2026, 3, 9, 4, tzinfo=dt.UTC), "2026-03-08", "2026-03-09"),
        (MONTH, dt.datetime(2026, 2, 9, 4, tzinfo=dt.UTC), "2026-01-01", "2026-02-01"),
        (MONTH, dt.datetime(2026, 2, 1, tzinfo=dt.UTC), "2026-01-01", "2026-02-01"),
        (HOUR, dt.datetime(2026, 1, 2, 0, 30, tzinfo=dt.UTC), "2026-01-01T23", "2026-01-02T00"),
        (WEEK, dt.datetime(2026, 1, 14, tzinfo=dt.UTC), "2026-01-04", "2026-01-11"),
    ],
)
def test_training_reads_through_the_last_complete_partition(grain, logical, as_of, effective) -> None:
    from mlops.airflow.operators.train import trigger_of

    trigger = trigger_of(_context(logical), grain)
    assert (trigger.as_of, trigger.effective_day) == (as_of, effective)


def test_a_range_or_a_key_names_partitions_of_the_grain() -> None:
    from mlops.airflow.operators.base import partitions_of

    months = _context(None, {"start_ds": "2026-01-01", "end_ds": "2026-03-01"})
    assert partitions_of(months, MONTH) == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert len(partitions_of(months, DAY)) == 60  # the same range at the daily grain: every day
    hours = _context(None, {"start_ds": "2026-01-01T22", "end_ds": "2026-01-02T01"})
    assert partitions_of(hours, HOUR) == ["2026-01-01T22", "2026-01-01T23", "2026-01-02T00", "2026-01-02T01"]
    assert partitions_of(_context(None, key="2026-01-01T05"), HOUR) == ["2026-01-01T05"]
    logical = dt.datetime(2026, 1, 1, 5, tzinfo=dt.UTC)
    assert partitions_of(_context(logical), HOUR) == ["2026-01-01T05"]
    with pytest.raises(ValueError, match="is before start_ds"):
        partitions_of(_context(None, {"start_ds": "2026-02-01", "end_ds": "2026-01-01"}), MONTH)


def test_the_logical_clock_walks_hours_at_an_hourly_grain(tmp_path: Path) -> None:
    """The daily 06:00 train of an hourly pipeline is an item of the 06:00 hour: that hour and every
    later one wait for it, the hours before do not."""
    from mlops.clock.logical import AirflowRuns, Past
    from mlops.lake.storage import LocalStorage

    pipeline = load_pipeline(ROOT / "include" / "pipelines" / "sensors.yaml")
    train_fire = dt.datetime(2026, 1, 2, 6, tzinfo=dt.UTC)
    runs = AirflowRuns(
        ingest=lambda ds: "finished",
        scheduled_train=lambda fire: "active" if fire == train_fire else "finished",
    )
    past = Past(LocalStorage(tmp_path), pipeline, lambda ds: None, runs)
    waiting = f"the scheduled sensors_train run of {train_fire.isoformat()} (active)"
    assert past.before_publish("2026-01-02T05") == []
    assert past.before_publish("2026-01-02T06") == [waiting]
    assert past.before_publish("2026-01-02T09") == [waiting]
    assert past.before_training("schedule", "2026-01-02T05") == []


@pytest.mark.parametrize(
    ("grain", "first", "last", "count", "cap"),
    [
        (HOUR, "0002-01-01T00", "9999-12-30T00", 87_640_609, 8760),
        (DAY, "0001-01-01", "9999-12-30", 3_652_058, 365),
        (WEEK, "0002-01-01", "9999-12-30", 521_671, 52),
        (MONTH, "0001-01-01", "9999-12-30", 119_988, 12),
        (DAY, "2024-01-01", "2024-12-31", 366, 365),  # a leap year is one day more than the cap
    ],
)
def test_a_range_over_a_year_of_partitions_is_refused_before_any_key_is_listed(
    monkeypatch: pytest.MonkeyPatch, grain: Grain, first: str, last: str, count: int, cap: int
) -> None:
    """``0001-01-01 .. 9999-12-30`` once built 3.65 M keys (40 s) before any work; the cap is the
    train form's window cap, a year of partitions of the grain."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlops.airflow.operators.base import BadRange, partitions_of

    def listed(*_: object) -> list[str]:
        raise AssertionError("keys were listed before the range was checked")

    monkeypatch.setattr(Grain, "span", listed)
    with pytest.raises(BadRange) as info:
        partitions_of(_context(None, {"start_ds": first, "end_ds": last}), grain)
    assert str(info.value) == (
        f"start_ds {grain.key(first)} .. end_ds {grain.key(last)} is {count} {grain.name} partitions; "
        f"one run takes at most a year of them ({cap}): split the range into several runs"
    )
    assert cap == grain.per_year and isinstance(info.value, AirflowFailException)  # no retries


@pytest.mark.parametrize(("grain", "year"), [(HOUR, 8760), (DAY, 365), (WEEK, 52), (MONTH, 12)])
def test_a_year_of_partitions_is_one_run(grain: Grain, year: int) -> None:
    from mlops.airflow.operators.base import partitions_of

    first = grain.key("2025-01-05")
    last = grain.shift(first, year - 1)
    keys = partitions_of(_context(None, {"start_ds": first, "end_ds": last}), grain)
    assert len(keys) == year and (keys[0], keys[-1]) == (first, last)


@pytest.mark.parametrize(
    ("grain", "start", "period"),
    [
        (DAY, "9999-12-31", "day 9999-12-31"),
        (WEEK, "9999-12-31", "week 9999-12-26"),
        (MONTH, "9999-12-31", "month 9999-12-01"),
        (HOUR, "9999-12-31T23", "hour 9999-12-31T23"),
    ],
)
def test_a_range_at_the_calendars_end_is_a_clear_error(grain: Grain, start: str, period: str) -> None:
    """``start_ds=9999-12-31`` once raised ``OverflowError`` from inside ``datetime``."""
    from mlops.airflow.operators.base import BadRange, partitions_of

    with pytest.raises(BadRange) as info:
        partitions_of(_context(None, {"start_ds": start}), grain)
    assert str(info.value) == (
        f"the {period} runs past 9999-12-31, where the calendar ends: it has no end to read up to; "
        "pick an earlier range"
    )
    assert partitions_of(_context(None, {"start_ds": "9999-12-31"}), HOUR) == ["9999-12-31T00"]
    assert grain.span(grain.key(start), grain.key(start)) == [grain.key(start)]


def test_partition_arithmetic_past_the_calendar_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^9999-12-31 \+1 day partition\(s\): outside the calendar"):
        DAY.shift("9999-12-31", 1)
    with pytest.raises(
        ValueError, match=r"^the week holding 0001-01-01T00:00:00\+00:00: outside the calendar"
    ):
        WEEK.key("0001-01-01")
    assert HOUR.key("0001-01-01") == "0001-01-01T00"  # four-digit years at every grain
