"""A steward's path, as a person walks it: a day's quarantined rows exported, fixed in the file and
submitted with the commands, then replayed from the replay DAG's form in the browser; the normal
score and monitor runs of that day recompute it, and no other day changes.

The fix puts each quarantined row's fields back as a valid row of the same landed file has them
(text as landed), keeping its key: what a person who looked the rows up upstream would type.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pandas as pd
from playwright.sync_api import expect
from tests.embedded_stack import PYTHON, EmbeddedStack
from tests.ui.airflow_ui import (
    lines_field,
    new_run,
    open_section,
    open_trigger_form,
    submit_button,
    wait_for_run,
)

from mlops.index.records import IndexReader
from mlops.lake.storage import LocalStorage, partition_dir, read_manifest, read_partition
from mlops.monitor.report_store import read_report

DAY = "2026-03-04"  # scored and monitored by the stack's champion
OTHER_DAYS = ("2026-03-02", "2026-03-03")
KEEP = ("customer_id", "_row_number", "_quarantine_reasons")


def fixed_export(exported: str, raw_csv: bytes, validated_rows: set[int]) -> str:
    """The export with every quarantined row's other fields copied from a valid landed row."""
    landed = list(csv.DictReader(io.StringIO(raw_csv.decode())))
    donors = [row for i, row in enumerate(landed) if i in validated_rows]
    rows = list(csv.DictReader(io.StringIO(exported)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row, donor in zip(rows, donors, strict=False):
        writer.writerow({k: (v if k in KEEP or k not in donor else donor[k]) for k, v in row.items()})
    return out.getvalue()


def outcome_table(stack: EmbeddedStack) -> dict[str, str]:
    """``python -m mlops report replay``: the outcome table's row of each day, by day."""
    table = stack.shell(f"{PYTHON} -m mlops report replay --pipeline churn")
    rows = [line for line in table.splitlines() if line.startswith("| 20")]
    return {row.split("|")[1].strip(): row for row in rows}


def downstream_run(stack: EmbeddedStack, dag_id: str, after: set[str], timeout_s: float = 600) -> dict:
    """The run of ``dag_id`` for ``DAY`` that the replay's event started, once it has ended."""
    api, deadline = stack.api(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fresh = [
            r for r in api.runs(dag_id) if r["dag_run_id"] not in after and r.get("partition_key") == DAY
        ]
        if fresh and fresh[-1]["state"] in ("success", "failed"):
            return fresh[-1]
        time.sleep(5)
    raise AssertionError(f"no {dag_id} run for {DAY} ended within {timeout_s:.0f}s of the replay")


def test_a_fixed_export_replayed_from_the_form_is_recomputed_downstream_and_nothing_else_moves(
    page: Any, stack: EmbeddedStack, tmp_path: Path
) -> None:
    api, lake = stack.api(), LocalStorage(stack.lake_root)
    validated_dir = partition_dir("churn", "validated", DAY)
    before = read_manifest(lake, validated_dir)
    quarantined = read_manifest(lake, partition_dir("churn", "quarantine", DAY)).extra["quarantined"]
    assert quarantined > 0, "the scenario quarantines rows every day"
    others = {
        (zone, ds): read_manifest(lake, partition_dir("churn", zone, ds)).attempt
        for zone in ("validated", "predictions")
        for ds in OTHER_DAYS
    }
    others_drift = {ds: read_report(lake, "churn", ds) for ds in OTHER_DAYS}
    outcome_before = outcome_table(stack)

    # Export, fix, submit: the commands a steward runs.
    exported = tmp_path / "quarantine.csv"
    stack.shell(f"{PYTHON} -m mlops quarantine export churn --partition {DAY} --out {exported}")
    (raw,) = read_partition(lake, partition_dir("churn", "raw", DAY)).values()
    kept = pd.concat([pd.read_parquet(io.BytesIO(b)) for b in read_partition(lake, validated_dir).values()])
    landed_valid = set(range(before.extra["rows"])) - set(
        pd.read_csv(exported, dtype=str, keep_default_na=False)["_row_number"].astype(int)
    )
    assert len(kept) == len(landed_valid)
    edited = tmp_path / "fixed.csv"
    edited.write_text(fixed_export(exported.read_text(), raw, landed_valid))
    stack.shell(f"{PYTHON} -m mlops quarantine submit churn --partition {DAY} {edited}")

    # The replay, from its form: the day, and the submitted file (the default fix).
    runs = {name: {r["dag_run_id"] for r in api.runs(name)} for name in ("churn_score", "churn_monitor")}
    replays_before = {r["dag_run_id"] for r in api.runs("churn_replay_quarantine")}
    dialog = open_trigger_form(page, "churn_replay_quarantine")
    open_section(dialog, "Replay")
    assert submit_button(dialog).is_disabled(), "a replay names its days"
    lines_field(dialog, "Partitions").fill(DAY)
    expect(submit_button(dialog)).to_be_enabled()
    submit_button(dialog).click()
    run = new_run(api, "churn_replay_quarantine", replays_before)
    assert wait_for_run(api, "churn_replay_quarantine", run["dag_run_id"])["state"] == "success"

    after = read_manifest(lake, validated_dir)
    passed = after.extra["validated"] - before.extra["validated"]
    assert after.attempt != before.attempt and passed > 0
    assert after.history[0]["attempt"] == before.attempt, "the old attempt is kept"
    assert (
        after.extra["validated"] + after.extra["quarantined"] == after.extra["rows"] == before.extra["rows"]
    )
    replayed = pd.concat(
        [pd.read_parquet(io.BytesIO(b)) for b in read_partition(lake, validated_dir).values()]
    )
    lineage = replayed[replayed["_replay_run"].notna()]
    assert len(lineage) == passed and set(lineage["_replay_run"]) == {run["dag_run_id"]}
    assert set(lineage["_source_file"]) == {"part-000.csv"}

    # The day's normal downstream runs recompute it from the re-published event, as re-runs.
    score = downstream_run(stack, "churn_score", runs["churn_score"])
    monitor = downstream_run(stack, "churn_monitor", runs["churn_monitor"])
    assert (score["state"], monitor["state"]) == ("success", "success")
    predictions = read_manifest(lake, partition_dir("churn", "predictions", DAY)).extra
    assert (
        predictions["rows"] == after.extra["validated"]
        and predictions["airflow_run_id"] == score["dag_run_id"]
    )
    report = read_report(lake, "churn", DAY)
    assert report["n_rows"] == after.extra["validated"] and report["trigger"]["fire"] is False
    assert "quarantine replay" in report["trigger"]["reason"]
    record = IndexReader(lake).read("churn")[DAY]
    assert (
        record["ingest"]["validated"] == after.extra["validated"]
        and record["score"]["rows"] == predictions["rows"]
    )

    # No other day moved.
    for (zone, ds), attempt in others.items():
        assert read_manifest(lake, partition_dir("churn", zone, ds)).attempt == attempt, (zone, ds)
    assert {ds: read_report(lake, "churn", ds) for ds in OTHER_DAYS} == others_drift
    # The replay's outcome table: every other day's row as it was.
    outcome_after = outcome_table(stack)
    assert set(outcome_after) == set(outcome_before) and DAY in outcome_after
    assert {d: r for d, r in outcome_after.items() if d != DAY} == {
        d: r for d, r in outcome_before.items() if d != DAY
    }
