"""Rollback: move ``champion`` back, audited like a promotion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.operators.base import ModelOperator, effective_from, logical_day

if TYPE_CHECKING:
    from airflow.sdk import Context


class RollbackOperator(ModelOperator):
    """Point ``champion`` at ``target_version`` (param; default: the champion before the current one).

    Refuses a version that does not exist, never cleared the promotion floor, or whose files do not
    match their signature (``mlops.signing``). The move takes
    effect as of the run's logical day; it fails, moving nothing, when the champion changed meanwhile
    or a decision later on the logical clock holds. Fires the ``<pipeline>.champion`` outlet.
    """

    template_fields = (*ModelOperator.template_fields, "approval")

    def __init__(self, *, pipeline: str, approval: Any = None, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.approval = approval  # the approval task's answer, when rollbacks ask for one

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.clock import ORDER
        from mlops.operators.approval import review_of
        from mlops.registry import (
            CHAMPION,
            ChampionChanged,
            Move,
            PromotionRefused,
            Superseded,
            alias_version,
            move_champion,
            rollback_target,
        )

        params, name = context["params"], self.pipeline.name
        client = self.mlflow.client
        requested = params.get("target_version")
        current = alias_version(client, name, CHAMPION)
        try:
            target = rollback_target(client, name, None if requested is None else str(requested))
        except PromotionRefused as exc:
            raise AirflowFailException(str(exc)) from None
        if target == current:
            raise AirflowFailException(f"{name}: version {target} is already the champion")
        self.refuse_unverified(target)
        review = review_of(self.approval)
        if review is not None and not review.approved:
            raise AirflowSkipException(f"not rolled back: {review.summary}; champion stays version {current}")
        reason = f"rollback: {params.get('reason') or 'no reason given'}" + (
            f"; {review.summary}" if review else ""
        )
        move = Move(
            model=name,
            version=target,
            previous=current,
            reason=reason,
            airflow_run_id=context["run_id"],
            metrics={},
            effective_day=effective_from(self, logical_day(context, self.pipeline.grain)),
            order=ORDER["rollback"],
            kind="rollback",
        )
        try:
            move_champion(client, move, expected=current)
        except (ChampionChanged, Superseded) as exc:
            raise AirflowFailException(str(exc)) from None
        self.mlflow_url = self.mlflow.version_url(name, target)
        extra = {
            "version": target,
            "previous": current,
            "reason": reason,
            "run_id": context["run_id"],
            "effective_day": move.effective_day,
        }
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.info("champion rolled back from version %s to %s", current, target)
        self.announce_move(context, move)
        return extra
