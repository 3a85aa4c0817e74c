"""``python -m mlops serve [--pipeline churn ...] [--host 127.0.0.1] [--port 5001] [--workers N]``.

Serves the champion of each named pipeline (default: every pipeline in the include folder) with
``mlops.serving`` on uvicorn, following the registry: see docs/serving.md. The registry is the
``mlflow_default`` connection's (its login and password for a server with basic auth), or
``MLFLOW_TRACKING_URI`` where no such connection is set in the environment; the signing key the
``mlops_signing`` connection's; the lake ``MLOPS_LAKE_ROOT`` (on S3 through ``aws_default``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlops.serving.app import Service

# What a worker process reads to build its own service (uvicorn starts workers from an import string).
_PIPELINES_ENV = "MLOPS_SERVE_PIPELINES"


def build_service(names: list[str]) -> Service:
    """The pipelines, their champion holder, metrics and served-rows writers, from the environment."""
    from mlops.airflow.hooks.lake import storage_for
    from mlops.airflow.hooks.signing import signing_key
    from mlops.config.pipeline import load_pipeline
    from mlops.registry.signing import load_model
    from mlops.serving.app import Service
    from mlops.serving.champion import ChampionHolder, champion_target
    from mlops.serving.metrics import ServingMetrics
    from mlops.serving.served import ServedWriter
    from mlops.settings import get_settings

    settings = get_settings()
    pipelines = {name: load_pipeline(settings.pipelines_dir / f"{name}.yaml") for name in names}
    uri, reader = _registry(settings.mlflow_conn_id)
    key = signing_key()
    lake = storage_for(settings.lake_root, settings.aws_conn_id)
    metrics = ServingMetrics(list(pipelines))
    holder = ChampionHolder(
        {name: pipeline.serving.poll_seconds for name, pipeline in pipelines.items()},
        target=lambda name: champion_target(reader, name, key),
        load=lambda name, version: load_model(uri, name, version, key),
        metrics=metrics,
    )
    writers = {name: ServedWriter(lake, pipeline, metrics=metrics) for name, pipeline in pipelines.items()}
    return Service(pipelines=pipelines, holder=holder, metrics=metrics, writers=writers)


def _registry(conn_id: str) -> tuple[str, object]:
    """The tracking URI and a REST reader of the registry, as the other commands find them."""
    from mlops.registry.rest import RegistryReader

    if f"AIRFLOW_CONN_{conn_id.upper()}" not in os.environ and os.environ.get("MLFLOW_TRACKING_URI"):
        uri = os.environ["MLFLOW_TRACKING_URI"]  # MLflow reads its credentials from its own variables
        return uri, RegistryReader(uri)
    from mlops.airflow.hooks.mlflow import MlflowHook

    hook = MlflowHook(conn_id)
    return hook.tracking_uri, hook.reader  # the URI sets MLflow's HTTP limits and credentials


def app() -> FastAPI:
    """A worker's application (``uvicorn mlops.cli.serve:app --factory``), for ``--workers`` > 1."""
    from mlops.serving.app import create_app

    return create_app(build_service(json.loads(os.environ[_PIPELINES_ENV])))


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from mlops.config.pipeline import ConfigError, discover
    from mlops.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m mlops serve", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pipeline", action="append", dest="pipelines", help="repeat for several (default: all)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be a port number, got {args.port}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")

    found = discover(get_settings().pipelines_dir)
    names = args.pipelines or sorted(name for name, p in found.items() if not isinstance(p, ConfigError))
    unknown = [name for name in names if name not in found]
    broken = {name: found[name] for name in names if isinstance(found.get(name), ConfigError)}
    if unknown or broken or not names:
        for name in unknown:
            print(f"error: no pipeline {name!r} (known: {sorted(found)})", file=sys.stderr)
        for error in broken.values():
            print(f"error: {error}", file=sys.stderr)
        if not names:
            print("error: no pipeline to serve", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = {"host": args.host, "port": args.port, "log_level": args.log_level, "access_log": False}
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        service = build_service(names)  # with workers, each builds its own: this one checks the settings
    except (ValueError, OSError, AirflowNotFoundException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"Serving {', '.join(names)} on http://{args.host}:{args.port} ({args.workers} worker(s))", flush=True
    )
    if args.workers == 1:
        from mlops.serving.app import create_app

        uvicorn.run(create_app(service), **options)
    else:
        os.environ[_PIPELINES_ENV] = json.dumps(names)
        uvicorn.run("mlops.cli.serve:app", factory=True, workers=args.workers, **options)
    return 0
