"""GreatExpectationsHook: the Great Expectations context, built when first asked for, never at parse time."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext


class GreatExpectationsHook(BaseHook):
    """A GX data context: ephemeral by default, or a file context rooted at ``context_root_dir``.

    Suites come from the pipeline's generated JSON, so an ephemeral context needs nothing on disk;
    point ``context_root_dir`` at a GX project to keep its stores and Data Docs sites as well.
    """

    hook_name = "Great Expectations"

    def __init__(self, context_root_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context_root_dir = context_root_dir

    @cached_property
    def context(self) -> AbstractDataContext:
        from mlops.ingest.validation import gx_context

        return gx_context(self.context_root_dir)
