"""Several schedules per job (jobs/models.py Schedule, the admin's Scheduling inline, automatic plans):
each with its own plan and parameter values, checked as a Run's values are."""
from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from jobs import registry
from jobs.models import Action, Job, Schedule
from jobs.when import when_html
from tests.helpers import make_job
from tests.jobs.test_admin_job_form import form_values, page_data

pytestmark = pytest.mark.django_db

PARAMS = [{"name": "days", "type": "int", "default": 7},
          {"name": "region", "type": "choice", "choices": ["north", "south"]},
          {"name": "token", "type": "secret"}]


@pytest.fixture
def job() -> Job:
    return make_job("report", (10, "testing.echo", {"text": "${param.days}"}), params=PARAMS)


def test_a_job_has_several_schedules_each_with_its_own_plan_and_values(job):
    daily = Schedule(job=job, name="daily", kind="calendar", cron="0 6 * * *", timezone="Europe/Madrid",
                     parameters={"days": "1", "region": "north"})
    daily.full_clean()
    daily.save()
    weekly = Schedule.objects.create(job=job, name="weekly", kind="interval", every=7, every_unit="days",
                                     timezone="America/New_York", parameters={"days": 7})
    assert [s.name for s in job.schedules.all()] == ["daily", "weekly"]
    assert Schedule.objects.get(pk=daily.pk).parameters == {"days": 1, "region": "north"}  # stored typed
    assert {s.timezone for s in job.schedules.all()} == {"Europe/Madrid", "America/New_York"}
    assert daily.next_run_at is not None and weekly.next_run_at is not None


@pytest.mark.parametrize(("values", "message"), [
    ({"days": "many"}, "schedule 'nightly': parameter days: must be a whole number"),
    ({"region": "east"}, "schedule 'nightly': parameter region: must be one of: north, south"),
    ({"colour": "red"}, "schedule 'nightly': parameter colour: unknown parameter"),
    ({"token": "s3cret"}, "schedule 'nightly': parameter token: a secret parameter cannot be stored on a schedule"),
    (["days", 7], "schedule 'nightly': must be an object of name: value"),
])
def test_bad_values_are_refused_naming_the_schedule_and_the_parameter(job, values, message):
    schedule = Schedule(job=job, name="nightly", kind="calendar", cron="0 3 * * *", parameters=values)
    with pytest.raises(ValidationError) as caught:
        schedule.full_clean()
    assert message in " ".join(caught.value.message_dict["parameters"])


def test_an_unnamed_schedule_is_named_by_its_plan_in_errors(job):
    schedule = Schedule(job=job, kind="calendar", cron="0 3 * * *", timezone="UTC", parameters={"days": "x"})
    with pytest.raises(ValidationError) as caught:
        schedule.full_clean()
    assert caught.value.message_dict["parameters"] == [
        "schedule At 03:00 — cron 0 3 * * * (UTC): parameter days: must be a whole number"]


def test_a_value_left_out_takes_the_default_when_the_run_starts(job):
    schedule = Schedule(job=job, name="plain", kind="interval", every=1, every_unit="hours",
                        parameters={"days": "", "region": None})
    schedule.full_clean()
    assert schedule.parameters == {}  # empty means "the default", as in the Run dialog
    assert job.clean_run_parameters(schedule.parameters)["days"] == 7


def test_two_schedules_of_a_job_cannot_share_a_name(job):
    Schedule.objects.create(job=job, name="nightly", kind="calendar", cron="0 3 * * *")
    with pytest.raises(ValidationError) as caught:
        Schedule(job=job, name="nightly", kind="calendar", cron="0 4 * * *").full_clean()
    assert caught.value.messages == ["Another schedule of this job has this name."]
    Schedule(job=job, name="", kind="calendar", cron="0 4 * * *").full_clean()  # unnamed ones may be many
    Schedule.objects.create(job=job, kind="calendar", cron="0 5 * * *")
    Schedule.objects.create(job=job, kind="calendar", cron="0 6 * * *")


def test_activating_a_job_reschedules_every_one_of_its_schedules(job):
    job.active = False
    job.save()
    first = Schedule.objects.create(job=job, name="a", kind="interval", every=5, every_unit="minutes")
    second = Schedule.objects.create(job=job, name="b", kind="calendar", cron="0 3 * * *")
    assert (first.next_run_at, second.next_run_at) == (None, None)
    job.active = True
    job.save()
    assert all(s.next_run_at is not None for s in job.schedules.all())


def test_a_copy_has_every_schedule_with_its_values(job):
    Schedule.objects.create(job=job, name="a", kind="interval", every=5, every_unit="minutes", parameters={"days": 2})
    Schedule.objects.create(job=job, name="b", kind="calendar", cron="0 3 * * *", parameters={"region": "south"})
    duplicate = job.copy("report-copy")
    assert [(s.name, s.parameters) for s in duplicate.schedules.all()] == [("a", {"days": 2}),
                                                                           ("b", {"region": "south"})]


# --- the admin's Scheduling inline --------------------------------------------------------------------------------


def schedule_row(index: int, empty_form, **values) -> dict:
    row = {name.replace("__prefix__", str(index)): value for name, value in form_values(empty_form).items()}
    row.update({f"schedule-{index}-{name}": value for name, value in values.items()})
    return row


def test_the_job_page_saves_several_schedules_with_their_values(client, admin_user, job):
    client.force_login(admin_user)
    url = reverse("admin:jobs_job_change", args=[job.pk])
    response = client.get(url)
    data = page_data(response)
    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "schedule")
    data.update(schedule_row(0, formset.empty_form, name="north", kind="calendar", cron="0 6 * * *",
                             timezone="Europe/Madrid", parameters=json.dumps({"region": "north"})))
    data.update(schedule_row(1, formset.empty_form, name="south", kind="interval", every="2", every_unit="hours",
                             timezone="UTC", parameters=json.dumps({"region": "south", "days": 3})))
    data["schedule-TOTAL_FORMS"] = 2
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert [(s.name, s.kind, s.parameters) for s in job.schedules.all()] == [
        ("north", "calendar", {"region": "north"}), ("south", "interval", {"region": "south", "days": 3})]


def test_the_job_page_names_the_schedule_and_the_parameter_of_a_bad_value(client, admin_user, job):
    client.force_login(admin_user)
    url = reverse("admin:jobs_job_change", args=[job.pk])
    response = client.get(url)
    data = page_data(response)
    data.update({"schedule-0-name": "weekly", "schedule-0-kind": "calendar", "schedule-0-cron": "0 6 * * 1",
                 "schedule-0-parameters": json.dumps({"days": "soon"})})
    response = client.post(url, data)
    assert response.status_code == 200
    assert "schedule &#x27;weekly&#x27;: parameter days: must be a whole number" in response.content.decode()
    assert not job.schedules.exists()


def test_the_job_list_shows_the_next_run_of_any_schedule(client, admin_user, job):
    Schedule.objects.create(job=job, name="late", kind="calendar", cron="0 6 1 1 *", timezone="UTC")
    soon = Schedule.objects.create(job=job, name="soon", kind="interval", every=1, every_unit="hours", timezone="UTC")
    client.force_login(admin_user)
    page = client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert f"next: {when_html(soon.next_run_at)}" in page  # the sooner of the two
    assert "Every hour" in page and "cron 0 6 1 1 * (UTC)" in page


# --- automatic plans ------------------------------------------------------------------------------------------------


def test_retention_declares_a_nightly_plan_and_its_action_window_shows_it(client, admin_user):
    assert registry.get("core.purge_results").schedule == {
        "type": "calendar", "weekdays": [0, 1, 2, 3, 4, 5, 6], "times": ["03:30"]}
    client.force_login(admin_user)
    action = Action.objects.get(name="core.purge_results")
    page = client.get(reverse("admin:jobs_action_change", args=[action.pk])).content.decode()
    assert "Automatic plan" in page and "Every day at 03:30 (in the schedule&#x27;s time zone)" in page
    shell = Action.objects.get(name="core.shell")
    page = client.get(reverse("admin:jobs_action_change", args=[shell.pk])).content.decode()
    assert "None: a job using it runs by hand or on a plan of its own" in page


def test_an_automatic_schedule_of_a_retention_job_runs_nightly_in_its_time_zone():
    job = make_job("retention", (10, "core.purge_results", {}))
    schedule = Schedule.objects.create(job=job, kind=Schedule.AUTOMATIC, timezone="Europe/Madrid")
    assert schedule.describe() == "Every day at 03:30 (Europe/Madrid)"
    assert f"{schedule.next_run_at.astimezone(ZoneInfo('Europe/Madrid')):%H:%M}" == "03:30"


def test_a_new_schedule_of_a_job_whose_action_declares_a_plan_starts_as_automatic(client, admin_user):
    retention = make_job("retention", (10, "core.purge_results", {}))
    plain = make_job("plain", (10, "testing.echo", {}))
    client.force_login(admin_user)
    for job, kind in ((retention, Schedule.AUTOMATIC), (plain, Schedule.DISABLED)):
        response = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
        formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "schedule")
        assert formset.forms[0].initial["kind"] == kind, job.identifier
        assert f'<option value="{kind}" selected>' in response.content.decode()
