"""Onboarding a dataset at any grain, and seasonal data that does not drift: a draft that loads at
every grain, ``drift.cycle`` in partitions or durations, the seasonal reference as the monitored
partition's own period a cycle earlier, and the calendar features ``mlops check`` warns about."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.seasonal import SEASONS, by_month, weather

from mlops.config.pipeline import ConfigError, Pipeline, Windows, parse_pipeline, pipeline_warnings
from mlops.ingest.parsing import coerce, parse_file
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir
from mlops.monitor import report as monitoring
from mlops.monitor.stage import Champion, seasonal_reference
from mlops.onboard.check import calendar_features, calendar_warnings
from mlops.onboard.draft import draft_pipeline
from mlops.training import fit as training

ROOT = Path(__file__).resolve().parents[3]
MONTHS = by_month(weather())  # 2022-01 .. 2025-12, 28-31 rows each


def _export(span: dt.timedelta, rows: int = 400) -> pd.DataFrame:
    """One file's rows, their event times spread evenly over ``span``, read as ``init`` reads a CSV."""
    rng = np.random.default_rng(3)
    start = dt.datetime(2026, 3, 2, 0, 5)
    frame = pd.DataFrame(
        {
            "order_id": np.arange(1, rows + 1),
            "placed_at": [(start + span * i / rows).isoformat() for i in range(rows)],
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "amount": rng.gamma(2.0, 30.0, rows).round(2),
            "returned": rng.integers(0, 2, rows),
        }
    )
    return parse_file(frame.to_csv(index=False).encode(), "csv", source="export.csv")


@pytest.mark.parametrize(
    ("span", "grain", "windows"),
    [
        (dt.timedelta(minutes=50), "hour", Windows(672, 72, 72, 168, 3, 168)),
        (dt.timedelta(hours=20), "day", Windows(28, 3, 3, 7, 3, 7)),
        (dt.timedelta(days=5), "week", Windows(26, 2, 2, 8, 3, 2)),
        (dt.timedelta(days=27), "month", Windows(12, 2, 2, 6, 3, 2)),
    ],
)
def test_init_drafts_a_valid_pipeline_at_every_grain(
    span: dt.timedelta, grain: str, windows: Windows
) -> None:
    """A month's export once drafted the daily window (28 partitions) and refused its own draft."""
    draft = draft_pipeline(_export(span), name="orders", target="returned", fmt="csv")
    pipeline = parse_pipeline(draft.document, source="orders.yaml")
    assert pipeline.grain.name == grain and pipeline.windows == windows
    assert pipeline.windows.window <= pipeline.grain.per_year
    assert pipeline_warnings(pipeline) == []  # every minimum is within reach of the drafted row counts
    assert pipeline.training.min_rows == min(5000, 200 * windows.min_partitions)


def _weather_doc(**drift: Any) -> dict[str, Any]:
    """``init``'s draft of a month's export, reviewed as a user would: every season, wider ranges."""
    draft = draft_pipeline(
        parse_file(MONTHS["2022-03-01"].to_csv(index=False).encode(), "csv", source="2022-03.csv"),
        name="weather",
        target="rained",
        fmt="csv",
    )
    doc = draft.document
    doc["start_date"] = "2022-01-01"
    doc["columns"]["season"]["values"] = sorted(set(SEASONS.values()))
    doc["columns"]["day_id"].update(min=1, max=100_000)
    doc["columns"]["temperature"].update(min=-40, max=50)
    doc["columns"]["humidity"].update(min=0, max=150)
    doc["drift"].update(drift)
    return doc


@pytest.mark.parametrize(
    ("schedule", "cycle", "partitions"),
    [
        ("@monthly", 12, 12),
        ("@monthly", "12 partitions", 12),
        ("@monthly", "365d", 12),  # a year is no whole number of months: the nearest
        ("@weekly", "365d", 52),
        ("@weekly", "2w", 2),
        ("@daily", "365d", 365),
        ("@daily", 7, 7),
        ("@hourly", "1d", 24),
    ],
)
def test_drift_cycle_takes_partitions_or_durations_like_every_window(
    schedule: str, cycle: int | str, partitions: int
) -> None:
    doc = _weather_doc(reference="same_period_last_cycle", cycle=cycle)
    doc["schedules"]["ingest"] = schedule
    assert parse_pipeline(doc, source="weather.yaml").windows.cycle == partitions


@pytest.mark.parametrize(
    ("cycle", "message"), [("a year", "neither a number of partitions"), (0, "at least")]
)
def test_a_bad_cycle_names_the_key(cycle: int | str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"drift.cycle.*{message}|{message}.*drift.cycle"):
        parse_pipeline(_weather_doc(reference="same_period_last_cycle", cycle=cycle), source="weather.yaml")


class _Booster:
    """The champion's pyfunc surface over a real XGBoost booster trained on 2023."""

    def __init__(self, pipeline: Pipeline, typed: dict[str, pd.DataFrame]) -> None:
        window = {ds: typed[ds] for ds in sorted(typed) if ds.startswith("2023")}
        train, valid, self.holdout = training.time_split(window, 2, 2)
        self.pipeline = pipeline
        self.result = training.train_model(
            training.prepare_frame(train, pipeline),
            training.prepare_frame(valid, pipeline),
            pipeline.training.params,
            device="cpu",
            seed=1,
        )

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        features = training.feature_frame(frame, self.pipeline)
        return training.predict(self.result.booster, features, self.result.best_iteration)


def _monitor_last_year(tmp_path: Path, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate and commit the four years of months, train on 2023, monitor 2025's months as the
    monitor stage does (``monitor_stage.monitor_partition`` less its HTML page and the trigger)."""
    pipeline = parse_pipeline(doc, source="weather.yaml")
    lake = LocalStorage(tmp_path)
    typed = {}
    for ds, month in MONTHS.items():
        typed[ds] = coerce(month.astype("string"), pipeline)[0]
        buffer = io.BytesIO()
        typed[ds].to_parquet(buffer, index=False)
        commit_partition(lake, partition_dir("weather", "validated", ds), {"part.parquet": buffer.getvalue()})
    model = _Booster(pipeline, typed)
    profile = monitoring.reference_profile(pipeline, model.holdout, model.predict(model.holdout))
    champion = Champion(version="1", model=model, profile=profile, reference_auc=None, triggers=[])
    reports: dict[str, dict[str, Any]] = {}
    for ds in [key for key in MONTHS if key.startswith("2025")]:
        against, reference = profile, None
        if pipeline.drift.reference == "same_period_last_cycle":
            against, reference = seasonal_reference(lake, pipeline, ds, champion)
        reports[ds] = monitoring.monitor_day(
            pipeline=pipeline,
            ds=ds,
            frame=typed[ds],
            profile=against,
            scores=model.predict(typed[ds]),
            champion_version="1",
            reference_auc=None,
            history=list(reports.values()),
            reference=reference,
        )
    return reports


@pytest.mark.parametrize("cycle", [12, "365d"])
def test_seasonal_data_without_a_shift_gives_no_drift_verdict(tmp_path: Path, cycle: int | str) -> None:
    """The reference was the holdout's length (2 months) ending a cycle before: March 2025 met
    February and March 2024, and ``season`` drifted every season's first month. It is now the
    monitored month itself one cycle earlier."""
    reports = _monitor_last_year(tmp_path, _weather_doc(reference="same_period_last_cycle", cycle=cycle))
    assert len(reports) == 12
    for ds, report in reports.items():
        year_before = f"2024{ds[4:]}"
        assert report["reference"] == {"kind": "same_period_last_cycle", "days": [year_before], "note": None}
        assert (report["verdict"]["status"], report["verdict"]["reasons"]) == ("no_drift", []), ds
        assert report["features"]["season"]["psi"] == 0.0
        # 30 rows in 10 bins: neither a numeric feature's PSI nor the prediction's gets a vote
        assert report["verdict"]["unreliable"] == ["temperature", "humidity", "(prediction)"]


def test_the_holdout_reference_reads_the_seasons_as_drift(tmp_path: Path) -> None:
    """What the check's calendar warning is about: against a holdout of November and December 2023,
    ``season`` drifts in every month of 2025 outside winter's share of it."""
    reports = _monitor_last_year(tmp_path, _weather_doc())
    drifted = [
        ds for ds, r in reports.items() if any(x["feature"] == "season" for x in r["drifted_features"])
    ]
    assert drifted == [f"2025-{m:02d}-01" for m in range(1, 13)]


def _typed(keys: list[str], pipeline: Pipeline) -> pd.DataFrame:
    return pd.concat([coerce(MONTHS[k].astype("string"), pipeline)[0] for k in keys], ignore_index=True)


def test_check_finds_the_features_that_follow_the_calendar() -> None:
    monthly = parse_pipeline(_weather_doc(), source="weather.yaml")
    year = [key for key in MONTHS if key.startswith("2025")]
    assert calendar_features(_typed(year, monthly), monthly) == {"season": "month"}
    assert calendar_features(_typed(year[:1], monthly), monthly) == {}  # one month: no evidence
    [warning] = calendar_warnings(_typed(year, monthly), monthly, year)
    assert warning == (
        "features: season is a function of the event time's month on 12 landed partition(s) "
        "(2025-01-01 .. 2025-12-01): with drift.reference holdout, a month compared with other ones "
        "reads as drift; compare each partition with its own period a cycle earlier "
        "(drift.reference: same_period_last_cycle, drift.cycle: 365d)"
    )
    seasonal = parse_pipeline(_weather_doc(reference="same_period_last_cycle", cycle=12), source="w.yaml")
    assert calendar_warnings(_typed(year, seasonal), seasonal, year) == []


def test_a_weekday_feature_counts_only_where_partitions_split_weeks() -> None:
    doc = _weather_doc()
    doc["columns"]["weekend"] = {"type": "bool", "nullable": False}
    doc["features"].append("weekend")
    frame = weather()
    frame["weekend"] = pd.to_datetime(frame["observed_at"]).dt.dayofweek >= 5
    frame = frame[frame["observed_at"] >= "2025-01-01"].astype("string")
    monthly = parse_pipeline(doc, source="weather.yaml")
    assert calendar_features(coerce(frame, monthly)[0], monthly) == {"season": "month"}
    doc["schedules"]["ingest"] = "@daily"
    daily = parse_pipeline(doc, source="weather.yaml")
    assert calendar_features(coerce(frame, daily)[0], daily) == {
        "season": "month",
        "weekend": "day of the week",
    }
