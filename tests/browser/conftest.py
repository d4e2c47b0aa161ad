"""Playwright driving Debian's Chromium (never a downloaded browser) against live_server.

Screenshots land in test-results/ so a person can look at what the tests saw.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import chromium_path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by
    # the test itself (not the server) are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


class PageWatch:
    """A page plus what went wrong on it: CSP violations and other console errors."""

    def __init__(self, page) -> None:
        self.page = page
        self.csp_violations: list[str] = []
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.csp_violations.append(text)
        else:
            self.errors.append(text)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    watch = PageWatch(context.new_page())
    yield watch
    context.close()


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="en-US", is_mobile=True, has_touch=True
    )
    watch = PageWatch(context.new_page())
    yield watch
    context.close()


# The local SMTP server a page test reads what was sent from.
from tests.campaigns.smtp_sink import smtp_sink  # noqa: E402, F401
