"""The approval tests' stack: an embedded stack of their own with ``promotion.approval`` on, settled
on a short history before the first test; the browser of the UI tests (``tests.ui.conftest``).

``APPROVALS_STACK=<state dir>:<airflow port>:<mlflow port>`` reuses a running stack.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.approvals.stack_config import DAYS, SCENARIO, SETTINGS
from tests.embedded_stack import EmbeddedStack
from tests.ui.conftest import browser, page, pytest_runtest_makereport  # noqa: F401  (fixtures and hook)

SETTLE_TIMEOUT_S = int(os.environ.get("APPROVALS_SETTLE_TIMEOUT_S", "900"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    if reuse := os.environ.get("APPROVALS_STACK"):
        state, airflow_port, mlflow_port = reuse.rsplit(":", 2)
        embedded = EmbeddedStack(Path(state), SETTINGS, SCENARIO)
        embedded.env.update(AIRFLOW_PORT=airflow_port, MLFLOW_PORT=mlflow_port)
        yield embedded
        return
    embedded = EmbeddedStack(
        tmp_path_factory.mktemp("approvals") / "stack", SETTINGS, SCENARIO, parallelism=4
    )
    try:
        embedded.start()
        embedded.wait_until_quiet(DAYS, SETTLE_TIMEOUT_S, quiet_s=20)
        yield embedded
    finally:
        embedded.stop()
