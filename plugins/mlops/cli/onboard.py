"""``python -m mlops``: onboard a dataset (``init``) and check a pipeline without Airflow (``check``).

``init <sample> --name N --target T [--out PATH]`` drafts ``include/pipelines/N.yaml`` from a sample
file (CSV or Parquet, a local path or ``s3://`` through the Amazon provider's S3 hook) and
validates the sample with the suite drafted from it. ``check <pipeline> [--day DS]`` loads the
config, the committed suite and one landed partition with the DAGs' own code and messages.
Exit status: 0 when nothing is wrong, 1 when something is, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def read_uri(uri: str, aws_conn_id: str) -> bytes:
    """The bytes of a local file or an ``s3://`` object (through the Amazon provider's S3 hook)."""
    if not uri.startswith("s3://"):
        return Path(uri).read_bytes()
    from mlops.airflow.hooks.lake import S3Storage  # loaded only for an S3 sample

    folder, name = uri.rsplit("/", 1)
    return S3Storage(folder, aws_conn_id).read_bytes(name)


def _init(args: argparse.Namespace) -> int:
    from mlops.config.pipeline import ConfigError, parse_pipeline, pipeline_warnings
    from mlops.onboard.check import quarantine_summary
    from mlops.onboard.draft import draft_pipeline, read_sample, render_yaml, validate_sample
    from mlops.settings import get_settings

    started = time.perf_counter()
    settings = get_settings()
    out = args.out or settings.pipelines_dir / f"{args.name}.yaml"
    if out.exists() and not args.force:
        print(f"error: {out} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    try:
        sample, fmt = read_sample(read_uri(args.sample, settings.aws_conn_id), args.sample, args.format)
        draft = draft_pipeline(sample, name=args.name, target=args.target, fmt=fmt)
        text = render_yaml(draft)
        pipeline = parse_pipeline(draft.document, source=str(out))
    except (ValueError, OSError) as exc:  # ConfigError and BadInputError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} ({len(pipeline.columns)} columns, {len(pipeline.features)} features)")
    for note in draft.notes:
        print(f"  {note}")
    for warning in pipeline_warnings(pipeline):
        print(f"warning: {warning}")
    assert draft.interval is not None
    try:
        outcome = validate_sample(sample, pipeline, draft.interval)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"the sample against the drafted suite: {outcome.message}")
    for line in quarantine_summary(outcome.quarantined):
        print(f"  would be quarantined: {line}")
    print(f"next: review {out}, then `make suites` and `python -m mlops check {args.name}`")
    print(f"({time.perf_counter() - started:.1f}s)")
    return 0 if outcome.passed else 1


def _check(args: argparse.Namespace) -> int:
    from mlops.onboard.check import check_pipeline
    from mlops.settings import get_settings

    started = time.perf_counter()
    from mlops.airflow.hooks.lake import storage_for  # the S3 side needs the Amazon provider, loaded lazily

    settings = get_settings()
    report = check_pipeline(
        args.pipeline,
        settings,
        open_landing=lambda root: storage_for(root, settings.aws_conn_id),
        day=args.day,
        progress=print,
    )
    for line in report.lines:
        print(line, file=sys.stderr if line.startswith("error:") else sys.stdout)
    verdict = "ok" if report.ok else f"{len(report.errors)} error(s)"
    print(
        f"check {args.pipeline}: {verdict}, {len(report.warnings)} warning(s) ({time.perf_counter() - started:.1f}s)"
    )
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="draft a pipeline YAML from a sample file")
    init.add_argument("sample", help="a CSV (.csv, .csv.gz) or Parquet file: a local path or s3://bucket/key")
    init.add_argument("--name", required=True, help="the pipeline's name (lowercase, digits, _)")
    init.add_argument("--target", required=True, help="the 0/1 column to predict")
    init.add_argument(
        "--out", type=Path, help="where to write the YAML (default: include/pipelines/<name>.yaml)"
    )
    init.add_argument("--format", choices=["csv", "parquet"], help="default: from the file name")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    check = commands.add_parser("check", help="check a pipeline's config, suite and one landed partition")
    check.add_argument("pipeline", help="the pipeline's name (include/pipelines/<name>.yaml)")
    check.add_argument("--day", help="the partition to read (YYYY-MM-DD); default: the newest landed")
    args = parser.parse_args(argv)
    # GX logs its plugin registry at INFO once Airflow's logging is set up: noise in a terminal.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return _init(args) if args.command == "init" else _check(args)
