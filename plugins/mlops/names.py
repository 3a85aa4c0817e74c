"""The names other systems know a pipeline by: its DAG ids and its Asset names (DESIGN's contracts).

Pure strings, no imports: the DAG kit, the operators, the clock's messages and the report plugin
all spell a DAG id or an asset through here, so renaming one is a change in one place.
"""

from __future__ import annotations

from typing import Literal

Stage = Literal["ingest", "train", "monitor", "score", "rollback", "replay_quarantine", "probe"]
STAGES: tuple[Stage, ...] = ("ingest", "train", "monitor", "score", "rollback", "replay_quarantine", "probe")
AssetKind = Literal["validated", "drift", "champion"]


def dag_id(pipeline: str, stage: Stage) -> str:
    """``<pipeline>_<stage>``: ``churn_ingest``, ``churn_train``, ..."""
    return f"{pipeline}_{stage}"


def asset_name(pipeline: str, kind: AssetKind) -> str:
    """``<pipeline>.validated`` (a partition passed the gate), ``<pipeline>.drift`` (drift above
    threshold), ``<pipeline>.champion`` (a promotion or a rollback moved the alias)."""
    return f"{pipeline}.{kind}"
