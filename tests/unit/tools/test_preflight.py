"""The preflight fails fast and names what is wrong: real servers, closed ports, silent servers, no mocks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.tools.preflight import (
    PreflightError,
    S3Target,
    check_broker,
    check_database,
    check_mlflow,
    check_s3,
    s3_target_from_env,
)

ROOT = Path(__file__).resolve().parents[3]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def strict_s3(start_moto) -> Iterator[str]:
    """A moto S3 server that checks keys; it knows none, so every key is a wrong key (403)."""
    with start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as endpoint:
        yield endpoint


@pytest.mark.parametrize("prefix", ["postgresql+psycopg2", "db+postgresql+psycopg2"])
def test_an_unreachable_database_is_named_by_host_and_port(prefix: str) -> None:
    port = closed_port()
    with pytest.raises(PreflightError) as info:
        check_database(f"{prefix}://airflow:s3cret@127.0.0.1:{port}/airflow")
    message = str(info.value)
    assert f"postgresql at 127.0.0.1:{port} (database 'airflow', user 'airflow') unreachable" in message
    assert "Connection refused" in message
    assert "s3cret" not in message


def test_a_reachable_database_passes(tmp_path: Path) -> None:
    assert (
        check_database(f"sqlite:///{tmp_path / 'airflow.db'}")
        == f"database sqlite file {tmp_path / 'airflow.db'}"
    )


def test_an_unreachable_broker_is_named() -> None:
    port = closed_port()
    with pytest.raises(PreflightError, match=rf"redis broker at 127\.0\.0\.1:{port} unreachable: .*refused"):
        check_broker(f"redis://127.0.0.1:{port}/0")


def test_a_broker_that_never_answers_times_out(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(PreflightError, match=rf"redis broker at 127\.0\.0\.1:{silent_port} unreachable"):
        check_broker(f"redis://127.0.0.1:{silent_port}/0", timeout=1)
    assert time.monotonic() - started < 5


def test_a_wrong_s3_endpoint_is_named() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(PreflightError, match=rf"S3 endpoint {endpoint} unreachable"):
        check_s3(S3Target(endpoint, "key", "secret"), ["lake"])


def test_an_s3_endpoint_that_never_answers_times_out(silent_port: int) -> None:
    started = time.monotonic()
    endpoint = f"http://127.0.0.1:{silent_port}"
    with pytest.raises(PreflightError, match=rf"S3 endpoint {endpoint} did not answer within 1 s"):
        check_s3(S3Target(endpoint, "key", "secret"), ["lake"], timeout=1)
    assert time.monotonic() - started < 5


def test_a_wrong_s3_key_gets_403_naming_the_key_and_the_endpoint(strict_s3: str) -> None:
    with pytest.raises(PreflightError) as info:
        check_s3(S3Target(strict_s3, "AKIAWRONGKEY", "wrong-secret"), ["lake"])
    assert str(info.value) == (
        f"S3 endpoint {strict_s3}: the access key AKIAWRONGKEY is not known there (wrong key) "
        "[403 InvalidAccessKeyId]"
    )


def test_missing_buckets_are_named_and_existing_ones_pass(s3_endpoint: str, s3_client) -> None:
    s3_client.create_bucket(Bucket="preflight-there")
    target = S3Target(s3_endpoint, "testing", "testing")
    assert check_s3(target, ["preflight-there"]) == f"S3 endpoint {s3_endpoint}, bucket(s) preflight-there"
    with pytest.raises(PreflightError, match=r"bucket\(s\) 'preflight-gone' do not exist$"):
        check_s3(target, ["preflight-there", "preflight-gone"])


def test_mlflow_not_answering_is_named() -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(PreflightError, match=rf"MLflow at {uri} not answering: .*refused"):
        check_mlflow(uri)


def test_something_else_on_the_mlflow_port_is_named(s3_endpoint: str) -> None:
    with pytest.raises(PreflightError, match=rf"MLflow at {s3_endpoint}: /health answered 404"):
        check_mlflow(s3_endpoint)


def test_the_mlflow_server_passes(mlflow_server: str) -> None:
    assert check_mlflow(mlflow_server) == f"MLflow at {mlflow_server}"


def test_s3_settings_come_from_the_connection_in_either_form() -> None:
    as_json = json.dumps(
        {
            "conn_type": "aws",
            "login": "AKIA1",
            "password": "s1",
            "extra": {"endpoint_url": "http://minio:9000", "region_name": "eu-west-1"},
        }
    )
    as_uri = "aws://AKIA1:s1@/?endpoint_url=http%3A%2F%2Fminio%3A9000&region_name=eu-west-1"
    expected = S3Target("http://minio:9000", "AKIA1", "s1", "eu-west-1")
    for value in (as_json, as_uri):
        assert s3_target_from_env("aws_default", {"AIRFLOW_CONN_AWS_DEFAULT": value}) == expected
    fallback = {"MLOPS_S3_ENDPOINT": "http://s3:1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    assert s3_target_from_env("aws_default", fallback) == S3Target("http://s3:1", "k", "s", "us-east-1")


def preflight_cli(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_", "AWS_"))}
    base["PYTHONPATH"] = str(ROOT / "plugins")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "preflight"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, time.monotonic() - started


def test_the_cli_fails_fast_with_a_message_per_broken_service(strict_s3: str) -> None:
    db_port, broker_port, mlflow_port = closed_port(), closed_port(), closed_port()
    aws = {"conn_type": "aws", "login": "AKIAWRONGKEY", "password": "x", "extra": {"endpoint_url": strict_s3}}
    done, elapsed = preflight_cli(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://airflow:pw@127.0.0.1:{db_port}/airflow",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{broker_port}/0",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
            "MLOPS_LAKE_ROOT": "s3://mlops-lake/lake",
            "MLOPS_LANDING_ROOT": "s3://mlops-landing/landing",
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                {"conn_type": "http", "host": f"http://127.0.0.1:{mlflow_port}"}
            ),
        }
    )
    assert done.returncode == 1, done
    assert elapsed < 10, f"the preflight took {elapsed:.1f}s"
    failed = [line for line in done.stderr.splitlines() if line.startswith("preflight: FAILED")]
    assert len(failed) == 4, done.stderr
    database, broker, s3, mlflow = failed
    assert (
        f"(from AIRFLOW__DATABASE__SQL_ALCHEMY_CONN): database postgresql at 127.0.0.1:{db_port}" in database
    )
    assert (
        f"(from AIRFLOW__CELERY__BROKER_URL): redis broker at 127.0.0.1:{broker_port} unreachable" in broker
    )
    assert f"S3 endpoint {strict_s3}: the access key AKIAWRONGKEY is not known" in s3
    assert "[403 InvalidAccessKeyId]" in s3
    assert f"MLflow at http://127.0.0.1:{mlflow_port} not answering" in mlflow


def test_the_cli_passes_when_every_service_answers(
    tmp_path: Path, s3_endpoint: str, s3_client, mlflow_server: str
) -> None:
    for bucket in ("cli-lake", "cli-landing"):
        s3_client.create_bucket(Bucket=bucket)
    aws = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_endpoint},
    }
    done, _ = preflight_cli(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
            "MLOPS_LAKE_ROOT": "s3://cli-lake/lake",
            "MLOPS_LANDING_ROOT": "s3://cli-landing/landing",
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http", "host": mlflow_server}),
        }
    )
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines()] == ["ok"] * 3, done.stdout


def test_weak_secrets_are_named_one_line_each_never_their_values() -> None:
    from mlops.tools.preflight import weak_secrets

    strong = "s" * 16
    env = {
        "AIRFLOW__CORE__FERNET_KEY": "change-me",
        "AIRFLOW__API_AUTH__JWT_SECRET": "short-secret",
        "AIRFLOW__API__SECRET_KEY": strong,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:tiny@postgres:5432/airflow",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{strong}@redis:6379/0",
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http", "login": "u", "password": "pw"}),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "mlops", "password": strong}),
        "AWS_ACCESS_KEY_ID": "mlops",  # an identity, not a secret
        "MLFLOW_AUTH_CONFIG_PATH": "/etc/mlflow/basic_auth.ini",
    }
    lines = weak_secrets(env)
    assert lines == [
        "AIRFLOW_CONN_MLFLOW_DEFAULT (its password): 2 characters, at least 16 needed (openssl rand -hex 24)",
        "AIRFLOW__API_AUTH__JWT_SECRET: 12 characters, at least 16 needed (openssl rand -hex 24)",
        "AIRFLOW__CORE__FERNET_KEY: a placeholder value; set a random one (openssl rand -hex 24)",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (the password in its URL): 4 characters, at least 16 needed "
        "(openssl rand -hex 24)",
    ]
    assert not any(value in "\n".join(lines) for value in ("tiny", "short-secret"))


def test_the_cli_refuses_weak_secrets_before_any_check(monkeypatch, capsys) -> None:
    from mlops.cli.preflight import main

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "change-me")
    assert main(["--check-secrets", "--only", "mlflow"]) == 1
    assert "preflight: WEAK    AIRFLOW__API_AUTH__JWT_SECRET: a placeholder value" in capsys.readouterr().err
