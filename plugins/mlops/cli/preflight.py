"""``python -m mlops preflight``: is every service this deployment names reachable, with its credentials?

Runs before Airflow starts (``scripts/distributed.sh up``, the Compose init container): one line per
service, exit 1 on the first broken one; ``--check-secrets`` also refuses placeholder or short secrets.
"""

from __future__ import annotations

import argparse
import os
import sys

from mlops.tools.preflight import MIN_SECRET_CHARS, TIMEOUT_S, planned_checks, run_checks, weak_secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlops preflight", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=["database", "broker", "result backend", "s3", "mlflow"],
        help="run only this check (repeatable); default: every service the environment names",
    )
    parser.add_argument("--bucket", action="append", default=[], help="another S3 bucket that must exist")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per service (default 5)")
    parser.add_argument(
        "--check-secrets",
        action="store_true",
        help=f"refuse placeholder secrets and any shorter than {MIN_SECRET_CHARS} characters",
    )
    args = parser.parse_args(argv)
    if args.check_secrets and (weak := weak_secrets(os.environ)):
        for line in weak:
            print(f"preflight: WEAK    {line}", file=sys.stderr)
        return 1
    checks = planned_checks(os.environ, extra_buckets=args.bucket, timeout=args.timeout)
    if args.only:
        checks = [c for c in checks if c.name in args.only]
    if not checks:
        print("preflight: nothing to check (no database, broker, s3:// root or MLflow configured)")
        return 0
    failed = 0
    for check, ok, error in run_checks(checks):
        if error is None:
            print(f"preflight: ok      {ok}")
        else:
            failed += 1
            print(f"preflight: FAILED  {check.name} (from {check.source}): {error}", file=sys.stderr)
    return 1 if failed else 0
