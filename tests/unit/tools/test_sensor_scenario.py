"""The hourly sensor example's generator: it matches its YAML, every row's event time lies in its
partition's period at any grain, and a partition is the same generated alone or in a run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mlops.cli import scenario
from mlops.config.pipeline import load_pipeline
from mlops.grain import Grain
from mlops.tools import sensor_scenario
from mlops.tools.sensor_scenario import SensorConfig, generate_partition

ROOT = Path(__file__).resolve().parents[3]


def test_the_generator_follows_the_shipped_yaml() -> None:
    pipeline = load_pipeline(ROOT / "include" / "pipelines" / "sensors.yaml")
    assert tuple(pipeline.columns) == sensor_scenario.COLUMNS
    assert pipeline.grain.name == "hour" and pipeline.windows.window == 48
    frame = generate_partition(SensorConfig(glitch_fraction=0), "2026-01-01T05")
    for name, column in pipeline.columns.items():
        if column.min is not None:
            assert frame[name].min() >= column.min, name
        if column.max is not None:
            assert frame[name].max() <= column.max, name
    assert 0.01 < frame[pipeline.target].mean() < 0.8


@pytest.mark.parametrize(("grain", "ds"), [(Grain("hour"), "2026-01-01T05"), (Grain("month"), "2026-02-01")])
def test_event_times_cover_the_period_and_only_it(grain: Grain, ds: str) -> None:
    frame = generate_partition(SensorConfig(grain=grain, machines=400), ds)
    start, end = grain.start(ds), grain.end(ds)
    assert frame["read_at"].min() >= start and frame["read_at"].max() < end
    # Spread over the period, not bunched at its start.
    assert frame["read_at"].max() - frame["read_at"].min() > 0.8 * (end - start)
    assert frame["reading_id"].is_unique


def test_a_partition_is_the_same_alone_or_in_a_run(tmp_path: Path) -> None:
    assert scenario.main(["sensors", "--landing", str(tmp_path), "--days", "1", "--machines", "20"]) == 0
    files = sorted((tmp_path / "sensors").glob("ds=*/part-000.csv"))
    assert [f.parent.name for f in files][:2] == ["ds=2026-01-01T00", "ds=2026-01-01T01"] and len(files) == 24
    alone = generate_partition(SensorConfig(machines=20), "2026-01-01T07").to_csv(index=False)
    assert (tmp_path / "sensors" / "ds=2026-01-01T07" / "part-000.csv").read_text() == alone
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert SensorConfig(start=start, periods=3).partitions() == [
        "2026-01-01T00",
        "2026-01-01T01",
        "2026-01-01T02",
    ]


def test_the_test_stacks_copy_only_the_pipelines_they_name(tmp_path: Path) -> None:
    from mlops.tools.stack import copy_pipelines

    written = copy_pipelines(ROOT / "include", tmp_path, ["training.window=8"], only=["churn"])
    assert [p.name for p in written] == ["churn.yaml"]
    assert load_pipeline(written[0]).windows.window == 8
    assert (tmp_path / "gx" / "churn.json").exists() and not (tmp_path / "gx" / "sensors.json").exists()
    with pytest.raises(ValueError, match="no pipeline"):
        copy_pipelines(ROOT / "include", tmp_path, [], only=["nope"])
    assert {p.name for p in copy_pipelines(ROOT / "include", tmp_path / "all", [])} == {
        "churn.yaml",
        "sensors.yaml",
    }
