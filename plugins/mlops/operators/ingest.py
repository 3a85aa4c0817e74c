"""Ingest operators: wait for a day's source files, land them in raw, gate them into validated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from mlops.operators.base import PipelineOperator, TaskSetLink, reports_base_url

if TYPE_CHECKING:
    from airflow.sdk import Context


class DataDocsLink(TaskSetLink):
    """The task's Great Expectations Data Docs page for its partition, served by the API server."""

    name = "Data Docs"
    attribute = "data_docs_url"


class WaitForSourceSensor(PipelineOperator, BaseSensorOperator):
    """Wait (in reschedule mode by default) until the day's source files arrive.

    On timeout (``timeout``, from the pipeline's ``source.wait_timeout_minutes``) it fails with a
    message naming the expected path.
    """

    def __init__(self, *, pipeline: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(pipeline=pipeline, **kwargs)

    def poke(self, context: Context) -> bool:
        from mlops.ingestion import WrongFormat, source_dir, source_files

        ds, _, _ = self.interval(context)
        source = self.landing_hook()
        try:
            found = source_files(source.storage, self.pipeline, ds)
        except WrongFormat as exc:
            raise AirflowFailException(str(exc)) from None
        if not found:
            self.log.info(
                "waiting for %s files in %s", self.pipeline.source.format, source.uri(source_dir(ds))
            )
        return bool(found)

    def execute(self, context: Context) -> Any:
        from mlops.ingestion import source_dir

        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            ds, _, _ = self.interval(context)
            where = self.landing_hook().uri(source_dir(ds))
            raise AirflowSensorTimeout(
                f"no {self.pipeline.source.format} file arrived at {where} within "
                f"{self.pipeline.source.wait_timeout_minutes} minutes"
            ) from None


class LandPartitionOperator(PipelineOperator):
    """Copy the day's source files unchanged into ``raw/ds=...``; returns the raw partition's URI."""

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.ingestion import land

        ds, _, _ = self.interval(context)
        return land(self.landing_hook().storage, self.lake_hook().storage, self.pipeline, ds)


class ValidatePartitionOperator(PipelineOperator):
    """Validate ``raw/ds=...`` with the pipeline's suite; clean rows to validated, bad rows to quarantine.

    On success the task's outlet (``<pipeline>.validated``) carries ``{ds, rows, quarantined, path}``.
    A rejected or unreadable partition fails the task without retries: the same bytes would fail again.
    """

    operator_extra_links = (DataDocsLink(),)

    def __init__(self, *, pipeline: str, **kwargs: Any) -> None:
        super().__init__(pipeline=pipeline, **kwargs)
        self.data_docs_url: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.config import ConfigError
        from mlops.hooks.gx import GreatExpectationsHook
        from mlops.ingestion import DATA_DOCS, PartitionRejected, gate
        from mlops.lake import PartitionMissing
        from mlops.report_pages import report_url
        from mlops.suite import load_suite

        ds, start, end = self.interval(context)
        try:
            suite = load_suite(self.pipeline, self.settings.include_dir)
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from None  # a retry would read the same stale file
        try:
            report = gate(
                self.lake_hook().storage,
                self.pipeline,
                suite,
                ds,
                interval_start=start,
                interval_end=end,
                period=self.pipeline.grain.describe(ds),
                context=GreatExpectationsHook().context,
            )
        except PartitionRejected as exc:
            self.data_docs_url = report_url(self.pipeline.name, ds, DATA_DOCS, reports_base_url())
            self.notify(
                context,
                "rejected_day",
                f"day {ds} rejected by validation",
                day=ds,
                details=[str(exc)[:1500]],
                links={"Data Docs": self.data_docs_url},
            )
            raise AirflowFailException(str(exc)) from None
        except PartitionMissing as exc:
            raise AirflowFailException(f"{self.pipeline.name} {ds}: {exc}") from None
        self.data_docs_url = report_url(self.pipeline.name, ds, DATA_DOCS, reports_base_url())
        for warning in report.warnings:
            self.log.warning("%s", warning)
        self.log.info(
            "%s %s: %d rows, %d validated, %d quarantined",
            self.pipeline.name,
            ds,
            report.rows,
            report.validated,
            report.quarantined,
        )
        for outlet in self.outlets:
            # Keyed by the day: Airflow starts one score and one monitor run per key, where events
            # without a key could be merged into, or lost from, a run created late.
            event = context["outlet_events"][outlet]
            event.extra = report.asset_extra()
            event.add_partitions(ds)
        return report.asset_extra()
