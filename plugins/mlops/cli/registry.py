"""``python -m mlops registry champion <model>``: print the champion's version."""

from __future__ import annotations

from mlops.registry.champion import CHAMPION, alias_version


def main(argv: list[str] | None = None) -> int:
    """``python -m mlops registry champion <model>``: print the champion's version. The registry is
    the ``mlflow_default`` connection's (``MlflowHook``: its login and password for a server with
    basic auth). Exit 3 without a champion, 1 when the registry cannot be reached."""
    import argparse
    import sys

    from mlops.airflow.hooks.mlflow import MlflowHook

    parser = argparse.ArgumentParser(prog="python -m mlops registry")
    parser.add_argument("what", choices=["champion"])
    parser.add_argument("model")
    args = parser.parse_args(argv)
    try:
        version = alias_version(MlflowHook().client, args.model, CHAMPION)
    except Exception as exc:  # the message names the server; the caller decides what to do
        print(f"could not look up {args.model}@{CHAMPION}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
        return 1
    if version is None:
        return 3
    print(version)
    return 0
