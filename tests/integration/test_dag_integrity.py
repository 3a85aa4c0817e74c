"""Every DAG loads, describes itself, and parses lean: no database, connection, network or heavy import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "train", "monitor", "score", "rollback", "replay_quarantine", "probe")


def probe(env_overrides: dict[str, str] | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), **(env_overrides or {})}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "parse_probe.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed() -> dict:
    return probe()


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(parsed: dict) -> None:
    assert parsed["errors"] == {}


def test_five_churn_dags(parsed: dict) -> None:
    assert set(parsed["dags"]) >= {f"churn_{stage}" for stage in STAGES}


def test_parsing_touches_no_database_connection_or_network(parsed: dict) -> None:
    assert parsed["queries"] == []
    assert parsed["connections"] == []
    assert parsed["network"] == []


def test_parsing_imports_no_heavy_module(parsed: dict) -> None:
    assert parsed["heavy"] == [], f"heavy modules imported by DAG files: {parsed['heavy']}"


@pytest.mark.parametrize("stage", STAGES)
def test_dag_describes_itself(dagbag, stage: str) -> None:
    dag = dagbag.dags[f"churn_{stage}"]
    assert dag.doc_md and len(dag.doc_md) > 100
    assert {"mlops", "churn", stage} <= set(dag.tags)
    for task in dag.tasks:
        assert task.owner == "mlops"
        assert task.retries >= 1


def test_schedules(dagbag) -> None:
    from airflow.sdk import CronDataIntervalTimetable, CronTriggerTimetable, PartitionedAssetTimetable

    assert isinstance(dagbag.dags["churn_ingest"].timetable, CronDataIntervalTimetable)
    assert dagbag.dags["churn_ingest"].catchup is True
    # The drift retrain is started by the monitor's retrain task, not by an asset schedule.
    assert type(dagbag.dags["churn_train"].timetable) is CronTriggerTimetable
    for stage in ("score", "monitor"):  # one run per validated day
        assert isinstance(dagbag.dags[f"churn_{stage}"].timetable, PartitionedAssetTimetable)
    assert type(dagbag.dags["churn_rollback"].timetable).__name__ == "NullTimetable"
    probe = dagbag.dags["churn_probe"]  # serving.probe_schedule, no catch-up, paused until a service runs
    assert type(probe.timetable) is CronTriggerTimetable and probe.timetable.expression == "*/5 * * * *"
    assert probe.catchup is False and probe.is_paused_upon_creation is True


def test_train_trigger_form_is_typed(dagbag) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = dagbag.dags["churn_train"].params
    assert params.get_param("device").schema["enum"] == ["auto", "cpu", "cuda"]
    assert params.get_param("max_depth").schema["type"] == "integer"
    assert params["force_promote"] is False
    with pytest.raises(ParamValidationError, match=r"^'tpu' is not one of \['auto', 'cpu', 'cuda'\]"):
        params.get_param("device").resolve("tpu")


def test_replay_quarantine_form_offers_the_pipelines_fixes(dagbag) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags["churn_replay_quarantine"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    params = dag.params
    assert params.get_param("fix").schema["enum"] == ["submitted", "plan_renamed", "charges_in_cents", "none"]
    assert params.get_param("partitions").resolve(["2026-01-05"]) == ["2026-01-05"]
    with pytest.raises(ParamValidationError):
        params.get_param("partitions").resolve([])
    with pytest.raises(ParamValidationError):
        params.get_param("fix").resolve("drop_everything")


def test_broken_pipeline_breaks_only_its_own_dags(tmp_path: Path) -> None:
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    bad = yaml.safe_load((include / "pipelines" / "churn.yaml").read_text())
    bad["name"] = "broken"
    bad["training"]["windw_days"] = 3
    (include / "pipelines" / "broken.yaml").write_text(yaml.safe_dump(bad))
    parsed = probe({"MLOPS_INCLUDE_DIR": str(include)})
    assert parsed["errors"] == {}
    assert {f"churn_{s}" for s in STAGES} <= set(parsed["dags"])
    assert {f"broken_{s}" for s in STAGES} <= set(parsed["dags"])

    from airflow.dag_processing.dagbag import DagBag

    os.environ["MLOPS_INCLUDE_DIR"] = str(include)
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        del os.environ["MLOPS_INCLUDE_DIR"]
    broken = bag.dags["broken_train"]
    assert "config-error" in broken.tags
    assert "training.windw_days" in broken.doc_md and "broken.yaml" in broken.doc_md
    assert [t.task_id for t in broken.tasks] == ["config_error"]
    assert "config-error" not in bag.dags["churn_train"].tags


def test_a_window_above_the_form_cap_is_a_config_error_of_its_own_pipeline(tmp_path: Path) -> None:
    """``training.window_days: 730`` once passed the config and broke the train form's Param (365), and
    with it every pipeline's train DAG; now the config model refuses a window over a year of
    partitions (the form's limit), naming file, key and limit, in either unit."""
    from airflow.dag_processing.dagbag import DagBag

    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    wide = yaml.safe_load((include / "pipelines" / "churn.yaml").read_text())
    wide["name"], wide["training"]["window"] = "wide", 730
    (include / "pipelines" / "wide.yaml").write_text(yaml.safe_dump(wide))
    os.environ["MLOPS_INCLUDE_DIR"] = str(include)
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        del os.environ["MLOPS_INCLUDE_DIR"]
    assert bag.import_errors == {}
    for stage in STAGES:
        broken = bag.dags[f"wide_{stage}"]
        assert "config-error" in broken.tags
        assert (
            "wide.yaml" in broken.doc_md
            and "training.window" in broken.doc_md
            and "365 day partitions" in broken.doc_md
        )
        assert "config-error" not in bag.dags[f"churn_{stage}"].tags
    assert bag.dags["churn_train"].params["window"] == 28


def test_training_queue_routes_the_trials(tmp_path: Path) -> None:
    """``training.queue`` sends the trial tasks (only those) to that Celery queue, e.g. a GPU worker."""
    from airflow.dag_processing.dagbag import DagBag

    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    gpu = yaml.safe_load((include / "pipelines" / "churn.yaml").read_text())
    gpu["name"], gpu["training"]["queue"] = "churngpu", "gpu"
    (include / "pipelines" / "churngpu.yaml").write_text(yaml.safe_dump(gpu))
    os.environ["MLOPS_INCLUDE_DIR"] = str(include)
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        del os.environ["MLOPS_INCLUDE_DIR"]
    queues = {t.task_id: t.queue for t in bag.dags["churngpu_train"].tasks}
    default = bag.dags["churn_train"].get_task("train_trial").queue
    assert queues.pop("train_trial") == "gpu" and default != "gpu"
    assert set(queues.values()) == {default}


@pytest.mark.parametrize("stage", STAGES)
def test_every_param_explains_itself_and_the_defaults_are_valid(dagbag, stage: str) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags[f"churn_{stage}"]
    for name in dag.params:
        param = dag.params.get_param(name)
        assert param.schema.get("title") and param.description, (
            f"{dag.dag_id}.{name} needs a title and a description"
        )
    assert "**From the UI.**" in dag.doc_md and "**Output.**" in dag.doc_md
    if stage == "rollback":
        with pytest.raises(ParamValidationError, match=r"^Invalid input for param reason: '' is too short"):
            dag.params.validate()  # a rollback needs a reason
    else:
        dag.params.validate()  # the trigger form opens with Trigger enabled


@pytest.mark.parametrize(
    ("file_name", "change", "broken_id"),
    [
        pytest.param("my pipeline.yaml", {}, "my_pipeline", id="file-name-not-a-dag-id"),
        pytest.param(
            "wide.yaml", {"name": "wide", "training": {"window": 730}}, "wide", id="window-over-a-year"
        ),
    ],
)
def test_a_pipeline_that_cannot_build_breaks_only_its_own_dags(
    tmp_path: Path, file_name: str, change: dict, broken_id: str
) -> None:
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    bad = yaml.safe_load((include / "pipelines" / "churn.yaml").read_text())
    bad["name"] = change.get("name", bad["name"])
    bad["training"].update(change.get("training", {}))
    (include / "pipelines" / file_name).write_text(yaml.safe_dump(bad))
    parsed = probe({"MLOPS_INCLUDE_DIR": str(include)})
    assert parsed["errors"] == {}
    assert {f"churn_{s}" for s in STAGES} <= set(parsed["dags"]), "the other pipeline keeps its DAGs"
    assert f"{broken_id}_ingest" in parsed["dags"]


def test_every_task_has_an_execution_timeout(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert task.execution_timeout is not None, f"{dag_id}.{task.task_id} could hang forever"
    trial = dagbag.dags["churn_train"].get_task("train_trial")
    assert trial.execution_timeout > dagbag.dags["churn_train"].get_task("prepare").execution_timeout


def test_any_broken_yaml_breaks_only_its_own_dags(tmp_path: Path) -> None:
    """An invalid date, a list as a key, a list or a scalar document, bad UTF-8, a folder named like a
    file, a file name too long for a DAG tag: each once escaped the loader or the error DAG and took
    every pipeline's DAGs down. Each is now a paused ``config-error`` DAG of its own."""
    from airflow.dag_processing.dagbag import DagBag

    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include)
    folder = include / "pipelines"
    churn = (folder / "churn.yaml").read_text()
    long_name = "x" * 120
    broken = {
        "bad_date": churn.replace("name: churn", "name: bad_date").replace("2026-01-01", "2026-02-30"),
        "list_key": "name: list_key\n? [a, b]\n: 1\n",
        "a_list": "- a\n- b\n",
        "a_scalar": "42\n",
        "bad_utf8": b"name: bad_utf8\ndescription: caf\xe9\n",
        long_name: "name: [unclosed ``` fence\n",
    }
    for name, text in broken.items():
        (folder / f"{name}.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    (folder / "a_folder.yaml").mkdir()
    os.environ["MLOPS_INCLUDE_DIR"] = str(include)
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        del os.environ["MLOPS_INCLUDE_DIR"]
    assert bag.import_errors == {}
    for stage in STAGES:
        assert "config-error" not in bag.dags[f"churn_{stage}"].tags
        for name in [*broken, "a_folder"]:
            dag = bag.dags[f"{name}_{stage}"]
            assert "config-error" in dag.tags and [t.task_id for t in dag.tasks] == ["config_error"]
            assert f"{name}.yaml" in dag.doc_md
    assert "'2026-02-30' is not a valid date" in bag.dags["bad_date_train"].doc_md
    assert "a key must be a single value" in bag.dags["list_key_train"].doc_md
    assert "got list" in bag.dags["a_list_train"].doc_md and "got int" in bag.dags["a_scalar_train"].doc_md
    assert "not UTF-8 text" in bag.dags["bad_utf8_train"].doc_md
    assert "cannot be read" in bag.dags["a_folder_train"].doc_md
    assert "\n````\n" in bag.dags[f"{long_name}_train"].doc_md  # a fence longer than the error's own
