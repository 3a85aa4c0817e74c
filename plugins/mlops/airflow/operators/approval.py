"""A person approves a champion move: Airflow's human-in-the-loop request, shown under Required Actions.

The task waits in ``awaiting_input`` (no worker slot, no triggerer) until a reviewer answers in the
UI or the REST API, or the configured timeout applies its outcome. Only ``assigned_users`` may answer
when the YAML names them. The answer, the reviewer, the comment and who triggered the run are
recorded on the version; the task that moves the alias reads the answer (``review_need``) and moves
nothing unless an approval that counts is there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from mlops.airflow.operators.base import ModelOperator, reports_base_url
from mlops.airflow.operators.train_run import triggered_by
from mlops.training.review import APPROVE, REJECT, Review, md_text

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.config.pipeline import Approval

# What the task returns when it did not ask (approval off, or nothing to approve).
NOT_ASKED: dict[str, Any] = {"asked": False}


class ApprovalOperator(ModelOperator, HITLOperator):
    """Ask a person to approve a champion move; returns ``{"asked": bool, "review": Review}``.

    Subclasses say what is asked (``request``) and record the answer (``recorded``). The timeout and
    its outcome are read from the YAML when the task runs, like every other setting.
    """

    kind = "promotion"
    # subject and body are written when the task runs, from the gate's numbers: not templates.
    template_fields = ModelOperator.template_fields

    def __init__(self, *, pipeline: str, **kwargs: Any) -> None:
        # The DAG's own params (the trigger form's) are not questions for the reviewer.
        kwargs.pop("params", None)
        super().__init__(
            pipeline=pipeline,
            subject=f"{pipeline}: approve a {self.kind}",
            options=[APPROVE, REJECT],
            params={
                "comment": Param(
                    "",
                    type=["null", "string"],
                    maxLength=1000,
                    title="Comment",
                    description="why; recorded on the model version with your name",
                )
            },
            **kwargs,
        )

    @property
    def approval(self) -> Approval:
        return self.pipeline.promotion.approval

    def required(self) -> bool:
        """Whether the pipeline's YAML (as it is when the task runs) asks for a person."""
        return self.approval.enabled

    def request(self, context: Context) -> tuple[str, str, str] | None:
        """``(version, subject, body)`` to ask about, or None when there is nothing to approve."""
        raise NotImplementedError

    def asked(self, context: Context, version: str) -> None:
        """Called once the request is written, before the task waits."""

    def recorded(self, context: Context, review: Review) -> None:
        """Called with the answer."""

    def execute(self, context: Context) -> Any:
        if not self.required():
            return NOT_ASKED
        asking = self.request(context)
        if asking is None:
            return NOT_ASKED
        version, self.subject, self.body = asking
        self.defaults = [APPROVE if self.approval.on_timeout == "approve" else REJECT]
        self.response_timeout = self.approval.timeout_delta
        self.assigned_users = self.approval.assignees or None  # Airflow refuses anyone else's answer
        self.mlflow_url = self.mlflow.version_url(self.pipeline.name, version)
        self.asked(context, version)
        base = reports_base_url()
        page = self.generate_link_to_ui(task_instance=context["ti"], base_url=base) if base else None
        self.notify(
            context,
            "approval_requested",
            f"approval requested: {self.kind} of version {version}",
            version=version,
            details=[self.subject, f"waits up to {self.approval.timeout}, then: {self.approval.on_timeout}"],
            links={"Approve or reject": page, "MLflow version": self.mlflow_url},
        )
        self.log.info("waiting up to %s for a reviewer: %s", self.approval.timeout, self.subject)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        answer = super().execute_complete(context, event)
        review = Review.of({**answer, "timedout": event.get("timedout", False)})
        self.recorded(context, review)
        self.log.info("%s %s", self.kind, review.summary)
        return {"asked": True, "review": review.to_dict()}


class ApprovePromotionOperator(ApprovalOperator):
    """Between the gate and ``promote``: asks only when the gate decided to promote (never in a
    backfill, which never promotes). While it waits, the run's decision is recorded as
    ``awaiting_approval``: the days after it are published, scored and monitored with the champion
    in force, and an approved promotion takes effect from the first day no stage has acted on yet."""

    template_fields = (*ModelOperator.template_fields, "decision")

    def __init__(self, *, pipeline: str, decision: Any, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.decision = decision

    def request(self, context: Context) -> tuple[str, str, str] | None:
        from mlops.airflow.operators.train_run import plan_of
        from mlops.training.promotion import GateDecision
        from mlops.training.review import review_body

        decision = GateDecision.from_dict(self.decision)
        if not decision.promote:
            return None
        client, name = self.mlflow.client, self.pipeline.name
        links = {
            f"challenger v{decision.version} (MLflow)": self.mlflow.run_url(
                client.get_model_version(name, decision.version).run_id
            )
        }
        if decision.champion_version:
            links[f"champion v{decision.champion_version} (MLflow)"] = self.mlflow.run_url(
                client.get_model_version(name, decision.champion_version).run_id
            )
        body = review_body(
            name,
            self.pipeline.promotion,
            decision,
            plan_of(context),
            self.pipeline.windows.holdout,
            links,
        )
        current = decision.champion_version or "none"
        return decision.version, f"{name}: promote version {decision.version} (champion: {current})?", body

    def asked(self, context: Context, version: str) -> None:
        from mlops.airflow.operators.train_run import record_outcome

        client = self.mlflow.client
        client.set_model_version_tag(self.pipeline.name, version, "approval.promotion.requested", "true")
        client.set_model_version_tag(
            self.pipeline.name, version, "approval.promotion.triggered_by", triggered_by(context) or ""
        )
        record_outcome(
            self, context, "awaiting_approval", f"waiting for a reviewer (up to {self.approval.timeout})"
        )

    def recorded(self, context: Context, review: Review) -> None:
        from mlops.training.promotion import GateDecision

        version = GateDecision.from_dict(self.decision).version
        for key, value in review.tags("promotion").items():
            self.mlflow.client.set_model_version_tag(self.pipeline.name, version, key, value)


class ApproveRollbackOperator(ApprovalOperator):
    """Before ``rollback`` when ``promotion.approval.rollback`` is on: the same request, for moving
    ``champion`` back to the version the rollback would choose."""

    kind = "rollback"

    def required(self) -> bool:
        return self.approval.rollback

    def request(self, context: Context) -> tuple[str, str, str] | None:
        from mlops.registry.champion import CHAMPION, PromotionRefused, alias_version, rollback_target

        client, name, params = self.mlflow.client, self.pipeline.name, context["params"]
        requested = params.get("target_version")
        current = alias_version(client, name, CHAMPION)
        try:
            target = rollback_target(
                client, name, None if requested is None else str(requested), self.mlflow.signing_key
            )
        except PromotionRefused:
            return None  # the rollback itself fails with the reason; nothing to approve
        body = "\n".join(
            [
                f"**{name}**: roll `champion` back from version **{current}** to version **{target}**?",
                "",
                f"Reason: {md_text(params.get('reason') or 'none given')}",
                "",
                f"- [version {target} (MLflow)]({self.mlflow.version_url(name, target)})",
                f"- [version {current} (MLflow)]({self.mlflow.version_url(name, str(current))})",
            ]
        )
        self.rollback_target = target
        return target, f"{name}: roll champion back from version {current} to {target}?", body

    def recorded(self, context: Context, review: Review) -> None:
        from mlops.registry.champion import CHAMPION, alias_version, rollback_target

        client, name = self.mlflow.client, self.pipeline.name
        requested = context["params"].get("target_version")
        if requested is None and alias_version(client, name, CHAMPION) is None:
            return
        target = rollback_target(
            client, name, None if requested is None else str(requested), self.mlflow.signing_key
        )
        for key, value in review.tags("rollback").items():
            client.set_model_version_tag(name, target, key, value)
