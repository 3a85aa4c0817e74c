"""``python -m mlops index rebuild <pipeline>``: write the lake's index from the outputs already there.

For a lake written before the index existed (the Models view reads the index): each partition's
validation, drift and scoring outputs are read once and summarised as the stages would have.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    from mlops.airflow.hooks.lake import storage_for
    from mlops.settings import get_settings
    from mlops.tools.index_rebuild import rebuild

    parser = argparse.ArgumentParser(prog="python -m mlops index", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["rebuild"])
    parser.add_argument("pipeline")
    args = parser.parse_args(argv)
    settings = get_settings()
    if not (settings.pipelines_dir / f"{args.pipeline}.yaml").exists():
        parser.error(f"no pipeline {args.pipeline!r} under {settings.pipelines_dir}")
    written = rebuild(storage_for(settings.lake_root, settings.aws_conn_id), args.pipeline)
    print(", ".join(f"{n} {stage} record(s)" for stage, n in written.items()))
    return 0
