"""Run at (results/runat.py): planned at request time like a Run, stored, claimed once, cancellable,
suppressed by windows and the pause; from the admin's Run dialog, the API and ``runjob --at``.

The jobs use a queue nobody consumes, so the results they start stay pending.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from jobs import maintenance
from jobs.maintenance import MaintenanceWindow
from jobs.models import DomainMembership
from results import runat, scheduler
from results.dispatch import RunRefused
from results.models import JobResult
from results.runat import PlannedRun, plan_run
from tests.helpers import client_for, make_job

QUEUE = "nobody-runat"
PARAMS = [{"name": "days", "type": "int", "default": 7}, {"name": "region", "type": "choice",
                                                           "choices": ["north", "south"], "required": True}]

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def purge_unconsumed_queue():
    yield
    from jobs_project.celery import app

    with contextlib.suppress(Exception), app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)


@pytest.fixture
def job(acme):
    return make_job("nightly-report", (10, "testing.echo", {}), domain=acme, queue=QUEUE, params=PARAMS,
                    concurrency="parallel")


def soon(minutes: int = 5) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_a_planned_run_stores_typed_values_and_fires_once_when_due(job, admin_user):
    planned = plan_run(job, soon(), parameters={"region": "north", "days": "3"}, user=admin_user)
    assert planned.state == PlannedRun.PENDING
    assert planned.parameters == {"region": "north", "days": 3}
    assert scheduler.fire_due(planned.run_at - dt.timedelta(seconds=1)) == []
    fired = scheduler.fire_due(planned.run_at + dt.timedelta(seconds=1))
    assert len(fired) == 1
    result = JobResult.objects.get(job=job)
    assert (result.trigger, result.status, result.parameters) == ("run_at", "pending", {"region": "north", "days": 3})
    assert (result.scheduled_for, result.requested_by) == (planned.run_at, admin_user)
    planned.refresh_from_db()
    assert (planned.state, planned.result_id) == (PlannedRun.FIRED, result.pk)
    assert scheduler.fire_due(planned.run_at + dt.timedelta(seconds=2)) == []
    assert JobResult.objects.filter(job=job).count() == 1


def test_a_stale_copy_cannot_fire_it_again(job):
    planned = plan_run(job, soon(), parameters={"region": "south"})
    stale = PlannedRun.objects.select_related("job").get(pk=planned.pk)
    now = planned.run_at + dt.timedelta(seconds=1)
    assert runat.fire(planned, now) is not None
    assert runat.fire(stale, now) is None  # the conditional UPDATE of another beat claims nothing
    assert JobResult.objects.filter(job=job).count() == 1


def test_a_cancelled_run_never_fires_and_a_fired_one_cannot_be_cancelled(job, admin_user):
    cancelled = plan_run(job, soon(), parameters={"region": "south"})
    assert cancelled.cancel(admin_user) is True
    assert cancelled.cancel(admin_user) is False
    assert scheduler.fire_due(soon(10)) == []
    fired = plan_run(job, soon(), parameters={"region": "south"})
    scheduler.fire_due(soon(10))
    assert fired.cancel(admin_user) is False
    assert PlannedRun.objects.get(pk=cancelled.pk).cancelled_by == admin_user


@pytest.mark.parametrize(("run_at", "parameters", "field"), [
    (lambda: timezone.now() - dt.timedelta(seconds=1), {"region": "north"}, "run_at"),
    (lambda: dt.datetime(2030, 1, 1, 18), {"region": "north"}, "run_at"),  # no time zone
    (lambda: timezone.now() + dt.timedelta(days=400), {"region": "north"}, "run_at"),
    (lambda: soon(), {"region": "west"}, "region"),
    (lambda: soon(), {}, "region"),
    (lambda: soon(), {"region": "north", "days": "many"}, "days"),
])
def test_bad_input_is_refused_at_request_time_naming_the_field(job, run_at, parameters, field):
    with pytest.raises(ValidationError) as caught:
        plan_run(job, run_at(), parameters=parameters)
    assert field in caught.value.message_dict
    assert not PlannedRun.objects.exists()


def test_an_inactive_job_cannot_be_planned(job):
    job.active = False
    job.save()
    with pytest.raises(RunRefused):
        plan_run(job, soon(), parameters={"region": "north"})


def test_inside_a_window_it_is_recorded_as_suppressed_with_the_window_name(job, acme):
    planned = plan_run(job, soon(), parameters={"region": "north"})
    MaintenanceWindow.objects.create(name="acme db upgrade", domain=acme, kind="once", starts_at=soon(1),
                                     ends_at=soon(60))
    fired = scheduler.fire_due(soon(10))
    assert len(fired) == 1
    record = JobResult.objects.get(job=job)
    assert record.status == "info" and record.trigger == "run_at"
    assert record.message == "Planned run not started: inside maintenance window acme db upgrade"
    assert PlannedRun.objects.get(pk=planned.pk).state == PlannedRun.SUPPRESSED


def test_while_paused_it_is_suppressed(job, admin_user):
    plan_run(job, soon(), parameters={"region": "north"})
    maintenance.pause_all(admin_user, "freeze")
    scheduler.fire_due(soon(10))
    assert JobResult.objects.get(job=job).message == ("Planned run not started: all schedules are paused "
                                                       "(by root: freeze)")


def test_a_user_who_lost_the_right_to_run_does_not_run_it(job, acme, member):
    operator = member("olga", acme, DomainMembership.OPERATOR)
    plan_run(job, soon(), parameters={"region": "north"}, user=operator)
    DomainMembership.objects.filter(user=operator).update(role=DomainMembership.VIEWER)
    scheduler.fire_due(soon(10))
    record = JobResult.objects.get(job=job)
    assert record.status == "error" and "olga may no longer run this job" in record.message


# --- API ---------------------------------------------------------------------------------------------------
def test_api_plans_a_run_and_cancels_it(job, operator):
    client = client_for(operator)
    run_at = soon(30).replace(microsecond=0)
    response = client.post(reverse("api:job-run", args=[job.identifier]),
                           {"parameters": {"region": "north"}, "run_at": run_at.isoformat()}, format="json")
    assert response.status_code == 202, response.content
    planned = response.json()["planned"]
    assert (planned["state"], planned["job"], planned["parameters"]) == ("pending", job.identifier,
                                                                         {"region": "north", "days": 7})
    assert dt.datetime.fromisoformat(planned["run_at"].replace("Z", "+00:00")) == run_at
    assert not JobResult.objects.filter(job=job).exists()
    cancel = reverse("api:planned-cancel", args=[planned["id"]])
    assert client.post(cancel).status_code == 200
    assert PlannedRun.objects.get().state == PlannedRun.CANCELLED
    assert client.post(cancel).status_code == 409


def test_api_names_a_bad_run_at_or_parameter(job, operator):
    client = client_for(operator)
    url = reverse("api:job-run", args=[job.identifier])
    past = client.post(url, {"parameters": {"region": "north"}, "run_at": "2001-01-01T00:00:00Z"}, format="json")
    assert past.status_code == 400 and "run_at" in past.json()["errors"]
    garbage = client.post(url, {"parameters": {"region": "north"}, "run_at": "tomorrow"}, format="json")
    assert garbage.status_code == 400 and "run_at" in garbage.json()["errors"]
    bad = client.post(url, {"parameters": {"region": "west"}, "run_at": soon().isoformat()}, format="json")
    assert bad.status_code == 400 and "parameters.region" in bad.json()["errors"]
    assert not PlannedRun.objects.exists()


def test_a_viewer_cannot_cancel_and_another_domain_gets_404(job, acme, globex, member):
    planned = plan_run(job, soon(), parameters={"region": "north"})
    viewer = member("vic", acme, DomainMembership.VIEWER)
    outsider = member("otto", globex, DomainMembership.ADMIN)
    cancel = reverse("api:planned-cancel", args=[planned.pk])
    assert client_for(viewer).post(cancel).status_code == 403
    assert client_for(outsider).post(cancel).status_code == 404
    assert PlannedRun.objects.get().state == PlannedRun.PENDING


# --- runjob --at ---------------------------------------------------------------------------------------------
def test_runjob_at_plans_the_run_and_prints_its_id(job):
    out = StringIO()
    at = (timezone.localtime() + dt.timedelta(hours=2)).replace(second=0, microsecond=0, tzinfo=None)
    call_command("runjob", job.identifier, "--param", "region=south", "--at", at.isoformat(), stdout=out)
    planned = PlannedRun.objects.get()
    assert out.getvalue().strip() == str(planned.pk)
    assert planned.run_at == timezone.make_aware(at)
    assert (planned.trigger, planned.parameters["region"]) == ("command", "south")


@pytest.mark.parametrize(("args", "said"), [
    (["--at", "tomorrow"], "--at 'tomorrow': write a date and time"),
    (["--at", "2001-01-01T00:00"], "--at: must be in the future"),
    (["--at", "SOON", "--param", "region=west"], "parameter region: must be one of"),
])
def test_runjob_at_refuses_bad_input_with_exit_2(job, args, said):
    args = [soon(60).isoformat() if arg == "SOON" else arg for arg in args]
    with pytest.raises(CommandError) as caught:
        call_command("runjob", job.identifier, "--param", "region=north", *args, stdout=StringIO())
    assert caught.value.returncode == 2 and said in str(caught.value)
    assert not PlannedRun.objects.exists()


# --- the admin's Run dialog --------------------------------------------------------------------------------
def test_the_run_dialog_plans_a_run_later_and_the_job_page_lists_it_with_cancel(client, job, admin_user):
    client.force_login(admin_user)
    local = (timezone.localtime() + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    response = client.post(reverse("admin:jobs_job_run", args=[job.pk]),
                           {"step": "confirm", "region": "north", "days": "2",
                            "later-run_at": local.strftime("%Y-%m-%dT%H:%M")})
    planned = PlannedRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:results_plannedrun_change", args=[planned.pk])
    assert planned.run_at == local and planned.parameters == {"region": "north", "days": 2}
    assert not JobResult.objects.exists()
    page = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert 'id="planned-runs"' in page and reverse("admin:results_plannedrun_cancel", args=[planned.pk]) in page
    assert client.post(reverse("admin:results_plannedrun_cancel", args=[planned.pk])).status_code == 302
    assert PlannedRun.objects.get().state == PlannedRun.CANCELLED


def test_the_run_dialog_refuses_a_later_time_inside_a_window(client, job, admin_user):
    client.force_login(admin_user)
    local = (timezone.localtime() + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    MaintenanceWindow.objects.create(name="quiet hours", kind="once", starts_at=local - dt.timedelta(minutes=5),
                                     ends_at=local + dt.timedelta(hours=1))
    response = client.post(reverse("admin:jobs_job_run", args=[job.pk]),
                           {"step": "confirm", "region": "north", "later-run_at": local.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 200
    assert "inside maintenance window quiet hours" in " ".join(response.context["later"].errors["run_at"])
    assert not PlannedRun.objects.exists()


def test_run_now_inside_a_window_warns_and_asks_to_confirm(client, job, admin_user):
    client.force_login(admin_user)
    MaintenanceWindow.objects.create(name="patching", kind="once", starts_at=timezone.now() - dt.timedelta(hours=1),
                                     ends_at=timezone.now() + dt.timedelta(hours=1))
    url = reverse("admin:jobs_job_run", args=[job.pk])
    response = client.post(url, {"step": "parameters", "region": "north"})
    html = response.content.decode()
    assert 'id="window-warning"' in html and "inside maintenance window patching" in html
    response = client.post(url, {"step": "confirm", "region": "north"})
    assert response.status_code == 200 and "window_ok" in response.context["later"].errors
    assert not JobResult.objects.exists()
    response = client.post(url, {"step": "confirm", "region": "north", "later-window_ok": "on"})
    assert response.status_code == 302
    assert JobResult.objects.filter(job=job, trigger="manual").count() == 1


def test_api_and_runjob_say_when_a_run_by_hand_starts_inside_a_window(job, operator):
    MaintenanceWindow.objects.create(name="patching", kind="once", starts_at=timezone.now() - dt.timedelta(hours=1),
                                     ends_at=timezone.now() + dt.timedelta(hours=1))
    response = client_for(operator).post(reverse("api:job-run", args=[job.identifier]),
                                         {"parameters": {"region": "north"}}, format="json")
    assert response.status_code == 202
    assert response.json()["warnings"] == ["Started inside maintenance window patching (" +
                                           MaintenanceWindow.objects.get().describe() + ")."]
    err = StringIO()
    call_command("runjob", job.identifier, "--param", "region=north", stdout=StringIO(), stderr=err)
    assert "warning: started inside maintenance window patching" in err.getvalue()
    assert JobResult.objects.filter(job=job).count() == 2
