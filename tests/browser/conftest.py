"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import need

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    need(path is not None, "Chromium (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    # Package scope: the sync API keeps an event loop running on the main thread while it
    # is open, and tests elsewhere call asyncio.run, which refuses a running loop.
    with sync_playwright() as p:
        found = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield found
        finally:
            found.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A page and the console errors and page errors it reports."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    found = context.new_page()
    errors: list[str] = []
    found.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    found.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield found, errors
    finally:
        context.close()
