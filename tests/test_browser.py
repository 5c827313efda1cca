"""End to end in a real headless Chromium: create a job in the admin, run it, watch the result page go live."""
from __future__ import annotations

import json
import re

import pytest

from jobs.models import Action, Job
from results.models import Status
from tests.browser_support import (  # noqa: F401  (browser_page, chromium_executable: fixtures)
    assert_no_csp_violations,
    browser_page,
    chromium_executable,
    screenshot,
)
from tests.helpers import log_in, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def fill_line(page, index: int, line_no: int, action: str, parameters: dict) -> None:
    page.fill(f"#id_lines-{index}-line_no", str(line_no))
    page.select_option(f"#id_lines-{index}-action", label=action)
    page.locator(f"#lines-{index} .typed-params a", has_text="Edit as JSON").click()  # the raw JSON, for once
    page.fill(f"#id_lines-{index}-parameters", json.dumps(parameters))


def test_create_a_job_run_it_and_watch_it_succeed_live(
    browser_page, celery_worker, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    page = browser_page
    Action.objects.sync_with_registry()
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/jobs/job/add/")
    page.fill("#id_identifier", "browser-job")
    page.fill("#id_name", "Job made in the browser")
    fill_line(page, 0, 10, "core.shell", {"command": "echo hello-from-browser"})
    page.get_by_text("Add another Job line").click()
    fill_line(page, 1, 20, "core.sleep", {"seconds": 0.2})
    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")
    job = Job.objects.get(identifier="browser-job")
    assert [(line.line_no, line.action.name) for line in job.lines.order_by("line_no")] == [
        (10, "core.shell"), (20, "core.sleep")]
    screenshot(page, "admin-job-change.png")
    page.goto(f"{live_server.url}/admin/jobs/job/")
    expect(page.locator("#result_list")).to_contain_text("browser-job")
    assert_no_csp_violations(page)  # the job list, the job's add and change pages
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")

    page.click("#run-job")
    page.wait_for_url(re.compile(rf"/admin/jobs/job/{job.pk}/run/$"))
    assert_no_csp_violations(page)  # the run dialog
    page.click("#confirm-run")
    page.wait_for_url(re.compile(r"/admin/results/jobresult/\d+/change/$"))
    result_id = int(re.search(r"/jobresult/(\d+)/change/", page.url).group(1))
    page.evaluate("window.sameDocument = true")  # lost if the page reloads

    expect(page.locator("#result-status")).to_have_text("success", timeout=30_000)
    expect(page.locator("body")).to_have_attribute("data-result-finished", "true")  # set by result.js only
    expect(page.locator("#job-log")).to_contain_text("hello-from-browser")  # the log is only written by result.js
    expect(page.locator("#result-lines tbody tr")).to_have_count(2)  # line results drawn live from the API
    expect(page.locator("#kill-result")).to_be_hidden()  # nothing left to kill
    expect(page.locator("#retry-result")).to_be_visible()
    assert page.evaluate("window.sameDocument") is True, "the result page reloaded"
    assert page.js_errors == []
    assert_no_csp_violations(page)  # the result page with its live log
    screenshot(page, "admin-result-success.png")
    assert wait_for_status(result_id).status == Status.SUCCESS
