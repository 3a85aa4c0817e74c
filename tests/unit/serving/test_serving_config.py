"""The pipeline YAML's ``serving:`` section: defaults for every existing file, limits named."""

from __future__ import annotations

import pytest

from mlops.config.pipeline import ConfigError, Pipeline, parse_pipeline


def with_serving(pipeline: Pipeline, serving: dict) -> Pipeline:
    data = pipeline.model_dump(mode="json", exclude_unset=True)
    return parse_pipeline({**data, "serving": serving}, source="pipelines/churn.yaml")


def test_a_yaml_without_the_section_gets_the_contract_defaults(pipeline: Pipeline) -> None:
    serving = pipeline.serving
    assert (serving.sample_rate, serving.flush_rows, serving.flush_seconds, serving.poll_seconds) == (
        1.0,
        1000,
        10,
        5,
    )
    assert serving.url is None and serving.probe_schedule == "*/5 * * * *"
    assert (serving.slo.p95_ms, serving.slo.availability, serving.slo.window_minutes) == (250, 0.99, 30)


def test_settings_are_read(pipeline: Pipeline) -> None:
    serving = with_serving(
        pipeline, {"sample_rate": 0.1, "url": "http://serving:5001", "slo": {"p95_ms": 50}}
    ).serving
    assert serving.sample_rate == 0.1 and serving.url == "http://serving:5001" and serving.slo.p95_ms == 50


@pytest.mark.parametrize(
    ("serving", "key"),
    [
        pytest.param({"sample_rate": 1.5}, "serving.sample_rate", id="rate-above-1"),
        pytest.param({"flush_rows": 0}, "serving.flush_rows", id="no-rows"),
        pytest.param({"poll_seconds": 0}, "serving.poll_seconds", id="no-poll"),
        pytest.param({"url": "serving:5001"}, "serving.url", id="url-without-scheme"),
        pytest.param({"probe_schedule": "every 5 minutes"}, "serving.probe_schedule", id="bad-cron"),
        pytest.param({"slo": {"availability": 2}}, "serving.slo.availability", id="availability"),
        pytest.param({"sample_rte": 0.5}, "serving.sample_rte", id="typo"),
    ],
)
def test_a_bad_setting_is_refused_naming_its_key(pipeline: Pipeline, serving: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        with_serving(pipeline, serving)
