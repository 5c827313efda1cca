"""Run at, maintenance windows and the pause under real Celery beat processes, with a real worker."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs import maintenance
from jobs.maintenance import MaintenanceWindow
from jobs.models import Schedule
from results.models import JobResult
from results.runat import PlannedRun, plan_run
from tests.helpers import make_job, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]


def every_second(identifier: str, **fields):
    job = make_job(identifier, (10, "testing.echo", {}), concurrency="parallel", **fields)
    Schedule.objects.create(job=job, kind="interval", every=1, every_unit="seconds")
    return job


def wait_for_results(job, count: int, timeout: float = 30) -> list[JobResult]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = list(JobResult.objects.filter(job=job).order_by("id"))
        if len(results) >= count:
            return results
        time.sleep(0.1)
    raise AssertionError(f"{job.identifier}: fewer than {count} results after {timeout} s")


def test_planned_runs_under_two_beats_each_fire_once_and_run(beats, admin_user):
    job = make_job("planned-ha", (10, "testing.echo", {}), concurrency="parallel")
    start = timezone.now() + dt.timedelta(seconds=3)
    planned = [plan_run(job, start + dt.timedelta(milliseconds=250 * n), user=admin_user) for n in range(8)]
    beats("beat-a")
    beats("beat-b")
    wait_for_results(job, 8)
    time.sleep(2)  # both beats keep ticking: a second fire would show now
    results = list(JobResult.objects.filter(job=job).order_by("id"))
    assert len(results) == 8, [r.scheduled_for for r in results]
    assert sorted(r.scheduled_for for r in results) == [p.run_at for p in planned]
    assert set(PlannedRun.objects.values_list("state", flat=True)) == {PlannedRun.FIRED}
    for result in results:
        assert wait_for_status(result.pk).status == "success"
        assert result.trigger == "run_at" and result.requested_by == admin_user


def test_a_window_suppresses_every_slot_and_records_it_with_the_window_name(beats, acme, globex):
    quiet = every_second("quiet-acme", domain=acme)
    loud = every_second("loud-globex", domain=globex)
    MaintenanceWindow.objects.create(name="acme storage swap", domain=acme, kind="once",
                                     starts_at=timezone.now() - dt.timedelta(minutes=1),
                                     ends_at=timezone.now() + dt.timedelta(hours=1))
    beats("beat-a")
    wait_for_results(quiet, 3)
    wait_for_results(loud, 3)
    suppressed = list(JobResult.objects.filter(job=quiet))
    assert {(r.status, r.message, r.trigger) for r in suppressed} == {
        ("info", "Scheduled run suppressed: inside maintenance window acme storage swap", "schedule")}
    assert all(r.started_at is None and r.scheduled_for is not None for r in suppressed)
    assert len({r.scheduled_for for r in suppressed}) == len(suppressed)  # one record per slot
    assert wait_for_status(JobResult.objects.filter(job=loud).earliest("id").pk).status == "success"


def test_pause_all_fires_nothing_while_on_and_the_banner_says_who_and_why(beats, admin_user, client):
    job = every_second("paused-job")
    maintenance.pause_all(admin_user, "moving the cluster")
    client.force_login(admin_user)
    html = client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert 'id="schedule-pause-banner"' in html and "moving the cluster" in html
    beats("beat-a")
    records = wait_for_results(job, 3)
    assert all(r.status == "info" and r.started_at is None for r in records)
    assert records[0].message == "Scheduled run suppressed: all schedules are paused (by root: moving the cluster)"
    maintenance.resume_all(admin_user)
    deadline = time.monotonic() + 30
    while not JobResult.objects.filter(job=job, status="success").exists():
        assert time.monotonic() < deadline, "no run after resuming"
        time.sleep(0.1)
    assert 'id="schedule-pause-banner"' not in client.get(reverse("admin:jobs_job_changelist")).content.decode()
