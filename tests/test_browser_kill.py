"""In a real headless Chromium: Kill a running result from the result list, confirm, see it killed live."""
from __future__ import annotations

import pytest

from results.dispatch import start_run
from results.models import Status
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import log_in, make_job, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_kill_a_running_row_confirm_and_see_it_killed(
    browser_page, celery_worker, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("countdown", (10, "core.shell", {"command": "for i in $(seq 60 -1 1); do echo $i; sleep 1; done"}),
                   (20, "testing.echo", {"text": "must not run"}))
    result = start_run(job)
    wait_for_status(result.id, {Status.RUNNING})
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/results/jobresult/")
    row = page.locator("#result_list tbody tr", has=page.locator(f"a:text-is('{result.id}')"))
    row.locator("a.kill-button").click()
    expect(page.locator("#content-main")).to_contain_text("may leave partial changes")
    page.click("#confirm-kill")

    expect(page.locator("#result-status")).to_have_text("killed", timeout=15_000)
    expect(page.locator("#result-kill")).to_contain_text("Kill requested by root")
    expect(page.locator("#kill-result")).to_be_hidden()
    screenshot(page, "admin-result-killed.png")
    ended = wait_for_status(result.id)
    assert ended.status == Status.KILLED and ended.message.startswith("Killed by root")
    assert list(ended.line_results.values_list("line_no", flat=True)) == [10]
    assert page.js_errors == []
