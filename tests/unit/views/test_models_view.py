"""The Models view's data and pages, from a real lake index and signed registry records in memory.

The index is what the stages write (``mlops.index.records``) on local disk; versions carry the tags
training and the gate set; champion moves are read back through their signatures (``moves_of``).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.unit.registry.test_champion import KEY, Versions, move

from mlops.config.pipeline import Pipeline, load_pipeline
from mlops.index.records import (
    IndexReader,
    ingest_record,
    monitor_record,
    reason_counts,
    record_dir,
    withdraw_records,
    write_record,
)
from mlops.lake.storage import LocalStorage
from mlops.registry.champion import moves_of
from mlops.tools.index_scenario import write_index
from mlops.views.models import STALE_AFTER, detail, overview, version_points
from mlops.views.page import overview_page, pipeline_page

INCLUDE = Path(__file__).resolve().parents[3] / "include"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return load_pipeline(INCLUDE / "pipelines" / "churn.yaml")


class CountingStorage(LocalStorage):
    """Local disk that counts the files it reads."""

    reads = 0

    def read_bytes(self, path: str) -> bytes:
        self.reads += 1
        return super().read_bytes(path)


def passed(rows: int = 100, quarantined: int = 0) -> dict:
    return ingest_record(
        passed=True,
        rows=rows,
        validated=rows - quarantined,
        quarantined=quarantined,
        reasons={"plan in set": quarantined} if quarantined else {},
        failures=[],
        message="passed",
    )


def rejected(message: str) -> dict:
    return ingest_record(
        passed=False,
        rows=10,
        validated=0,
        quarantined=0,
        reasons={},
        failures=[{"expectation": "row_count", "message": message}],
        message=message,
    )


def drift(status: str, psi: dict[str, float], fire: bool = False) -> dict:
    return monitor_record(
        {
            "champion_version": "1",
            "n_rows": 100,
            "verdict": {"status": status},
            "features": {name: {"psi": value} for name, value in psi.items()},
            "prediction": {"psi": 0.01},
            "performance": {"auc_drop": None},
            "thresholds": {"psi_threshold": 0.2, "prediction_psi_threshold": 0.1, "auc_drop_threshold": 0.03},
            "trigger": {"fire": fire, "reason": "drift" if fire else ""},
        }
    )


def test_the_reader_rereads_only_the_records_that_changed(tmp_path: Path) -> None:
    lake = CountingStorage(tmp_path)
    keys = write_index(lake, "churn", start="2026-01-01", days=12, features=3)
    reader = IndexReader(lake)

    lake.reads = 0
    first = reader.read("churn")
    assert list(first) == keys and set(first[keys[0]]) == {"ingest", "monitor", "score"}
    cold = lake.reads
    assert cold == sum(len(stages) for stages in first.values())  # one manifest read per record

    assert reader.read("churn") == first and lake.reads == cold  # a settled index reads nothing

    write_record(lake, "churn", keys[3], "ingest", rejected("the export was cut"))
    withdraw_records(lake, "churn", keys[3], ("monitor", "score"))
    before = lake.reads
    again = reader.read("churn")
    assert lake.reads == before + 1  # the rewritten record only
    assert set(again[keys[3]]) == {"ingest"} and again[keys[3]]["ingest"]["message"] == "the export was cut"
    assert IndexReader(lake).read("churn") == again  # the cache says what a fresh read says


def test_an_uncommitted_record_is_not_read(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path)
    write_record(lake, "churn", "2026-01-01", "score", {"rows": 5, "version": "1"})
    # A writer killed before its commit leaves files without a manifest: nothing to read.
    (tmp_path / record_dir("churn", "2026-01-02", "score")).mkdir(parents=True)
    (tmp_path / record_dir("churn", "2026-01-02", "score") / "stray-0123456789ab.json").write_text("{}")
    assert list(IndexReader(lake).read("churn")) == ["2026-01-01"]


def test_reasons_are_counted_per_check_and_capped() -> None:
    assert reason_counts(["a; b", "a", "b; c", "a"]) == {"a": 3, "b": 2, "c": 1}
    many = reason_counts([f"check {i}" for i in range(30)])
    assert len(many) == 21 and many["(other checks)"] == 10


def registry(*moves_and_tags: tuple) -> tuple[list, list]:
    """Versions with signed moves and extra tags, read back as ``moves_of`` reads them."""
    versions = Versions(*[m for m, _ in moves_and_tags if m is not None])
    for i, (_, tags) in enumerate(moves_and_tags, start=1):
        found = versions.versions.setdefault(str(i), SimpleNamespace(version=str(i), tags={}))
        found.tags.update(tags)
    listed = list(versions.versions.values())
    return listed, moves_of(listed, "churn", KEY)


def test_the_timeline_marks_only_signed_moves_as_promotions(pipeline: Pipeline) -> None:
    versions, moves = registry(
        (
            move("1", None, "2026-01-05"),
            {"window.as_of": "2026-01-05", "gate.auc": "0.81", "trigger": "schedule"},
        ),
        (None, {"window.as_of": "2026-01-12", "gate.auc": "0.79", "gate.outcome": "refused"}),
        # A promotion record copied by hand from version 1: its signature is v1's, not v3's.
        (None, {"window.as_of": "2026-01-19", "valid.auc": "0.9"}),
    )
    versions[2].tags.update({k: v for k, v in versions[0].tags.items() if k.startswith("promotion.")})
    moves = moves_of(versions, "churn", KEY)

    points = version_points(versions, moves, "auc")

    assert [p.version for p in points] == ["1", "2", "3"]
    assert [bool(p.moves) for p in points] == [True, False, False]
    assert (points[1].gate, points[1].metric, points[1].metric_source) == ("refused", 0.79, "holdout")
    assert (points[2].metric, points[2].metric_source) == (0.9, "validation")


def test_the_overview_counts_on_the_logical_clock_and_states_its_health(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    lake = LocalStorage(tmp_path)
    days = [f"2026-01-{d:02d}" for d in range(1, 11)]
    for ds in days:
        write_record(lake, "churn", ds, "ingest", passed(1000, 10))
    versions, moves = registry(
        (
            move("1", None, "2026-01-03"),
            {"window.as_of": "2026-01-03", "gate.auc": "0.8", "trigger": "schedule"},
        ),
        (move("2", "1", "2026-01-20"), {"window.as_of": "2026-01-20", "trigger": "drift"}),  # after the index
    )
    points = version_points(versions, moves, "auc")

    row = overview(pipeline, IndexReader(lake).read("churn"), points, moves)

    # Version 2's move is effective after the newest partition: as of 2026-01-10, v1 holds.
    assert (row["champion"], row["promoted_on"], row["promoted_by"]) == ("1", "2026-01-03", "schedule")
    assert row["latest_day"] == "2026-01-10" and row["latest_quarantine_rate"] == pytest.approx(0.01)
    assert row["health"] == "green", row["health_reasons"]

    write_record(lake, "churn", "2026-01-10", "monitor", drift("drift", {"tenure_months": 0.4}))
    assert overview(pipeline, IndexReader(lake).read("churn"), points, moves)["health"] == "amber"

    write_record(lake, "churn", "2026-01-11", "ingest", rejected("row count 10 < 500"))
    red = overview(pipeline, IndexReader(lake).read("churn"), points, moves)
    assert red["health"] == "red" and any("row count 10 < 500" in r for r in red["health_reasons"])

    assert overview(pipeline, IndexReader(lake).read("churn"), [], [])["champion"] is None


def test_a_champion_trained_long_ago_turns_amber(tmp_path: Path, pipeline: Pipeline) -> None:
    lake = LocalStorage(tmp_path)
    keys = write_index(lake, "churn", start="2026-01-01", days=STALE_AFTER + 5, features=2)
    versions, moves = registry((move("1", None, keys[0]), {"window.as_of": keys[0]}))
    index = IndexReader(lake).read("churn")
    for ds in index:  # no drift: only the age of the champion speaks
        index[ds].pop("monitor", None)
    row = overview(pipeline, index, version_points(versions, moves, "auc"), moves)
    assert row["health"] == "amber" and "partitions before the newest" in " ".join(row["health_reasons"])


def test_the_pipeline_page_draws_exactly_the_data_and_escapes_every_value(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    lake = LocalStorage(tmp_path)
    keys = write_index(lake, "churn", start="2026-01-01", days=60, features=4)
    hostile_day = keys[5]
    write_record(
        lake, "churn", hostile_day, "monitor", drift("drift", {HOSTILE: 0.5, "plan": 0.01}, fire=True)
    )
    write_record(lake, "churn", keys[6], "ingest", rejected(HOSTILE))
    withdraw_records(lake, "churn", keys[6], ("monitor", "score"))
    versions, moves = registry(
        (move("1", None, keys[10]), {"window.as_of": keys[10], "gate.auc": "0.8", "gate.decision": HOSTILE}),
        (None, {"window.as_of": keys[30], "gate.auc": "0.7", "gate.outcome": "refused"}),
    )
    versions[0].tags.update(
        {
            "approval.promotion.decision": "approved",
            "approval.promotion.by": HOSTILE,
            "approval.promotion.comment": HOSTILE,
            "approval.promotion.at": "2026-01-11T00:00:00",
        }
    )
    index = IndexReader(lake).read("churn")
    data = detail(
        pipeline,
        index,
        version_points(versions, moves, "auc"),
        moves,
        pending=[{"subject": HOSTILE, "run_id": "manual__1", "created_at": "2026-01-12T00:00:00"}],
    )
    html = pipeline_page(data, mlflow_ui="http://127.0.0.1:5000")

    assert "<script" not in html and "<img" not in html  # as text, never as markup
    assert html.count("&lt;script&gt;") >= 4  # the feature name, the rejection, the gate, the review
    # The timeline: one mark per registered version, promoted and refused told apart, linked to MLflow.
    marks = re.findall(
        r'data-version="(\d+)" data-ds="([^"]+)" data-metric="([^"]+)" data-state="(\w+)"', html
    )
    assert marks == [("1", keys[10], "0.8", "promoted"), ("2", keys[30], "0.7", "refused")]
    assert 'href="http://127.0.0.1:5000/#/models/churn/versions/2"' in html
    # Data health: a bar per ingested day linking to its Data Docs, the rejected day red.
    bars = re.findall(
        r'<g data-ds="([^"]+)" data-rows="(\d+)" data-quarantined="(\d+)" data-passed="(\w+)">', html
    )
    assert [b[0] for b in bars] == [d for d in keys if "ingest" in index[d]]
    assert all(int(b[1]) == index[b[0]]["ingest"]["rows"] for b in bars)
    assert dict((b[0], b[3]) for b in bars)[keys[6]] == "false"
    assert f'href="/mlops/reports/churn/ds={keys[0]}/data_docs.html"' in html
    # Drift: a column per monitored day, a cell per feature, linked to the drift report; the fired day ticked.
    heat = html[html.index('data-chart="heatmap"') :]
    heat = heat[: heat.index("</svg>")]
    monitored = [d for d in keys if "monitor" in index[d]]
    assert heat.count("<g data-ds=") == len(monitored)
    assert heat.count("data-psi=") == len(monitored) * len(data["features"])
    assert f'href="/mlops/reports/churn/ds={hostile_day}/drift/drift.html"' in heat
    assert heat.count('data-fired="true"') == sum(1 for d in monitored if index[d]["monitor"]["fired"])
    # Scoring and approvals.
    assert len(re.findall(r'data-rows="\d+" data-version="\d+"', html)) == sum(
        1 for d in keys if "score" in index[d]
    )
    assert 'href="/required_actions"' in html and 'data-pending="manual__1"' in html
    assert 'data-decision="1"' in html
    # Quarantine reasons over the partitions: each check's rows sum what the index records.
    shown = dict(re.findall(r'<tr data-reason="([^"]+)" data-rows="(\d+)">', html))
    expected: dict[str, int] = {}
    for ds in keys:
        for reason, rows in index[ds]["ingest"].get("reasons", {}).items():
            expected[reason] = expected.get(reason, 0) + rows
    assert {k: int(v) for k, v in shown.items()} == expected and expected
    assert 'data-chart="uptime"' not in html  # no probe recorded: the section says how to start one


def test_the_serving_section_draws_the_probes_availability_and_latency(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    lake = LocalStorage(tmp_path)
    keys = write_index(lake, "churn", start="2026-01-01", days=4, features=2)
    probes = {keys[1]: (0.75, 30.0), keys[3]: (1.0, 12.5)}
    for ds, (availability, p95) in probes.items():
        write_record(
            lake,
            "churn",
            ds,
            "probe",
            {
                "probes": 4,
                "up": round(4 * availability),
                "availability": availability,
                "p50_ms": 9.0,
                "p95_ms": p95,
            },
        )
    index = IndexReader(lake).read("churn")
    html = pipeline_page(detail(pipeline, index, [], []), mlflow_ui="")
    uptime = html[html.index('data-chart="uptime"') :]
    uptime = uptime[: uptime.index("</svg>")]
    points = re.findall(r'data-series="availability" data-ds="([^"]+)" data-value="([^"]+)"', uptime)
    assert [(d, float(v)) for d, v in points] == [(d, a) for d, (a, _) in probes.items()]
    latency = html[html.index('data-chart="latency"') :]
    p95 = re.findall(
        r'data-series="p95 ms" data-ds="([^"]+)" data-value="([^"]+)"', latency[: latency.index("</svg>")]
    )
    assert [(d, float(v)) for d, v in p95] == [(d, ms) for d, (_, ms) in probes.items()]
    assert overview(pipeline, index, [], [])["uptime"] == 1.0


def test_the_overview_page_links_each_pipeline_and_states_the_rules(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    lake = LocalStorage(tmp_path)
    write_index(lake, "churn", start="2026-01-01", days=5, features=2)
    row = overview(pipeline, IndexReader(lake).read("churn"), [], [], registry_error=HOSTILE)
    html = overview_page([row], problems=[HOSTILE])
    assert 'href="pipelines/churn"' in html and 'data-health="red"' in html
    assert "<script" not in html and 'data-rules="health"' in html


def test_a_statistic_that_is_not_a_number_is_recorded_as_no_figure() -> None:
    """The JSON API answers with strict JSON: a NaN PSI (a constant feature) must not reach it."""
    import json

    record = drift("no_drift", {"constant": float("nan"), "plan": 0.02})
    assert record["psi"] == {"constant": None, "plan": 0.02}
    json.dumps(record, allow_nan=False)
