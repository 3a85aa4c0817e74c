"""docker-compose.yaml, read as YAML: what `docker-compose config` (make compose-check) cannot see.

Compose validates the file's shape. These tests check that it fits this project: the services and their
health checks, the GPU queue, secrets only from .env, the environment the code reads (plugins/mlops/
settings.py and the two connections) pointing at the services that provide it, and the Dockerfile's
base image matching the pins. No Docker needed.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from mlops.config.pipeline import Training

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
COMMON: dict[str, Any] = COMPOSE["x-airflow-common"]
AIRFLOW_SERVICES = sorted(name for name in SERVICES if name.startswith("airflow-"))

EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "minio",
    "minio-init",
    "mlflow",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
    "serving",
    "prometheus",
}

# ${NAME}, ${NAME:?error}, ${NAME:-default}, ... or $NAME, as Compose interpolates them ($$ is a literal $).
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_]\w*)(?P<op>:?[-?+])?|(?P<bare>[A-Za-z_]\w*))")
# A whole value that is a reference to a required variable: no default, which would be a literal.
_REFERENCE = re.compile(r"^\$\{(?P<name>[A-Za-z_]\w*)(?::?\?[^}]*)?\}$")
_SECRET_KEY = re.compile(r"PASSWORD|SECRET|KEY")


def strings(node: Any) -> Iterator[str]:
    """Every string in a parsed YAML tree, keys included (anchors are already expanded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(arg) for arg in cmd]


def option(args: list[str], *names: str) -> str | None:
    """The value of a command-line option given as `--name value` or `--name=value`."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def reference(value: str, where: str = "") -> str:
    """The variable a secret's value refers to; fails on anything but a required ${NAME} reference."""
    match = _REFERENCE.match(value)
    assert match, f"{where}{value!r} is not a ${{VARIABLE}} reference without a default"
    return match["name"]


def default_of(value: str) -> str:
    """The default of a `${NAME:-default}` reference, or the value itself."""
    match = re.fullmatch(r"\$\{[A-Za-z_]\w*:?-(?P<default>[^}]*)\}", value)
    return match["default"] if match else value


def queues(service: dict[str, Any]) -> set[str]:
    """The Celery queues a worker consumes: --queues, else Airflow's default queue."""
    given = option(command(service), "--queues", "-q")
    if given is None:
        return {environment(service).get("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "default")}
    return set(given.split(","))


def jobs() -> set[str]:
    """Services others wait for to complete: one-shot jobs, not servers."""
    return {
        target
        for service in SERVICES.values()
        for target, dependency in (service.get("depends_on") or {}).items()
        if dependency.get("condition") == "service_completed_successfully"
    }


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def variables() -> Iterator[tuple[str, bool]]:
    """(name, required) for every variable the compose file interpolates."""
    for text in strings(COMPOSE):
        for match in _VARIABLE.finditer(text.replace("$$", "")):
            name = match["braced"] or match["bare"]
            op = match["op"] or ""
            yield name, op.lstrip(":") in ("", "?")


def bindings(service: dict[str, Any]) -> list[tuple[str | None, str, int]]:
    """(host address as written, host port, container port) of each published port; the address is
    None when the entry names none (Compose then binds every interface)."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):  # the long syntax
            found.append((port.get("host_ip"), str(port.get("published", "")), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        host = parts[0] if len(parts) == 3 else None
        found.append((host, parts[-2] if len(parts) > 1 else "", int(parts[-1])))
    return found


def published(service: dict[str, Any]) -> set[int]:
    """Container ports a service publishes ("127.0.0.1:8080:8080" publishes 8080)."""
    return {container for _, _, container in bindings(service)}


def bucket(uri: str) -> str:
    parts = urlsplit(uri)
    assert parts.scheme == "s3" and parts.netloc, f"{uri!r} is not an s3://bucket/prefix URI"
    return parts.netloc


def created_buckets() -> set[str]:
    script = "\n".join(command(SERVICES["minio-init"]))
    return {
        target.split("/", 1)[1]
        for line in script.splitlines()
        if line.strip().startswith("mc mb")
        for target in shlex.split(line)
        if target.startswith("local/")
    }


def test_every_expected_service_is_defined() -> None:
    assert set(SERVICES) == EXPECTED_SERVICES


def test_every_long_running_service_has_a_health_check_and_jobs_do_not_restart() -> None:
    assert jobs() == {"airflow-init", "minio-init"}
    for name, service in SERVICES.items():
        if name in jobs():
            # A job restarted after it exits never counts as completed for the services waiting on it.
            assert service.get("restart", "no") in ("no", "on-failure"), name
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_depends_on_waits_for_what_the_target_can_report() -> None:
    for name, service in SERVICES.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on an unknown service {target}"
            assert "profiles" not in SERVICES[target], f"{name} depends on {target}, off by default"
            condition = dependency.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health check"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {target}: {condition}"


def test_gpu_worker_is_only_under_the_gpu_profile() -> None:
    with_profiles = {name: service["profiles"] for name, service in SERVICES.items() if "profiles" in service}
    assert with_profiles == {"airflow-worker-gpu": ["gpu"], "prometheus": ["monitoring"]}


def test_prometheus_scrapes_the_serving_services_metrics() -> None:
    serving, prometheus = SERVICES["serving"], SERVICES["prometheus"]
    assert serving["entrypoint"][-3:] == ["-m", "mlops", "serve"]
    port = int(option(command(serving), "--port") or 0)
    assert port in published(serving) and option(command(serving), "--host") == "0.0.0.0"
    assert f"http://localhost:{port}/health" in serving["healthcheck"]["test"]
    # The lake, the registry and the signing key: the environment every Airflow component gets.
    assert environment(serving) == COMMON["environment"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    config = yaml.safe_load((ROOT / mounted["/etc/prometheus/prometheus.yml"]).read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"serving:{port}"]


def test_gpu_worker_consumes_the_gpu_queue_and_reserves_an_nvidia_gpu() -> None:
    worker = SERVICES["airflow-worker-gpu"]
    assert command(worker)[:2] == ["celery", "worker"]
    assert queues(worker) == {"gpu"}
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    reserving = {name for name, service in SERVICES.items() if "deploy" in service}
    assert reserving == {"airflow-worker-gpu"}, "only the GPU worker reserves a GPU"


def test_default_worker_consumes_the_default_queue_but_not_gpu() -> None:
    worker = SERVICES["airflow-worker"]
    assert command(worker)[:2] == ["celery", "worker"]
    assert queues(worker) == {COMMON["environment"]["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]}
    assert "gpu" not in queues(worker)


def test_the_pipeline_setting_that_routes_trials_to_the_gpu_worker_is_valid() -> None:
    (queue,) = queues(SERVICES["airflow-worker-gpu"])
    assert Training.model_validate({"queue": queue, "device": "cuda"}).queue == queue


def test_every_required_variable_is_in_env_example() -> None:
    example = env_example()
    required = {name for name, is_required in variables() if is_required}
    assert required, "the compose file takes no secret from .env"
    assert sorted(required - set(example)) == []


def test_compose_refuses_to_start_without_any_variable_that_has_no_default() -> None:
    # ${NAME:?error} somewhere makes Compose stop with the error; plain ${NAME} would give "" silently.
    required = {name for name, is_required in variables() if is_required}
    guarded = {
        match["braced"]
        for text in strings(COMPOSE)
        for match in _VARIABLE.finditer(text.replace("$$", ""))
        if (match["op"] or "").lstrip(":") == "?"
    }
    assert sorted(required - guarded) == []


def test_env_example_holds_only_variables_the_compose_file_uses() -> None:
    used = {name for name, _ in variables()}
    assert sorted(set(env_example()) - used) == []


def test_no_secret_is_written_in_the_compose_file() -> None:
    for name, service in SERVICES.items():
        for key, value in environment(service).items():
            # A *_FILE key names where a secret lives, not the secret.
            if _SECRET_KEY.search(key) and not key.endswith("_FILE"):
                reference(value, f"{name} {key}: ")
            if key.startswith("AIRFLOW_CONN_"):
                conn = json.loads(value)
                if "password" in conn:
                    reference(conn["password"], f"{name} {key} password: ")
        for text in strings(service):
            for match in re.finditer(r"://[^/\s:@\"]+:(?P<password>[^@\s\"]+)@", text):
                reference(match["password"], f"{name}, password in a URL: ")


def test_lake_and_landing_are_s3_roots_in_buckets_minio_init_creates() -> None:
    env = COMMON["environment"]
    lake, landing = env["MLOPS_LAKE_ROOT"], env["MLOPS_LANDING_ROOT"]
    artifacts = option(command(SERVICES["mlflow"]), "--artifacts-destination")
    assert artifacts is not None
    assert {bucket(lake), bucket(landing), bucket(artifacts)} <= created_buckets()
    assert not lake.startswith(landing) and not landing.startswith(lake), "lake and landing overlap"


def test_aws_connection_is_minio_with_airflows_own_identity() -> None:
    conn = json.loads(COMMON["environment"]["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn["conn_type"] == "aws"
    endpoint = urlsplit(conn["extra"]["endpoint_url"])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "minio", 9000)
    assert conn["extra"]["region_name"]
    init = environment(SERVICES["minio-init"])
    assert reference(conn["login"]) == reference(init["MINIO_AIRFLOW_ACCESS_KEY"])
    assert reference(conn["password"]) == reference(init["MINIO_AIRFLOW_SECRET_KEY"])
    mlflow = environment(SERVICES["mlflow"])
    assert reference(mlflow["AWS_ACCESS_KEY_ID"]) == reference(init["MINIO_MLFLOW_ACCESS_KEY"])
    assert reference(mlflow["AWS_SECRET_ACCESS_KEY"]) == reference(init["MINIO_MLFLOW_SECRET_KEY"])


ROOT_KEYS = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")


def test_no_service_but_minio_and_its_bucket_job_gets_the_root_keys() -> None:
    for name, service in SERVICES.items():
        used = {var for text in strings(service) for var in ROOT_KEYS if var in text}
        if name in ("minio", "minio-init"):
            assert used == set(ROOT_KEYS), name
        else:
            assert not used, f"{name} gets MinIO's root keys {sorted(used)}"


def bucket_policies(tmp_path: Path) -> dict[str, dict[str, set[str]]]:
    """The policies minio-init writes, by running the lines that write them: {policy: {action: resources}}."""
    import subprocess

    script = command(SERVICES["minio-init"])[-1].replace("$$", "$")
    lines = script.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("rw="))
    last = next(i for i, line in enumerate(lines) if "/tmp/airflow.json" in line)
    body = "\n".join(lines[first : last + 1]).replace("/tmp/", f"{tmp_path}/")
    subprocess.run(["sh", "-ec", body], check=True, timeout=10)
    policies = {}
    for name in ("mlflow", "airflow"):
        granted: dict[str, set[str]] = {}
        for statement in json.loads((tmp_path / f"{name}.json").read_text())["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in statement["Action"]:
                granted.setdefault(action, set()).update(statement["Resource"])
        policies[name] = granted
    return policies


def test_each_s3_identity_gets_only_its_buckets(tmp_path: Path) -> None:
    policies = bucket_policies(tmp_path)
    objects = lambda *buckets: {f"arn:aws:s3:::{b}/*" for b in buckets}  # noqa: E731
    assert policies["mlflow"]["s3:PutObject"] == objects("mlops-mlflow") | {"arn:aws:s3:::mlops-mlflow"}
    assert policies["mlflow"]["s3:GetObject"] == objects("mlops-mlflow") | {"arn:aws:s3:::mlops-mlflow"}
    written = {r for r in policies["airflow"]["s3:PutObject"] if r.endswith("/*")}
    read = {r for r in policies["airflow"]["s3:GetObject"] if r.endswith("/*")}
    assert written == objects("mlops-lake", "mlops-landing"), "Airflow writes the lake and landing only"
    assert read == objects("mlops-lake", "mlops-landing", "mlops-mlflow"), "and reads MLflow's artifacts"
    script = command(SERVICES["minio-init"])[-1]
    for user, policy in (
        ("MINIO_MLFLOW_ACCESS_KEY", "mlops-mlflow"),
        ("MINIO_AIRFLOW_ACCESS_KEY", "mlops-airflow"),
    ):
        assert f'mc admin user add local "$${{{user}}}"' in script, user
        assert f'mc admin policy attach local {policy} --user "$${{{user}}}"' in script, user


def test_every_service_requires_a_password() -> None:
    env = COMMON["environment"]
    # Airflow: the FAB auth manager (a production one), its admin created from .env by airflow-init.
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager")
    from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == f"{FabAuthManager.__module__}.{FabAuthManager.__name__}"
    assert not any("SIMPLE_AUTH_MANAGER" in key for key in env)
    init = SERVICES["airflow-init"]
    assert '--password "$${AIRFLOW_ADMIN_PASSWORD}"' in command(init)[-1]
    reference(environment(init)["AIRFLOW_ADMIN_PASSWORD"])
    # Redis: requirepass from .env, and the broker URL carries it.
    redis = SERVICES["redis"]
    assert "--requirepass" in " ".join(command(redis))
    assert reference(environment(redis)["REDIS_PASSWORD"]) == "REDIS_PASSWORD"
    broker = re.fullmatch(
        r"redis://:(?P<password>\$\{[^}]+\})@redis:6379/0", env["AIRFLOW__CELERY__BROKER_URL"]
    )
    assert broker and reference(broker["password"]) == "REDIS_PASSWORD"
    # MLflow: basic auth, its admin from .env, and mlflow_default logs in as it.
    mlflow = SERVICES["mlflow"]
    assert option(command(mlflow), "--app-name") == "basic-auth"
    conn = json.loads(env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    assert reference(conn["login"]) == reference(environment(mlflow)["MLFLOW_AUTH_ADMIN_USERNAME"])
    assert reference(conn["password"]) == reference(environment(mlflow)["MLFLOW_AUTH_ADMIN_PASSWORD"])
    reference(environment(mlflow)["MLFLOW_FLASK_SERVER_SECRET_KEY"])
    ini = (ROOT / "docker" / "mlflow-auth.ini").read_text()
    assert "admin_password" not in ini and "default_permission = NO_PERMISSIONS" in ini
    mounted = {v.split(":")[1]: v.split(":")[0] for v in mlflow["volumes"]}
    assert mounted[environment(mlflow)["MLFLOW_AUTH_CONFIG_PATH"]] == "./docker/mlflow-auth.ini"
    # PostgreSQL and MinIO: passwords from .env.
    reference(environment(SERVICES["postgres"])["POSTGRES_PASSWORD"])
    reference(environment(SERVICES["minio"])["MINIO_ROOT_PASSWORD"])
    # The model-signing key: an Airflow connection from .env, in no MLflow setting.
    signing = json.loads(env["AIRFLOW_CONN_MLOPS_SIGNING"])
    assert reference(signing["password"]) == "MODEL_SIGNING_KEY"
    assert not any("MODEL_SIGNING_KEY" in text for text in strings(mlflow))


def test_mlflow_connection_reaches_the_mlflow_service() -> None:
    conn = json.loads(COMMON["environment"]["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    assert conn["conn_type"] == "http"
    url = urlsplit(conn["host"])
    mlflow = command(SERVICES["mlflow"])
    assert url.hostname == "mlflow"
    assert str(url.port) == option(mlflow, "--port")
    # MLflow refuses requests whose Host header is not allowed: the workers send mlflow:<port>.
    allowed = default_of(option(mlflow, "--allowed-hosts") or "").split(",")
    assert any(fnmatch(url.netloc, pattern) for pattern in allowed), allowed


def test_execution_api_url_is_the_api_server() -> None:
    url = urlsplit(COMMON["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (url.hostname, url.path) == ("airflow-apiserver", "/execution/")
    assert url.port in published(SERVICES["airflow-apiserver"])


def test_every_airflow_service_has_the_whole_common_environment() -> None:
    # An `environment:` without `<<: *airflow-common-env` would silently drop the rest of it.
    for name in AIRFLOW_SERVICES:
        env = environment(SERVICES[name])
        assert {key: env.get(key) for key in COMMON["environment"]} == COMMON["environment"], name


def test_dags_plugins_include_and_logs_are_mounted_in_every_airflow_service() -> None:
    for name in AIRFLOW_SERVICES:
        mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES[name].get("volumes", [])}
        assert mounts.get("/opt/airflow/dags") == "./dags", name
        assert mounts.get("/opt/airflow/plugins") == "./plugins", name
        assert mounts.get("/opt/airflow/include") == "./include", name
        assert "/opt/airflow/logs" in mounts, name
    assert COMMON["environment"]["MLOPS_INCLUDE_DIR"] == "/opt/airflow/include"


def test_every_bind_mount_source_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_every_published_port_is_bound_to_the_loopback_as_written() -> None:
    for name, service in SERVICES.items():
        for host, host_port, container in bindings(service):
            assert host == "127.0.0.1", (
                f"{name} publishes {container} on {host or 'every interface'}: write 127.0.0.1:{host_port}:{container}"
            )


@pytest.mark.parametrize(
    ("port", "host"),
    [
        pytest.param("0.0.0.0:8080:8080", "0.0.0.0", id="all-interfaces"),
        pytest.param("8080:8080", None, id="no-host"),
        pytest.param({"target": 8080, "published": 8080}, None, id="long-syntax-no-host"),
        pytest.param("127.0.0.1:5000:5000/tcp", "127.0.0.1", id="loopback"),
    ],
)
def test_bindings_read_the_host_as_written(port: Any, host: str | None) -> None:
    [(found, _, container)] = bindings({"ports": [port]})
    assert (found, container) == (host, 8080 if "8080" in str(port) else 5000)


def test_the_readme_ports_are_published() -> None:
    assert 8080 in published(SERVICES["airflow-apiserver"])
    assert 5000 in published(SERVICES["mlflow"])
    assert {9000, 9001} <= published(SERVICES["minio"])


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_base_image_matches_the_airflow_and_python_pins(dockerfile: str) -> None:
    base = re.search(
        r"^FROM apache/airflow:(?P<airflow>[\w.]+)-python(?P<python>[\d.]+)\s*$", dockerfile, re.M
    )
    assert base, "the Dockerfile is not FROM apache/airflow:<version>-python<version>"
    pin = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin and base["airflow"] == pin[1]
    assert f'">={base["python"]}' in (ROOT / "pyproject.toml").read_text()


def test_dockerfile_installs_the_pinned_requirements_into_the_image(dockerfile: str) -> None:
    assert re.search(r"^USER airflow$", dockerfile, re.M), "pip must run as the airflow user"
    assert re.search(r"pip install .*-r \S*requirements\.txt .*-c \S*constraints\.txt", dockerfile)
    assert re.search(r"^ENV PYTHONPATH=/opt/airflow/plugins", dockerfile, re.M)
    for image in {SERVICES[name]["image"] for name in [*AIRFLOW_SERVICES, "mlflow"]}:
        assert image == COMMON["image"], "every Airflow service and MLflow run the image built here"


def test_the_init_job_runs_the_preflight_before_migrating(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops.tools.preflight import planned_checks

    init = SERVICES["airflow-init"]
    script = command(init)[-1]
    preflight, migrate, admin = (step.strip() for step in script.split("&&", 2))
    assert preflight.split()[:4] == ["python", "-m", "mlops", "preflight"], script
    assert "--check-secrets" in preflight.split(), "weak secrets must stop the stack"
    assert migrate.split() == ["airflow", "db", "migrate"], script
    assert admin.split()[1:6] == ["airflow", "users", "create", "--role", "Admin"], script
    # The bucket named on top of the lake's is the one MLflow's server writes artifacts to.
    extra = option(shlex.split(preflight), "--bucket")
    destination = next(a for a in command(SERVICES["mlflow"]) if a.startswith("--artifacts-destination="))
    assert destination.split("=", 1)[1].removeprefix("s3://").split("/")[0] == extra
    # It checks the services it waits for: the compose environment asks for exactly these checks.
    assert set(init["depends_on"]) == {"postgres", "redis", "minio-init", "mlflow"}
    env = {key: str(value) for key, value in COMMON["environment"].items()}
    for key in ("MLOPS_LAKE_ROOT", "MLOPS_LANDING_ROOT", "MLOPS_INCLUDE_DIR"):
        monkeypatch.setenv(key, env[key])
    assert [check.name for check in planned_checks(env, extra_buckets=[extra])] == [
        "database",
        "broker",
        "s3",
        "mlflow",
    ]
