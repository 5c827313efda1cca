"""In a real headless Chromium: pause all schedules (banner on every page), plan a run for later and cancel it,
see the calendar with a shaded window, start a backfill — every page within the Content-Security-Policy."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from jobs.maintenance import MaintenanceWindow
from jobs.models import Schedule
from results.runat import PlannedRun
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import log_in, make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pause_plan_later_calendar_and_backfill_in_the_browser(
    browser_page, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("browser-daily", (10, "testing.echo", {}), name="Daily in the browser", queue="nobody-browser",
                   params=[{"name": "day", "type": "date", "required": True}], concurrency="parallel")
    Schedule.objects.create(job=job, kind="calendar", weekdays=list(range(7)), times=["18:00"], timezone="UTC")
    now = timezone.localtime()
    MaintenanceWindow.objects.create(name="browser window", kind="once", starts_at=now + dt.timedelta(hours=1),
                                     ends_at=now + dt.timedelta(hours=2))
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/jobs/maintenancewindow/")
    page.click("#pause-link")
    page.fill("#id_reason", "moving the database")
    page.click("#pause-all")
    for path in ("/admin/", "/admin/jobs/job/", "/admin/results/jobresult/"):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("#schedule-pause-banner")).to_contain_text("moving the database")
    screenshot(page, "schedules-paused.png")

    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/run/")
    page.fill("#id_day", "2026-11-20")
    page.click("#run-next")
    later = (now + dt.timedelta(days=2)).replace(hour=9, minute=30, second=0, microsecond=0)
    page.fill("#id_later-run_at", later.strftime("%Y-%m-%dT%H:%M"))
    page.click("#confirm-run")
    expect(page.locator("#cancel-planned")).to_be_visible()
    planned = PlannedRun.objects.get()
    assert planned.run_at == later and planned.parameters == {"day": "2026-11-20"}

    page.goto(f"{live_server.url}/admin/results/plannedrun/calendar/")
    expect(page.locator("#calendar-grid .calendar-window").first).to_contain_text("browser window")
    expect(page.locator("#calendar-grid .calendar-run").first).to_contain_text("browser-daily")
    screenshot(page, "calendar.png")

    page.goto(f"{live_server.url}/admin/results/plannedrun/{planned.pk}/change/")
    page.click("#cancel-planned")
    page.click("#confirm-cancel")
    expect(page.locator(".messagelist li.success")).to_contain_text("is cancelled")
    assert PlannedRun.objects.get().state == PlannedRun.CANCELLED

    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    page.click("#backfill-job")
    page.fill("#id_first_day", "2026-11-01")
    page.fill("#id_last_day", "2026-11-03")
    page.click("#start-backfill")
    expect(page.locator("#backfill-progress")).to_contain_text("of 3 days done")
    page.click("#kill-backfill")
    expect(page.locator("#backfill-progress")).to_contain_text("killed")
    screenshot(page, "backfill.png")
