"""Issue 13: per-domain quotas set by system administrators.

``Domain.max_parallel_runs``: a Run beyond it is refused (admin, API, schedules record a skip), even when
requests race. ``Domain.min_schedule_interval_seconds``: a schedule of the domain's job that fires more often
is refused when saved. Empty means no limit.
"""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from jobs.models import Domain, DomainMembership, Job, Schedule
from results import scheduler
from results.dispatch import RunRefused, start_run
from results.models import JobResult, Status
from tests.helpers import client_for, make_job
from tests.jobs.test_admin_job_form import page_data

pytestmark = pytest.mark.django_db
FULL = "domain acme allows at most 2 parallel runs (2 pending or running)."


def parallel_job(identifier: str, domain: Domain) -> Job:
    return make_job(identifier, (10, "core.sleep", {"seconds": 0}), domain=domain, concurrency=Job.PARALLEL)


@pytest.fixture
def limited(acme):
    acme.max_parallel_runs = 2
    acme.save()
    return acme


def test_a_run_beyond_the_domains_parallel_runs_is_refused(limited, globex):
    first, second = parallel_job("first", limited), parallel_job("second", limited)
    start_run(first)
    start_run(second)
    with pytest.raises(RunRefused, match="domain acme allows at most 2 parallel runs"):
        start_run(first)
    assert JobResult.objects.count() == 2
    start_run(parallel_job("elsewhere", globex))  # another domain has its own (no) limit


def test_finished_runs_do_not_count(limited):
    job = parallel_job("first", limited)
    for result in (start_run(job), start_run(job)):
        JobResult.objects.filter(pk=result.pk).update(status=Status.SUCCESS, finished_at=timezone.now())
    assert start_run(job).status == Status.PENDING


def test_the_api_answers_409_with_the_reason(limited, operator):
    job = parallel_job("first", limited)
    start_run(job)
    start_run(job)
    response = client_for(operator).post(f"/api/jobs/{job.identifier}/run/", {}, format="json")
    assert response.status_code == 409
    assert response.json() == {"errors": {"job": [FULL]}}


def test_a_scheduled_run_beyond_the_quota_is_recorded_as_skipped(limited):
    busy = parallel_job("busy", limited)
    start_run(busy)
    start_run(busy)
    job = parallel_job("every-minute", limited)
    schedule = Schedule.objects.create(job=job, kind=Schedule.INTERVAL, every=1, every_unit="minutes")
    now = schedule.next_run_at + dt.timedelta(seconds=1)
    skipped = scheduler.fire(Schedule.objects.select_related("job", "job__domain").get(pk=schedule.pk), now)
    assert (skipped.status, skipped.trigger) == (Status.INFO, "schedule")
    assert skipped.message == f"Scheduled run skipped: {FULL}"


@pytest.mark.django_db(transaction=True)
def test_racing_runs_never_exceed_the_quota():
    domain = Domain.objects.create(name="Acme", slug="acme", max_parallel_runs=1)
    job = parallel_job("race", domain)
    both_ready = threading.Barrier(4, timeout=20)
    outcomes: list[str] = []

    def run() -> None:
        try:
            both_ready.wait()
            start_run(Job.objects.select_related("domain").get(pk=job.pk))
            outcomes.append("started")
        except RunRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["refused", "refused", "refused", "started"]
    assert JobResult.objects.count() == 1


# --- schedules ---------------------------------------------------------------------------------------------
@pytest.fixture
def slow_domain(acme):
    acme.min_schedule_interval_seconds = 600
    acme.save()
    return acme


@pytest.mark.parametrize(("fields", "field", "gap"), [
    ({"kind": Schedule.INTERVAL, "every": 5, "every_unit": "minutes"}, "every", 300),
    ({"kind": Schedule.CALENDAR, "cron": "*/5 * * * *"}, "kind", 300),
    ({"kind": Schedule.CALENDAR, "weekdays": [0, 1], "times": ["08:00", "08:01", "18:00"]}, "kind", 60),
], ids=["interval", "cron", "days-and-times"])
def test_a_schedule_firing_more_often_than_the_domain_allows_is_refused(slow_domain, fields, field, gap):
    schedule = Schedule(job=parallel_job("often", slow_domain), timezone="UTC", **fields)
    with pytest.raises(ValidationError) as info:
        schedule.full_clean()
    assert info.value.message_dict[field] == [
        f"domain acme allows schedules at most every 600 seconds; this one fires {gap} seconds apart."]


@pytest.mark.parametrize("fields", [
    {"kind": Schedule.INTERVAL, "every": 10, "every_unit": "minutes"},
    {"kind": Schedule.CALENDAR, "cron": "0 * * * *"},
    {"kind": Schedule.CALENDAR, "weekdays": [0, 4], "times": ["08:00", "18:00"]},
    {"kind": Schedule.DISABLED},
], ids=["interval", "cron", "days-and-times", "disabled"])
def test_a_schedule_within_the_quota_is_accepted(slow_domain, fields):
    Schedule(job=parallel_job("calm", slow_domain), timezone="UTC", **fields).full_clean()


def test_no_quota_no_limit(acme):
    Schedule(job=parallel_job("often", acme), kind=Schedule.INTERVAL, every=1, every_unit="seconds").full_clean()


def test_the_job_page_names_the_quota(client, member, slow_domain):
    job = parallel_job("often", slow_domain)
    client.force_login(member("ann", slow_domain, DomainMembership.ADMIN))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = page_data(client.get(url))
    data.update({"schedule-0-kind": Schedule.INTERVAL, "schedule-0-every": "1", "schedule-0-every_unit": "minutes"})
    response = client.post(url, data)
    assert response.status_code == 200
    assert "domain acme allows schedules at most every 600 seconds" in response.content.decode()
    assert not Schedule.objects.filter(job=job).exclude(kind=Schedule.DISABLED).exists()


def test_a_domain_admin_cannot_change_the_quotas(client, member, limited):
    client.force_login(member("ann", limited, DomainMembership.ADMIN))
    url = reverse("admin:jobs_domain_change", args=[limited.pk])
    response = client.post(url, {"name": limited.name, "slug": limited.slug, "max_parallel_runs": "",
                                 "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0})
    assert response.status_code == 403
    limited.refresh_from_db()
    assert limited.max_parallel_runs == 2


def test_a_jobs_schedules_together_keep_the_domains_quota(slow_domain):
    """Schedules became several per job: each hourly at :00 and :30 (or twice the same plan) passed one at a time,
    and the job ran every 30 minutes (or twice a slot) in a domain that allows every 10 minutes at most."""
    job = parallel_job("twice-hourly", slow_domain)
    Schedule.objects.create(job=job, kind=Schedule.CALENDAR, cron="0 * * * *", timezone="UTC")
    Schedule(job=job, kind=Schedule.CALENDAR, cron="30 * * * *", timezone="UTC").full_clean()  # 30 min apart: fine
    for cron, gap in (("5 * * * *", 300), ("0 * * * *", 0)):
        with pytest.raises(ValidationError) as info:
            Schedule(job=job, kind=Schedule.CALENDAR, cron=cron, timezone="UTC").full_clean()
        assert info.value.message_dict["kind"] == [
            "domain acme allows schedules at most every 600 seconds; with the job's other schedules it fires "
            f"{gap} seconds apart."]
    schedule = job.schedules.get()
    schedule.full_clean()  # a schedule is not measured against itself when saved again
