"""``python -m mlops init`` and ``check`` as a user runs them: real files (CSV, Parquet, S3 on a moto
server), a fresh interpreter per command, no Airflow running."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.config.pipeline import load_pipeline
from mlops.ingest.suite import write_suite
from mlops.tools.scenario import ScenarioConfig, encode_day, generate_day

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 1, 5)
SCENARIO = ScenarioConfig(rows_per_day=2000, bad_row_fraction=0.01, corrupt_day=None, missing_column_day=None)


def mlops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done


def sample(tmp_path: Path, fmt: str) -> Path:
    config = ScenarioConfig(**{**SCENARIO.__dict__, "format": fmt})
    path = tmp_path / f"sample.{fmt}"
    path.write_bytes(encode_day(config, DAY, generate_day(config, DAY)))
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_init_drafts_a_pipeline_that_loads_and_reports_what_it_would_quarantine(
    tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "pipelines" / "shop.yaml"
    done = mlops(
        "init", str(sample(tmp_path, fmt)), "--name", "shop", "--target", "churned", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr  # the drafted suite passes the sample it was drafted from
    pipeline = load_pipeline(out)  # the draft is a valid pipeline as written
    assert (pipeline.key, pipeline.event_time, pipeline.target) == ("customer_id", "event_ts", "churned")
    assert pipeline.schedules.ingest == "@daily" and pipeline.source.format == fmt
    assert pipeline.columns["plan"].type == "category" and set(pipeline.columns["plan"].values) == {
        "basic",
        "standard",
        "premium",
    }
    assert pipeline.columns["tenure_months"].type == "int" and pipeline.columns["autopay"].type == "bool"
    assert {"plan", "tenure_months", "autopay"} <= set(pipeline.features)
    assert "customer_id" not in pipeline.features and "churned" not in pipeline.features
    assert "grain: day" in done.stdout
    assert "the sample against the drafted suite:" in done.stdout and "would be quarantined:" in done.stdout
    assert "partition passed: 2019 rows, 2013 validated, 6 quarantined." in done.stdout
    assert "expect_column_values_to_be_in_set(plan)" in done.stdout  # the scenario's injected bad plans
    again = mlops(
        "init", str(sample(tmp_path, fmt)), "--name", "shop", "--target", "churned", "--out", str(out)
    )
    assert again.returncode == 2 and "--force" in again.stderr


def test_init_names_a_target_that_is_not_a_column(tmp_path: Path) -> None:
    done = mlops(
        "init",
        str(sample(tmp_path, "csv")),
        "--name",
        "shop",
        "--target",
        "label",
        "--out",
        str(tmp_path / "x.yaml"),
    )
    assert done.returncode == 1 and "--target 'label' is not a column" in done.stderr


def _project(tmp_path: Path) -> tuple[Path, Path]:
    include, landing = tmp_path / "include", tmp_path / "landing"
    shutil.copytree(ROOT / "include", include)
    folder = landing / "churn" / f"ds={DAY.isoformat()}"
    folder.mkdir(parents=True)
    (folder / "part-000.csv").write_bytes(encode_day(SCENARIO, DAY, generate_day(SCENARIO, DAY)))
    return include, landing


def test_check_runs_config_suite_and_a_landed_partition(tmp_path: Path) -> None:
    include, landing = _project(tmp_path)
    env = {"MLOPS_INCLUDE_DIR": str(include), "MLOPS_LANDING_ROOT": str(landing)}
    done = mlops("check", "churn", env=env)
    assert done.returncode == 0, done.stderr
    assert "config: " in done.stdout and "is up to date" in done.stdout
    assert f"churn [{DAY.isoformat()}T00:00:00+00:00" in done.stdout and "partition passed" in done.stdout
    assert "quarantined: " in done.stdout and "check churn: ok" in done.stdout

    missing = mlops("check", "churn", "--day", "2026-01-06", env=env)
    assert missing.returncode == 1
    assert "churn 2026-01-06 rejected: no csv file for 2026-01-06 at" in missing.stderr

    # A stale suite is the same refusal the ingest task gives.
    path = include / "pipelines" / "churn.yaml"
    path.write_text(path.read_text().replace("min: 0, max: 120}", "min: 0, max: 121}"))
    stale = mlops("check", "churn", env=env)
    assert stale.returncode == 1 and "the suite is stale" in stale.stderr and "make suites" in stale.stderr
    write_suite(load_pipeline(path), include)
    assert mlops("check", "churn", env=env).returncode == 0


def test_check_lists_warnings_and_config_errors(tmp_path: Path) -> None:
    include, landing = _project(tmp_path)
    env = {"MLOPS_INCLUDE_DIR": str(include), "MLOPS_LANDING_ROOT": str(landing)}
    path = include / "pipelines" / "churn.yaml"
    text = path.read_text()
    path.write_text(text.replace("  min_rows: 500\n", "  min_rows: 60000\n"))
    warned = mlops("check", "churn", env=env)
    assert warned.returncode == 0
    assert "warning: " in warned.stdout and "drift.min_rows (60000)" in warned.stdout
    assert "check churn: ok, 2 warning(s)" in warned.stdout  # the config's, and the quarantined rows'
    assert "  window: 28d" in text
    path.write_text(text.replace("  window: 28d", "  window: 730d"))
    broken = mlops("check", "churn", env=env)
    assert broken.returncode == 1 and "training.window" in broken.stderr and "365" in broken.stderr


def test_init_and_check_read_s3(tmp_path: Path, s3_client) -> None:
    s3_client.create_bucket(Bucket="raw")
    data = encode_day(SCENARIO, DAY, generate_day(SCENARIO, DAY))
    s3_client.put_object(Bucket="raw", Key="exports/sample.csv", Body=data)
    s3_client.put_object(Bucket="raw", Key=f"landing/churn/ds={DAY.isoformat()}/part-000.csv", Body=data)
    out = tmp_path / "shop.yaml"
    done = mlops(
        "init", "s3://raw/exports/sample.csv", "--name", "shop", "--target", "churned", "--out", str(out)
    )
    assert "the sample against the drafted suite:" in done.stdout, done.stderr
    assert load_pipeline(out).key == "customer_id"

    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    env = {"MLOPS_INCLUDE_DIR": str(include), "MLOPS_LANDING_ROOT": "s3://raw/landing"}
    checked = mlops("check", "churn", env=env)
    assert checked.returncode == 0, checked.stderr
    assert f"reading churn {DAY.isoformat()} from s3://raw/landing/churn" in checked.stdout
    assert "partition passed" in checked.stdout


def test_the_walkthrough_init_suites_check(tmp_path: Path) -> None:
    """docs/datasets.md, "Bring your own dataset": a drafted pipeline, its generated suite, a landed day, checked."""
    include, landing = tmp_path / "include", tmp_path / "landing"
    env = {"MLOPS_INCLUDE_DIR": str(include), "MLOPS_LANDING_ROOT": str(landing)}
    drafted = mlops("init", str(sample(tmp_path, "csv")), "--name", "shop", "--target", "churned", env=env)
    assert drafted.returncode == 0, drafted.stderr
    assert f"wrote {include / 'pipelines' / 'shop.yaml'} (13 columns, 10 features)" in drafted.stdout
    suites = subprocess.run(
        [sys.executable, "-m", "mlops", "suites", "write", "--include", str(include)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "gx/shop.json" in suites.stdout
    folder = landing / "shop" / f"ds={DAY.isoformat()}"
    folder.mkdir(parents=True)
    (folder / "part-000.csv").write_bytes(encode_day(SCENARIO, DAY, generate_day(SCENARIO, DAY)))
    done = mlops("check", "shop", env=env)
    assert done.returncode == 0, done.stderr
    assert "partition passed" in done.stdout and "check shop: ok" in done.stdout


def test_init_on_a_months_export_then_check_warns_about_a_calendar_feature(tmp_path: Path) -> None:
    """A month's export once drafted the daily window (28 partitions) and refused its own draft; its
    ``season`` then drifted month after month against the holdout, and nothing said why."""
    import yaml
    from tests.seasonal import SEASONS, by_month, weather

    months = by_month(weather())
    include, landing = tmp_path / "include", tmp_path / "landing"
    shutil.copytree(ROOT / "include", include)
    export = tmp_path / "2025-03.csv"
    export.write_text(months["2025-03-01"].to_csv(index=False))
    out = include / "pipelines" / "weather.yaml"
    done = mlops("init", str(export), "--name", "weather", "--target", "rained", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "grain: month" in done.stdout
    pipeline = load_pipeline(out)  # the draft is valid as written
    assert (pipeline.grain.name, pipeline.windows.window, pipeline.windows.holdout) == ("month", 12, 2)

    # Reviewed as a user would: every season, wider ranges, the history's start.
    doc = yaml.safe_load(out.read_text())
    doc["start_date"] = "2024-01-01"
    doc["columns"]["season"]["values"] = sorted(set(SEASONS.values()))
    doc["columns"]["day_id"].update(min=1, max=100_000)
    doc["columns"]["temperature"].update(min=-40, max=50)
    doc["columns"]["humidity"].update(min=0, max=150)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    write_suite(load_pipeline(out), include)
    for ds, month in months.items():
        if ds >= "2024-01-01":
            (landing / "weather" / f"ds={ds}").mkdir(parents=True)
            (landing / "weather" / f"ds={ds}" / "part-000.csv").write_text(month.to_csv(index=False))
    env = {"MLOPS_INCLUDE_DIR": str(include), "MLOPS_LANDING_ROOT": str(landing)}
    checked = mlops("check", "weather", env=env)
    assert checked.returncode == 0, checked.stderr
    assert (
        "warning: features: season is a function of the event time's month on 12 landed partition(s) "
        "(2025-01-01 .. 2025-12-01): with drift.reference holdout" in checked.stdout
    )
    assert "drift.cycle: 365d" in checked.stdout and "temperature is a function" not in checked.stdout

    doc["drift"].update(reference="same_period_last_cycle", cycle=12)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    write_suite(load_pipeline(out), include)
    quiet = mlops("check", "weather", env=env)
    assert quiet.returncode == 0 and "is a function of the event time" not in quiet.stdout
