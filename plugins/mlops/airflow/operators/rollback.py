"""Rollback: move ``champion`` back, audited like a promotion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.airflow.operators.base import ModelOperator, effective_from, logical_day

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.training.review import Review


class RollbackOperator(ModelOperator):
    """Point ``champion`` at ``target_version`` (param; default: the champion before the current one).

    Refuses a version that does not exist, has no signed gate decision that cleared the promotion
    floor, or whose files do not match their signature (``mlops.signing``). The move takes
    effect as of the run's logical day; it fails, moving nothing, when the champion changed meanwhile
    or a decision later on the logical clock holds. Fires the ``<pipeline>.champion`` outlet.
    """

    template_fields = (*ModelOperator.template_fields, "approval")

    def __init__(self, *, pipeline: str, approval: Any = None, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.approval = approval  # the approval task's answer, when rollbacks ask for one

    def review(self, context: Context, target: str) -> Review | None:
        """The review deciding the rollback. With ``promotion.approval.rollback`` on, a missing,
        unreadable or refused approval fails the task, moving nothing; off, only a rejection counts."""
        from mlops.airflow.operators.train_run import review_need
        from mlops.training.review import ApprovalMissing, counted_review, given_review

        if not self.pipeline.promotion.approval.rollback:
            return given_review(self.approval)
        subject = f"rolling {self.pipeline.name} back to version {target}"
        try:
            return counted_review(
                self.approval,
                review_need(self.pipeline, context, subject=subject, setting="promotion.approval.rollback"),
            )
        except ApprovalMissing as exc:
            raise AirflowFailException(str(exc)) from None

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.clock.logical import ORDER
        from mlops.registry.champion import CHAMPION, Move, PromotionRefused, alias_version, rollback_target

        params, name = context["params"], self.pipeline.name
        client, key = self.mlflow.client, self.mlflow.signing_key
        requested = params.get("target_version")
        current = alias_version(client, name, CHAMPION)
        try:
            target = rollback_target(client, name, None if requested is None else str(requested), key)
        except PromotionRefused as exc:
            raise AirflowFailException(str(exc)) from None
        if target == current:
            raise AirflowFailException(f"{name}: version {target} is already the champion")
        review = self.review(context, target)
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
        return self.make_move(context, move, superseded_fails=True)
