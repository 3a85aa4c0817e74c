"""``python -m mlops scenario [sensors]``: write the demo scenarios' landing files.

``scenario`` writes the churn scenario (``mlops.tools.scenario``), ``scenario sensors`` the hourly
sensor example (``mlops.tools.sensor_scenario``), into a landing root on local disk or S3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable

from mlops.tools.scenario import ScenarioConfig, run_scenario
from mlops.tools.sensor_scenario import SensorConfig, write_scenario


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: generate the scenario into a landing root; prints one summary line.

    ``sensors`` as the first argument generates the hourly sensor example instead
    (``mlops.sensor_scenario``).
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sensors"]:
        return sensors(argv[1:])
    args = parser().parse_args(argv)
    try:
        config = ScenarioConfig(
            start=args.start,
            end=args.end,
            rows_per_day=args.rows_per_day,
            seed=args.seed,
            format=args.format,
            bad_row_fraction=args.bad_row_fraction,
            corrupt_day=args.corrupt_day,
            missing_column_day=args.missing_column_day,
            shift_start=args.shift_start,
        )
    except ValueError as exc:
        print(f"scenario: {exc}", file=sys.stderr)
        return 2

    landing: str = args.landing
    from mlops.airflow.hooks.lake import storage_for  # the S3 side needs the Amazon provider, loaded lazily

    # Local writes are atomic (temporary file, then rename): a sensor never sees half a file.
    storage = storage_for(landing)
    write: Callable[[str, bytes], None] = storage.write_bytes
    exists: Callable[[str], bool] = storage.exists

    started = time.perf_counter()
    summary = run_scenario(config, write, exists=None if args.force else exists)
    print(
        f"scenario: wrote {len(summary.written)} day(s), skipped {len(summary.skipped)} existing, "
        f"{summary.rows} rows to {landing} in {time.perf_counter() - started:.1f}s"
    )
    return 0


def landing_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--landing",
        default=os.environ.get("MLOPS_LANDING_ROOT") or ".local/landing",
        help="local directory or s3://bucket/prefix (default: $MLOPS_LANDING_ROOT or .local/landing)",
    )


def sensors(argv: list[str] | None = None) -> int:
    """``scenario sensors``: generate the sensor scenario into a landing root; prints one summary line."""
    defaults = SensorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m mlops scenario sensors",
        description="Generate the hourly sensor scenario: one landing file per hour.",
    )
    landing_argument(parser)
    parser.add_argument("--start", default=defaults.start.date().isoformat(), help="first day (UTC)")
    parser.add_argument("--days", type=int, default=defaults.periods // 24, help="days of hourly readings")
    parser.add_argument("--machines", type=int, default=defaults.machines)
    parser.add_argument("--force", action="store_true", help="rewrite partitions whose file already exists")
    args = parser.parse_args(argv)
    try:
        start = dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.UTC)
        config = SensorConfig(start=start, periods=24 * args.days, machines=args.machines)
    except ValueError as exc:
        print(f"scenario sensors: {exc}", file=sys.stderr)
        return 2
    from mlops.airflow.hooks.lake import storage_for  # the S3 side needs the Amazon provider, loaded lazily

    storage = storage_for(args.landing)
    started = time.perf_counter()
    written = write_scenario(config, storage.write_bytes, None if args.force else storage.exists)
    print(
        f"scenario sensors: wrote {len(written)} hourly partition(s) of {config.machines} machines to "
        f"{args.landing} in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _day_or_none(value: str) -> dt.date | None:
    if value.strip().lower() == "none":
        return None
    return _day(value)


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def parser() -> argparse.ArgumentParser:
    defaults = ScenarioConfig()
    parser = argparse.ArgumentParser(
        prog="python -m mlops scenario",
        description="Generate the demo churn scenario: one landing file per day.",
    )
    landing_argument(parser)
    parser.add_argument("--start", type=_day, default=defaults.start)
    parser.add_argument("--end", type=_day, default=defaults.end, help="inclusive")
    parser.add_argument("--rows-per-day", type=int, default=defaults.rows_per_day)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--format", choices=["csv", "parquet"], default=defaults.format)
    parser.add_argument("--bad-row-fraction", type=float, default=defaults.bad_row_fraction)
    day_help = "a date, or 'none' to disable"
    parser.add_argument("--corrupt-day", type=_day_or_none, default=defaults.corrupt_day, help=day_help)
    parser.add_argument(
        "--missing-column-day", type=_day_or_none, default=defaults.missing_column_day, help=day_help
    )
    parser.add_argument("--shift-start", type=_day_or_none, default=defaults.shift_start, help=day_help)
    parser.add_argument("--force", action="store_true", help="rewrite days whose file already exists")
    return parser
