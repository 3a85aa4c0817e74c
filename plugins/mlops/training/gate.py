"""The gate stage of a train run: challenger against the champion as of the run's day.

``gate_challenger`` scores both on the challenger's holdout days, refuses a comparison on days
either model was fitted on, applies ``promotion.decide`` and the backfill policy, and records the
decision on the challenger's version. The operator hands its outcome to ``promote``. No Airflow
import; takes an ``MlflowClient`` and the lake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops.lake.storage import Storage
from mlops.training.plan import TrainingPlan
from mlops.training.promotion import GateDecision, decide, holdout_leak

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops.config.pipeline import Pipeline
    from mlops.registry.signing import SigningKey


def gate_challenger(
    client: MlflowClient,
    lake: Storage,
    pipeline: Pipeline,
    plan: TrainingPlan,
    version: str,
    *,
    force: bool,
    load: Callable[[str], Any],
    key: SigningKey,
) -> GateDecision:
    """``load(version)`` is the version's model, verified against its signature (``MlflowHook.load_model``);
    the decision is recorded signed with ``key``."""
    import pandas as pd

    from mlops.clock.window import load_frames
    from mlops.registry.champion import record_gate, trained_span
    from mlops.training.experiment import holdout_metrics

    cfg, name = pipeline.promotion, pipeline.name
    trained, holdout_days = plan.split(pipeline.windows.holdout)
    champion_version = plan.champion_at_start
    spans = {"the challenger": (trained[0], trained[-1]) if trained else None}
    if champion_version:
        spans[f"champion version {champion_version}"] = trained_span(
            client, name, champion_version, pipeline.windows.holdout
        )
    leak = holdout_leak(holdout_days, spans)
    holdout = pd.concat(
        load_frames(lake, pipeline, holdout_days, whole_window=False, attempts=plan.attempts).values(),
        ignore_index=True,
    )
    challenger = holdout_metrics(load(version), pipeline, holdout)
    champion = None
    if champion_version and not leak:
        champion = holdout_metrics(load(champion_version), pipeline, holdout)
    decision = GateDecision.of(
        decide(challenger, champion, cfg, force=force),
        version=version,
        champion_version=champion_version,
        challenger=challenger,
        champion=champion,
        leak=leak,
        backfill=plan.trigger.backfill and not cfg.allow_backfill_promotion,
    )
    record_gate(client, name, decision, floor=cfg.floor, metric=cfg.primary_metric, key=key)
    return decision
