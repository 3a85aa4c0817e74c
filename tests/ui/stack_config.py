"""The short history the browser tests run on: a first weekly train that fails for too few days, a
corrupt day, a first champion, and monitored and scored days after it."""

from __future__ import annotations

START, END = "2026-02-22", "2026-03-04"
DAYS = 11
CORRUPT_DAY = "2026-02-25"
SCENARIO = [
    "--start", START, "--end", END, "--rows-per-day", "1200", "--shift-start", "none",
    "--corrupt-day", CORRUPT_DAY, "--missing-column-day", "none",
]  # fmt: skip
SETTINGS = [
    f"start_date={START}", f"end_date={END}", "retries=1", "retry_delay_minutes=1",
    "source.wait_timeout_minutes=10", "source.poke_interval_seconds=15",
    "schedules.max_active_ingest_runs=4", "schedules.settle_poke_seconds=10",
    "schedules.settle_timeout_minutes=30",
    "training.window=10", "training.validation=2", "training.holdout=2",
    "training.min_partitions=5", "training.n_trials=1", "training.wait_timeout_minutes=30",
    "training.params.n_estimators=60", "training.min_rows=1000", "drift.min_rows=200",
]  # fmt: skip
