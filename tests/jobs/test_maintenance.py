"""Maintenance windows and the pause switch (jobs/maintenance.py): when a window is on, who may define it,
what the scheduler is told, and the banner every admin page shows while schedules are paused."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from jobs import maintenance
from jobs.maintenance import MaintenanceWindow, SchedulePause
from jobs.models import DomainMembership

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MADRID = ZoneInfo("Europe/Madrid")


def at(*args, tz=UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def weekly(name="nightly", days=(6,), start="02:00", end="04:00", tz="Europe/Madrid", **fields):
    return MaintenanceWindow.objects.create(
        name=name, kind=MaintenanceWindow.WEEKLY, weekdays=list(days), start_time=dt.time.fromisoformat(start),
        end_time=dt.time.fromisoformat(end), timezone=tz, **fields)


def test_a_one_off_window_covers_its_half_open_period():
    window = MaintenanceWindow.objects.create(name="upgrade", kind="once", starts_at=at(2026, 12, 5, 10),
                                              ends_at=at(2026, 12, 5, 12))
    assert not window.covers(at(2026, 12, 5, 9, 59, 59))
    assert window.covers(at(2026, 12, 5, 10))
    assert window.covers(at(2026, 12, 5, 11, 59, 59))
    assert not window.covers(at(2026, 12, 5, 12))


def test_a_weekly_window_is_in_wall_time_of_its_zone():
    window = weekly()  # Sunday 02:00-04:00 Madrid
    sunday_winter = dt.datetime(2026, 12, 6, 2, 30, tzinfo=MADRID)  # CET, UTC+1
    sunday_summer = dt.datetime(2026, 7, 5, 2, 30, tzinfo=MADRID)  # CEST, UTC+2
    assert window.covers(sunday_winter) and window.covers(sunday_summer)
    assert not window.covers(dt.datetime(2026, 12, 6, 4, 0, tzinfo=MADRID))
    assert not window.covers(dt.datetime(2026, 12, 5, 2, 30, tzinfo=MADRID))  # Saturday


def test_a_weekly_window_may_cross_midnight():
    window = weekly(days=(4,), start="22:00", end="02:00")  # Friday 22:00 to Saturday 02:00
    assert window.covers(dt.datetime(2026, 12, 4, 23, 0, tzinfo=MADRID))
    assert window.covers(dt.datetime(2026, 12, 5, 1, 59, tzinfo=MADRID))
    assert not window.covers(dt.datetime(2026, 12, 5, 2, 0, tzinfo=MADRID))
    assert not window.covers(dt.datetime(2026, 12, 3, 23, 0, tzinfo=MADRID))  # Thursday night


def test_a_weekly_window_on_the_spring_forward_night_starts_at_the_next_valid_minute():
    # 2026-03-29 Madrid: 02:00 -> 03:00. A 02:00-04:00 window that night lasts one real hour (03:00-04:00 CEST).
    window = weekly()
    periods = window.occurrences(at(2026, 3, 28), at(2026, 3, 30))
    assert periods == [(at(2026, 3, 29, 1), at(2026, 3, 29, 2))]


def test_a_cron_window_lasts_its_duration_from_each_start():
    window = MaintenanceWindow.objects.create(name="backup", kind="cron", cron="0 3 * * *", duration_minutes=90,
                                              timezone="UTC")
    assert window.covers(at(2026, 12, 5, 3, 0))
    assert window.covers(at(2026, 12, 5, 4, 29))
    assert not window.covers(at(2026, 12, 5, 4, 30))
    assert not window.covers(at(2026, 12, 5, 2, 59))
    assert len(window.occurrences(at(2026, 12, 7), at(2026, 12, 14))) == 7


@pytest.mark.parametrize(("fields", "field"), [
    ({"kind": "once", "starts_at": at(2026, 1, 2), "ends_at": at(2026, 1, 1)}, "ends_at"),
    ({"kind": "once"}, "starts_at"),
    ({"kind": "weekly", "weekdays": [], "start_time": dt.time(1), "end_time": dt.time(2)}, "weekdays"),
    ({"kind": "weekly", "weekdays": [7], "start_time": dt.time(1), "end_time": dt.time(2)}, "weekdays"),
    ({"kind": "weekly", "weekdays": [1], "start_time": dt.time(1), "end_time": dt.time(1)}, "end_time"),
    ({"kind": "cron", "cron": "0 3 * *", "duration_minutes": 10}, "cron"),
    ({"kind": "cron", "cron": "0 3 * * *"}, "duration_minutes"),
    ({"kind": "cron", "cron": "0 3 * * *", "duration_minutes": 10, "timezone": "Mars/Olympus"}, "timezone"),
])
def test_an_invalid_window_names_the_field(fields, field):
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow(name="bad", **fields).full_clean()
    assert field in caught.value.message_dict


def test_a_domain_window_applies_to_its_domain_only_and_a_global_one_to_every_job(acme, globex):
    instant = at(2026, 12, 5, 11)
    MaintenanceWindow.objects.create(name="acme upgrade", domain=acme, kind="once", starts_at=at(2026, 12, 5, 10),
                                     ends_at=at(2026, 12, 5, 12))
    assert maintenance.suppression(acme.pk, instant) == "inside maintenance window acme upgrade"
    assert maintenance.suppression(globex.pk, instant) is None
    assert maintenance.suppression(None, instant) is None
    MaintenanceWindow.objects.create(name="datacentre move", kind="once", starts_at=at(2026, 12, 5, 10),
                                     ends_at=at(2026, 12, 5, 12))
    assert maintenance.suppression(globex.pk, instant) == "inside maintenance window datacentre move"
    assert maintenance.suppression(None, instant) == "inside maintenance window datacentre move"


def test_an_inactive_window_suppresses_nothing():
    MaintenanceWindow.objects.create(name="off", kind="once", starts_at=at(2026, 12, 5, 10),
                                     ends_at=at(2026, 12, 5, 12), active=False)
    assert maintenance.suppression(None, at(2026, 12, 5, 11)) is None


def test_pause_is_opened_once_and_resumed_once(admin_user, django_user_model):
    other = django_user_model.objects.create_superuser("other", "o@example.com", "pw")
    assert maintenance.pause_all(admin_user, "database upgrade") is not None
    assert maintenance.pause_all(other, "twice") is None  # one open pause: the second changes nothing
    assert maintenance.suppression(None, at(2026, 12, 5)) == "all schedules are paused (by root: database upgrade)"
    assert maintenance.resume_all(other) is True
    assert maintenance.resume_all(admin_user) is False
    assert maintenance.suppression(None, at(2026, 12, 5)) is None
    pause = SchedulePause.objects.get()
    assert (pause.paused_by, pause.ended_by, pause.reason) == (admin_user, other, "database upgrade")


# --- admin ---------------------------------------------------------------------------------------------------
def window_post(**changes) -> dict:
    return {"name": "night", "active": "on", "kind": "weekly", "weekdays": ["6"], "start_time": "02:00",
            "end_time": "04:00", "timezone": "Europe/Madrid", "note": "", "cron": "", "duration_minutes": "",
            "starts_at_0": "", "starts_at_1": "", "ends_at_0": "", "ends_at_1": "", **changes}


def test_a_domain_admin_defines_windows_of_their_domain_only(client, acme, globex, member):
    dadmin = member("dana", acme, DomainMembership.ADMIN)
    client.force_login(dadmin)
    add = reverse("admin:jobs_maintenancewindow_add")
    response = client.post(add, window_post(domain=""))
    assert response.status_code == 200 and "domain" in response.context["adminform"].form.errors
    response = client.post(add, window_post(domain=globex.pk))
    assert response.status_code == 200 and "domain" in response.context["adminform"].form.errors
    response = client.post(add, window_post(domain=acme.pk))
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get()
    assert (window.domain, window.created_by, window.weekdays) == (acme, dadmin, [6])


def test_the_window_form_names_a_bad_field(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_maintenancewindow_add"), window_post(weekdays=[]))
    assert response.status_code == 200
    assert "weekdays" in response.context["adminform"].form.errors
    assert not MaintenanceWindow.objects.exists()


def test_pause_and_resume_from_the_admin_with_a_banner_on_every_page_meanwhile(client, admin_user, acme, member):
    viewer = member("vera", acme, DomainMembership.VIEWER)
    client.force_login(admin_user)
    pages = [reverse("admin:index"), reverse("admin:jobs_job_changelist"),
             reverse("admin:results_jobresult_changelist")]
    assert all('id="schedule-pause-banner"' not in client.get(page).content.decode() for page in pages)
    response = client.post(reverse("admin:jobs_maintenancewindow_pause"), {"reason": "moving the database"})
    assert response.status_code == 302
    for page in pages:
        html = client.get(page).content.decode()
        assert 'id="schedule-pause-banner"' in html and "moving the database" in html and "by root" in html, page
    client.force_login(viewer)
    assert "moving the database" in client.get(reverse("admin:index")).content.decode()
    assert client.post(reverse("admin:jobs_maintenancewindow_pause"), {"resume": "1"}).status_code == 403
    assert maintenance.current_pause() is not None
    client.force_login(admin_user)
    client.post(reverse("admin:jobs_maintenancewindow_pause"), {"resume": "1"})
    assert maintenance.current_pause() is None
    assert 'id="schedule-pause-banner"' not in client.get(reverse("admin:index")).content.decode()


def test_a_pause_sent_after_someone_else_paused_never_resumes(client, admin_user, django_user_model):
    """Both saw "not paused"; the second Pause used to resume the first one's pause (the page acted on the state)."""
    other = django_user_model.objects.create_superuser("ops2", "ops2@example.com", "pw")
    maintenance.pause_all(other, "moving the database")
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_maintenancewindow_pause"), {"pause": "1", "reason": "me too"},
                           follow=True)
    assert "Schedules were already paused." in response.content.decode()
    assert maintenance.current_pause().reason == "moving the database"


def test_pausing_needs_a_reason(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_maintenancewindow_pause"), {"reason": ""})
    assert response.status_code == 200 and "reason" in response.context["form"].errors
    assert maintenance.current_pause() is None


def test_members_read_the_global_windows_and_their_domains_never_another_domains(client, acme, globex, member):
    for name, domain in (("acme-window", acme), ("globex-window", globex), ("global-window", None)):
        MaintenanceWindow.objects.create(name=name, domain=domain, kind="once", starts_at=at(2030, 1, 1),
                                         ends_at=at(2030, 1, 2))
    client.force_login(member("vera", acme, DomainMembership.VIEWER))
    response = client.get(reverse("admin:jobs_maintenancewindow_changelist"))
    assert {window.name for window in response.context["cl"].result_list} == {"acme-window", "global-window"}
    assert "globex" not in response.content.decode().lower()
    globex_window = MaintenanceWindow.objects.get(name="globex-window")
    assert client.get(reverse("admin:jobs_maintenancewindow_change", args=[globex_window.pk])).status_code == 404
