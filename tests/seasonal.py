"""A seasonal table with no shift at all: daily weather, one partition a month.

Every row is one day: ``season`` is a function of the month (the calendar, not the weather), the
temperature follows the season plus noise, and whether it rained follows the humidity. Every year
is drawn from the same law, so a monitor that compares a month with the same month a year earlier
must find nothing; one that compares it with other months finds the seasons.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring"}
SEASONS |= {6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}


def weather(first: dt.date = dt.date(2022, 1, 1), years: int = 4, seed: int = 7) -> pd.DataFrame:
    """One row a day from ``first`` for ``years`` years: ``day_id``, ``observed_at``, ``season``,
    ``temperature``, ``humidity`` and ``rained`` (0/1)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(first, first.replace(year=first.year + years) - dt.timedelta(days=1), freq="D")
    phase = 2 * np.pi * (days.dayofyear.to_numpy() - 15) / 365.25
    temperature = 12 - 10 * np.cos(phase) + rng.normal(0, 3, len(days))
    humidity = 70 + 12 * np.cos(phase) + rng.normal(0, 8, len(days))
    rained = rng.random(len(days)) < 1 / (1 + np.exp(-(humidity - 72) / 6))
    return pd.DataFrame(
        {
            "day_id": np.arange(1, len(days) + 1),
            "observed_at": (days + pd.Timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%S"),
            "season": [SEASONS[m] for m in days.month],
            "temperature": temperature.round(2),
            "humidity": humidity.round(2),
            "rained": rained.astype(int),
        }
    )


def by_month(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The table's rows by month partition (``YYYY-MM-01``), oldest first."""
    month = frame["observed_at"].str.slice(0, 7) + "-01"
    return {key: part.reset_index(drop=True) for key, part in frame.groupby(month, sort=True)}
