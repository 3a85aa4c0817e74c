"""``python -m mlops quarantine show|export|submit|replay <pipeline> ...``: act on quarantined rows.

``show`` lists each day's quarantine (rows, share, reasons), or one day's reasons with sample rows;
``export`` writes a day's quarantined rows as CSV; ``submit`` checks an edited export and stores it;
``replay`` re-validates the quarantined rows with a fix (a name under ``fixes:``, ``submitted`` or
``none``) and commits what passes. A replay from here does not publish the day again: the
``<pipeline>_replay_quarantine`` DAG does both, so that score and monitor recompute the day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.config.pipeline import NO_FIX, ConfigError, load_pipeline
from mlops.settings import get_settings

if TYPE_CHECKING:
    from mlops.config.pipeline import Pipeline
    from mlops.lake.storage import Storage
    from mlops.quarantine.summary import View


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlops quarantine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="the quarantine of every day, or one day's reasons and samples")
    show.add_argument("pipeline")
    show.add_argument("--partition", help="one day (YYYY-MM-DD): its reasons with sample rows")
    show.add_argument("--samples", type=int, default=3, help="sample rows per reason (default 3)")
    export = commands.add_parser("export", help="a day's quarantined rows as CSV")
    export.add_argument("pipeline")
    export.add_argument("--partition", required=True)
    export.add_argument("--out", type=Path, help="the CSV file to write (default: standard output)")
    submit = commands.add_parser("submit", help="check an edited export and store it for the replay")
    submit.add_argument("pipeline")
    submit.add_argument("--partition", required=True)
    submit.add_argument("file", type=Path)
    replay = commands.add_parser(
        "replay", help="re-validate a day's quarantine with a fix; commit what passes"
    )
    replay.add_argument("pipeline")
    replay.add_argument("--partition", required=True, action="append", help="a day; repeat for more")
    replay.add_argument(
        "--fix", default=NO_FIX, help="a fix under fixes:, 'submitted' (the stored file) or 'none' (default)"
    )
    return parser


def render(views: list[View], *, detailed: bool) -> str:
    """The ``show`` text: a line per day, and with ``detailed`` each reason's samples."""
    lines = []
    for view in views:
        lines.append(f"{view.ds}: {view.quarantined} of {view.rows} rows quarantined ({view.share:.2%})")
        for reason in view.reasons:
            lines.append(f"  {reason.rows:>6}  {reason.check}")
            if detailed:
                lines.extend(f"          {sample}" for sample in reason.samples)
        if detailed:
            lines.extend(
                f"  replayed: {r.get('rows')} row(s) by {r.get('fix')} in run {r.get('run_id')}"
                for r in view.replays
            )
    return "\n".join(lines) + "\n" if lines else "no quarantined day\n"


def _lake() -> Storage:
    from mlops.airflow.hooks.lake import storage_for

    settings = get_settings()
    return storage_for(settings.lake_root, settings.aws_conn_id)


def run(args: argparse.Namespace, lake: Storage, pipeline: Pipeline) -> int:
    from mlops.quarantine import replay, submission, summary

    if args.command == "show":
        if args.partition is None:
            sys.stdout.write(render(summary.history(lake, pipeline), detailed=False))
        else:
            quarantine = summary.read_quarantine(lake, pipeline, pipeline.grain.key(args.partition))
            sys.stdout.write(render([summary.describe(quarantine, args.samples)], detailed=True))
        return 0
    if args.command == "export":
        quarantine = summary.read_quarantine(lake, pipeline, pipeline.grain.key(args.partition))
        data = submission.export_csv(quarantine, pipeline)
        if args.out is None:
            sys.stdout.write(data.decode())
        else:
            args.out.write_bytes(data)
            print(f"{len(quarantine.frame)} quarantined row(s) of {quarantine.ds} written to {args.out}")
        return 0
    if args.command == "submit":
        quarantine = summary.read_quarantine(lake, pipeline, pipeline.grain.key(args.partition))
        done = submission.submit(
            lake, pipeline, quarantine, args.file.read_bytes(), source=str(args.file), by=getpass.getuser()
        )
        print(
            f"{done.rows} row(s) of {done.ds} submitted ({done.changed} changed) to {done.path}; replay "
            f"them with: python -m mlops quarantine replay {pipeline.name} --partition {done.ds} --fix submitted"
        )
        return 0
    run_id = f"cli__{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"
    from mlops.ingest.suite import load_suite

    suite = load_suite(pipeline, get_settings().include_dir)
    for report in replay.replay_partitions(
        lake, pipeline, suite, args.partition, fix=args.fix, run_id=run_id
    ):
        print(
            f"{report.ds}: {report.passed} of {report.candidates} quarantined row(s) passed with {report.fix} "
            f"and joined validated (attempt {report.attempt or 'unchanged'}); {report.quarantined} stay "
            f"quarantined; {report.rows} landed = {report.validated} validated + {report.quarantined} quarantined"
        )
        for check, count in report.reasons.items():
            print(f"  still failing: {count:>6}  {check}")
    print(
        f"score and monitor recompute a replayed day on its <pipeline>.validated event: replay from the "
        f"{pipeline.name}_replay_quarantine DAG, or re-run {pipeline.name}_score and {pipeline.name}_monitor "
        "for the day"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    from mlops.lake.storage import PartitionMissing
    from mlops.quarantine.replay import ReplayRefused
    from mlops.quarantine.submission import SubmissionRejected

    args = _parser().parse_args(argv)
    try:
        pipeline = load_pipeline(get_settings().pipelines_dir / f"{args.pipeline}.yaml")
        return run(args, _lake(), pipeline)
    except (ConfigError, PartitionMissing, ReplayRefused, SubmissionRejected, ValueError, OSError) as exc:
        print(f"quarantine {args.command}: {exc}", file=sys.stderr)
        return 1
