"""The monitor stage on the lake: a re-run after a quarantine replay recomputes and decides nothing."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tests.unit.monitor.test_report import CONFIG, _scores, pipeline, profile, reference, reference_auc

from mlops.config.pipeline import Pipeline
from mlops.index.records import IndexReader
from mlops.lake.batches import parquet_bytes
from mlops.lake.storage import LocalStorage, commit_partition, partition_dir
from mlops.monitor.report_store import read_report
from mlops.monitor.stage import Champion, monitor_partition
from mlops.tools.scenario import generate_day

__all__ = ["pipeline", "profile", "reference", "reference_auc"]  # the shared fixtures
SHIFTED = [dt.date(2026, 3, 3), dt.date(2026, 3, 4), dt.date(2026, 3, 5)]


class Model:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return _scores(frame)


def lake_with_shifted_days(root: Path, pipeline: Pipeline) -> LocalStorage:
    lake = LocalStorage(root)
    for day in SHIFTED:
        frame = generate_day(CONFIG, day)
        commit_partition(
            lake,
            partition_dir(pipeline.name, "validated", day.isoformat()),
            {"part.parquet": parquet_bytes(frame)},
        )
    return lake


def run(lake: LocalStorage, pipeline: Pipeline, champion: Champion, **kw: Any) -> list[Any]:
    return [monitor_partition(lake, pipeline, d.isoformat(), champion, backfill=False, **kw) for d in SHIFTED]


def test_a_rerun_after_a_replay_recomputes_the_report_and_fires_no_retrain(
    tmp_path: Path, pipeline: Pipeline, profile: dict, reference_auc: float
) -> None:
    champion = Champion(version="3", model=Model(), profile=profile, reference_auc=reference_auc, triggers=[])
    first = lake_with_shifted_days(tmp_path / "a", pipeline)
    fired = [o.fire for o in run(first, pipeline, champion)]
    assert any(fired), "the shifted days persist: the first monitoring fires a retrain"

    # The same days monitored again as re-runs (their data re-published by a replay): same verdicts.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    again = LocalStorage(tmp_path / "b")
    reruns = run(again, pipeline, champion, rerun=True)
    assert not any(o.fire for o in reruns)
    last = SHIFTED[fired.index(True)].isoformat()
    report = read_report(again, pipeline.name, last)
    assert report["verdict"] == read_report(first, pipeline.name, last)["verdict"]
    assert report["trigger"]["fire"] is False and "quarantine replay" in report["trigger"]["reason"]
    assert IndexReader(again).read(pipeline.name)[last]["monitor"]["fired"] is False
