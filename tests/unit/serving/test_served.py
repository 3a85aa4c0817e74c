"""Served rows: buffered, sampled, appended to ``served/ds=<key>/`` one atomic part per flush."""

from __future__ import annotations

import datetime as dt
import threading
import time

import numpy as np
import pandas as pd
import pytest
from tests.unit.serving.conftest import SERVED_AT, record

from mlops.config.pipeline import Pipeline, parse_pipeline
from mlops.lake.batches import manifest_rows, parquet_batches
from mlops.lake.storage import LocalStorage, is_committed, partition_dir, read_manifest
from mlops.serving.rows import RowReader
from mlops.serving.served import ServedWriter, commit_part, served_frame


def frame(pipeline: Pipeline, n: int, *, key: bool = True, at: dt.datetime = SERVED_AT, rid: str = "r1"):
    rows = [record(customer_id=i, tenure_months=i % 120) for i in range(n)]
    if not key:
        for row in rows:
            del row["customer_id"]
    typed = RowReader(pipeline).read(pd.Series(rows).to_json(orient="values").encode(), "application/json")
    scores = np.linspace(0, 1, n)
    return served_frame(pipeline, typed, scores, version="3", request_id=rid, served_at=at)


def with_serving(pipeline: Pipeline, **serving) -> Pipeline:
    data = pipeline.model_dump(mode="json", exclude_unset=True)
    data["serving"] = serving
    return parse_pipeline(data, source="test")


def read_back(lake: LocalStorage, pipeline: Pipeline, ds: str) -> pd.DataFrame:
    return pd.concat(parquet_batches(lake, partition_dir(pipeline.name, "served", ds)), ignore_index=True)


def test_a_part_has_the_contract_columns_typed_by_the_schema(pipeline: Pipeline) -> None:
    part = frame(pipeline, 4)
    assert list(part.columns) == [
        "_served_at",
        "_request_id",
        "_model_version",
        "customer_id",
        *pipeline.features,
        "score",
        "label",
    ]
    assert (
        str(part["_served_at"].dtype) == "datetime64[ns, UTC]" and str(part["customer_id"].dtype) == "Int64"
    )
    assert str(part["plan"].dtype) == "string" and str(part["autopay"].dtype) == "boolean"
    assert part["label"].dtype == "int8" and part["label"].tolist() == [0, 0, 1, 1]  # threshold 0.5
    keyless = frame(pipeline, 2, key=False)
    assert keyless["customer_id"].isna().all() and str(keyless["customer_id"].dtype) == "Int64"


def test_each_commit_appends_one_part_and_keeps_the_count(tmp_path, pipeline: Pipeline) -> None:
    lake = LocalStorage(tmp_path)
    commit_part(lake, pipeline, "2026-03-02", frame(pipeline, 3, rid="a"))
    manifest = commit_part(lake, pipeline, "2026-03-02", frame(pipeline, 2, rid="b"))
    assert len(manifest.files) == 2 and manifest.files[0].startswith("part-00000-")
    assert manifest.files[1].startswith("part-00001-") and manifest.extra == {"rows": 5}
    rows = read_back(lake, pipeline, "2026-03-02")
    assert rows["_request_id"].tolist() == ["a"] * 3 + ["b"] * 2
    assert manifest_rows(lake, partition_dir(pipeline.name, "served", "2026-03-02")) == 5


def test_concurrent_commits_lose_no_part(tmp_path, pipeline: Pipeline) -> None:
    lake = LocalStorage(tmp_path)
    parts = [frame(pipeline, 2, rid=f"r{i}") for i in range(8)]
    threads = [threading.Thread(target=commit_part, args=(lake, pipeline, "2026-03-02", p)) for p in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = read_back(lake, pipeline, "2026-03-02")
    assert sorted(set(rows["_request_id"])) == sorted(f"r{i}" for i in range(8)) and len(rows) == 16


def test_a_flush_splits_the_rows_by_the_grain_of_their_serving_time(tmp_path, pipeline: Pipeline) -> None:
    lake = LocalStorage(tmp_path)
    writer = ServedWriter(lake, pipeline)
    writer.add(frame(pipeline, 2, at=dt.datetime(2026, 3, 1, 23, 59, 59, tzinfo=dt.UTC), rid="late"))
    writer.add(frame(pipeline, 3, at=dt.datetime(2026, 3, 2, 0, 0, 1, tzinfo=dt.UTC), rid="early"))
    assert writer.buffered == 5 and not is_committed(lake, partition_dir("churn", "served", "2026-03-01"))
    assert [m.extra["rows"] for m in writer.flush()] == [2, 3]
    assert read_back(lake, pipeline, "2026-03-01")["_request_id"].unique().tolist() == ["late"]
    assert read_back(lake, pipeline, "2026-03-02")["_request_id"].unique().tolist() == ["early"]
    assert writer.buffered == 0 and writer.flush() == []


@pytest.mark.parametrize(("rate", "kept"), [(0.0, 0), (1.0, 400), (0.25, (70, 130))])
def test_the_sample_rate_keeps_its_share_of_the_rows(tmp_path, pipeline: Pipeline, rate, kept) -> None:
    writer = ServedWriter(
        LocalStorage(tmp_path), with_serving(pipeline, sample_rate=rate), rng=np.random.default_rng(1)
    )
    total = sum(writer.add(frame(pipeline, 40)) for _ in range(10))
    assert total == writer.buffered
    if isinstance(kept, tuple):
        assert kept[0] <= total <= kept[1]
    else:
        assert total == kept


def test_the_thread_commits_after_flush_rows_and_on_stop(tmp_path, pipeline: Pipeline) -> None:
    lake = LocalStorage(tmp_path)
    writer = ServedWriter(lake, with_serving(pipeline, flush_rows=10, flush_seconds=3600))
    directory = partition_dir("churn", "served", SERVED_AT.date())
    writer.start()
    try:
        writer.add(frame(pipeline, 4))
        time.sleep(0.2)
        assert not is_committed(lake, directory)  # below flush_rows, long before flush_seconds
        writer.add(frame(pipeline, 6))
        deadline = time.monotonic() + 10
        while not is_committed(lake, directory) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert read_manifest(lake, directory).extra == {"rows": 10}
        writer.add(frame(pipeline, 1))
    finally:
        writer.stop()
    assert read_manifest(lake, directory).extra == {"rows": 11}  # the last row, at shutdown


def test_the_thread_commits_every_flush_seconds(tmp_path, pipeline: Pipeline) -> None:
    lake = LocalStorage(tmp_path)
    writer = ServedWriter(lake, with_serving(pipeline, flush_rows=1000, flush_seconds=0.1))
    writer.start()
    try:
        writer.add(frame(pipeline, 2))
        directory = partition_dir("churn", "served", SERVED_AT.date())
        deadline = time.monotonic() + 10
        while not is_committed(lake, directory) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert manifest_rows(lake, directory) == 2
    finally:
        writer.stop()


class Flaky(LocalStorage):
    """Refuses writes while ``down``."""

    down = True

    def write_bytes(self, path: str, data: bytes) -> None:
        if self.down:
            raise OSError("the lake is away")
        super().write_bytes(path, data)


def test_a_failed_flush_keeps_its_rows_for_the_next_and_a_full_buffer_drops_the_oldest(
    tmp_path, pipeline: Pipeline
) -> None:
    from mlops.serving.metrics import ServingMetrics

    lake, metrics = Flaky(tmp_path), ServingMetrics(["churn"])
    writer = ServedWriter(lake, pipeline, metrics=metrics, max_buffered=5)
    writer.add(frame(pipeline, 3, rid="first"))
    assert writer.flush() == [] and writer.buffered == 3
    writer.add(frame(pipeline, 3, rid="second"))
    assert writer.flush() == [] and writer.buffered == 5  # 6 > 5: the oldest row dropped
    lake.down = False
    assert [m.extra["rows"] for m in writer.flush()] == [5]
    rows = read_back(lake, pipeline, "2026-03-02")
    assert rows["_request_id"].tolist() == ["first"] * 2 + ["second"] * 3
    assert rows["customer_id"].tolist() == [1, 2, 0, 1, 2]
    sample = metrics.registry.get_sample_value
    assert sample("mlops_serving_logged_rows_total", {"pipeline": "churn", "outcome": "dropped"}) == 1
    assert sample("mlops_serving_logged_rows_total", {"pipeline": "churn", "outcome": "committed"}) == 5
