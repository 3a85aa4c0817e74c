"""The approval tests' history: eight clean days and no scheduled train in them, so the only train
runs are the tests' own; approval on, with a timeout each test answers well within. Two users: the
admin (the only assigned approver, logged in by the API and the browser) and ``TRAINER``, who
triggers the forced runs the admin approves (the user who forces a promotion cannot approve it)."""

from __future__ import annotations

START, END = "2026-02-22", "2026-03-01"
DAYS = 8
# The manual train runs' logical date (the DAG ends on END): their window ends the day before.
TRAIN_DAY = END
WINDOW_END = "2026-02-28"
SCENARIO = [
    "--start", START, "--end", END, "--rows-per-day", "1200", "--shift-start", "none",
    "--corrupt-day", "none", "--missing-column-day", "none",
]  # fmt: skip
SETTINGS = [
    f"start_date={START}", f"end_date={END}", "retries=1", "retry_delay_minutes=0.2",
    "source.wait_timeout_minutes=10", "source.poke_interval_seconds=10",
    "schedules.max_active_ingest_runs=4", "schedules.settle_poke_seconds=10",
    "schedules.settle_timeout_minutes=30", 'schedules.train=\\"@yearly\\"',
    "training.window=7", "training.validation=2", "training.holdout=2",
    "training.min_partitions=5", "training.n_trials=1", "training.wait_timeout_minutes=30",
    "training.params.n_estimators=40", "training.min_rows=1000", "drift.min_rows=200",
    "promotion.approval.enabled=true", "promotion.approval.timeout=15m",
    "promotion.approval.on_timeout=reject", "'promotion.approval.assigned_users=[admin]'",
]  # fmt: skip
TRAINER = "trainer"
# The simple auth manager's users (name:role); Airflow generates the trainer's password.
ENV = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{TRAINER}:user"}
