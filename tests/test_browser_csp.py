"""In a real headless Chromium: the Content-Security-Policy blocks script and style that markup slipped in.

An injection that gets past escaping (a stored value, a template mistake) can add an element but
not run it: script and style come only from the site's own static files.
"""
from __future__ import annotations

import pytest

from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INJECT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.injectedScriptRan = true";
  document.body.append(script);
  const handler = document.createElement("img");
  handler.setAttribute("src", "data:image/gif;base64,R0lGODlhAQABAAAAACw=");
  handler.setAttribute("onload", "window.injectedHandlerRan = true");
  document.body.append(handler);
  const box = document.createElement("div");
  box.id = "injected-style";
  box.setAttribute("style", "color: rgb(1, 2, 3)");
  document.body.append(box);
}"""


def test_inline_script_handlers_and_style_injected_into_an_admin_page_do_not_apply(
    browser_page, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/")
    assert page.csp_violations == []

    page.evaluate(INJECT)
    page.wait_for_timeout(500)  # the image loads (data: is allowed) and would fire its handler
    assert page.evaluate("window.injectedScriptRan") is None
    assert page.evaluate("window.injectedHandlerRan") is None
    assert page.evaluate("getComputedStyle(document.getElementById('injected-style')).color") != "rgb(1, 2, 3)"
    blocked = {violation.split(" ")[0] for violation in page.csp_violations}
    assert {"script-src-elem", "script-src-attr", "style-src-attr"} <= blocked, page.csp_violations
    page.csp_violations.clear()  # seen and expected: the fixture fails on any left over


def test_the_locked_out_page_says_why_and_keeps_to_the_policy(
    browser_page, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from django.conf import settings
    from playwright.sync_api import expect

    page = browser_page
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "not-the-password")
        page.click('input[type="submit"]')
    expect(page.locator("#locked-out")).to_contain_text("Too many failed log-in attempts for “root”")
    screenshot(page, "admin-locked-out.png")
