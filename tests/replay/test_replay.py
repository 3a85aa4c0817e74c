"""Replays at two speeds on the embedded stack give byte-identical outcome tables.

Each replay is a whole embedded stack of its own (``scripts/stack.sh`` with its own state folder
and free ports): `airflow standalone` catches up on a short history of the demo scenario with the
same events as the full demo (a rejected day, a first champion, a shift, a drift retrain, weekly
trains around it), driven only by the schedules and the assets. The fast replay runs 8 ingest days
at once with room for many tasks; the slow one runs one day at a time on two task slots, so the
trials of a train run queue behind each other. Both end with ``python -m mlops report replay``.

`make test-replay` runs this (about 16 minutes on two cores); `make test` leaves it out.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from tests.embedded_stack import PYTHON, EmbeddedStack

START, END = "2026-02-22", "2026-03-10"
DAYS = 17
SCENARIO = [
    "--start", START, "--end", END, "--rows-per-day", "2000", "--shift-start", "2026-03-05",
    "--corrupt-day", "2026-02-25", "--missing-column-day", "none",
]  # fmt: skip
SPEEDS = {
    "fast": {"max_active_ingest_runs": 8, "parallelism": 8},
    "slow": {"max_active_ingest_runs": 1, "parallelism": 2},
}
REPLAY_TIMEOUT_S = int(os.environ.get("REPLAY_TIMEOUT_S", "1800"))


def pipeline_settings(max_active_ingest_runs: int) -> list[str]:
    """The demo pipeline over the short history, with a window and search sized for it."""
    return [
        f"start_date={START}", f"end_date={END}", "retries=1", "retry_delay_minutes=1",
        "source.wait_timeout_minutes=10", "source.poke_interval_seconds=15",
        f"schedules.max_active_ingest_runs={max_active_ingest_runs}",
        "schedules.settle_poke_seconds=15", "schedules.settle_timeout_minutes=40",
        "training.window=14", "training.validation=2", "training.holdout=2",
        "training.min_partitions=5", "training.n_trials=2", "training.wait_timeout_minutes=40",
        "training.params.n_estimators=120",
    ]  # fmt: skip


def replay(name: str, tmp: Path) -> tuple[str, float]:
    """One replay at ``name``'s speed; returns the outcome table and the replay's wall time."""
    speed = SPEEDS[name]
    stack = EmbeddedStack(
        tmp / name, pipeline_settings(speed["max_active_ingest_runs"]), SCENARIO, speed["parallelism"]
    )
    started = time.monotonic()
    try:
        stack.start()
        stack.wait_until_quiet(DAYS, REPLAY_TIMEOUT_S)
        elapsed = time.monotonic() - started
        return stack.shell(f"{PYTHON} -m mlops report replay"), elapsed
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = Path(os.environ.get("REPLAY_DIR") or tmp_path_factory.mktemp("replay"))
    found = {}
    for name in SPEEDS:
        table, elapsed = replay(name, tmp)
        (tmp / f"{name}.md").write_text(table)
        print(f"\n{name} replay: {elapsed:.0f}s\n{table}", file=sys.stderr)
        found[name] = table
    return found


def rows(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_two_speeds_give_byte_identical_outcome_tables(tables: dict[str, str]) -> None:
    assert tables["fast"] == tables["slow"]


def test_the_replay_has_the_demo_events(tables: dict[str, str]) -> None:
    table = rows(tables["fast"])
    assert len(table) == DAYS
    by_day = {r[0]: r for r in table}
    assert by_day["2026-02-25"][1] == "rejected"
    assert "schedule: failed" in by_day["2026-02-23"][5], "the first weekly train has too few days"
    assert "drift:" in " ".join(r[5] for r in table), "the shift triggers a drift retrain"
    assert any("fires" in r[4] for r in table)
    assert len({r[2] for r in table} - {"-"}) >= 2, "the champion changes"
    assert not any("refused" in r[5] for r in table), "no gate compares on days a model trained on"


def test_every_validated_day_from_the_first_promotion_on_is_scored_by_its_champion(
    tables: dict[str, str],
) -> None:
    table = rows(tables["slow"])
    first = next(i for i, r in enumerate(table) if r[2] != "-")
    for day, data, champion, scored, *_ in table[first:]:
        if data == "validated":
            assert scored == champion, f"{day}: scored by {scored}, champion as of the day {champion}"
