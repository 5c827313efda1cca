"""Fixtures for the real-browser tests: the system's headless Chromium driven by Playwright (sync API).

The browser is never downloaded: Debian's ``chromium`` package is used (``JOBS_CHROMIUM`` overrides its path).
Without it the browser tests are skipped with the way to install it, or fail when ``JOBS_REQUIRE_BROWSER=1``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connections

ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    return os.environ.get("JOBS_CHROMIUM", "/usr/bin/chromium")


def browser_unavailable(reason: str, how_to_fix: str) -> None:
    """Fail loudly when the browser is required (JOBS_REQUIRE_BROWSER=1), otherwise skip saying how to fix it."""
    if os.environ.get("JOBS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} and JOBS_REQUIRE_BROWSER=1: {how_to_fix}", pytrace=False)
    pytest.skip(f"{reason}: {how_to_fix}")


def screenshot(page, name: str) -> Path:
    """A full-page PNG under var/test-artifacts/ (the README shows them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The Chromium to drive; checked before the worker and the live server start."""
    path = chromium_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        browser_unavailable(f"no Chromium at {path}",
                            "install it with `apt-get install chromium` (or set JOBS_CHROMIUM to its path)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        browser_unavailable("Playwright for Python is not installed", "run `.venv/bin/pip install -r requirements.txt`")
    return path


# Runs in every document before its own scripts: each Content-Security-Policy violation is reported to the test.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} on ${
    event.documentURI} (${event.sourceFile || "?"}:${event.lineNumber}) ${event.sample || ""}`);
});
"""


def assert_no_csp_violations(page) -> None:
    """The pages seen so far broke no rule of the Content-Security-Policy (each one is blocked in real use)."""
    assert page.csp_violations == [], "Content-Security-Policy violations:\n" + "\n".join(page.csp_violations)


@pytest.fixture
def browser_page(chromium_executable, monkeypatch):
    """A fresh page of headless Chromium; JavaScript errors on it are collected in ``page.js_errors``.

    Content-Security-Policy violations are collected in ``page.csp_violations``; a test that leaves any fails.
    """
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test still uses the ORM between steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda error: page.js_errors.append(str(error)))
        page.csp_violations = []
        page.expose_function("reportCspViolation", lambda violation: page.csp_violations.append(violation))
        page.add_init_script(REPORT_CSP_VIOLATIONS)
        try:
            yield page
            assert_no_csp_violations(page)
        finally:
            # While Playwright's loop runs, Django keeps the test's connections apart from the thread's own:
            # close them here, or they outlive the test and block dropping the test database.
            connections.close_all()
            context.close()
            browser.close()
