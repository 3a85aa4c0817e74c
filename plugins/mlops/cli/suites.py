"""``python -m mlops suites write|check``: (re)write every pipeline's generated suite, or check none is stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlops.config.pipeline import ConfigError, discover
from mlops.ingest.suite import load_suite, suite_path, write_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops suites", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        choices=["write", "check"],
        help="write: (re)write every suite; check: exit 1 if any is stale",
    )
    parser.add_argument(
        "--include", type=Path, default=Path("include"), help="the include/ folder (default: ./include)"
    )
    args = parser.parse_args(argv)
    pipelines = discover(args.include / "pipelines")
    status = 0
    for pipeline in pipelines.values():
        if isinstance(pipeline, ConfigError):
            print(f"error: {pipeline}", file=sys.stderr)
            status = 1
            continue
        if args.command == "write":
            path = write_suite(pipeline, args.include)
            print(f"wrote {path}")
        else:
            try:
                load_suite(pipeline, args.include)
            except ConfigError as exc:
                print(f"stale: {exc}", file=sys.stderr)
                status = 1
            else:
                print(f"up to date: {suite_path(pipeline, args.include)}")
    if not pipelines:
        print(f"error: no pipelines under {args.include / 'pipelines'}", file=sys.stderr)
        status = 1
    return status
