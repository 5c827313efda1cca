"""Claiming due slots (results/scheduler.py: fire_due / fire), without a worker.

The jobs use a queue nobody consumes, so the results they start stay pending.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from jobs import registry
from jobs.models import Action, Schedule
from jobs.registry import action
from results import scheduler
from results.dispatch import start_run
from results.models import JobResult
from results.scheduler import fire, fire_due
from tests.helpers import make_job

QUEUE = "nobody-sched"

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def purge_unconsumed_queue():
    """Drop the messages published to the queue nobody consumes (transactional tests publish for real)."""
    yield
    from jobs_project.celery import app

    with contextlib.suppress(Exception), app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)


def scheduled_job(identifier: str, every: int = 10, unit: str = "minutes", **fields):
    fields.setdefault("queue", QUEUE)
    job = make_job(identifier, (10, "testing.echo", {}), **fields)
    schedule = Schedule.objects.create(job=job, kind="interval", every=every, every_unit=unit)
    return job, schedule


def make_due(schedule: Schedule, slot: dt.datetime) -> Schedule:
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=slot)
    return Schedule.objects.get(pk=schedule.pk)


def scheduled_results(job) -> list[JobResult]:
    return list(JobResult.objects.filter(job=job).order_by("id"))


# --- one slot, one result -----------------------------------------------------------------------------------------


def test_a_due_slot_fires_once_and_moves_next_run_forward():
    job, schedule = scheduled_job("due-once")
    slot = schedule.next_run_at
    now = slot + dt.timedelta(seconds=1)
    fired = fire_due(now)
    assert [r.job_id for r in fired] == [job.pk]
    result = JobResult.objects.get(job=job)
    assert result.pk == fired[0].pk
    assert result.status == "pending"
    assert result.trigger == "schedule"
    assert result.scheduled_for == slot
    assert result.queue == QUEUE
    assert "missed" not in result.message
    schedule.refresh_from_db()
    assert schedule.next_run_at == slot + dt.timedelta(minutes=10)
    assert schedule.last_run_at == now


def test_firing_again_at_the_same_instant_fires_nothing():
    job, schedule = scheduled_job("same-now")
    now = schedule.next_run_at + dt.timedelta(seconds=1)
    assert len(fire_due(now)) == 1
    assert fire_due(now) == []
    assert JobResult.objects.filter(job=job).count() == 1


def test_a_stale_copy_of_the_schedule_cannot_claim_the_slot_twice():
    job, schedule = scheduled_job("stale-copy")
    now = schedule.next_run_at + dt.timedelta(seconds=1)
    stale = Schedule.objects.select_related("job").get(pk=schedule.pk)
    assert fire(schedule, now) is not None
    assert fire(stale, now) is None  # its next_run_at no longer matches: the conditional UPDATE claims nothing
    assert JobResult.objects.filter(job=job).count() == 1


def test_a_schedule_not_yet_due_is_left_alone():
    job, schedule = scheduled_job("not-due")
    assert fire_due(schedule.next_run_at - dt.timedelta(seconds=1)) == []
    assert JobResult.objects.filter(job=job).count() == 0
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == schedule.next_run_at


def test_a_slot_at_exactly_now_is_due():
    _, schedule = scheduled_job("exactly-now")
    assert len(fire_due(schedule.next_run_at)) == 1


def test_each_due_schedule_fires_once():
    jobs = [scheduled_job(f"many-{n}")[0] for n in range(3)]
    later = scheduled_job("many-later", every=2, unit="hours")[0]
    now = timezone.now() + dt.timedelta(minutes=10, seconds=1)
    fired = fire_due(now)
    assert sorted(r.job.identifier for r in fired) == sorted(j.identifier for j in jobs)
    assert JobResult.objects.filter(job=later).count() == 0
    assert fire_due(now) == []


def test_successive_slots_each_fire_once_on_the_interval_grid():
    job, schedule = scheduled_job("grid", every=1, unit="minutes")
    first = schedule.next_run_at
    for n in range(3):
        fire_due(first + dt.timedelta(minutes=n, seconds=2))
    assert [r.scheduled_for for r in scheduled_results(job)] == [
        first, first + dt.timedelta(minutes=1), first + dt.timedelta(minutes=2)]


def test_a_calendar_schedule_moves_to_its_next_calendar_slot():
    job = make_job("calendar-claim", (10, "testing.echo", {}), queue=QUEUE, concurrency="parallel")
    schedule = Schedule.objects.create(job=job, kind="calendar", weekdays=[0, 2], times=["08:00"],
                                       timezone="Europe/Madrid")
    slot = schedule.next_run_at
    fire_due(slot + dt.timedelta(seconds=5))
    schedule.refresh_from_db()
    local = schedule.next_run_at.astimezone(ZoneInfo("Europe/Madrid"))
    assert schedule.next_run_at > slot
    assert local.strftime("%H:%M") == "08:00"
    assert local.weekday() in (0, 2)
    assert (schedule.next_run_at - slot) <= dt.timedelta(days=5)


# --- two schedulers at once ---------------------------------------------------------------------------------------


def run_in_threads(count: int, target) -> list[BaseException]:
    errors: list[BaseException] = []

    def body():
        try:
            target()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=body) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a scheduler thread hung"
    return errors


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_the_same_moment_create_exactly_one_result(monkeypatch):
    job, schedule = scheduled_job("race", concurrency="parallel")
    now = schedule.next_run_at + dt.timedelta(seconds=1)
    both_read = threading.Barrier(2, timeout=20)
    original_fire = scheduler.fire
    claims: list[JobResult | None] = []

    def fire_after_both_read(due, at):
        both_read.wait()  # both threads hold the same due slot before either claims it
        result = original_fire(due, at)
        claims.append(result)
        return result

    monkeypatch.setattr(scheduler, "fire", fire_after_both_read)
    errors = run_in_threads(2, lambda: fire_due(now))
    assert errors == []
    assert len(claims) == 2
    assert sum(1 for claim in claims if claim is not None) == 1
    assert JobResult.objects.filter(job=job).count() == 1
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == schedule.next_run_at + dt.timedelta(minutes=10)


@pytest.mark.django_db(transaction=True)
def test_several_schedulers_on_several_schedules_fire_each_slot_once():
    jobs = [scheduled_job(f"crowd-{n}", concurrency="parallel")[0] for n in range(4)]
    now = max(Schedule.objects.values_list("next_run_at", flat=True)) + dt.timedelta(seconds=1)
    errors = run_in_threads(4, lambda: fire_due(now))
    assert errors == []
    for job in jobs:
        assert JobResult.objects.filter(job=job).count() == 1, job.identifier


# --- missed slots (downtime) --------------------------------------------------------------------------------------


def test_missed_slots_with_catch_up_once_fire_one_run_naming_the_missed_slot():
    job, schedule = scheduled_job("downtime-once", every=10, unit="minutes")
    now = timezone.now()
    slot = now - dt.timedelta(hours=3)  # 18 slots missed
    make_due(schedule, slot)
    fired = fire_due(now)
    assert len(fired) == 1
    result = JobResult.objects.get(job=job)
    assert result.trigger == "schedule"
    assert result.scheduled_for == slot
    assert "missed" in result.message
    assert f"{timezone.localtime(slot):%Y-%m-%d %H:%M}" in result.message
    next_run_at = Schedule.objects.get(pk=schedule.pk).next_run_at
    assert next_run_at > timezone.now()
    assert next_run_at - now <= dt.timedelta(minutes=10)
    assert fire_due(timezone.now()) == []  # the other missed slots are not fired one by one


def test_missed_slots_with_catch_up_skip_fire_nothing():
    job, schedule = scheduled_job("downtime-skip", every=10, unit="minutes")
    Schedule.objects.filter(pk=schedule.pk).update(catch_up=Schedule.CATCH_UP_SKIP)
    now = timezone.now()
    make_due(schedule, now - dt.timedelta(hours=3))
    assert fire_due(now) == []
    assert JobResult.objects.filter(job=job).count() == 0
    after = Schedule.objects.get(pk=schedule.pk)
    assert after.next_run_at > timezone.now()
    assert after.last_run_at == now


def test_a_slot_fired_a_little_late_is_not_missed_even_with_skip():
    _, schedule = scheduled_job("slightly-late")
    Schedule.objects.filter(pk=schedule.pk).update(catch_up=Schedule.CATCH_UP_SKIP)
    slot = schedule.next_run_at
    fired = fire_due(slot + dt.timedelta(seconds=20))
    assert len(fired) == 1
    assert "missed" not in fired[0].message


# --- slots that cannot start --------------------------------------------------------------------------------------


def test_a_one_at_a_time_job_with_a_pending_run_records_the_skipped_slot():
    job, schedule = scheduled_job("busy-job", concurrency="one")
    going = start_run(job)
    slot = schedule.next_run_at
    fired = fire_due(slot + dt.timedelta(seconds=1))
    assert len(fired) == 1
    skipped = JobResult.objects.filter(job=job).exclude(pk=going.pk).get()
    assert skipped.pk == fired[0].pk
    assert skipped.status == "info"
    assert skipped.finished_at is not None
    assert skipped.trigger == "schedule"
    assert skipped.scheduled_for == slot
    assert "skipped" in skipped.message.lower()
    assert f"#{going.pk}" in skipped.message
    assert JobResult.objects.get(pk=going.pk).status == "pending"
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == slot + dt.timedelta(minutes=10)


def test_a_parallel_job_with_a_pending_run_starts_another():
    job, schedule = scheduled_job("parallel-job", concurrency="parallel")
    start_run(job)
    fired = fire_due(schedule.next_run_at + dt.timedelta(seconds=1))
    assert [r.status for r in fired] == ["pending"]
    assert JobResult.objects.filter(job=job, status="pending").count() == 2


def test_a_required_parameter_without_default_records_an_error():
    job, schedule = scheduled_job("needs-region", params=[{"name": "region", "type": "str", "required": True}])
    slot = schedule.next_run_at
    fired = fire_due(slot + dt.timedelta(seconds=1))
    assert len(fired) == 1
    result = JobResult.objects.get(job=job)
    assert result.status == "error"
    assert result.trigger == "schedule"
    assert result.scheduled_for == slot
    assert result.finished_at is not None
    assert "required" in result.message
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == slot + dt.timedelta(minutes=10)


def test_the_recorded_error_names_the_missing_parameter():
    job, schedule = scheduled_job("names-region", params=[{"name": "region", "type": "str", "required": True}])
    fire_due(schedule.next_run_at + dt.timedelta(seconds=1))
    assert "region" in JobResult.objects.get(job=job).message


def test_a_required_parameter_with_a_default_starts_normally():
    _, schedule = scheduled_job("has-default", params=[{"name": "days", "type": "int", "default": 7,
                                                        "required": True}])
    fired = fire_due(schedule.next_run_at + dt.timedelta(seconds=1))
    assert [(r.status, r.parameters) for r in fired] == [("pending", {"days": 7})]


def test_each_schedule_of_a_job_starts_its_runs_with_its_own_values():
    job = make_job("regions", (10, "testing.echo", {}), queue=QUEUE, concurrency="parallel",
                   params=[{"name": "region", "type": "str", "required": True}, {"name": "days", "type": "int",
                                                                                   "default": 7}])
    north = Schedule.objects.create(job=job, name="north", kind="interval", every=10, every_unit="minutes",
                                    parameters={"region": "north", "days": 1})
    south = Schedule.objects.create(job=job, name="south", kind="interval", every=1, every_unit="hours",
                                    parameters={"region": "south"})
    fired = [fire(schedule, schedule.next_run_at + dt.timedelta(seconds=1)) for schedule in (north, south)]
    assert [(r.status, r.parameters["region"], r.parameters["days"], r.message) for r in fired] == [
        ("pending", "north", 1, "schedule north"), ("pending", "south", 7, "schedule south")]
    assert [fire(schedule, schedule.next_run_at + dt.timedelta(seconds=1)) for schedule in (north, south)] == [
        None, None]  # each slot claimed once


def test_a_value_the_job_no_longer_accepts_records_an_error_naming_the_schedule():
    job = make_job("changed-params", (10, "testing.echo", {}), queue=QUEUE,
                   params=[{"name": "days", "type": "int"}])
    schedule = Schedule.objects.create(job=job, name="weekly", kind="interval", every=10, every_unit="minutes",
                                       parameters={"days": 7})
    job.params = [{"name": "days", "type": "choice", "choices": ["1", "2"]}]  # changed by code, not re-validated
    job.save()
    fire_due(Schedule.objects.get(pk=schedule.pk).next_run_at + dt.timedelta(seconds=1))
    result = JobResult.objects.get(job=job)
    assert (result.status, result.message) == (
        "error", "Scheduled run of schedule 'weekly' not started: days: must be one of: 1, 2")


def test_every_fired_result_has_the_schedule_trigger():
    _, ok_schedule = scheduled_job("trigger-ok", concurrency="parallel")
    busy, busy_schedule = scheduled_job("trigger-busy")
    start_run(busy)
    _, bad_schedule = scheduled_job("trigger-bad", params=[{"name": "x", "type": "int", "required": True}])
    now = max(s.next_run_at for s in (ok_schedule, busy_schedule, bad_schedule)) + dt.timedelta(seconds=1)
    fired = fire_due(now)
    assert sorted(r.status for r in fired) == ["error", "info", "pending"]
    assert {r.trigger for r in fired} == {"schedule"}
    assert {r.trigger for r in JobResult.objects.filter(pk__in=[r.pk for r in fired])} == {"schedule"}


def auto_hourly(ctx) -> str:
    return "hourly"


def test_an_automatic_interval_keeps_its_slots_when_fired_late(monkeypatch):
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    action("testing.claim_auto_hourly", schedule={"type": "interval", "every": 3600})(auto_hourly)
    Action.objects.sync_with_registry()
    job = make_job("auto-late", (10, "testing.claim_auto_hourly", {}), queue=QUEUE)
    schedule = Schedule.objects.create(job=job, kind="automatic")
    slot = schedule.next_run_at
    fire_due(slot + dt.timedelta(seconds=30))
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == slot + dt.timedelta(hours=1)
