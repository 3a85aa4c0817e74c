"""Quarantine replay operators: plan the days of a replay, then replay and re-publish each one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.airflow.operators.base import PipelineOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class PlanReplayOperator(PipelineOperator):
    """The days of the form's ``partitions``, oldest first, each with a quarantine to replay.

    Returns them (a list of keys, through XCom) for ``ReplayPartitionOperator`` to map over; fails,
    without retries, naming the days that were never validated (a rejected day is re-run, not replayed).
    """

    def execute(self, context: Context) -> list[str]:
        from mlops.quarantine.replay import ReplayRefused, replay_plan

        try:
            return replay_plan(self.lake_hook().storage, self.pipeline, list(context["params"]["partitions"]))
        except ReplayRefused as exc:
            raise AirflowFailException(str(exc)) from None


class ReplayPartitionOperator(PipelineOperator):
    """Replay one day's quarantine with the form's ``fix``; ``ds`` is templated (mapped).

    When rows passed, the day's new validated attempt is published again: the outlet
    (``<pipeline>.validated``) carries the gate's keys and ``replay`` (fix, run, rows, attempt), keyed
    by the day, so score and monitor recompute that day alone. Mapped one at a time
    (``max_active_tis_per_dagrun=1``), the days are published in order.
    """

    template_fields = (*PipelineOperator.template_fields, "ds")

    def __init__(self, *, pipeline: str, ds: str, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.ds = ds

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.airflow.hooks.gx import GreatExpectationsHook
        from mlops.config.pipeline import ConfigError
        from mlops.ingest.suite import load_suite
        from mlops.quarantine.fixes import KeyChanged
        from mlops.quarantine.replay import ReplayRefused, replay_partition
        from mlops.quarantine.submission import SubmissionRejected

        fix = str(context["params"]["fix"])
        try:
            report = replay_partition(
                self.lake_hook().storage,
                self.pipeline,
                load_suite(self.pipeline, self.settings.include_dir),
                self.ds,
                fix=fix,
                run_id=context["run_id"],
                context=GreatExpectationsHook().context,
            )
        except (ConfigError, ReplayRefused, SubmissionRejected, KeyChanged) as exc:
            raise AirflowFailException(f"{self.pipeline.name} {self.ds}: {exc}") from None
        self.log.info(
            "%s %s: %d of %d quarantined rows passed with %s; %d stay quarantined (%s); "
            "%d landed = %d validated + %d quarantined",
            self.pipeline.name,
            self.ds,
            report.passed,
            report.candidates,
            report.fix,
            report.quarantined,
            report.reasons or "no reason left",
            report.rows,
            report.validated,
            report.quarantined,
        )
        if not report.published:  # a skipped task emits no event: nothing downstream to recompute
            raise AirflowSkipException(
                f"{self.pipeline.name} {self.ds}: no row passed, validated unchanged; not published again"
            )
        for outlet in self.outlets:
            event = context["outlet_events"][outlet]
            event.extra = report.asset_extra()
            event.add_partitions(self.ds)
        return report.asset_extra()
