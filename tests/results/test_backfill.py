"""Backfill (results/backfill.py): one run per day, in order, N at a time, one Kill for all.

The first tests use a queue nobody consumes (runs stay pending until the test ends them); the last runs a
7-day backfill on a real worker and beat, and kills it in the middle.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from jobs.models import DomainMembership
from results import backfill
from results.backfill import Backfill, BackfillDay
from results.models import JobResult, Status
from tests.helpers import make_job, wait_for_status

QUEUE = "nobody-backfill"
DAY_PARAMS = [{"name": "day", "type": "date", "required": True},
              {"name": "region", "type": "choice", "choices": ["north", "south"], "default": "north"}]
FIRST = dt.date(2026, 11, 1)


@pytest.fixture(scope="module", autouse=True)
def purge_unconsumed_queue():
    yield
    from jobs_project.celery import app

    with contextlib.suppress(Exception), app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)


def daily_job(identifier="daily-import", **fields):
    fields.setdefault("queue", QUEUE)
    fields.setdefault("concurrency", "parallel")
    return make_job(identifier, (10, "testing.echo", {}), params=DAY_PARAMS, **fields)


def days_started(bf: Backfill) -> list[str]:
    return [result.parameters["day"] for result in JobResult.objects.filter(backfill_day__backfill=bf).order_by("id")]


def end(result_ids, status=Status.SUCCESS) -> None:
    JobResult.objects.filter(id__in=list(result_ids)).update(status=status)


@pytest.mark.django_db
@pytest.mark.parametrize("lost", ["membership", "job inactive"])
def test_a_backfill_stops_once_its_author_may_no_longer_run_the_job(acme, member, lost):
    """Its days run as their author: on the old code they went on starting for a removed operator, and a job made
    inactive meanwhile left the backfill open, tried again at every beat tick."""
    job = daily_job(domain=acme)
    operator = member("otto", acme, DomainMembership.OPERATOR)
    bf = backfill.create(job, parameter="day", first_day=FIRST, last_day=FIRST + dt.timedelta(days=2), user=operator)
    end(JobResult.objects.filter(backfill_day__backfill=bf).values_list("id", flat=True))
    if lost == "membership":
        DomainMembership.objects.filter(user=operator).delete()
        reason = "otto may no longer run this job"
    else:
        job.active = False
        job.save()
        reason = "the job daily-import is inactive"
    assert backfill.advance(bf.pk) == []
    assert days_started(bf) == ["2026-11-01"]  # the other two never start
    bf.refresh_from_db()
    assert bf.killed_at is not None and bf.killed_by is None
    stopped = JobResult.objects.get(trigger="backfill", backfill_day__isnull=True)
    assert (stopped.status, stopped.message) == (Status.ERROR, f"Backfill #{bf.pk} stopped: {reason}.")
    assert backfill.advance(bf.pk) == [] and JobResult.objects.count() == 2  # said once


@pytest.mark.django_db
def test_a_global_job_run_per_domain_is_not_backfilled(admin_user):
    """Each day would start one run per domain while the backfill follows one: parallel and Kill would miss them."""
    job = daily_job("per-domain-import", execution="per_domain")
    with pytest.raises(ValidationError) as caught:
        backfill.create(job, parameter="day", first_day=FIRST, last_day=FIRST, user=admin_user)
    assert list(caught.value.message_dict) == ["job"]
    assert not Backfill.objects.exists()


@pytest.mark.django_db
def test_days_start_in_order_never_more_than_parallel_at_once(admin_user):
    job = daily_job()
    bf = backfill.create(job, parameter="day", first_day=FIRST, last_day=FIRST + dt.timedelta(days=4), parallel=2,
                         parameters={"region": "south"}, user=admin_user)
    assert days_started(bf) == ["2026-11-01", "2026-11-02"]
    assert backfill.advance(bf.pk) == []  # two going: nothing more starts
    first = JobResult.objects.filter(backfill_day__backfill=bf).order_by("id").first()
    assert (first.trigger, first.parameters, first.requested_by) == ("backfill", {"day": "2026-11-01",
                                                                                  "region": "south"}, admin_user)
    end([first.pk])
    backfill.advance(bf.pk)
    assert days_started(bf) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    end(JobResult.objects.filter(backfill_day__backfill=bf, status=Status.PENDING).values_list("id", flat=True))
    backfill.advance_open()  # days 2 and 3 ended: 4 and 5 start
    assert days_started(bf) == [f"2026-11-0{n}" for n in range(1, 6)]
    bf.refresh_from_db()
    assert bf.finished_at is None  # the last two are going
    end(JobResult.objects.filter(backfill_day__backfill=bf).values_list("id", flat=True))
    backfill.advance_open()
    bf.refresh_from_db()
    assert bf.finished_at is not None and bf.progress() == {"total": 5, "done": 5, "going": 0, "failed": 0,
                                                             "waiting": 0}


@pytest.mark.django_db
def test_kill_kills_the_going_days_and_the_rest_never_start(admin_user):
    job = daily_job()
    bf = backfill.create(job, parameter="day", first_day=FIRST, last_day=FIRST + dt.timedelta(days=6), parallel=2)
    assert backfill.kill(bf.pk, admin_user) is True
    assert backfill.kill(bf.pk, admin_user) is False
    assert set(JobResult.objects.filter(backfill_day__backfill=bf).values_list("status", flat=True)) == {"killed"}
    assert backfill.advance(bf.pk) == [] and backfill.advance_open() == 0
    assert BackfillDay.objects.filter(backfill=bf, result__isnull=True).count() == 5
    bf.refresh_from_db()
    assert (bf.state, bf.killed_by) == ("killed", admin_user)


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "field"), [
    ({"parameter": "region"}, "parameter"),
    ({"last_day": FIRST - dt.timedelta(days=1)}, "last_day"),
    ({"last_day": FIRST + dt.timedelta(days=backfill.MAX_DAYS)}, "last_day"),
    ({"parallel": 0}, "parallel"),
    ({"parallel": backfill.MAX_PARALLEL + 1}, "parallel"),
    ({"parameters": {"region": "west"}}, "region"),
])
def test_bad_input_names_the_field_and_stores_nothing(changes, field):
    job = daily_job()
    arguments = {"parameter": "day", "first_day": FIRST, "last_day": FIRST + dt.timedelta(days=2), "parallel": 1,
                 **changes}
    with pytest.raises(ValidationError) as caught:
        backfill.create(job, **arguments)
    assert field in caught.value.message_dict
    assert not Backfill.objects.exists() and not JobResult.objects.exists()


@pytest.mark.django_db
def test_a_one_at_a_time_job_is_backfilled_one_day_at_a_time_only():
    job = daily_job("one-by-one", concurrency="one")
    with pytest.raises(ValidationError) as caught:
        backfill.create(job, parameter="day", first_day=FIRST, last_day=FIRST + dt.timedelta(days=2), parallel=2)
    assert "one at a time" in caught.value.message_dict["parallel"][0]
    bf = backfill.create(job, parameter="day", first_day=FIRST, last_day=FIRST + dt.timedelta(days=2))
    assert days_started(bf) == ["2026-11-01"]


# --- admin --------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_admin_starts_shows_and_kills_a_backfill(client, acme, member):
    job = daily_job(domain=acme)
    operator = member("olga", acme, DomainMembership.OPERATOR)
    client.force_login(operator)
    page = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert reverse("admin:results_backfill_start", args=[job.pk]) in page
    response = client.post(reverse("admin:results_backfill_start", args=[job.pk]),
                           {"parameter": "day", "first_day": "2026-11-01", "last_day": "2026-11-07", "parallel": "1",
                            "param-region": "south"})
    bf = Backfill.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:results_backfill_change",
                                                                           args=[bf.pk])
    html = client.get(response["Location"]).content.decode()
    assert "0 of 7 days done, 1 going, 6 waiting" in html and 'id="kill-backfill"' in html
    assert client.post(reverse("admin:results_backfill_kill", args=[bf.pk])).status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "never started" in html and 'id="kill-backfill"' not in html


@pytest.mark.django_db
def test_the_backfill_form_names_a_bad_field(client, admin_user):
    job = daily_job()
    client.force_login(admin_user)
    response = client.post(reverse("admin:results_backfill_start", args=[job.pk]),
                           {"parameter": "day", "first_day": "2026-11-07", "last_day": "2026-11-01", "parallel": "1"})
    assert response.status_code == 200 and "last_day" in response.context["form"].errors
    assert not Backfill.objects.exists()


# --- a real worker and beat ------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_7_day_backfill_killed_in_the_middle_never_starts_the_rest(beat, admin_user):
    job = make_job("daily-sleep", (10, "core.sleep", {"seconds": 1}), params=DAY_PARAMS[:1], concurrency="parallel")
    bf = backfill.create(job, parameter="day", first_day=FIRST, last_day=FIRST + dt.timedelta(days=6), parallel=1,
                         user=admin_user)
    deadline = time.monotonic() + 60
    while len(days_started(bf)) < 3:  # beat starts each day once the one before it ended
        assert time.monotonic() < deadline, f"days started: {days_started(bf)}"
        time.sleep(0.1)
    third = JobResult.objects.get(backfill_day__backfill=bf, backfill_day__day=FIRST + dt.timedelta(days=2))
    wait_for_status(third.pk, {Status.RUNNING})
    assert backfill.kill(bf.pk, admin_user) is True
    assert wait_for_status(third.pk).status == Status.KILLED
    time.sleep(3)  # several beat ticks, and long enough for day 4 to have started and ended
    assert days_started(bf) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    runs = list(JobResult.objects.filter(backfill_day__backfill=bf).order_by("id"))
    assert [run.status for run in runs] == ["success", "success", "killed"]
    assert runs[1].started_at >= runs[0].finished_at  # one at a time, in order
    assert BackfillDay.objects.filter(backfill=bf, result__isnull=True).count() == 4
    bf.refresh_from_db()
    assert bf.progress() == {"total": 7, "done": 3, "going": 0, "failed": 1, "waiting": 4}


@pytest.mark.django_db
def test_a_job_without_a_date_parameter_says_so(client, admin_user):
    job = make_job("no-dates", (10, "testing.echo", {}))
    client.force_login(admin_user)
    for response in (client.get(reverse("admin:results_backfill_start", args=[job.pk])),
                     client.post(reverse("admin:results_backfill_start", args=[job.pk]), {"parameter": "day"})):
        assert response.status_code == 200
        assert "no-dates has no date parameter to backfill." in response.content.decode()
    assert not Backfill.objects.exists()


# --- API -----------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_api_starts_reads_and_kills_a_backfill(acme, operator):
    from tests.helpers import client_for

    job = daily_job(domain=acme)
    client = client_for(operator)
    response = client.post(reverse("api:job-backfill", args=[job.identifier]),
                           {"parameter": "day", "first_day": "2026-11-01", "last_day": "2026-11-03", "parallel": 2,
                            "parameters": {"region": "south"}}, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["progress"] == {"total": 3, "done": 0, "going": 2, "failed": 0, "waiting": 1}
    assert [day["day"] for day in data["days"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert client.get(reverse("api:backfill", args=[data["id"]])).json()["state"] == "running"
    killed = client.post(reverse("api:backfill-kill", args=[data["id"]]))
    assert killed.status_code == 202 and killed.json()["state"] == "killed"
    assert client.post(reverse("api:backfill-kill", args=[data["id"]])).status_code == 409


@pytest.mark.django_db
def test_the_api_names_bad_backfill_fields(acme, operator):
    from tests.helpers import client_for

    job = daily_job(domain=acme)
    url = reverse("api:job-backfill", args=[job.identifier])
    client = client_for(operator)
    bad_range = client.post(url, {"parameter": "day", "first_day": "2026-11-03", "last_day": "2026-11-01"},
                            format="json")
    assert bad_range.status_code == 400 and "last_day" in bad_range.json()["errors"]
    bad_value = client.post(url, {"parameter": "day", "first_day": "2026-11-01", "last_day": "2026-11-01",
                                  "parameters": {"region": "west"}}, format="json")
    assert bad_value.status_code == 400 and "parameters.region" in bad_value.json()["errors"]
    not_a_date = client.post(url, {"parameter": "day", "first_day": "soon", "last_day": "2026-11-01"}, format="json")
    assert not_a_date.status_code == 400 and "first_day" in not_a_date.json()["errors"]
    assert not Backfill.objects.exists()
