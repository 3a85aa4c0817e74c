"""The browser tests' stack and browser: an embedded stack of their own, Chromium through Playwright.

The stack (``tests.embedded_stack``) catches up on a short history (``stack_config``) and the tests
start once it is quiet. The browser is Debian's ``chromium`` (``make test-ui`` installs it when
missing; Playwright's own browser download is not needed), headless, logged in through the login
page like a person. A failing test leaves a screenshot in ``UI_SHOTS_DIR`` (default: a temporary
folder, printed).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.embedded_stack import PASSWORD, USER, EmbeddedStack, session_stack
from tests.ui.stack_config import DAYS, SCENARIO, SETTINGS

SETTLE_TIMEOUT_S = int(os.environ.get("UI_SETTLE_TIMEOUT_S", "1500"))
SHOTS = Path(os.environ.get("UI_SHOTS_DIR") or tempfile.mkdtemp(prefix="mlops-ui-shots-"))


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    pytest.fail("no chromium on PATH: `make test-ui` installs Debian's chromium package (apt-get)")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """The tests' stack; ``UI_STACK=<state dir>:<airflow port>:<mlflow port>`` reuses a running one."""
    yield from session_stack(
        tmp_path_factory.mktemp("ui") / "stack",
        os.environ.get("UI_STACK"),
        SETTINGS,
        SCENARIO,
        days=DAYS,
        settle_s=SETTLE_TIMEOUT_S,
        quiet_s=30,
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.when == "call" and report.failed and (page := item.funcargs.get("page")) is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / f"{item.name}.png".replace("/", "_")
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot of the failing page: {shot} ({page.url})", file=sys.stderr)
        except Exception as exc:  # the page may be gone; the failure itself is what matters
            print(f"\nno screenshot: {exc}", file=sys.stderr)
    return report


@pytest.fixture
def page(browser: Any, stack: EmbeddedStack) -> Iterator[Any]:
    """A fresh browser context, signed in through Airflow's login page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=stack.airflow_url)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.goto("/")
    tab.get_by_label("Username").fill(USER)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(lambda url: "/auth/login" not in url)
    yield tab
    context.close()
