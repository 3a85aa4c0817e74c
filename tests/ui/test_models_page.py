"""The Models view in a real browser: the navigation entry, the overview and the pipeline page, each
chart's data checked against the registry and the lake the stack's runs wrote.

Runs after ``test_flows`` on the same stack (its forms promoted and rolled back a champion): the
view must show the registry as it is now. The plugin keeps the registry's answer 15 s, so the page
is reloaded until it agrees or 40 s pass.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from mlflow import MlflowClient
from playwright.sync_api import expect
from tests.embedded_stack import EmbeddedStack

from mlops.index.records import IndexReader
from mlops.lake.storage import LocalStorage, is_committed, partition_dir, read_manifest
from mlops.monitor.report_store import read_report

PAGE = "/mlops-models/pipelines/churn"


def registry(stack: EmbeddedStack) -> tuple[list[str], str]:
    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    versions = sorted((v.version for v in client.search_model_versions("name = 'churn'")), key=int)
    return versions, client.get_model_version_by_alias("churn", "champion").version


def settled(page: Any, url: str, agrees: Any, timeout_s: float = 40) -> str:
    """The page's HTML once ``agrees(html)`` holds (the plugin's registry cache has expired)."""
    deadline = time.monotonic() + timeout_s
    while True:
        page.goto(url)
        html = page.content()
        if agrees(html) or time.monotonic() > deadline:
            return html
        time.sleep(3)


def test_models_opens_from_the_navigation_and_lists_churn_with_its_champion(
    page: Any, stack: EmbeddedStack
) -> None:
    _, champion = registry(stack)
    page.goto("/")
    page.get_by_role("link", name="Models").or_(page.get_by_role("button", name="Models")).first.click()
    page.wait_for_url(re.compile(r"/plugin/models$"))
    frame = page.frame_locator("iframe[title=Models]")
    row = frame.locator("tr[data-pipeline=churn]")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-health", re.compile(r"^(green|amber|red)$"))
    overview = settled(page, "/mlops-models/", lambda html: f'data-champion="{champion}"' in html)
    assert f'data-pipeline="churn" data-champion="{champion}"' in overview
    page.get_by_role("link", name="churn").click()
    page.wait_for_url(re.compile(r"/mlops-models/pipelines/churn$"))
    expect(page.get_by_role("heading", name="Champion timeline")).to_be_visible()


def test_each_chart_shows_exactly_what_the_registry_and_the_lake_hold(
    page: Any, stack: EmbeddedStack
) -> None:
    versions, champion = registry(stack)
    lake = LocalStorage(stack.lake_root)

    html = settled(
        page,
        PAGE,
        lambda html: (
            re.findall(r'<g data-version="(\d+)"', html) == versions and f'data-champion="{champion}"' in html
        ),
    )

    # The timeline: every registered version, no other, and the champion the alias names.
    assert re.findall(r'<g data-version="(\d+)"', html) == versions
    assert f'<b data-champion="{champion}">' in html
    index = IndexReader(lake).read("churn")
    days = sorted(index)
    # Data health: one bar per gated day, its counts those of the validation the lake holds; a
    # rejected day (the corrupt one) red, with no validated partition.
    bars = re.findall(
        r'<g data-ds="([^"]+)" data-rows="(\d+)" data-quarantined="(\d+)" data-passed="(\w+)">', html
    )
    assert [b[0] for b in bars] == [d for d in days if "ingest" in index[d]] and bars
    for ds, rows, quarantined, passed in bars:
        validated_dir = partition_dir("churn", "validated", ds)
        if passed == "true":
            counts = read_manifest(lake, validated_dir).extra
            assert (int(rows), int(quarantined)) == (counts["rows"], counts["quarantined"]), ds
        else:
            assert not is_committed(lake, validated_dir), ds
    assert "false" in [b[3] for b in bars], "the scenario's corrupt day is rejected"
    # Drift: a heatmap column per committed drift report, each cell its report's PSI.
    heat = html[html.index('data-chart="heatmap"') :]
    heat = heat[: heat.index("</svg>")]
    columns = re.findall(r'<g data-ds="([^"]+)">', heat)
    assert columns and all(read_report(lake, "churn", ds) is not None for ds in columns)
    assert columns == [d for d in days if read_report(lake, "churn", d) is not None]
    first = read_report(lake, "churn", columns[0])
    shown = re.findall(
        r'data-psi="([^"]*)"', heat[: heat.index("</g>", heat.index(f'data-ds="{columns[0]}"'))]
    )
    features = sorted({name for ds in columns for name in index[ds]["monitor"]["psi"]})
    expected = [f"{first['features'][f]['psi']:.4g}" if f in first["features"] else "" for f in features]
    assert shown == expected
    # Scoring: a bar per predictions partition, with its rows and the version that scored it.
    scored = re.findall(r'<g data-ds="([^"]+)" data-rows="(\d+)" data-version="(\d+)">', html)
    assert scored
    for ds, rows, version in scored:
        extra = read_manifest(lake, partition_dir("churn", "predictions", ds)).extra
        assert (int(rows), version) == (extra["rows"], extra["model_version"]), ds


def test_each_day_links_to_its_reports_and_they_open(page: Any, stack: EmbeddedStack) -> None:
    page.goto(PAGE)
    docs = page.locator("a[href*='/data_docs.html']").first
    href = docs.get_attribute("href")
    docs.click()
    page.wait_for_url(re.compile(re.escape(href) + "$"))
    expect(page.get_by_text("Expectation").first).to_be_visible()


def test_the_json_api_says_what_the_page_shows(page: Any, stack: EmbeddedStack) -> None:
    versions, _ = registry(stack)
    listing = page.request.get("/mlops-models/api/pipelines")
    assert listing.status == 200
    assert [p["pipeline"] for p in listing.json()["pipelines"]] == ["churn"]
    detail = page.request.get("/mlops-models/api/pipelines/churn").json()
    assert [v["version"] for v in detail["versions"]] == versions
    assert page.request.get("/mlops-models/api/pipelines/no_such").status == 404
    assert json.dumps(detail)  # plain JSON all the way down


def test_the_view_is_behind_the_login(stack: EmbeddedStack, browser: Any) -> None:
    anonymous = browser.new_context(base_url=stack.airflow_url)
    try:
        for path in (
            "/mlops-models/",
            PAGE,
            "/mlops-models/api/pipelines",
            "/mlops-models/api/pipelines/churn",
        ):
            assert anonymous.request.get(path).status in (401, 403), path
    finally:
        anonymous.close()
