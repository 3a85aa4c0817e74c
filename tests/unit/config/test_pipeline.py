"""Pipeline YAML: the demo loads, and each class of bad file names the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mlops.config.pipeline import ConfigError, Pipeline, discover, load_pipeline

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "include" / "pipelines" / "churn.yaml"


def churn_dict() -> dict:
    return yaml.safe_load(CHURN.read_text())


def write(tmp_path: Path, data: object, name: str = "churn") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_demo_pipeline_loads() -> None:
    pipeline = load_pipeline(CHURN)
    assert isinstance(pipeline, Pipeline)
    assert pipeline.name == "churn"
    assert pipeline.key == "customer_id" and pipeline.target == "churned"
    assert "plan" in pipeline.categorical_features and "tenure_months" in pipeline.numeric_features
    assert pipeline.start_date.isoformat() == "2026-01-01"


def _set(data: dict, dotted: str, value: object) -> dict:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[leaf] = value
    return data


def _drop(data: dict, dotted: str) -> dict:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    del node[leaf]
    return data


BAD = [
    pytest.param(lambda d: _set(d, "trainnig", {}), "trainnig", "unknown key", id="unknown-top-level-key"),
    pytest.param(
        lambda d: _set(d, "training.windw_days", 3),
        "training.windw_days",
        "unknown key",
        id="unknown-nested-key",
    ),
    pytest.param(
        lambda d: _set(d, "training.window_days", "four weeks"),
        "training.window_days",
        "integer",
        id="wrong-type",
    ),
    pytest.param(lambda d: _drop(d, "target"), "target", "required key is missing", id="missing-field"),
    pytest.param(
        lambda d: _set(d, "schedules.train", "0 25 * * *"), "schedules.train", "cron", id="bad-cron"
    ),
    pytest.param(lambda d: _set(d, "start_date", "2026-13-01"), "start_date", "date", id="bad-date"),
    pytest.param(
        lambda d: _set(d, "columns.plan.values", None), "columns.plan", "values", id="category-without-values"
    ),
    pytest.param(
        lambda d: _set(d, "features", [*d["features"], "nope"]), "nope", "features", id="unknown-feature"
    ),
    pytest.param(
        lambda d: _set(d, "validation.max_quarantine_fraction", 1.5),
        "max_quarantine_fraction",
        "less than",
        id="out-of-range",
    ),
    pytest.param(
        lambda d: _set(d, "validation.suite", "../../outside.json"),
        "validation.suite",
        "inside include/",
        id="suite-outside-include",
    ),
    pytest.param(
        lambda d: _set(d, "features", [*d["features"], d["features"][0]]),
        "features",
        "more than once",
        id="feature-twice",
    ),
    pytest.param(
        lambda d: _set(d, "features", [*d["features"], "event_ts"]),
        "event_ts",
        "cannot be trained on",
        id="timestamp-feature",
    ),
    pytest.param(
        lambda d: _set(d, "features", [*d["features"], "churned"]),
        "features",
        "target",
        id="target-as-feature",
    ),
    pytest.param(
        lambda d: _set(d, "drift.persistence", {"window": 2, "required": 3}),
        "persistence",
        "required",
        id="inconsistent",
    ),
]


@pytest.mark.parametrize(("mutate", "key", "phrase"), BAD)
def test_bad_config_names_file_and_key(tmp_path: Path, mutate, key: str, phrase: str) -> None:
    path = write(tmp_path, mutate(churn_dict()))
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert phrase in message


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        pytest.param("name: [unclosed", "not valid YAML", id="not-yaml"),
        pytest.param("- a\n- b\n", "mapping", id="not-a-mapping"),
        pytest.param("", "mapping", id="empty-file"),
        pytest.param(
            "name: churn\nvalidation: {a: 1}\nvalidation: {b: 2}\n", "appears twice", id="duplicate-key"
        ),
    ],
)
def test_unreadable_config(tmp_path: Path, text: str, phrase: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=phrase) as info:
        load_pipeline(path)
    assert str(path) in str(info.value)


def test_name_must_match_file(tmp_path: Path) -> None:
    path = write(tmp_path, churn_dict(), name="other")
    with pytest.raises(ConfigError, match="must match the file name"):
        load_pipeline(path)


def test_discover_isolates_broken_files(tmp_path: Path) -> None:
    write(tmp_path, churn_dict())
    broken = _set(churn_dict(), "name", "broken")
    broken["schedules"]["ingest"] = "every day"
    write(tmp_path, broken, name="broken")
    found = discover(tmp_path)
    assert isinstance(found["churn"], Pipeline)
    assert isinstance(found["broken"], ConfigError)
    assert "schedules.ingest" in str(found["broken"])


# One broken file among good ones: each of these once escaped the loader as a ValueError or a
# TypeError, and with it every DAG of every pipeline disappeared. Each is its own config error now.
def _churn_text(name: str) -> str:
    return CHURN.read_text().replace("name: churn\n", f"name: {name}\n")


BROKEN = {
    "bad_date": (
        _churn_text("bad_date").replace("start_date: 2026-01-01", "start_date: 2026-02-30"),
        "not valid YAML",
    ),
    "list_key": (_churn_text("list_key") + "? [a, b]\n: 1\n", "not valid YAML"),
    "nested_list_key": (
        _churn_text("nested_list_key").replace("owner: mlops", "owner: {? [a, b] : 1}"),
        "not valid YAML",
    ),
    "a_list": ("- name: a_list\n- b\n", "expected a mapping of keys at the top level, got list"),
    "a_scalar": ("just text\n", "expected a mapping of keys at the top level, got str"),
    "bad_utf8": (b"name: bad_utf8\ndescription: caf\xe9\n", "not UTF-8 text"),
    "null_key": (_churn_text("null_key") + "~: 1\n", "None: Keys should be strings"),
}


def _write_broken(folder: Path) -> None:
    write(folder, churn_dict())
    for name, (text, _) in BROKEN.items():
        path = folder / f"{name}.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    (folder / "a_folder.yaml").mkdir()  # cannot be read as a file


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_any_broken_file_is_a_config_error_naming_it(tmp_path: Path, name: str) -> None:
    _write_broken(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(BROKEN[name][1])) as info:
        load_pipeline(tmp_path / f"{name}.yaml")
    assert str(info.value).startswith(str(tmp_path / f"{name}.yaml"))


def test_discover_keeps_the_good_pipeline_whatever_the_others_hold(tmp_path: Path) -> None:
    _write_broken(tmp_path)
    found = discover(tmp_path)
    assert sorted(found) == sorted(["churn", "a_folder", *BROKEN])
    assert isinstance(found["churn"], Pipeline)
    for name, (_, phrase) in BROKEN.items():
        assert isinstance(found[name], ConfigError) and phrase in str(found[name]), name
    assert isinstance(found["a_folder"], ConfigError) and "cannot be read" in str(found["a_folder"])
    assert "2026-02-30" in str(found["bad_date"]) and "line 6" in str(found["bad_date"])
