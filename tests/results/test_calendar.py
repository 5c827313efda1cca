"""The calendar of upcoming runs (results/calendar.py and its admin page): a week of the next runs of the
jobs the user sees, planned runs included, maintenance windows shaded; other domains stay invisible."""
from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from jobs.maintenance import MaintenanceWindow
from jobs.models import DomainMembership, Schedule
from results import calendar
from results.runat import PlannedRun
from tests.helpers import make_job

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MONDAY = dt.date(2030, 1, 7)  # a week in the future: every slot of it is upcoming
NOW = dt.datetime(2030, 1, 1, tzinfo=UTC)


def daily(identifier: str, time_of_day: str = "18:00", **fields):
    job = make_job(identifier, (10, "testing.echo", {}), **fields)
    Schedule.objects.create(job=job, kind="calendar", weekdays=list(range(7)), times=[time_of_day], timezone="UTC")
    return job


def entries(week) -> list[tuple[str, str, str]]:
    return sorted((f"{e.at:%a %H:%M}", e.job.identifier, e.kind) for _, cells in week.rows for cell in cells
                  for e in cell.entries)


def test_a_week_holds_each_fire_of_the_visible_schedules_in_its_hour(admin_user):
    daily("report", "18:00")
    week = calendar.week(admin_user, MONDAY, now=NOW)
    assert week.days[0] == MONDAY and len(week.days) == 7
    assert entries(week) == sorted((f"{MONDAY + dt.timedelta(days=n):%a} 18:00", "report", "schedule")
                                   for n in range(7))
    hour_18 = dict(week.rows)[18]
    assert all(len(cell.entries) == 1 for cell in hour_18)
    assert calendar.week(admin_user, MONDAY + dt.timedelta(days=3), now=NOW).days[0] == MONDAY  # any day: its week


def test_only_upcoming_fires_are_shown(admin_user):
    daily("report", "18:00")
    now = dt.datetime(2030, 1, 9, 12, tzinfo=UTC)  # Wednesday noon
    assert [day for day, _, _ in entries(calendar.week(admin_user, MONDAY, now=now))] == [
        "Fri 18:00", "Sat 18:00", "Sun 18:00", "Thu 18:00", "Wed 18:00"]


def test_other_domains_jobs_are_invisible(acme, globex, member):
    daily("acme-report", domain=acme)
    daily("globex-report", domain=globex)
    daily("global-report")
    viewer = member("vera", acme, DomainMembership.VIEWER)
    assert {job for _, job, _ in entries(calendar.week(viewer, MONDAY, now=NOW))} == {"acme-report"}


def test_planned_runs_are_shown_and_windows_shade_their_hours(admin_user, acme, globex, member):
    job = make_job("one-off", (10, "testing.echo", {}), domain=acme)
    at = dt.datetime(2030, 1, 8, 9, 30, tzinfo=UTC)
    PlannedRun.objects.create(job=job, run_at=at)  # beyond plan_run's year: stored as it would be
    MaintenanceWindow.objects.create(name="acme patch", domain=acme, kind="once",
                                     starts_at=dt.datetime(2030, 1, 8, 1, tzinfo=UTC),
                                     ends_at=dt.datetime(2030, 1, 8, 3, tzinfo=UTC))
    MaintenanceWindow.objects.create(name="globex patch", domain=globex, kind="once",
                                     starts_at=dt.datetime(2030, 1, 8, 1, tzinfo=UTC),
                                     ends_at=dt.datetime(2030, 1, 8, 3, tzinfo=UTC))
    viewer = member("vera", acme, DomainMembership.VIEWER)
    week = calendar.week(viewer, MONDAY, now=NOW)
    assert entries(week) == [("Tue 09:30", "one-off", "planned")]
    shaded = [(cell.start.hour, cell.windows) for _, cells in week.rows for cell in cells if cell.windows]
    assert shaded == [(1, ["acme patch"]), (2, ["acme patch"])]


def test_a_schedule_too_frequent_to_list_is_named_apart(admin_user):
    job = make_job("every-minute", (10, "testing.echo", {}))
    Schedule.objects.create(job=job, kind="interval", every=1, every_unit="minutes")
    week = calendar.week(admin_user, MONDAY, now=NOW)
    assert [(j.identifier, words) for j, words in week.frequent] == [("every-minute", "Every minute")]
    assert entries(week) == []


def test_the_calendar_page_renders_the_grid_without_inline_styles(client, acme, member):
    daily("acme-report", domain=acme)
    daily("hidden-global")
    client.force_login(member("olga", acme, DomainMembership.OPERATOR))
    url = reverse("admin:results_plannedrun_calendar")
    html = client.get(f"{url}?week=2030-01-07").content.decode()
    assert 'id="calendar-grid"' in html and "acme-report" in html and "hidden-global" not in html
    assert "style=" not in html and "<script>" not in html
    assert "Mon 7 Jan" in html
    bad = client.get(f"{url}?week=someday")
    assert bad.status_code == 200 and "Week: must be a date as YYYY-MM-DD" in bad.content.decode()


def test_the_calendar_page_costs_a_fixed_number_of_queries(client, admin_user, django_assert_num_queries):
    for n in range(5):
        daily(f"report-{n}", f"{10 + n}:00")
    client.force_login(admin_user)
    url = f"{reverse('admin:results_plannedrun_calendar')}?week=2030-01-07"
    client.get(url)
    # session, user, schedules, planned runs, the jobs' domains, windows, pause banner
    with django_assert_num_queries(7):
        response = client.get(url)
    assert response.status_code == 200
    assert all(f"report-{n}" in response.content.decode() for n in range(5))


def test_each_schedule_of_a_job_has_its_own_entries(admin_user):
    job = make_job("twice-a-day", (10, "testing.echo", {}))
    Schedule.objects.create(job=job, name="morning", kind="calendar", weekdays=[0], times=["08:00"], timezone="UTC")
    Schedule.objects.create(job=job, name="evening", kind="calendar", weekdays=[0], times=["20:00"], timezone="UTC")
    week = calendar.week(admin_user, MONDAY, now=NOW)
    shown = sorted((f"{e.at:%a %H:%M}", e.label) for _, cells in week.rows for cell in cells for e in cell.entries)
    assert shown == [("Mon 08:00", "morning"), ("Mon 20:00", "evening")]
