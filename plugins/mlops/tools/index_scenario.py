"""A generated lake index of any length: a year of days and dozens of features, for the Models view.

Writes what the stages write (``mlops.index.records``) for ``days`` consecutive partitions: an
ingest record per day (every 40th rejected, quarantine shares that wander), a monitor record with
a PSI per feature (a shift in the last quarter, a retrain fired where it starts) and a score record
naming the version in force. Deterministic for a seed. Used by the Models view's bench and tests.
"""

from __future__ import annotations

import datetime as dt
import random

from mlops.index.records import ingest_record, monitor_record, score_record, write_record
from mlops.lake.storage import Storage


def write_index(
    lake: Storage, pipeline: str, *, start: str, days: int, features: int, seed: int = 0, versions: int = 4
) -> list[str]:
    """Write the index of ``days`` daily partitions from ``start``; returns their keys."""
    rng = random.Random(seed)
    first = dt.date.fromisoformat(start)
    keys = [(first + dt.timedelta(days=i)).isoformat() for i in range(days)]
    names = [f"feature_{j:02d}" for j in range(features)]
    shift_from = days * 3 // 4
    for i, ds in enumerate(keys):
        rows = rng.randint(9_000, 11_000)
        if i % 40 == 39:
            record = ingest_record(
                passed=False,
                rows=rows,
                validated=0,
                quarantined=0,
                reasons={},
                failures=[{"expectation": "expect_table_row_count_to_be_between", "message": "too few rows"}],
                message=f"{pipeline} {ds}: table-level expectations failed: row count",
            )
            write_record(lake, pipeline, ds, "ingest", record)
            continue
        quarantined = int(rows * rng.uniform(0.0, 0.03))
        reasons = {
            "plan in set": quarantined // 2,
            "tenure_months is a number": quarantined - quarantined // 2,
        }
        write_record(
            lake,
            pipeline,
            ds,
            "ingest",
            ingest_record(
                passed=True,
                rows=rows,
                validated=rows - quarantined,
                quarantined=quarantined,
                reasons=reasons,
                failures=[],
                message="passed",
            ),
        )
        version = str(1 + min(versions - 1, i * versions // days))
        shifted = i >= shift_from
        psi = {n: rng.uniform(0, 0.08) + (0.25 if shifted and j < 3 else 0.0) for j, n in enumerate(names)}
        report = {
            "champion_version": version,
            "n_rows": rows - quarantined,
            "verdict": {"status": "drift" if shifted else "no_drift"},
            "features": {n: {"psi": v} for n, v in psi.items()},
            "prediction": {"psi": rng.uniform(0, 0.05) + (0.1 if shifted else 0.0)},
            "performance": {"auc_drop": rng.uniform(-0.01, 0.02)},
            "thresholds": {"psi_threshold": 0.2, "prediction_psi_threshold": 0.1, "auc_drop_threshold": 0.03},
            "trigger": {"fire": i == shift_from, "reason": "drift" if i == shift_from else ""},
        }
        write_record(lake, pipeline, ds, "monitor", monitor_record(report))
        write_record(
            lake,
            pipeline,
            ds,
            "score",
            score_record(rows=rows - quarantined, version=version, airflow_run_id=f"scheduled__{ds}"),
        )
    return keys
