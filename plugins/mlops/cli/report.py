"""``python -m mlops report replay [--pipeline churn]``: a replay's outcome, one row per day."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from mlops.tools.replay_report import last_day, markdown, replay_rows


def main(argv: list[str] | None = None) -> int:
    from mlflow import MlflowClient

    from mlops.config.pipeline import load_pipeline
    from mlops.registry.champion import champion_on, history
    from mlops.settings import get_settings
    from mlops.tools.preflight import mlflow_uri_from_env

    parser = argparse.ArgumentParser(prog="python -m mlops report", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["replay"])
    parser.add_argument("--pipeline", default="churn")
    parser.add_argument("--last", type=dt.date.fromisoformat, help="last day (default: end_date)")
    args = parser.parse_args(argv)

    settings = get_settings()
    pipeline = load_pipeline(settings.pipelines_dir / f"{args.pipeline}.yaml")
    uri = mlflow_uri_from_env(settings.mlflow_conn_id, os.environ)
    if uri is None:
        print(
            f"report: no MLflow tracking URI ({settings.mlflow_conn_id} or MLFLOW_TRACKING_URI)",
            file=sys.stderr,
        )
        return 2
    from mlops.airflow.hooks.lake import storage_for
    from mlops.airflow.hooks.signing import signing_key

    # The champion of each day from signed moves only, as score and monitor read it.
    moves = history(MlflowClient(tracking_uri=uri, registry_uri=uri), pipeline.name, signing_key())

    lake = storage_for(settings.lake_root, settings.aws_conn_id)
    last = args.last.isoformat() if args.last else last_day(lake, pipeline)
    sys.stdout.write(markdown(replay_rows(lake, pipeline, lambda ds: champion_on(moves, ds), last)))
    return 0
