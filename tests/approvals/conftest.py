"""The approval tests' stack: an embedded stack of their own with ``promotion.approval`` on, settled
on a short history before the first test; the browser of the UI tests (``tests.ui.conftest``).

``APPROVALS_STACK=<state dir>:<airflow port>:<mlflow port>`` reuses a running stack (one started
with the users of ``stack_config.ENV``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tests.approvals.stack_config import DAYS, ENV, SCENARIO, SETTINGS
from tests.embedded_stack import EmbeddedStack, session_stack
from tests.ui.conftest import browser, page, pytest_runtest_makereport  # noqa: F401  (fixtures and hook)

SETTLE_TIMEOUT_S = int(os.environ.get("APPROVALS_SETTLE_TIMEOUT_S", "900"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """The tests' stack; ``APPROVALS_STACK=<state dir>:<airflow port>:<mlflow port>`` reuses a running one."""
    yield from session_stack(
        tmp_path_factory.mktemp("approvals") / "stack",
        os.environ.get("APPROVALS_STACK"),
        SETTINGS,
        SCENARIO,
        days=DAYS,
        settle_s=SETTLE_TIMEOUT_S,
        quiet_s=20,
        env=ENV,
    )
