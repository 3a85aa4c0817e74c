"""Sensor scenario: seeded, deterministic machine readings, one landing file per partition.

The data follows ``include/pipelines/sensors.yaml``: every machine reports once per period
(temperature, vibration, pressure, speed, hours since its last service), and the target says
whether it failed within the next day. Failures get likelier with heat, vibration and wear; from
``shift_start`` on, a hotter season raises every temperature (a covariate shift drift monitoring
should see). A small share of rows carry a sensor glitch (a value outside its declared range).

The grain is a knob (``hour`` by default, ``month`` for the monthly variant the tests run): each
partition's rows carry event times spread over its whole period. Each partition depends only on
``(seed, partition start, knobs)``, so one generated alone equals the same one inside a full run.
Pure Python: no Airflow import. ``python -m mlops scenario sensors --help``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable

import numpy as np
import pandas as pd

from mlops.grain import Grain

PIPELINE = "sensors"
HOURLY = Grain("hour")
# Mirrors include/pipelines/sensors.yaml `columns` (a test checks that the two agree).
COLUMNS: tuple[str, ...] = (
    "reading_id",
    "read_at",
    "machine_type",
    "temperature_c",
    "vibration_mm_s",
    "pressure_bar",
    "rpm",
    "hours_since_service",
    "failed_within_24h",
)
MACHINE_TYPES = ("light", "medium", "heavy")
_TYPE_HEAT = np.array([0.0, 4.0, 9.0])  # heavy machines run hotter
_GLITCH = {"temperature_c": 999.0, "vibration_mm_s": -1.0, "pressure_bar": 99.0}


@dataclasses.dataclass(frozen=True)
class SensorConfig:
    """Knobs of the sensor scenario; ``periods`` partitions of ``grain`` from ``start``."""

    start: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    periods: int = 24 * 4
    grain: Grain = HOURLY
    machines: int = 120
    seed: int = 7
    glitch_fraction: float = 0.005
    shift_start: dt.datetime | None = dt.datetime(2026, 1, 3, 12, tzinfo=dt.UTC)
    pipeline: str = PIPELINE

    def __post_init__(self) -> None:
        if self.periods < 1 or self.machines < 1:
            raise ValueError("periods and machines must be at least 1")
        if not 0.0 <= self.glitch_fraction <= 0.5:
            raise ValueError("glitch_fraction must be between 0 and 0.5")

    def partitions(self) -> list[str]:
        first = self.grain.key(self.start)
        return [self.grain.shift(first, i) for i in range(self.periods)]


def generate_partition(config: SensorConfig, ds: str) -> pd.DataFrame:
    """One partition's readings: one row per machine, at a random time inside the period."""
    grain, n = config.grain, config.machines
    start, end = grain.start(ds), grain.end(ds)
    rng = np.random.default_rng([config.seed, int(start.timestamp())])
    machine = np.arange(n)
    kind = machine % len(MACHINE_TYPES)
    offsets = rng.uniform(0, (end - start).total_seconds(), n)
    shifted = config.shift_start is not None and start >= config.shift_start
    wear = (machine * 37 + int(start.timestamp() // 3600)) % 2000 + rng.integers(0, 50, n)
    temperature = 55 + _TYPE_HEAT[kind] + 0.006 * wear + rng.normal(0, 6, n) + (12.0 if shifted else 0.0)
    vibration = np.abs(2.0 + 0.002 * wear + rng.normal(0, 1.2, n))
    pressure = 6 + rng.normal(0, 0.8, n)
    rpm = rng.normal(1500 + 300 * kind, 120, n).round().astype(int)
    risk = -5.5 + 0.09 * (temperature - 60) + 0.45 * vibration + 0.0008 * wear
    failed = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(int)
    frame = pd.DataFrame(
        {
            "reading_id": int(start.timestamp() // 60) * 10_000 + machine,
            "read_at": pd.DatetimeIndex([start + dt.timedelta(seconds=int(s)) for s in offsets]),
            "machine_type": np.array(MACHINE_TYPES)[kind],
            "temperature_c": temperature.round(2),
            "vibration_mm_s": vibration.round(3),
            "pressure_bar": pressure.round(3),
            "rpm": rpm,
            "hours_since_service": wear,
            "failed_within_24h": failed,
        }
    )
    glitches = np.flatnonzero(rng.random(n) < config.glitch_fraction)
    for i, row in enumerate(glitches):
        column = list(_GLITCH)[i % len(_GLITCH)]
        frame.loc[row, column] = _GLITCH[column]
    return frame[list(COLUMNS)]


def partition_path(pipeline: str, ds: str) -> str:
    return f"{pipeline}/ds={ds}/part-000.csv"


def write_scenario(
    config: SensorConfig,
    write: Callable[[str, bytes], None],
    exists: Callable[[str], bool] | None = None,
) -> list[str]:
    """Write every partition via ``write(relative_path, data)``, skipping those ``exists`` knows."""
    written = []
    for ds in config.partitions():
        path = partition_path(config.pipeline, ds)
        if exists is not None and exists(path):
            continue
        buffer = io.StringIO()
        generate_partition(config, ds).to_csv(buffer, index=False)
        write(path, buffer.getvalue().encode())
        written.append(path)
    return written
