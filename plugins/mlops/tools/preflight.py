"""Preflight: is every service this deployment names reachable, with the credentials it was given?

Run before Airflow starts (``scripts/distributed.sh up``, a docker-compose init container), so a
wrong host, port, key or bucket fails in seconds with a message that names it, instead of minutes
later inside a task. Each check raises ``PreflightError`` with a precise message and gives up after
a few seconds; ``python -m mlops.preflight`` runs every check the environment names (concurrently)
and exits 1 with all the messages. Pure Python, no Airflow import: it must run before Airflow's
database exists, and it reads connections defined as ``AIRFLOW_CONN_*`` variables itself.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

TIMEOUT_S = 5.0


class PreflightError(RuntimeError):
    """A service is unreachable or refuses the configured credentials; the message says which."""


def _first_lines(text: object, limit: int = 2) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " ".join(lines[:limit]) or type(text).__name__


# --------------------------------------------------------------------------------------------------
# Database (Airflow's metadata database, the Celery result backend)


def check_database(url: str, *, timeout: float = TIMEOUT_S) -> str:
    """Connect to ``url`` (an SQLAlchemy URL; Celery's ``db+`` prefix is accepted) and run ``SELECT 1``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    try:
        parsed = make_url(url.removeprefix("db+"))
    except ArgumentError:
        raise PreflightError("database URL is not a valid SQLAlchemy URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        where = f"sqlite file {parsed.database or ':memory:'}"
        connect_args: dict[str, Any] = {"timeout": timeout}
    else:
        default_port = {"postgresql": 5432, "mysql": 3306}.get(backend, "?")
        where = (
            f"{backend} at {parsed.host or 'localhost'}:{parsed.port or default_port} "
            f"(database {parsed.database!r}, user {parsed.username!r})"
        )
        # libpq and the MySQL drivers take whole seconds.
        connect_args = {"connect_timeout": max(1, int(timeout))}
    try:
        engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise PreflightError(f"database {where}: no driver for this URL ({exc})") from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise PreflightError(f"database {where} unreachable: {_first_lines(exc.orig)}") from None
    finally:
        engine.dispose()
    return f"database {where}"


# --------------------------------------------------------------------------------------------------
# Celery broker


def check_broker(url: str, *, timeout: float = TIMEOUT_S) -> str:
    """Reach the Celery broker: ``PING`` a Redis broker, open a connection to any other."""
    parts = urlsplit(url)
    where = f"{parts.scheme} broker at {parts.hostname or 'localhost'}:{parts.port or '(default port)'}"
    if parts.scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        except redis.AuthenticationError as exc:
            raise PreflightError(f"{where}: authentication failed ({_first_lines(exc)})") from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise PreflightError(f"{where} unreachable: {_first_lines(exc)}") from None
        except redis.ResponseError as exc:
            raise PreflightError(f"{where} refused PING: {_first_lines(exc)}") from None
        finally:
            client.close()
        return where
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # kombu raises the transport's own errors
        raise PreflightError(f"{where} unreachable: {_first_lines(exc)}") from None
    return where


# --------------------------------------------------------------------------------------------------
# S3


@dataclass(frozen=True)
class S3Target:
    """Where S3 is and with which key; ``endpoint_url`` None means AWS itself."""

    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"

    @property
    def where(self) -> str:
        return f"S3 endpoint {self.endpoint_url}" if self.endpoint_url else f"AWS S3 ({self.region})"


def check_s3(target: S3Target, buckets: Sequence[str], *, timeout: float = TIMEOUT_S) -> str:
    """List one key of each bucket: proves the endpoint answers, the key is valid and the buckets exist."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if not buckets:
        raise PreflightError(f"{target.where}: no bucket to check")
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=target.endpoint_url,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        region_name=target.region,
        # One attempt, short timeouts: a preflight reports, it does not wait a service out.
        config=Config(
            connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1, "mode": "standard"}
        ),
    )
    key = target.access_key or "(default credential chain)"
    missing: list[str] = []
    for bucket in buckets:
        try:
            client.list_objects_v2(Bucket=bucket, MaxKeys=1)
        except EndpointConnectionError as exc:
            raise PreflightError(f"{target.where} unreachable: {_first_lines(exc)}") from None
        except (ConnectTimeoutError, ReadTimeoutError):
            raise PreflightError(f"{target.where} did not answer within {timeout:g} s") from None
        except NoCredentialsError:
            raise PreflightError(
                f"{target.where}: no credentials (set the connection's login/password, or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            ) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "?"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            if code in ("NoSuchBucket", "404"):
                missing.append(bucket)
                continue
            if code in ("InvalidAccessKeyId", "InvalidClientTokenId"):
                why = f"the access key {key} is not known there (wrong key)"
            elif code == "SignatureDoesNotMatch":
                why = f"the secret key does not match access key {key} (wrong secret)"
            elif code in ("AccessDenied", "403") or status == 403:
                why = f"access key {key} may not read bucket {bucket!r} (wrong key, or no permission)"
            else:
                why = f"bucket {bucket!r}: {error.get('Message') or code} (is this an S3 endpoint?)"
            raise PreflightError(f"{target.where}: {why} [{status} {code}]") from None
    if missing:
        raise PreflightError(f"{target.where}: bucket(s) {', '.join(map(repr, missing))} do not exist")
    return f"{target.where}, bucket(s) {', '.join(buckets)}"


# --------------------------------------------------------------------------------------------------
# MLflow


def check_mlflow(uri: str, *, timeout: float = TIMEOUT_S, headers: Mapping[str, str] | None = None) -> str:
    """The tracking server answers ``/health`` and a search, so its backend store works too."""
    uri = uri.rstrip("/")

    def get(path: str) -> bytes:
        request = urllib.request.Request(f"{uri}{path}", headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            body = _first_lines(exc.read().decode("utf-8", "replace")[:300]) if exc.fp else ""
            message = f"MLflow at {uri}: {path} answered {exc.code} {exc.reason} {body}".strip()
            raise PreflightError(message) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                raise PreflightError(f"MLflow at {uri} did not answer within {timeout:g} s") from None
            raise PreflightError(f"MLflow at {uri} not answering: {reason}") from None
        except (TimeoutError, ConnectionError) as exc:
            raise PreflightError(f"MLflow at {uri} not answering: {exc}") from None

    get("/health")
    try:
        json.loads(get("/api/2.0/mlflow/experiments/search?max_results=1"))
    except ValueError:
        raise PreflightError(
            f"MLflow at {uri}: the search API did not answer JSON (is this MLflow?)"
        ) from None
    return f"MLflow at {uri}"


# --------------------------------------------------------------------------------------------------
# What the environment names (the CLI)


def env_connection(conn_id: str, env: Mapping[str, str]) -> dict[str, Any] | None:
    """An Airflow connection defined as ``AIRFLOW_CONN_<ID>`` (JSON or URI form), or None."""
    raw = env.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not raw:
        return None
    if raw.lstrip().startswith("{"):
        conn = json.loads(raw)
        extra = conn.get("extra") or {}
        conn["extra"] = json.loads(extra) if isinstance(extra, str) else extra
        return conn
    parts = urlsplit(raw)
    query = dict(parse_qsl(parts.query))
    extra = json.loads(query.pop("__extra__")) if "__extra__" in query else query
    return {
        "conn_type": parts.scheme.replace("-", "_"),
        "host": unquote(parts.hostname or ""),
        "port": parts.port,
        "login": unquote(parts.username or "") or None,
        "password": unquote(parts.password or "") or None,
        "schema": parts.path.lstrip("/"),
        "extra": extra,
    }


def s3_target_from_env(conn_id: str, env: Mapping[str, str]) -> S3Target:
    """The S3 target of connection ``conn_id`` if the environment defines it, else ``MLOPS_S3_ENDPOINT``
    and the ``AWS_*`` variables (no endpoint: AWS with the default credential chain)."""
    conn = env_connection(conn_id, env)
    if conn is not None:
        extra = conn.get("extra") or {}
        return S3Target(
            endpoint_url=extra.get("endpoint_url") or None,
            access_key=conn.get("login") or extra.get("aws_access_key_id") or None,
            secret_key=conn.get("password") or extra.get("aws_secret_access_key") or None,
            region=extra.get("region_name") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        )
    return S3Target(
        endpoint_url=env.get("MLOPS_S3_ENDPOINT") or None,
        access_key=env.get("AWS_ACCESS_KEY_ID") or None,
        secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        region=env.get("AWS_DEFAULT_REGION") or "us-east-1",
    )


def mlflow_uri_from_env(conn_id: str, env: Mapping[str, str]) -> str | None:
    """The tracking URI as ``MlflowHook`` builds it from the connection, else ``MLFLOW_TRACKING_URI``."""
    from mlops.settings import tracking_uri

    conn = env_connection(conn_id, env)
    if conn is None:
        return env.get("MLFLOW_TRACKING_URI") or None
    return tracking_uri(conn.get("host"), conn.get("port"), conn.get("schema"))


def bucket_of(root: str) -> str | None:
    return root.removeprefix("s3://").split("/", 1)[0] if root.startswith("s3://") else None


@dataclass(frozen=True)
class Check:
    name: str
    source: str  # the setting that named the service, quoted in every message
    run: Callable[[], str]


def planned_checks(
    env: Mapping[str, str], *, extra_buckets: Sequence[str] = (), timeout: float = TIMEOUT_S
) -> list[Check]:
    """Every check ``env`` asks for: the services it names, nothing else.

    The lake roots and connection ids come from ``mlops.settings`` (the process environment).
    """
    from mlops.settings import get_settings

    settings = get_settings()
    checks: list[Check] = []
    database = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if database:
        name = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        checks.append(Check("database", name, lambda: check_database(database, timeout=timeout)))
    if broker := env.get("AIRFLOW__CELERY__BROKER_URL"):
        name = "AIRFLOW__CELERY__BROKER_URL"
        checks.append(Check("broker", name, lambda: check_broker(broker, timeout=timeout)))
    backend = env.get("AIRFLOW__CELERY__RESULT_BACKEND", "")
    # Celery results in the metadata database (the usual setup) need no second check.
    if backend.startswith("db+") and backend.removeprefix("db+") != database:
        name = "AIRFLOW__CELERY__RESULT_BACKEND"
        checks.append(Check("result backend", name, lambda: check_database(backend, timeout=timeout)))
    roots = (settings.lake_root, settings.landing_root)
    buckets = list(dict.fromkeys([b for b in map(bucket_of, roots) if b] + list(extra_buckets)))
    if buckets:
        target = s3_target_from_env(settings.aws_conn_id, env)
        via = f"AIRFLOW_CONN_{settings.aws_conn_id.upper()}"
        via = via if env_connection(settings.aws_conn_id, env) else "MLOPS_S3_ENDPOINT/AWS_*"
        source = f"{via}; buckets of MLOPS_LAKE_ROOT/MLOPS_LANDING_ROOT"
        checks.append(Check("s3", source, lambda: check_s3(target, buckets, timeout=timeout)))
    if uri := mlflow_uri_from_env(settings.mlflow_conn_id, env):
        via = f"AIRFLOW_CONN_{settings.mlflow_conn_id.upper()}"
        via = via if env_connection(settings.mlflow_conn_id, env) else "MLFLOW_TRACKING_URI"
        headers = basic_auth_header(env_connection(settings.mlflow_conn_id, env) or {})
        checks.append(Check("mlflow", via, lambda: check_mlflow(uri, timeout=timeout, headers=headers)))
    return checks


def basic_auth_header(conn: Mapping[str, Any]) -> dict[str, str]:
    """The connection's login and password as an ``Authorization`` header (none without a login)."""
    import base64

    if not conn.get("login"):
        return {}
    token = base64.b64encode(f"{conn['login']}:{conn.get('password') or ''}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --------------------------------------------------------------------------------------------------
# Secrets: no placeholder, none too short

MIN_SECRET_CHARS = 16
PLACEHOLDERS = ("change-me", "changeme", "password", "secret", "admin", "airflow", "minioadmin")
_SECRET_NAME = ("PASSWORD", "SECRET", "_KEY")


def weak_secrets(env: Mapping[str, str]) -> list[str]:
    """One line per secret in ``env`` that is a placeholder or shorter than ``MIN_SECRET_CHARS``.

    Secrets are variables named like one (``*PASSWORD*``, ``*SECRET*``, ``*_KEY``), the passwords of
    ``AIRFLOW_CONN_*`` connections and the passwords inside database and broker URLs. The lines
    name the variable, never the value.
    """
    found: dict[str, str] = {}
    for name, value in sorted(env.items()):
        if name.startswith("AIRFLOW_CONN_"):
            conn = env_connection(name.removeprefix("AIRFLOW_CONN_").lower(), env) or {}
            if conn.get("password") is not None:
                found[f"{name} (its password)"] = str(conn["password"])
        elif any(part in name for part in _SECRET_NAME) and not name.endswith(("_FILE", "_PATH", "_ID")):
            found[name] = value
        elif "://" in value and (password := urlsplit(value.removeprefix("db+")).password):
            found[f"{name} (the password in its URL)"] = unquote(password)
    problems = []
    for name, value in found.items():
        if value.strip().lower() in PLACEHOLDERS or "change-me" in value.lower():
            problems.append(f"{name}: a placeholder value; set a random one (openssl rand -hex 24)")
        elif len(value) < MIN_SECRET_CHARS:
            problems.append(
                f"{name}: {len(value)} characters, at least {MIN_SECRET_CHARS} needed (openssl rand -hex 24)"
            )
    return problems


def run_checks(checks: Sequence[Check]) -> list[tuple[Check, str | None, str | None]]:
    """Run the checks at once (each is bounded by its timeout); (check, ok message, error) each."""

    def one(check: Check) -> tuple[Check, str | None, str | None]:
        try:
            return check, check.run(), None
        except PreflightError as exc:
            return check, None, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, len(checks))) as pool:
        return list(pool.map(one, checks))
