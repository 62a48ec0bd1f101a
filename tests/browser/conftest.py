"""A real Chromium driven by Playwright against a dashboard served on a loopback port.

Debian's `chromium` package is the browser (`apt-get install -y chromium`); Playwright never
downloads one of its own. Without it these tests skip, saying how to get it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def _chromium() -> str | None:
    given = os.environ.get("SEGQL_CHROMIUM")
    if given:
        return given
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


# Module scope: Playwright's sync API runs an event loop in this thread while it is open, and
# tests after these ones may start loops of their own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = _chromium()
    if path is None:
        pytest.skip(
            "no Chromium found: install Debian's package (`apt-get install -y chromium`) or set "
            "SEGQL_CHROMIUM to a Chromium binary to run the dashboard's browser tests"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is missing: pip install '.[test]'"
    )
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()
