"""Report pages over HTTP: the committed reports of a day are served by name, nothing else is."""

from __future__ import annotations

import pytest

from mlops.airflow.hooks.lake import S3Storage
from mlops.lake.report_pages import NotServed, read_report_file, report_url
from mlops.lake.storage import LocalStorage, Storage, commit_partition, partition_dir
from mlops.monitor.report_store import write_report

PIPELINES = {"churn"}


def publish(lake: Storage) -> None:
    reports = partition_dir("churn", "reports", "2026-01-09")
    commit_partition(lake, reports, {"data_docs.html": b"<html>v1</html>", "validation.json": b"{}"})
    commit_partition(lake, reports, {"data_docs.html": b"<html>v2</html>", "validation.json": b"{}"})
    write_report(lake, "churn", {"ds": "2026-01-09"}, "<html>drift</html>")
    commit_partition(lake, partition_dir("churn", "validated", "2026-01-09"), {"part.parquet": b"PAR1"})


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path) -> Storage:
    if request.param == "local":
        storage: Storage = LocalStorage(tmp_path / "lake")
    else:
        request.getfixturevalue("s3_client").create_bucket(Bucket="reports")
        storage = S3Storage("s3://reports/lake", "aws_default")
    publish(storage)
    return storage


def test_a_report_is_served_by_its_name_in_its_committed_version(lake: Storage) -> None:
    assert read_report_file(lake, PIPELINES, "churn", "ds=2026-01-09/data_docs.html") == (
        b"<html>v2</html>",
        "text/html; charset=utf-8",
    )
    body, media = read_report_file(lake, PIPELINES, "churn", "ds=2026-01-09/drift/drift.json")
    assert (body, media) == (b'{"ds": "2026-01-09"}', "application/json")
    assert (
        read_report_file(lake, PIPELINES, "churn", "ds=2026-01-09/drift/drift.html")[0]
        == b"<html>drift</html>"
    )


@pytest.mark.parametrize(
    ("pipeline", "path", "why"),
    [
        ("churn", "ds=2026-01-09/../../validated/ds=2026-01-09/part.parquet", "not a report path"),
        ("churn", "ds=2026-01-09/%2e%2e/secret.html", "not a report path"),
        ("churn", "ds=2026-01-09/_SUCCESS", "not a report path"),
        ("churn", "ds=2026-01-09/.hidden.html", "not a report path"),
        ("churn", "ds=2026-01-09//data_docs.html", "not a report path"),
        ("churn", "data_docs.html", "not a report path"),
        ("churn", "ds=2026-13-40/data_docs.html", "not a day partition"),
        ("churn", "day=2026-01-09/data_docs.html", "not a day partition"),
        ("churn", "ds=2026-01-09/part.parquet", "not a report file type"),
        ("churn", "ds=2026-01-10/data_docs.html", "no committed reports"),
        ("churn", "ds=2026-01-09/other.html", "not in the committed reports"),
        ("other", "ds=2026-01-09/data_docs.html", "no pipeline"),
        ("../churn", "ds=2026-01-09/data_docs.html", "no pipeline"),
    ],
)
def test_anything_but_a_committed_report_is_refused(
    lake: Storage, pipeline: str, path: str, why: str
) -> None:
    with pytest.raises(NotServed, match=why):
        read_report_file(lake, PIPELINES | {"../churn"}, pipeline, path)


def test_links_are_relative_to_the_ui_unless_a_public_address_is_set() -> None:
    assert (
        report_url("churn", "2026-01-09", "data_docs.html")
        == "/mlops/reports/churn/ds=2026-01-09/data_docs.html"
    )
    assert (
        report_url("churn", "2026-01-09", "drift/drift.html", "https://airflow.example.com/")
        == "https://airflow.example.com/mlops/reports/churn/ds=2026-01-09/drift/drift.html"
    )
