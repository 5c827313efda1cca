"""The reaper: lost runs end, lost messages are published again, the worker start-up sweep."""
from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from results import aftermath, reaper, states
from results.dispatch import republish_lost_messages, start_run
from results.models import JobResult, Status
from tests.helpers import make_job, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


def running_result(job, *, worker: str = "elsewhere:1", heartbeat_age: float = 0) -> JobResult:
    result = JobResult.objects.create(job=job)
    assert states.claim(result.id, worker)
    JobResult.objects.filter(id=result.id).update(
        heartbeat_at=timezone.now() - dt.timedelta(seconds=heartbeat_age))
    return result


def test_a_run_without_heartbeat_ends_as_worker_lost_and_a_fresh_one_is_left_alone(settings):
    settings.JOBS_WORKER_LOST_SECONDS = 20
    job = make_job("reaped", concurrency="parallel")
    stale = running_result(job, heartbeat_age=60)
    fresh = running_result(job, heartbeat_age=1)
    assert reaper.sweep() == [stale.id]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == Status.ERROR and stale.message.startswith("Worker lost")
    assert "not retried because the job is not idempotent" in stale.message
    assert fresh.status == Status.RUNNING


def test_a_lost_run_that_was_being_killed_ends_killed():
    job = make_job("reaped-kill")
    result = running_result(job, heartbeat_age=3600)
    states.request_kill(result.id, None)
    reaper.sweep()
    assert JobResult.objects.get(id=result.id).status == Status.KILLED


def test_the_start_up_sweep_ends_at_once_the_runs_of_dead_processes_on_this_host():
    dead = subprocess.Popen(["true"])
    dead.wait()
    job = make_job("dead-process", concurrency="parallel")
    lost = running_result(job, worker=f"{socket.gethostname()}:{dead.pid}")
    alive = running_result(job, worker=f"{socket.gethostname()}:{os.getpid()}")
    other_host = running_result(job, worker=f"another-host:{dead.pid}")
    assert reaper.sweep_host() == [lost.id]
    assert JobResult.objects.get(id=lost.id).message.startswith(f"Worker lost: process {dead.pid}")
    assert JobResult.objects.get(id=alive.id).status == Status.RUNNING
    assert JobResult.objects.get(id=other_host.id).status == Status.RUNNING


def test_a_reaped_run_never_overwrites_a_finish_that_won(settings):
    job = make_job("won")
    result = running_result(job, heartbeat_age=3600)
    assert states.finish(result.id, Status.SUCCESS, "done")
    assert reaper.sweep() == []
    assert JobResult.objects.get(id=result.id).status == Status.SUCCESS


def test_lose_leaves_alone_a_run_whose_heartbeat_came_after_the_reapers_read():
    job = make_job("late-beat")
    result = running_result(job, heartbeat_age=3600)
    stale_before = timezone.now() - dt.timedelta(seconds=20)  # the sweep read it as stale ...
    assert states.beat([result.id]) == {result.id: False}  # ... and its worker beat right after
    assert states.lose(result.id, stale_before=stale_before) is False
    assert JobResult.objects.get(id=result.id).status == Status.RUNNING


@pytest.mark.worker
def test_a_worker_whose_run_was_reaped_cannot_overwrite_the_ending_nor_retry_it_again(worker_factory, tmp_path):
    # A heartbeat too slow to tell the worker that its run was ended: it comes back with its own ending.
    worker_factory("late", "late", concurrency=1, env={"JOBS_HEARTBEAT_SECONDS": "600"})
    release = tmp_path / "release"
    job = make_job("reaped-late", (10, "testing.fail_when_file_appears", {"path": str(release)}), queue="late",
                   idempotent=True, retries=3, retry_delay=3600, concurrency="parallel")
    result = start_run(job)
    wait_for_status(result.id, {Status.RUNNING})
    assert states.lose(result.id, reason=": reaped by the test")  # as the reaper does ...
    aftermath.run_ended(result.id, worker_lost=True)  # ... with its one retry
    reaped = JobResult.objects.get(id=result.id)
    assert reaped.retries.count() == 1
    release.touch()  # the worker's line now fails and its runner ends the run: too late
    probe = start_run(make_job("after-late", (10, "testing.echo", {}), queue="late"))
    assert wait_for_status(probe.id).status == Status.SUCCESS  # the one pool process is done with the run
    again = JobResult.objects.get(id=result.id)
    assert (again.status, again.message, again.finished_at) == (reaped.status, reaped.message, reaped.finished_at)
    assert again.message == "Worker lost: reaped by the test."
    assert again.retries.count() == 1


@pytest.mark.worker
def test_a_pending_result_whose_message_was_lost_is_published_again_once(celery_worker):
    job = make_job("lost-message", (10, "testing.echo", {}))
    # Created as the dispatcher does, but its message never reached the broker.
    result = JobResult.objects.create(job=job, published_at=timezone.now() - dt.timedelta(minutes=10))
    assert republish_lost_messages(dt.timedelta(minutes=2)) == [result.id]
    assert republish_lost_messages(dt.timedelta(minutes=2)) == []  # claimed: not twice at once
    assert wait_for_status(result.id).status == Status.SUCCESS
    assert JobResult.objects.get(id=result.id).line_results.count() == 1


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("time_limit", 0, "greater than or equal to 1"),
    ("time_limit", 10**9, "less than or equal to 604800"),
    ("retries", 11, "less than or equal to 10"),
    ("retry_delay", 10**7, "less than or equal to 86400"),
])
def test_absurd_limits_and_retries_are_field_errors(field, value, rule):
    job = make_job(f"absurd-{field}")
    setattr(job, field, value)
    with pytest.raises(ValidationError) as error:
        job.full_clean()
    assert rule in " ".join(error.value.message_dict[field])


def test_negative_values_are_field_errors():
    job = make_job("negative")
    job.retries = -1
    job.time_limit = -5
    with pytest.raises(ValidationError) as error:
        job.full_clean()
    assert {"retries", "time_limit"} <= set(error.value.message_dict)


def test_the_cron_command_fires_the_schedules_and_ends_lost_runs_as_beat_does(settings):
    from io import StringIO

    from django.core.management import call_command

    settings.JOBS_WORKER_LOST_SECONDS = 20
    lost = running_result(make_job("cron-lost"), heartbeat_age=60)
    out = StringIO()
    call_command("fire_schedules", stdout=out)
    assert f"result #{lost.id}: ended, its worker is lost" in out.getvalue()
    assert JobResult.objects.get(id=lost.id).status == Status.ERROR


def test_the_beat_scheduler_sweeps_at_its_interval_without_a_queue(settings, monkeypatch):
    from results.scheduler import JobsScheduler

    settings.JOBS_REAPER_INTERVAL_SECONDS = 30
    sweeps = []
    monkeypatch.setattr(reaper, "sweep", lambda: sweeps.append(1) or [])
    scheduler = JobsScheduler.__new__(JobsScheduler)  # only its sweep clock is used here
    assert scheduler.sweep_if_due() == pytest.approx(30, abs=1)
    assert 0 < scheduler.sweep_if_due() <= 30
    assert sweeps == [1]


def test_a_broker_outage_during_the_sweep_leaves_beat_running_and_the_run_pending(settings, monkeypatch):
    from kombu.exceptions import OperationalError

    from results import tasks
    from results.scheduler import JobsScheduler

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.run_result, "apply_async", broker_down)
    stale = JobResult.objects.create(job=make_job("waiting"), published_at=timezone.now() - dt.timedelta(hours=1))
    assert republish_lost_messages(dt.timedelta(seconds=60)) == []  # not sent, so not counted
    assert JobResult.objects.get(id=stale.id).status == Status.PENDING
    JobResult.objects.filter(id=stale.id).update(published_at=timezone.now() - dt.timedelta(hours=1))

    def failing_sweep():
        raise OperationalError("Redis is down")

    monkeypatch.setattr(reaper, "sweep", failing_sweep)
    scheduler = JobsScheduler.__new__(JobsScheduler)
    assert scheduler.sweep_if_due() > 0  # logged, not raised: beat goes on
