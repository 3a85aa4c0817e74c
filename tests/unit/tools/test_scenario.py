from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.cli.scenario import main
from mlops.config.pipeline import Pipeline, load_pipeline
from mlops.tools.scenario import (
    COLUMNS,
    ScenarioConfig,
    encode_day,
    generate_day,
    partition_path,
    run_scenario,
    write_scenario,
)

ROOT = Path(__file__).resolve().parents[3]
DAY = dt.date(2026, 1, 5)
# Small and free of scheduled events unless a test asks for one.
SMALL = ScenarioConfig(
    start=dt.date(2026, 1, 1),
    end=dt.date(2026, 1, 4),
    rows_per_day=400,
    corrupt_day=None,
    missing_column_day=None,
    shift_start=None,
)


@pytest.fixture(scope="module")
def churn() -> Pipeline:
    return load_pipeline(ROOT / "include" / "pipelines" / "churn.yaml")


def _violations(frame: pd.DataFrame, pipeline: Pipeline) -> dict[str, pd.Series]:
    """Per-row counts of rule violations of each kind, judged by the YAML rules."""
    nulls = pd.Series(0, index=frame.index)
    out_of_range = pd.Series(0, index=frame.index)
    unknown = pd.Series(0, index=frame.index)
    for name, column in pipeline.columns.items():
        if name not in frame:
            continue
        values = frame[name]
        present = values.notna()
        if not column.nullable:
            nulls += (~present).astype(int)
        if column.type in ("int", "float"):
            numbers = values.astype("Float64")
            low = column.min if column.min is not None else -np.inf
            high = column.max if column.max is not None else np.inf
            out_of_range += (present & ((numbers < low) | (numbers > high))).fillna(False).astype(int)
        if column.type == "category":
            unknown += (present & ~values.isin(column.values or [])).astype(int)
    return {"null": nulls, "range": out_of_range, "category": unknown}


def _psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    ref = reference.dropna().to_numpy(float)
    cur = current.dropna().to_numpy(float)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    p = np.clip(np.histogram(ref, edges)[0] / len(ref), 1e-6, None)
    q = np.clip(np.histogram(cur, edges)[0] / len(cur), 1e-6, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _days(config: ScenarioConfig, start: dt.date, count: int) -> pd.DataFrame:
    days = [start + dt.timedelta(days=i) for i in range(count)]
    return pd.concat([generate_day(config, day) for day in days], ignore_index=True)


def _price_gap(frame: pd.DataFrame) -> float:
    """Churn rate of the top minus the bottom quartile of the charge relative to its plan."""
    relative = frame["monthly_charges"] / frame.groupby("plan")["monthly_charges"].transform("median")
    quartile = pd.qcut(relative, 4, labels=False)
    churned = frame["churned"].astype(float)
    return float(churned[quartile == 3].mean() - churned[quartile == 0].mean())


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_config_gives_identical_bytes(fmt: str) -> None:
    config = dataclasses.replace(SMALL, format=fmt)
    first = encode_day(config, DAY, generate_day(config, DAY))
    second = encode_day(config, DAY, generate_day(config, DAY))
    assert first == second


def test_single_day_equals_that_day_in_a_full_run() -> None:
    config = dataclasses.replace(SMALL, corrupt_day=dt.date(2026, 1, 3), shift_start=dt.date(2026, 1, 2))
    written: dict[str, bytes] = {}
    paths = write_scenario(config, written.__setitem__)
    assert paths == [partition_path("churn", config.start + dt.timedelta(days=i), "csv") for i in range(4)]
    for day in (dt.date(2026, 1, 2), dt.date(2026, 1, 3)):
        alone = dataclasses.replace(config, start=day, end=day)
        assert (
            encode_day(alone, day, generate_day(alone, day)) == written[partition_path("churn", day, "csv")]
        )


def test_different_seed_or_day_differs() -> None:
    base = generate_day(SMALL, DAY)
    assert not base.equals(generate_day(dataclasses.replace(SMALL, seed=7), DAY))
    assert not base.equals(generate_day(SMALL, DAY + dt.timedelta(days=1)))


def test_defect_knob_leaves_clean_rows_untouched() -> None:
    clean = generate_day(dataclasses.replace(SMALL, bad_row_fraction=0.0), DAY)
    dirty = generate_day(dataclasses.replace(SMALL, bad_row_fraction=0.05), DAY)
    same = (clean.eq(dirty).fillna(False).astype(bool) | (clean.isna() & dirty.isna())).all(axis=1)
    assert (~same).sum() == round(0.05 * len(clean))


# --- schema --------------------------------------------------------------------------------------


def test_columns_match_churn_yaml(churn: Pipeline) -> None:
    assert list(COLUMNS) == list(churn.columns)
    frame = generate_day(SMALL, DAY)
    assert list(frame.columns) == list(churn.columns)


def test_clean_day_follows_the_yaml_rules(churn: Pipeline) -> None:
    config = dataclasses.replace(SMALL, bad_row_fraction=0.0, rows_per_day=5000)
    frame = generate_day(config, DAY)
    assert all(int(counts.sum()) == 0 for counts in _violations(frame, churn).values())
    for name, column in churn.columns.items():
        if column.type == "category":
            assert set(frame[name].dropna()) == set(column.values or []), name
    assert frame["customer_id"].is_unique
    start = pd.Timestamp(DAY.isoformat(), tz="UTC")
    assert frame["event_ts"].between(start, start + pd.Timedelta(days=1), inclusive="left").all()
    assert set(frame["churned"].unique()) == {0, 1}
    assert frame["autopay"].dtype == "boolean"
    assert 0.10 <= frame["churned"].mean() <= 0.25
    tenure = churn.validation.mean_between[0]
    assert tenure.min <= frame[tenure.column].mean() <= tenure.max


def test_csv_round_trips_with_iso_timestamps() -> None:
    config = dataclasses.replace(SMALL, bad_row_fraction=0.0)
    frame = generate_day(config, DAY)
    data = encode_day(config, DAY, frame)
    assert data.splitlines()[1].split(b",")[1].endswith(b"Z")
    back = pd.read_csv(io.BytesIO(data))
    assert list(back.columns) == list(COLUMNS)
    assert (back["customer_id"] == frame["customer_id"].to_numpy()).all()
    np.testing.assert_allclose(back["monthly_charges"], frame["monthly_charges"])
    assert (pd.to_datetime(back["event_ts"], utc=True) == frame["event_ts"]).all()


def test_parquet_round_trips() -> None:
    config = dataclasses.replace(SMALL, format="parquet")
    frame = generate_day(config, DAY)
    back = pq.read_table(io.BytesIO(encode_day(config, DAY, frame))).to_pandas()
    pd.testing.assert_frame_equal(back, frame)


def test_partition_path() -> None:
    assert partition_path("churn", DAY, "csv") == "churn/ds=2026-01-05/part-000.csv"
    assert partition_path("churn", DAY, "parquet") == "churn/ds=2026-01-05/part-000.parquet"


# --- defects ------------------------------------------------------------------------------------


def test_bad_rows_are_about_one_percent_of_each_kind(churn: Pipeline) -> None:
    config = dataclasses.replace(SMALL, rows_per_day=6000)
    frame = generate_day(config, DAY)
    counts = _violations(frame, churn)
    per_row = sum(counts.values())
    assert per_row.max() == 1, "a defective row carries exactly one defect"
    assert 0.009 <= (per_row == 1).mean() <= 0.011
    for kind, count in counts.items():
        assert abs(int(count.sum()) - len(frame) * 0.01 / 3) <= 2, kind
    assert "platinum" in set(frame["plan"]) or "weekly" in set(frame["contract"])
    assert (frame["monthly_charges"] < 0).any() or (frame["tenure_months"] == 999).any()


def test_zero_bad_row_fraction_gives_no_defects(churn: Pipeline) -> None:
    config = dataclasses.replace(SMALL, bad_row_fraction=0.0, rows_per_day=6000)
    for day in config.days():
        counts = _violations(generate_day(config, day), churn)
        assert {kind: int(count.sum()) for kind, count in counts.items()} == {
            "null": 0,
            "range": 0,
            "category": 0,
        }


def test_corrupt_day_cannot_be_read() -> None:
    config = dataclasses.replace(SMALL, corrupt_day=DAY)
    data = encode_day(config, DAY, generate_day(config, DAY))
    clean = encode_day(SMALL, DAY, generate_day(SMALL, DAY))
    # Truncated mid-row: a clean prefix that ends inside a row, then garbage.
    cut = data.index(b"\xff")
    assert data[:cut] == clean[:cut] and cut < 0.6 * len(clean)
    assert clean[cut - 1 : cut] != b"\n"
    with pytest.raises((UnicodeDecodeError, pd.errors.ParserError)):
        pd.read_csv(io.BytesIO(data))
    # Even a reader that tolerates bad bytes must fail on the malformed rows.
    with pytest.raises(pd.errors.ParserError):
        pd.read_csv(io.BytesIO(data), encoding_errors="replace")
    # The other days stay readable, row for row the days of a scenario without a corrupt day.
    other = DAY + dt.timedelta(days=1)
    read = pd.read_csv(io.BytesIO(encode_day(config, other, generate_day(config, other))))
    clean_other = generate_day(SMALL, other)
    assert (len(read), list(read.columns)) == (len(clean_other), list(clean_other.columns))
    pd.testing.assert_frame_equal(read, pd.read_csv(io.BytesIO(encode_day(SMALL, other, clean_other))))


def test_corrupt_parquet_day_cannot_be_opened() -> None:
    config = dataclasses.replace(SMALL, format="parquet", corrupt_day=DAY)
    data = encode_day(config, DAY, generate_day(config, DAY))
    with pytest.raises(pa.ArrowException):
        pq.read_table(io.BytesIO(data))


def test_missing_column_day_lacks_monthly_charges() -> None:
    config = dataclasses.replace(SMALL, missing_column_day=DAY)
    frame = generate_day(config, DAY)
    assert "monthly_charges" not in frame
    assert len(frame.columns) == len(COLUMNS) - 1
    header = encode_day(config, DAY, frame).split(b"\n", 1)[0].decode()
    assert "monthly_charges" not in header.split(",")
    assert "monthly_charges" in generate_day(config, DAY + dt.timedelta(days=1))
    assert "monthly_charges" in generate_day(SMALL, DAY)


def test_rows_per_day_knob() -> None:
    config = dataclasses.replace(SMALL, rows_per_day=1000)
    sizes = [len(generate_day(config, day)) for day in config.days()]
    assert all(970 <= size <= 1030 for size in sizes)
    assert len(set(sizes)) > 1, "the daily volume varies a little"
    assert 194 <= len(generate_day(dataclasses.replace(SMALL, rows_per_day=200), DAY)) <= 206


# --- shift ---------------------------------------------------------------------------------------


def test_shift_moves_features_and_price_sensitivity() -> None:
    shift = dt.date(2026, 3, 1)
    config = dataclasses.replace(SMALL, rows_per_day=4000, bad_row_fraction=0.0, shift_start=shift)
    early = _days(config, dt.date(2026, 2, 1), 4)
    before = _days(config, shift - dt.timedelta(days=4), 4)
    after = _days(config, shift, 4)

    for column in ("monthly_charges", "support_calls", "data_usage_gb"):
        ratio = after[column].mean() / before[column].mean()
        assert ratio > 1.15, column
        assert abs(before[column].mean() / early[column].mean() - 1) < 0.05, column
    assert _psi(before["monthly_charges"], after["monthly_charges"]) > 0.2
    assert _psi(early["monthly_charges"], before["monthly_charges"]) < 0.05
    one, two = generate_day(config, dt.date(2026, 2, 10)), generate_day(config, dt.date(2026, 2, 11))
    assert _psi(one["monthly_charges"], two["monthly_charges"]) < 0.05

    # Price matters more after the shift, and not before it.
    assert _price_gap(after) > _price_gap(before) + 0.08
    assert abs(_price_gap(before) - _price_gap(early)) < 0.05


def test_shift_disabled_keeps_march_stationary() -> None:
    config = dataclasses.replace(SMALL, rows_per_day=4000, bad_row_fraction=0.0)
    before = _days(config, dt.date(2026, 2, 20), 3)
    after = _days(config, dt.date(2026, 3, 5), 3)
    assert _psi(before["monthly_charges"], after["monthly_charges"]) < 0.05
    assert abs(after["support_calls"].mean() / before["support_calls"].mean() - 1) < 0.08


# --- writing and the CLI ------------------------------------------------------------------------


def test_run_scenario_skips_existing_without_generating() -> None:
    written: dict[str, bytes] = {}
    first = run_scenario(SMALL, written.__setitem__, exists=written.__contains__)
    assert len(first.written) == 4 and first.skipped == [] and first.rows > 0
    second = run_scenario(SMALL, written.__setitem__, exists=written.__contains__)
    assert second.written == [] and len(second.skipped) == 4 and second.rows == 0


def _cli(landing: Path, *extra: str) -> list[str]:
    base = [
        "--landing",
        str(landing),
        "--start",
        "2026-01-19",
        "--end",
        "2026-01-21",
        "--rows-per-day",
        "300",
    ]
    return base + list(extra)


def test_cli_writes_skips_and_forces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_cli(tmp_path)) == 0
    assert "wrote 3 day(s), skipped 0" in capsys.readouterr().out
    files = sorted(tmp_path.rglob("*"))
    paths = [p.relative_to(tmp_path).as_posix() for p in files if p.is_file()]
    assert paths == [f"churn/ds=2026-01-{d}/part-000.csv" for d in (19, 20, 21)]
    stamps = {p: os.stat(tmp_path / p).st_mtime_ns for p in paths}
    # The default corrupt day falls inside this range.
    with pytest.raises((UnicodeDecodeError, pd.errors.ParserError)):
        pd.read_csv(tmp_path / paths[1])

    assert main(_cli(tmp_path)) == 0
    assert "wrote 0 day(s), skipped 3" in capsys.readouterr().out
    assert stamps == {p: os.stat(tmp_path / p).st_mtime_ns for p in paths}

    assert main([*_cli(tmp_path), "--force", "--corrupt-day", "none"]) == 0
    assert "wrote 3 day(s), skipped 0" in capsys.readouterr().out
    # The forced rewrite of the once corrupt day is that day of a scenario without a corrupt day.
    forced = ScenarioConfig(
        start=dt.date(2026, 1, 19), end=dt.date(2026, 1, 21), rows_per_day=300, corrupt_day=None
    )
    day = dt.date(2026, 1, 20)
    expected = generate_day(forced, day)
    read = pd.read_csv(tmp_path / paths[1])
    assert (len(read), list(read.columns)) == (len(expected), list(expected.columns))
    assert (tmp_path / paths[1]).read_bytes() == encode_day(forced, day, expected)
    assert not [p for p in tmp_path.rglob("*.tmp")], "no temp files are left behind"


def test_cli_parquet_and_env_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_LANDING_ROOT", str(tmp_path / "env"))
    args = ["--start", "2026-02-10", "--end", "2026-02-10", "--rows-per-day", "200", "--format", "parquet"]
    assert main(args) == 0
    capsys.readouterr()
    table = pq.read_table(tmp_path / "env" / "churn" / "ds=2026-02-10" / "part-000.parquet")
    assert "monthly_charges" not in table.column_names  # the default missing-column day


def test_cli_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_cli(tmp_path, "--end", "2026-01-01")) == 2
    assert "before start" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_cli(tmp_path, "--shift-start", "someday"))


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    result = subprocess.run(
        [sys.executable, "-m", "mlops", "scenario", *_cli(tmp_path, "--end", "2026-01-19")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 1 day(s)" in result.stdout
    assert (tmp_path / "churn" / "ds=2026-01-19" / "part-000.csv").is_file()
