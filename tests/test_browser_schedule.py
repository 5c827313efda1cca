"""In a real headless Chromium: give an existing job a calendar schedule in the admin and see its plan and next run."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from jobs.models import Schedule
from jobs.scheduling import next_fire
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import log_in, make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_schedule_a_job_on_two_weekdays_in_madrid_and_see_the_plan_and_next_run(
    browser_page, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("browser-scheduled", (10, "testing.echo", {}), name="Scheduled in the browser")
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    expect(page.locator("#schedule-heading")).to_contain_text("Scheduling")
    page.select_option("#id_schedule-0-kind", "calendar")
    page.check("#id_schedule-0-weekdays_1")  # Tue
    page.check("#id_schedule-0-weekdays_3")  # Thu
    page.fill("#id_schedule-0-times_0", "07:45")
    page.select_option("#id_schedule-0-timezone", "Europe/Madrid")
    before = timezone.now()
    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    after = timezone.now()

    schedule = Schedule.objects.get(job=job)
    assert (schedule.kind, sorted(schedule.weekdays), schedule.times, schedule.timezone, schedule.cron) == (
        "calendar", [1, 3], ["07:45"], "Europe/Madrid", "")
    expected = {next_fire(schedule.plan(), before), next_fire(schedule.plan(), after)}
    assert schedule.next_run_at in expected
    assert schedule.next_run_at > before
    local = schedule.next_run_at.astimezone(ZoneInfo("Europe/Madrid"))
    assert (local.weekday() in (1, 3), local.strftime("%H:%M")) == (True, "07:45")

    words = page.locator("#schedule-0 .field-plan_in_words .readonly")
    expect(words).to_have_text("Every Tuesday, Thursday at 07:45 (Europe/Madrid)")
    next_run = page.locator("#schedule-0 .field-next_run .readonly")
    expect(next_run).to_have_text(f"{local:%Y-%m-%d %H:%M} (Europe/Madrid)")  # in the schedule's own zone
    expect(page.locator("#id_schedule-0-weekdays_1")).to_be_checked()
    expect(page.locator("#id_schedule-0-weekdays_0")).not_to_be_checked()
    expect(page.locator("#id_schedule-0-times_0")).to_have_value("07:45")
    assert page.js_errors == []
    screenshot(page, "admin-job-schedule.png")


def test_give_a_job_two_schedules_with_their_own_values(
    browser_page, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("two-schedules", (10, "testing.echo", {"text": "${param.region}"}), name="Two schedules",
                   params=[{"name": "region", "type": "choice", "choices": ["north", "south"]}])
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    page.fill("#id_schedule-0-name", "north")
    page.select_option("#id_schedule-0-kind", "interval")
    page.fill("#id_schedule-0-every", "15")
    page.fill("#id_schedule-0-parameters", '{"region": "north"}')
    page.click("#schedule-group .add-row a")  # Django's "Add another schedule"
    page.fill("#id_schedule-1-name", "south")
    page.select_option("#id_schedule-1-kind", "calendar")
    page.fill("#id_schedule-1-cron", "0 6 * * *")
    page.select_option("#id_schedule-1-timezone", "America/Santiago")
    page.fill("#id_schedule-1-parameters", '{"region": "south"}')
    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    assert [(s.name, s.kind, s.timezone, s.parameters) for s in job.schedules.all()] == [
        ("north", "interval", settings.TIME_ZONE, {"region": "north"}),  # the form's default zone, kept
        ("south", "calendar", "America/Santiago", {"region": "south"})]
    expect(page.locator("#schedule-1 .field-plan_in_words .readonly")).to_have_text(
        "At 06:00 — cron 0 6 * * * (America/Santiago)")
    assert page.js_errors == []
