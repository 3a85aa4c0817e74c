"""Demo scenario: a seeded, deterministic customer-churn data set, one landing file per day.

The data follows ``include/pipelines/churn.yaml`` and carries the failures the pipeline must
survive: a few defective rows every day, one unreadable file, one file missing a required
column, and a covariate plus concept shift from ``shift_start`` on.

Each day depends only on ``(seed, day, knobs)``, so one day generated alone equals the same day
inside a full run, and re-running is reproducible byte for byte.

Run ``python -m mlops scenario --help`` (with ``plugins`` on ``PYTHONPATH``);
``python -m mlops scenario sensors`` generates the hourly sensor example (``mlops.sensor_scenario``).
Pure Python: no Airflow import.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

Format = Literal["csv", "parquet"]

PIPELINE = "churn"
# Mirrors include/pipelines/churn.yaml `columns` (the tests check that the two agree); kept here so
# the generator needs neither the YAML file nor pydantic.
COLUMNS: tuple[str, ...] = (
    "customer_id",
    "event_ts",
    "tenure_months",
    "monthly_charges",
    "data_usage_gb",
    "support_calls",
    "late_payments",
    "plan",
    "contract",
    "region",
    "payment_method",
    "autopay",
    "churned",
)
PLANS = ("basic", "standard", "premium")
CONTRACTS = ("monthly", "annual", "two_year")
REGIONS = ("north", "south", "east", "west")
PAYMENT_METHODS = ("card", "bank_transfer", "paypal", "invoice")
REQUIRED = ("customer_id", "event_ts", "tenure_months", "monthly_charges", "support_calls", "plan")
REQUIRED += ("contract", "churned")
MISSING_COLUMN = "monthly_charges"

# Defect values: one below the YAML minimum or above its maximum, per bounded feature.
_OUT_OF_RANGE: dict[str, tuple[float, float]] = {
    "tenure_months": (-1, 999),
    "monthly_charges": (-1.0, 9999.0),  # the low variant is replaced by the negated charge
    "data_usage_gb": (-5.0, 5000.0),
    "support_calls": (-1, 99),
    "late_payments": (-2, 99),
}
_UNKNOWN_CATEGORY = {
    "plan": "platinum",
    "contract": "weekly",
    "region": "central",
    "payment_method": "crypto",
}
# Optional (nullable: true) columns are sometimes empty in clean data too: valid, not a defect.
_OPTIONAL_NULL_FRACTION = 0.005
_OPTIONAL = ("data_usage_gb", "late_payments", "region", "payment_method", "autopay")

_PLAN_PRICE = np.array([29.99, 59.99, 94.99])
_PLAN_USAGE_GB = np.array([6.0, 18.0, 45.0])  # median monthly usage per plan
_PRICE_SPREAD = 0.12  # log-sd of a customer's charge around the plan's list price
_USAGE_SPREAD = 0.6


@dataclasses.dataclass(frozen=True)
class ScenarioConfig:
    """Knobs of the demo scenario; a day knob set to None disables that event."""

    start: dt.date = dt.date(2026, 1, 1)
    end: dt.date = dt.date(2026, 3, 31)  # inclusive
    rows_per_day: int = 10_000
    seed: int = 42
    format: Format = "csv"
    bad_row_fraction: float = 0.01
    corrupt_day: dt.date | None = dt.date(2026, 1, 20)
    missing_column_day: dt.date | None = dt.date(2026, 2, 10)
    shift_start: dt.date | None = dt.date(2026, 3, 1)
    pipeline: str = PIPELINE

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.rows_per_day < 1:
            raise ValueError("rows_per_day must be at least 1")
        if self.format not in ("csv", "parquet"):
            raise ValueError(f"format must be 'csv' or 'parquet', not {self.format!r}")
        if not 0.0 <= self.bad_row_fraction <= 0.5:
            raise ValueError("bad_row_fraction must be between 0 and 0.5")

    def days(self) -> Iterator[dt.date]:
        """Every day from start to end, inclusive."""
        for offset in range((self.end - self.start).days + 1):
            yield self.start + dt.timedelta(days=offset)


@dataclasses.dataclass(frozen=True)
class _Regime:
    """Generating parameters of one day; the shift changes them."""

    price_level: float = 1.0  # multiplies every plan's list price
    usage_level: float = 1.0
    support_rate: float = 0.9
    price_sensitivity: float = 0.45  # churn log-odds per standard deviation of relative price


_BEFORE = _Regime()
_AFTER = _Regime(price_level=1.25, usage_level=1.35, support_rate=1.5, price_sensitivity=0.9)


def _rng(config: ScenarioConfig, day: dt.date, stream: int) -> np.random.Generator:
    # Separate streams, so that changing the defect knobs leaves the clean rows untouched.
    return np.random.default_rng([config.seed, day.toordinal(), stream])


def _clean_day(config: ScenarioConfig, day: dt.date) -> pd.DataFrame:
    rng = _rng(config, day, 0)
    shifted = config.shift_start is not None and day >= config.shift_start
    regime = _AFTER if shifted else _BEFORE
    n = max(1, round(config.rows_per_day * rng.uniform(0.97, 1.03)))

    # Customers recur across days (the ID pool is fixed) but their attributes are redrawn daily.
    pool = max(5 * config.rows_per_day, 1000)
    customer_id = 100_000 + rng.choice(pool, size=n, replace=False)
    seconds = np.sort(rng.integers(0, 86_400, size=n))
    midnight = np.datetime64(day.isoformat(), "us")
    event_ts = pd.DatetimeIndex(midnight + seconds.astype("timedelta64[s]")).tz_localize("UTC")

    plan = rng.choice(3, size=n, p=[0.5, 0.35, 0.15])
    contract = rng.choice(3, size=n, p=[0.55, 0.3, 0.15])
    region = rng.choice(4, size=n, p=[0.3, 0.25, 0.25, 0.2])
    payment = rng.choice(4, size=n, p=[0.4, 0.25, 0.2, 0.15])
    autopay = rng.random(n) < np.array([0.75, 0.7, 0.45, 0.1])[payment]

    # Longer commitments come with longer-standing customers.
    tenure_mean = np.array([12.0, 30.0, 48.0])[contract]
    tenure = np.clip(np.floor(rng.gamma(1.3, tenure_mean / 1.3)), 0, 120).astype(np.int64)

    usage_z = rng.standard_normal(n)
    usage = _PLAN_USAGE_GB[plan] * regime.usage_level * np.exp(_USAGE_SPREAD * usage_z)
    usage = np.clip(np.round(usage, 2), 0.0, 2000.0)

    # A customer's charge scatters around the plan's current list price (discounts, add-ons);
    # churn reacts to the charge relative to that list price, not to its absolute level.
    price_z = rng.standard_normal(n)
    list_price = _PLAN_PRICE[plan] * regime.price_level
    charges = np.clip(np.round(list_price * np.exp(_PRICE_SPREAD * price_z), 2), 1.0, 500.0)

    support = np.minimum(rng.poisson(regime.support_rate * np.where(contract == 0, 1.3, 1.0)), 50)
    late_rate = 0.2 + 0.6 * ~autopay + 0.4 * (payment == 3)
    late = np.minimum(rng.poisson(late_rate), 24)

    logit = (
        -0.8
        - 0.55 * np.log1p(tenure)
        + np.array([0.0, -0.9, -1.6])[contract]
        + 0.35 * support
        + 0.45 * late
        + regime.price_sensitivity * price_z
        + 0.5 * ~autopay
        - 0.25 * usage_z
        + np.array([0.0, -0.1, -0.25])[plan]
        + np.array([0.0, 0.15, 0.0, -0.1])[region]
    )
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    frame = pd.DataFrame(
        {
            "customer_id": pd.array(customer_id, dtype="Int64"),
            "event_ts": event_ts,
            "tenure_months": pd.array(tenure, dtype="Int64"),
            "monthly_charges": charges,
            "data_usage_gb": usage,
            "support_calls": pd.array(support, dtype="Int64"),
            "late_payments": pd.array(late, dtype="Int64"),
            "plan": pd.array(np.array(PLANS)[plan], dtype="str"),
            "contract": pd.array(np.array(CONTRACTS)[contract], dtype="str"),
            "region": pd.array(np.array(REGIONS)[region], dtype="str"),
            "payment_method": pd.array(np.array(PAYMENT_METHODS)[payment], dtype="str"),
            "autopay": pd.array(autopay, dtype="boolean"),
            "churned": pd.array(churned, dtype="Int64"),
        }
    )
    for column in _OPTIONAL:
        frame.loc[rng.random(n) < _OPTIONAL_NULL_FRACTION, column] = None
    return frame


def _add_defects(config: ScenarioConfig, day: dt.date, frame: pd.DataFrame) -> pd.DataFrame:
    n_bad = round(config.bad_row_fraction * len(frame))
    if n_bad == 0:
        return frame
    rng = _rng(config, day, 1)
    rows = rng.choice(len(frame), size=n_bad, replace=False)
    # An even mix of the three kinds, each row getting exactly one defect in one column.
    kinds = np.arange(n_bad) % 3
    groups: list[tuple[np.ndarray, tuple[str, ...]]] = [
        (rows[kinds == 0], REQUIRED),
        (rows[kinds == 1], tuple(_OUT_OF_RANGE)),
        (rows[kinds == 2], tuple(_UNKNOWN_CATEGORY)),
    ]
    frame = frame.copy()
    for kind, (kind_rows, columns) in enumerate(groups):
        targets = rng.integers(0, len(columns), size=len(kind_rows))
        high = rng.random(len(kind_rows)) < 0.5
        for index, column in enumerate(columns):
            hit = kind_rows[targets == index]
            if len(hit) == 0:
                continue
            position = frame.columns.get_loc(column)
            if kind == 0:
                frame.iloc[hit, position] = None
            elif kind == 1:
                low_value, high_value = _OUT_OF_RANGE[column]
                if column == "monthly_charges":
                    low = -frame["monthly_charges"].to_numpy()[hit]
                else:
                    low = np.full(len(hit), low_value)
                values = np.where(high[targets == index], high_value, low)
                integer = isinstance(frame[column].dtype, pd.Int64Dtype)
                frame.iloc[hit, position] = values.astype(np.int64 if integer else np.float64)
            else:
                frame.iloc[hit, position] = _UNKNOWN_CATEGORY[column]
    return frame


def generate_day(config: ScenarioConfig, day: dt.date) -> pd.DataFrame:
    """One day's rows, defects included (before encoding; corruption happens in `encode_day`)."""
    frame = _add_defects(config, day, _clean_day(config, day))
    if day == config.missing_column_day:
        frame = frame.drop(columns=MISSING_COLUMN)
    return frame


def _corrupt(config: ScenarioConfig, day: dt.date, data: bytes) -> bytes:
    rng = _rng(config, day, 2)
    cut = len(data) // 2
    if config.format == "csv":
        # Cut mid-row, then append bytes that are invalid UTF-8 and a row with far too many
        # fields, so a strict reader fails on the encoding and a lenient one on the tokenising.
        while cut > 0 and data[cut - 1 : cut] in (b"\n", b","):
            cut -= 1
        garbage = b"\xff\xfe\xc3\x28" + rng.integers(128, 256, size=64, dtype=np.uint8).tobytes()
        return data[:cut] + garbage + b"," * 40 + b"\n" + garbage + b"\n"
    # Parquet: losing the footer (and its magic bytes) makes the file unopenable.
    return data[:cut] + rng.integers(0, 256, size=32, dtype=np.uint8).tobytes()


def encode_day(config: ScenarioConfig, day: dt.date, frame: pd.DataFrame) -> bytes:
    """The frame as CSV or parquet bytes; the corrupt day's bytes are damaged here."""
    if config.format == "csv":
        out = frame.copy()
        if "event_ts" in out:
            stamps = out["event_ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[s]")
            text = np.char.add(np.datetime_as_string(stamps, unit="s"), "Z")
            out["event_ts"] = pd.array(np.where(np.isnat(stamps), None, text), dtype="str")
        data = out.to_csv(index=False, lineterminator="\n").encode("utf-8")
    else:
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="snappy")
        data = buffer.getvalue()
    if day == config.corrupt_day:
        data = _corrupt(config, day, data)
    return data


def partition_path(pipeline_name: str, day: dt.date, fmt: str) -> str:
    """Relative landing path of one day, e.g. ``churn/ds=2026-01-05/part-000.csv``."""
    return f"{pipeline_name}/ds={day.isoformat()}/part-000.{fmt}"


@dataclasses.dataclass(frozen=True)
class ScenarioSummary:
    written: list[str]
    skipped: list[str]
    rows: int


def run_scenario(
    config: ScenarioConfig,
    write: Callable[[str, bytes], None],
    exists: Callable[[str], bool] | None = None,
) -> ScenarioSummary:
    """Write every day via ``write``; days for which ``exists`` is true are skipped ungenerated."""
    written: list[str] = []
    skipped: list[str] = []
    rows = 0
    for day in config.days():
        path = partition_path(config.pipeline, day, config.format)
        if exists is not None and exists(path):
            skipped.append(path)
            continue
        frame = generate_day(config, day)
        write(path, encode_day(config, day, frame))
        written.append(path)
        rows += len(frame)
    return ScenarioSummary(written=written, skipped=skipped, rows=rows)


def write_scenario(config: ScenarioConfig, write: Callable[[str, bytes], None]) -> list[str]:
    """Write every day via ``write(relative_path, data)``; returns the relative paths."""
    return run_scenario(config, write).written
