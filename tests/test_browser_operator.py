"""In a real headless Chromium: the operator's live views (job list icons, live log, filters, unread log icon)."""
from __future__ import annotations

import pytest
from django.utils import timezone

from results.dispatch import start_run
from results.models import JobLogEntry, JobResult, Status
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import log_in, make_job, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.worker
def test_the_status_icon_goes_from_running_to_success_without_a_reload(
    browser_page, celery_worker, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    job = make_job("live-icon", (10, "core.sleep", {"seconds": 3}))
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/")
    page.evaluate("window.__notReloaded = true")
    cell = page.locator('.last-run[data-job="live-icon"]')
    expect(cell).to_contain_text("never run")
    result = start_run(job)
    expect(cell.locator(".job-status-running")).to_be_visible(timeout=10_000)
    screenshot(page, "admin-job-list-running.png")
    expect(cell.locator(".job-status-ok")).to_contain_text("success", timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True
    assert wait_for_status(result.id).status == Status.SUCCESS


@pytest.mark.worker
def test_log_lines_appear_while_the_job_runs(browser_page, celery_worker, live_server, admin_user):  # noqa: F811
    from playwright.sync_api import expect

    ticks = "for i in $(seq 1 16); do echo tick-$i; sleep 0.5; done"  # 8 s: long enough to be watched
    job = make_job("ticker", (10, "core.shell", {"command": ticks}))
    page = browser_page
    log_in(page, live_server.url)  # before the run starts, so a slow log-in cannot outlast it
    result = start_run(job)
    page.goto(f"{live_server.url}/admin/results/jobresult/{result.id}/change/")
    expect(page.locator("#job-log")).to_contain_text("tick-2", timeout=10_000)
    assert JobResult.objects.get(id=result.id).status == Status.RUNNING  # seen while it still runs
    expect(page.locator("#job-log")).to_contain_text("tick-16", timeout=15_000)
    expect(page.locator("#result-status")).to_have_text("success", timeout=10_000)
    # The status can arrive a poll before the run's last entries (the log is read first): the page keeps
    # polling until the log says it is finished, and then shows every entry.
    expect(page.locator("body")).to_have_attribute("data-result-finished", "true", timeout=10_000)
    assert page.locator("#job-log div").count() == JobLogEntry.objects.filter(result=result).count()


def test_the_status_filter_narrows_the_list_and_the_log_icon_turns_read(
    browser_page, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    failed, fine = make_job("failed-job"), make_job("fine-job")
    JobResult.objects.create(job=fine, status="success")
    bad = JobResult.objects.create(job=failed, status="error", message="boom")
    JobLogEntry.objects.create(result=bad, seq=1, level="ERROR", message="it broke", at=timezone.now())
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/")
    expect(page.locator('#result_list a.log-icon.log-unread')).to_have_count(1)
    page.locator("#changelist-filter a", has_text="error").first.click()
    expect(page.locator("#result_list")).to_contain_text("failed-job")
    expect(page.locator("#result_list")).not_to_contain_text("fine-job")

    page.goto(f"{live_server.url}/admin/results/jobresult/{bad.id}/change/")
    expect(page.locator("#job-log")).to_contain_text("it broke")
    page.goto(f"{live_server.url}/admin/jobs/job/")
    expect(page.locator('#result_list a.log-icon.log-read')).to_have_count(1)
    expect(page.locator('#result_list a.log-icon.log-unread')).to_have_count(0)
