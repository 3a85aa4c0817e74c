"""Ingest operators: wait for a day's source files, land them in raw, gate them into validated."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from mlops.airflow.operators.base import PipelineOperator, TaskSetLink, reports_base_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.ingest.stage import GateReport


class DataDocsLink(TaskSetLink):
    """The task's Great Expectations Data Docs page for its partition, served by the API server."""

    name = "Data Docs"
    attribute = "data_docs_url"


class WaitForSourceSensor(PipelineOperator, BaseSensorOperator):
    """Wait (in reschedule mode by default) until the day's source files arrive and are complete.

    Complete by the pipeline's ``source.ready`` rule (``mlops.ingest.stage.readiness``): the producer's
    marker file, or (the default) a listing that did not change between two pokes or for
    ``source.settle_seconds``. The listing a poke saw is kept in the task's state store, which
    outlives the reschedules between pokes. Files that cannot be landed (a link, a file of another
    kind) fail the task at once, naming them. On timeout (``timeout``, from the pipeline's
    ``source.wait_timeout_minutes``) it fails with a message naming the expected path.
    """

    # A second look within one poke, when the files will have been quiet for settle_seconds this
    # soon: a worker slot held a few seconds beats a reschedule of a whole poke interval.
    inline_wait_s = 10.0
    _state_key = "landing_listing"

    def __init__(self, *, pipeline: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(pipeline=pipeline, **kwargs)
        self._seen: dict[str, Any] = {}  # without a state store (poke mode in tests): this instance
        self.last_why = "not looked yet"

    def poke(self, context: Context) -> bool:
        from mlops.ingest.stage import (
            LandingRefused,
            SourceMissing,
            check_listing,
            list_source,
            readiness,
            source_dir,
        )

        ds, _, _ = self.interval(context)
        storage = self.landing_hook().storage
        listing = list_source(storage, self.pipeline, ds)
        verdict = readiness(listing, self._recall(context, ds), self.pipeline.source, time.time())
        if (
            not verdict.ready
            and verdict.look_again_in is not None
            and verdict.look_again_in <= self.inline_wait_s
        ):
            time.sleep(max(verdict.look_again_in, 0.0))
            previous, listing = listing.signature(), list_source(storage, self.pipeline, ds)
            verdict = readiness(listing, previous, self.pipeline.source, time.time())
        self.last_why = verdict.why
        if not verdict.ready:
            self._remember(context, ds, listing.signature())
            self.log.info("waiting for %s: %s", storage.uri(source_dir(ds)), verdict.why)
            return False
        try:
            paths = check_listing(listing, storage, self.pipeline)
        except (LandingRefused, SourceMissing) as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("%d file(s) complete in %s: %s", len(paths), storage.uri(source_dir(ds)), verdict.why)
        return True

    def _recall(self, context: Context, ds: str) -> dict[str, Any] | None:
        store = context.get("task_state_store")
        seen = store.get(self._state_key) if store is not None else self._seen.get(self._state_key)
        return seen["listing"] if isinstance(seen, dict) and seen.get("ds") == ds else None

    def _remember(self, context: Context, ds: str, listing: dict[str, Any]) -> None:
        seen = {"ds": ds, "listing": listing}
        store = context.get("task_state_store")
        if store is not None:
            store.set(self._state_key, seen)
        else:
            self._seen[self._state_key] = seen

    def execute(self, context: Context) -> Any:
        from mlops.ingest.stage import source_dir

        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            ds, _, _ = self.interval(context)
            where = self.landing_hook().uri(source_dir(ds))
            source = self.pipeline.source
            rule = f"the ready marker {source.ready_marker}" if source.ready == "marker" else "stable files"
            raise AirflowSensorTimeout(
                f"no complete {source.format} files at {where} within {source.wait_timeout_minutes} "
                f"minutes (source.ready: {source.ready}, waiting for {rule}; last look: {self.last_why})"
            ) from None


class LandPartitionOperator(PipelineOperator):
    """Copy the day's source files unchanged into ``raw/ds=...``; returns the raw partition's URI.

    A folder that cannot be landed fails at once; a file that changed while it was copied is
    retried (``SourceChanged``): the writer was still at work.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.ingest.stage import LandingRefused, SourceMissing, land

        ds, _, _ = self.interval(context)
        try:
            return land(self.landing_hook().storage, self.lake_hook().storage, self.pipeline, ds)
        except (LandingRefused, SourceMissing) as exc:
            raise AirflowFailException(f"{self.pipeline.name} {ds}: {exc}") from None


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
        from mlops.airflow.hooks.gx import GreatExpectationsHook
        from mlops.config.pipeline import ConfigError
        from mlops.ingest.stage import DATA_DOCS, PartitionRejected, gate
        from mlops.ingest.suite import load_suite
        from mlops.lake.report_pages import report_url
        from mlops.lake.storage import PartitionMissing

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
        for warning in [*report.warnings, *report.notes.lines]:
            self.log.warning("%s", warning)
        self._notify_quarantine(context, report)
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

    def _notify_quarantine(self, context: Context, report: GateReport) -> None:
        """``rows_quarantined`` when a passing day quarantined more than ``notifications.quarantine_share``
        of its rows, or its files share keys: the day is in, but a delivery may be wrong."""
        share = report.quarantined_share
        if share <= self.pipeline.notifications.quarantine_share and not report.notes.shared_keys:
            return
        self.notify(
            context,
            "rows_quarantined",
            f"day {report.ds}: {report.quarantined} of {report.rows} rows quarantined ({share:.2%})",
            day=report.ds,
            details=[*report.warnings, *report.notes.lines],
            links={"Data Docs": self.data_docs_url},
        )
