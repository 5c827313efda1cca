"""Schedules fired by real Celery beat processes, run by a real worker."""
from __future__ import annotations

import itertools
import time

import pytest
from django.utils import timezone

from jobs.models import Schedule
from results.models import JobResult
from tests.helpers import make_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]


def interval_job(identifier: str, seconds: int):
    job = make_job(identifier, (10, "testing.echo", {}), concurrency="parallel")
    schedule = Schedule.objects.create(job=job, kind="interval", every=seconds, every_unit="seconds")
    return job, schedule


def slots(job) -> list:
    return list(JobResult.objects.filter(job=job, trigger="schedule").order_by("scheduled_for")
                .values_list("scheduled_for", flat=True))


def wait_for_slots(job, count: int, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fired = slots(job)
        if len(fired) >= count:
            return fired
        time.sleep(0.1)
    raise AssertionError(f"{job.identifier}: {len(slots(job))} scheduled runs, expected {count}")


def test_an_interval_job_fires_each_slot_and_runs(beats):
    job, schedule = interval_job("every-second", 1)
    first_slot = schedule.next_run_at
    beats("beat-a")
    fired = wait_for_slots(job, 4)
    assert fired[0] == first_slot
    assert all((b - a).total_seconds() == 1 for a, b in itertools.pairwise(fired))
    done = JobResult.objects.filter(job=job, status="success").count()
    assert done >= 1  # the worker ran them


def test_two_beat_processes_never_fire_a_slot_twice_nor_miss_one(beats):
    jobs = [interval_job(f"ha-{n}", 1)[0] for n in range(3)]
    beats("beat-a")
    beats("beat-b")
    time.sleep(6)
    for job in jobs:
        fired = slots(job)
        assert len(fired) >= 4, job.identifier
        assert len(fired) == len(set(fired)), f"{job.identifier} fired a slot twice"
        gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(fired)}
        assert gaps == {1.0}, f"{job.identifier} missed a slot: gaps {gaps}"


def test_editing_the_interval_takes_effect_without_restarting_beat(beats):
    job, schedule = interval_job("edited", 3600)
    beats("beat-a")
    time.sleep(1.5)
    assert slots(job) == []
    schedule.every = 1
    schedule.save()  # what the admin form does
    fired = wait_for_slots(job, 2, timeout=15)
    assert (fired[1] - fired[0]).total_seconds() == 1


def test_disabling_a_schedule_stops_it_at_once(beats):
    job, schedule = interval_job("disabled-later", 1)
    beats("beat-a")
    wait_for_slots(job, 1)
    schedule.kind = Schedule.DISABLED
    schedule.save()
    count = len(slots(job))
    time.sleep(2.5)
    assert len(slots(job)) <= count + 1  # at most the slot claimed while saving
    assert Schedule.objects.get(pk=schedule.pk).next_run_at is None


def test_catch_up_after_beat_was_down_fires_once(beats):
    job, schedule = interval_job("downtime", 60)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() - timezone.timedelta(hours=1))
    beats("beat-a")
    fired = wait_for_slots(job, 1)
    time.sleep(1.5)
    assert len(slots(job)) == 1
    result = JobResult.objects.get(job=job)
    assert result.log_entries.filter(message__contains="caught up").exists() or "caught up" in result.message
    assert Schedule.objects.get(pk=schedule.pk).next_run_at > timezone.now()
    assert fired[0] < timezone.now() - timezone.timedelta(minutes=59)


def test_several_schedules_of_a_job_fire_with_their_own_values_under_two_beats(beats):
    job = make_job("two-regions", (10, "testing.echo", {"text": "region ${param.region}, ${param.days} days"}),
                   concurrency="parallel", params=[{"name": "region", "type": "choice", "choices": ["north", "south"],
                                                    "required": True},
                                                   {"name": "days", "type": "int", "default": 7}])
    for name, seconds, values in (("north", 1, {"region": "north", "days": 1}), ("south", 2, {"region": "south"})):
        schedule = Schedule(job=job, name=name, kind="interval", every=seconds, every_unit="seconds",
                            parameters=values)
        schedule.full_clean()
        schedule.save()
    beats("beat-a")
    beats("beat-b")
    wait_for_slots(job, 6)
    deadline = time.monotonic() + 30
    while JobResult.objects.filter(job=job, status="success").count() < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    results = list(JobResult.objects.filter(job=job, trigger="schedule"))
    by_schedule = {"north": [], "south": []}
    for result in results:
        by_schedule[result.parameters["region"]].append(result)
        if result.status == "success":  # its log names the schedule that started it
            assert result.log_entries.filter(message=f"schedule {result.parameters['region']}").exists()
    assert {r.parameters["days"] for r in by_schedule["north"]} == {1}
    assert {r.parameters["days"] for r in by_schedule["south"]} == {7}  # not given: the default
    for region, seconds in (("north", 1), ("south", 2)):
        fired = sorted(r.scheduled_for for r in by_schedule[region])
        assert len(fired) >= 2, region
        assert len(fired) == len(set(fired)), f"{region}: a slot fired twice"
        # Each slot on the schedule's own grid (a loaded machine may make beat pass a slot: not the point here).
        assert all((b - a).total_seconds() % seconds == 0 for a, b in itertools.pairwise(fired)), region
    logged = {entry.message for result in results if result.status == "success"
              for entry in result.log_entries.all()}
    assert {"region north, 1 days", "region south, 7 days"} <= logged  # the lines ran with the schedule's values
