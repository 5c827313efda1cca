"""In a real headless Chromium: Run asks for the parameters, then confirms what will run and why it matters."""
from __future__ import annotations

import pytest

from results.models import JobResult
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import log_in, make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_parameters_then_confirmation_with_warnings_then_the_run(
    browser_page, live_server, admin_user, settings,  # noqa: F811
):
    from playwright.sync_api import expect

    settings.JOBS_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]  # the pre-flight check may try the (closed) local port

    job = make_job("close-month", (10, "testing.echo", {"text": "${param.region} ${param.day}"}),
                   (20, "core.http", {"url": "http://127.0.0.1:9/ledger"}), destructive=True, queue="nobody-dialog",
                   params=[{"name": "region", "type": "choice", "choices": ["north", "south"], "required": True},
                           {"name": "day", "type": "date", "default": "2026-11-30"}])
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/run/")
    expect(page.locator("#id_day")).to_have_attribute("type", "date")  # the browser's date picker
    page.click("#run-next")  # region has no safe default: the browser asks for it before sending
    assert page.locator("#id_region").evaluate("node => node.validity.valueMissing") is True
    expect(page.locator("#run-next")).to_be_visible()
    page.select_option("#id_region", "south")
    page.click("#run-next")

    expect(page.locator("#run-values")).to_contain_text("south")
    expect(page.locator("#not-idempotent")).to_be_visible()
    expect(page.locator("#confirm-reasons")).to_contain_text("deletes or overwrites data")
    expect(page.locator("#confirm-reasons")).to_contain_text("calls an external system")
    expect(page.locator("#preflight")).to_contain_text("127.0.0.1:9 is unreachable")
    expect(page.locator(".errorlist")).to_have_count(0)  # nothing is wrong yet: the identifier is asked for
    screenshot(page, "admin-run-confirmation.png")
    page.fill("#id_confirm", "close")
    page.click("#confirm-run")
    expect(page.locator(".errorlist")).to_contain_text("Type the job's identifier (close-month)")
    assert not JobResult.objects.exists()
    page.fill("#id_confirm", "close-month")
    page.click("#confirm-run")
    expect(page.locator("#result-live")).to_be_visible()
    result = JobResult.objects.get()
    assert result.parameters == {"region": "south", "day": "2026-11-30"}
    assert page.js_errors == []


def test_retry_of_a_destructive_job_confirms_like_run(browser_page, live_server, admin_user, settings):  # noqa: F811
    """Issue 13: the result page's Retry leads to Run's confirmation (pre-flight, identifier) for such a job."""
    from django.utils import timezone
    from playwright.sync_api import expect

    settings.JOBS_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]  # the pre-flight check may try the (closed) local port
    job = make_job("wipe-cache", (10, "core.http", {"url": "http://127.0.0.1:9/wipe"}), destructive=True,
                   queue="nobody-dialog")
    failed = JobResult.objects.create(job=job, status="error", message="it failed", started_at=timezone.now(),
                                      finished_at=timezone.now())
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/results/jobresult/{failed.pk}/change/")
    page.click("#retry-result")
    expect(page.locator("#confirm-reasons")).to_contain_text("deletes or overwrites data")
    expect(page.locator("#preflight")).to_contain_text("127.0.0.1:9 is unreachable")
    assert JobResult.objects.count() == 1
    page.fill("#id_confirm", "wipe")
    page.click("#confirm-run")
    expect(page.locator(".errorlist")).to_contain_text("Type the job's identifier (wipe-cache)")
    assert JobResult.objects.count() == 1
    page.fill("#id_confirm", "wipe-cache")
    page.click("#confirm-run")
    expect(page.locator("#result-live")).to_be_visible()
    assert JobResult.objects.exclude(pk=failed.pk).get().retry_of_id == failed.pk
    assert page.js_errors == []
