"""Online accuracy on a real lake: served rows joined with the labels later partitions carry, on the
logical clock; the champion's decay counted toward the drift verdict; drift of the served traffic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.unit.monitor.test_report import (
    CONFIG,
    SHIFTED_DAY,
    _scores,
    pipeline,
    profile,
    reference,
    reference_auc,
)

from mlops.config.pipeline import Pipeline
from mlops.lake.batches import parquet_bytes, part_name
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir
from mlops.monitor.online import online_accuracy, online_section, read_served
from mlops.monitor.report_store import read_report
from mlops.monitor.stage import Champion, monitor_partition
from mlops.tools.scenario import generate_day
from mlops.training.evaluation import evaluate

__all__ = ["pipeline", "profile", "reference", "reference_auc"]  # the shared fixtures
SERVED = "2026-02-25"  # the day the rows were answered
LABELS = "2026-02-26"  # the ingest that carries their targets
LATER = "2026-02-27"


class Model:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return _scores(frame)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """The rows served on SERVED, with their true targets (which the service never saw)."""
    return generate_day(CONFIG, dt.date.fromisoformat(SERVED))


def served_part(
    pipeline: Pipeline, frame: pd.DataFrame, scores: np.ndarray, *, version: str, day: str, keyed: bool = True
) -> pd.DataFrame:
    """Rows as the serving contract commits them: request id, version, key (or null), features, score."""
    n = len(frame)
    return pd.DataFrame(
        {
            "_served_at": pd.Series([pd.Timestamp(f"{day}T12:00:00Z")] * n, dtype="datetime64[us, UTC]"),
            "_request_id": [f"req-{version}-{i}" for i in range(n)],
            "_model_version": [version] * n,
            pipeline.key: frame[pipeline.key].to_numpy() if keyed else pd.array([None] * n, dtype="Int64"),
            **{f: frame[f].to_numpy() for f in pipeline.features},
            "score": np.asarray(scores, dtype=np.float64),
            "label": (np.asarray(scores) >= pipeline.training.threshold).astype(np.int8),
        }
    )


def commit_served(lake: LocalStorage, pipeline: Pipeline, day: str, *parts: pd.DataFrame) -> None:
    files = {part_name(i): parquet_bytes(p) for i, p in enumerate(parts)}
    commit_partition(
        lake, partition_dir(pipeline.name, "served", day), files, extra={"rows": sum(map(len, parts))}
    )


def commit_validated(lake: LocalStorage, pipeline: Pipeline, day: str, frame: pd.DataFrame) -> None:
    commit_partition(
        lake, partition_dir(pipeline.name, "validated", day), {"part.parquet": parquet_bytes(frame)}
    )


def probe_rows(pipeline: Pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    part = served_part(pipeline, frame.head(3), np.full(3, 0.5), version="3", day=SERVED, keyed=True)
    return part.assign(_request_id=[f"probe-scheduled__{i}" for i in range(3)])


@pytest.fixture
def lake(tmp_path: Path, pipeline: Pipeline, rows: pd.DataFrame) -> LocalStorage:
    """SERVED: 2000 keyed rows by version 3, 500 by version 4, 100 without a key, 3 probes. The
    targets arrive in LABELS's validated partition."""
    lake = LocalStorage(tmp_path / "lake")
    scores = _scores(rows)
    commit_served(
        lake,
        pipeline,
        SERVED,
        served_part(pipeline, rows.iloc[:2000], scores[:2000], version="3", day=SERVED),
        served_part(pipeline, rows.iloc[2000:2500], scores[2000:2500], version="4", day=SERVED),
        served_part(pipeline, rows.iloc[2500:2600], scores[2500:2600], version="3", day=SERVED, keyed=False),
        probe_rows(pipeline, rows),
    )
    commit_validated(lake, pipeline, LABELS, rows)
    return lake


def test_served_rows_leave_the_probes_out(lake: LocalStorage, pipeline: Pipeline) -> None:
    served = read_served(lake, pipeline, SERVED)

    assert len(served) == 2600 and not served["_request_id"].str.startswith("probe-").any()
    assert read_served(lake, pipeline, LABELS) is None  # nothing served that day


def test_labels_are_known_only_once_their_partition_is_on_the_clock(
    lake: LocalStorage, pipeline: Pipeline, rows: pd.DataFrame
) -> None:
    before, _ = online_accuracy(lake, pipeline, SERVED)  # the run for SERVED: LABELS is tomorrow
    after, pooled = online_accuracy(lake, pipeline, LABELS)

    assert [(r["ds"], r["model_version"], r["rows_served"], r["rows_labelled"]) for r in before] == [
        (SERVED, "3", 2100, 0),
        (SERVED, "4", 500, 0),
    ]
    assert all(r["auc"] is None and r["accuracy"] is None for r in before)
    three, four = after
    assert (three["rows_served"], three["rows_labelled"]) == (2100, 2000)  # the keyless rows stay unlabelled
    assert (four["rows_served"], four["rows_labelled"]) == (500, 500)
    y, s = rows["churned"].to_numpy(float), _scores(rows)
    expected = evaluate(y[:2000], s[:2000], threshold=0.5)
    assert three["auc"] == pytest.approx(expected["auc"]) and three["log_loss"] == pytest.approx(
        expected["log_loss"]
    )
    assert three["accuracy"] == pytest.approx(np.mean((s[:2000] >= 0.5) == y[:2000]))
    assert four["auc"] == pytest.approx(evaluate(y[2000:2500], s[2000:2500], threshold=0.5)["auc"])
    assert len(pooled) == 2500 and set(pooled["ds"]) == {SERVED}


def test_a_rows_label_is_the_first_one_from_its_day_on(
    tmp_path: Path, pipeline: Pipeline, rows: pd.DataFrame
) -> None:
    lake = LocalStorage(tmp_path / "lake")
    head = rows.head(50)
    commit_served(lake, pipeline, SERVED, served_part(pipeline, head, _scores(head), version="3", day=SERVED))
    first = head.assign(churned=1)
    commit_validated(
        lake, pipeline, LABELS, pd.concat([first.assign(churned=0), first])
    )  # the last by time wins
    commit_validated(lake, pipeline, LATER, head.assign(churned=0))

    [row], pooled = online_accuracy(lake, pipeline, LATER)

    assert row["rows_labelled"] == 50 and (pooled["_y"] == 1).all()
    assert row["auc"] is None and "single class" in row["note"]
    assert row["accuracy"] == pytest.approx(np.mean(_scores(head) >= 0.5))


def test_served_days_outside_the_label_window_are_not_measured(
    lake: LocalStorage, pipeline: Pipeline
) -> None:
    accuracy, _ = online_accuracy(lake, pipeline, "2026-03-10", window=7)

    assert accuracy == []
    assert (
        online_section(lake, pipeline, "2026-03-10", champion_version="3", reference_auc=0.8, profile={})
        is None
    )


def test_the_champions_decay_is_its_pooled_auc_below_the_reference(
    lake: LocalStorage, pipeline: Pipeline, rows: pd.DataFrame, profile: dict, reference_auc: float
) -> None:
    online_auc = evaluate(rows["churned"].to_numpy(float)[:2000], _scores(rows)[:2000], threshold=0.5)["auc"]

    held = online_section(
        lake, pipeline, LABELS, champion_version="3", reference_auc=online_auc + 0.01, profile=profile
    )
    decayed = online_section(
        lake, pipeline, LABELS, champion_version="3", reference_auc=online_auc + 0.1, profile=profile
    )
    unknown = online_section(lake, pipeline, LABELS, champion_version="9", reference_auc=0.9, profile=profile)

    assert held["champion"]["decay"] is False and held["champion"]["auc_drop"] == pytest.approx(0.01)
    assert decayed["champion"]["decay"] is True and decayed["champion"]["auc_drop"] == pytest.approx(0.1)
    assert decayed["champion"]["rows_labelled"] == 2000 and decayed["champion"]["days"] == [SERVED]
    assert (
        unknown["champion"]["decay"] is False
        and "fewer than drift.min_rows=500" in unknown["champion"]["note"]
    )
    assert held["served_rows"][SERVED] == 2600 and held["served_rows"][LABELS] == 0
    assert held["label_window"] == {"first": "2026-02-20", "last": LABELS, "partitions": 7}
    assert held["drift"] is None  # nothing served on LABELS itself


def test_the_monitor_counts_online_decay_toward_the_drift_verdict(
    tmp_path: Path, pipeline: Pipeline, rows: pd.DataFrame, profile: dict, reference_auc: float
) -> None:
    """The served answers were bad (inverted scores): the batch AUC holds, the online one drops."""
    lake = LocalStorage(tmp_path / "lake")
    bad = 1.0 - _scores(rows)
    commit_served(lake, pipeline, SERVED, served_part(pipeline, rows, bad, version="3", day=SERVED))
    commit_validated(lake, pipeline, LABELS, rows)
    champion = Champion(version="3", model=Model(), profile=profile, reference_auc=reference_auc, triggers=[])

    outcome = monitor_partition(lake, pipeline, LABELS, champion, backfill=False)

    report = read_report(lake, pipeline.name, LABELS)
    assert report["online"]["champion"]["decay"] is True
    assert report["online"]["champion"]["auc"] < 0.5 < reference_auc
    assert report["performance"]["auc_drop"] < pipeline.drift.auc_drop_threshold  # the batch is fine
    [reason] = [r for r in report["verdict"]["reasons"] if r["scope"] == "performance"]
    assert reason["statistic"] == "online_auc_drop"
    assert reason["value"] == pytest.approx(reference_auc - report["online"]["champion"]["auc"])
    assert report["verdict"]["day_drift"] is True and outcome.report["online"] == report["online"]


def test_a_day_without_served_rows_has_no_online_section(
    tmp_path: Path, pipeline: Pipeline, rows: pd.DataFrame, profile: dict, reference_auc: float
) -> None:
    lake = LocalStorage(tmp_path / "lake")
    commit_validated(lake, pipeline, LABELS, rows)
    champion = Champion(version="3", model=Model(), profile=profile, reference_auc=reference_auc, triggers=[])

    monitor_partition(lake, pipeline, LABELS, champion, backfill=False)

    assert "online" not in read_report(lake, pipeline.name, LABELS)


def test_drift_of_the_served_traffic_is_measured_beside_the_batch(
    tmp_path: Path, pipeline: Pipeline, rows: pd.DataFrame, profile: dict
) -> None:
    lake = LocalStorage(tmp_path / "lake")
    shifted = generate_day(CONFIG, SHIFTED_DAY)
    day = SHIFTED_DAY.isoformat()
    commit_served(lake, pipeline, day, served_part(pipeline, shifted, _scores(shifted), version="3", day=day))
    commit_served(lake, pipeline, SERVED, served_part(pipeline, rows, _scores(rows), version="3", day=SERVED))

    moved = online_section(lake, pipeline, day, champion_version="3", reference_auc=None, profile=profile)[
        "drift"
    ]
    clean = online_section(lake, pipeline, SERVED, champion_version="3", reference_auc=None, profile=profile)[
        "drift"
    ]

    assert moved["n_rows"] == len(shifted) and moved["day_drift"] is True
    assert "monthly_charges" in {r["feature"] for r in moved["reasons"]}
    assert moved["features"]["monthly_charges"]["psi"] > 10 * clean["features"]["monthly_charges"]["psi"]
    assert clean["day_drift"] is False and moved["prediction"]["psi"] > clean["prediction"]["psi"]
