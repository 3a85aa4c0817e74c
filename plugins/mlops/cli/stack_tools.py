"""``python -m mlops stack-tools secrets|buckets|pipelines|healthy``: what the local stacks' scripts share."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlops.tools.stack import copy_pipelines, create_buckets, healthy, new_secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops stack-tools", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("secrets")
    buckets = commands.add_parser("buckets")
    buckets.add_argument("endpoint")
    buckets.add_argument("buckets", nargs="+")
    pipelines = commands.add_parser("pipelines")
    pipelines.add_argument("source", type=Path)
    pipelines.add_argument("target", type=Path)
    pipelines.add_argument("--set", dest="assignments", action="append", default=[])
    pipelines.add_argument("--only", action="append", default=[], help="copy this pipeline (repeatable)")
    commands.add_parser("healthy")
    args = parser.parse_args(argv)

    if args.command == "secrets":
        print("\n".join(f"{k}={v}" for k, v in new_secrets().items()))
    elif args.command == "buckets":
        create_buckets(args.endpoint, args.buckets)
    elif args.command == "pipelines":
        for path in copy_pipelines(args.source, args.target, args.assignments, args.only):
            print(f"wrote {path}")
    else:
        return 0 if healthy(json.load(sys.stdin)) else 1
    return 0
