"""How a worker hears of a kill (LISTEN/NOTIFY, the heartbeat's poll as safety net) and beats its runs' heartbeats.

Real worker processes on the configured database and broker. With the heartbeat (the safety-net poll)
set to a minute, a kill that arrives within 0.3 s can only have come by the announcement.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import OperationalError, connection
from django.test.utils import override_settings
from django.utils import timezone

from results import kill_watch, states
from results.dispatch import start_run
from results.models import JobLogEntry, JobResult, Status
from tests.conftest import REPO
from tests.helpers import make_job, wait_for_status, wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]

# The safety-net poll a minute away: only an announcement stops a run within seconds.
SLOW_POLL = {"JOBS_HEARTBEAT_SECONDS": "60", "JOBS_KILL_POLL_SECONDS": "60", "JOBS_WORKER_LOST_SECONDS": "240"}
NOTICED_WITHIN = 0.3  # seconds from the kill's request to the run's watch hearing of it


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; the embedded default polls (tested in test_kill.py)")


def running(job) -> JobResult:
    result = start_run(job)
    return wait_for_status(result.id, {Status.RUNNING}, timeout=30)


def noticed_after(result_id: int) -> float:
    """Seconds from the kill's request to the watch's "Kill requested" entry (the worker's own clock)."""
    result = wait_for_status(result_id, timeout=10)
    assert result.status == Status.KILLED, (result.status, result.message)
    entry = JobLogEntry.objects.get(result_id=result_id, message__startswith="Kill requested")
    return (entry.at - result.kill_requested_at).total_seconds()


def listeners() -> list[tuple[int, str]]:
    """(backend pid, application name) of the workers' listening connections to the test database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name LIKE 'jobs-kill-listener:%%'")
        return cursor.fetchall()


@pytest.mark.worker
@pytest.mark.usefixtures("postgres")
def test_a_kill_reaches_a_run_on_another_worker_by_its_announcement(worker_factory, admin_user):
    worker_factory("kw-a", "kw-a", concurrency=1, env=SLOW_POLL)
    worker_factory("kw-b", "kw-b", concurrency=1, env=SLOW_POLL)
    on_a = running(make_job("on-a", (10, "core.sleep", {"seconds": 120}), queue="kw-a"))
    on_b = running(make_job("on-b", (10, "core.sleep", {"seconds": 120}), queue="kw-b"))
    assert on_a.worker != on_b.worker
    wait_until(lambda: len(listeners()) >= 2, what="both pool processes listening")

    assert states.request_kill(on_b.id, admin_user).status == "requested"
    assert noticed_after(on_b.id) < NOTICED_WITHIN
    assert JobResult.objects.get(id=on_a.id).status == Status.RUNNING  # the other worker's run goes on
    states.request_kill(on_a.id, None)
    assert noticed_after(on_a.id) < NOTICED_WITHIN


@pytest.mark.worker
@pytest.mark.usefixtures("postgres")
def test_a_kill_announced_while_the_listener_was_cut_off_is_found_when_it_listens_again(worker_factory):
    worker = worker_factory("kw-cut", "kw-cut", concurrency=1, env=SLOW_POLL)
    job = make_job("cut", (10, "core.sleep", {"seconds": 120}), queue="kw-cut")
    result = running(job)
    name = f"jobs-kill-listener:{result.worker.rsplit(':', 1)[1]}"  # the run's pool process's

    def its_listeners() -> list[int]:
        return [backend for backend, application in listeners() if application == name]

    backend, = wait_until(its_listeners, what="the pool process listening")
    with connection.cursor() as cursor:  # as a PostgreSQL restart or an administrator would
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
    states.request_kill(result.id, None)  # announced to nobody, or to a connection on its way out
    killed = wait_for_status(result.id, timeout=10)  # the heartbeat's poll is a minute away
    assert killed.status == Status.KILLED
    assert (killed.finished_at - killed.kill_requested_at).total_seconds() < 5
    again, = wait_until(lambda: [pid for pid in its_listeners() if pid != backend], what="listening again")
    assert again != backend and "lost its connection" in worker.log()
    second = running(job)
    states.request_kill(second.id, None)
    assert noticed_after(second.id) < NOTICED_WITHIN  # announcements reach it again


@pytest.mark.worker
def test_a_kill_that_was_never_announced_is_found_by_the_heartbeats_poll(worker_factory):
    """A lost announcement (here: a kill written without one) costs one heartbeat interval, no more."""
    worker_factory("kw-poll", "kw-poll", concurrency=1, env={"JOBS_HEARTBEAT_SECONDS": "1",
                                                             "JOBS_KILL_POLL_SECONDS": "1"})
    result = running(make_job("unannounced", (10, "core.sleep", {"seconds": 120}), queue="kw-poll"))
    JobResult.objects.filter(id=result.id).update(kill_requested_at=timezone.now())
    killed = wait_for_status(result.id, timeout=10)
    assert killed.status == Status.KILLED
    assert (killed.finished_at - killed.kill_requested_at).total_seconds() < 3


@pytest.mark.worker
def test_the_runs_of_a_threads_pool_process_each_have_a_watch_and_one_heartbeat_update(worker_factory):
    worker_factory("kw-threads", "kw-threads", concurrency=3, pool="threads",
                   env={"JOBS_HEARTBEAT_SECONDS": "1"})
    job = make_job("threaded", (10, "core.sleep", {"seconds": 120}), queue="kw-threads", concurrency="parallel")
    ids = [start_run(job).id for _ in range(3)]
    for result_id in ids:
        wait_for_status(result_id, {Status.RUNNING}, timeout=30)

    def beaten_together():
        rows = list(JobResult.objects.filter(id__in=ids).values_list("worker", "started_at", "heartbeat_at"))
        return all(beat > started for _, started, beat in rows) and rows

    rows = wait_until(beaten_together, timeout=10, what="a heartbeat after the three starts")
    assert len({worker for worker, _, _ in rows}) == 1  # one process runs all three
    assert len({beat for _, _, beat in rows}) == 1  # one UPDATE beat all three
    states.request_kill(ids[1], None)
    assert wait_for_status(ids[1], timeout=10).status == Status.KILLED
    assert [JobResult.objects.get(id=i).status for i in (ids[0], ids[2])] == [Status.RUNNING, Status.RUNNING]
    for result_id in (ids[0], ids[2]):
        states.request_kill(result_id, None)
        assert wait_for_status(result_id, timeout=10).status == Status.KILLED


def test_a_worker_with_a_greenlet_pool_is_refused_at_start():
    # Named as a custom pool: gevent is not installed here, and "-P gevent" would fail on importing it first.
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "jobs_project", "worker", "-P", "custom", "-Q", "kw-never"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "jobs_project.settings_test",
             "CELERY_CUSTOM_WORKER_POOL": "celery.concurrency.gevent:TaskPool"})
    assert worker.returncode != 0
    assert "Jobs workers do not support the gevent pool: use -P prefork" in worker.stdout + worker.stderr


def running_results(count: int) -> list[int]:
    job = make_job("beaten", concurrency="parallel")
    ids = [JobResult.objects.create(job=job).id for _ in range(count)]
    for result_id in ids:
        assert states.claim(result_id, "here:1")
    return ids


@override_settings(JOBS_HEARTBEAT_SECONDS=0)
def test_one_statement_beats_every_run_of_a_process_and_reads_their_kills(django_assert_num_queries):
    ids = running_results(5)
    JobResult.objects.filter(id=ids[0]).update(heartbeat_at=None)
    watch = kill_watch.KillWatch(wake=lambda: None)
    assert watch.listener is None  # not a worker: this process polls
    with django_assert_num_queries(1):
        assert watch.check(ids) == ([], set())
    assert JobResult.objects.filter(id__in=ids, heartbeat_at__isnull=False).count() == 5
    assert len(set(JobResult.objects.filter(id__in=ids).values_list("heartbeat_at", flat=True))) == 1

    states.request_kill(ids[1], None)
    states.finish(ids[2], Status.SUCCESS, "done")
    with django_assert_num_queries(2):  # the beat, then who asked for the kill that it found
        requests, ended = watch.check(ids)
    assert [request.id for request in requests] == [ids[1]] and ended == {ids[2]}
    assert states.kill_message(requests[0]).startswith("Killed by the system at ")


@override_settings(JOBS_HEARTBEAT_SECONDS=60, JOBS_KILL_POLL_SECONDS=60)
def test_between_heartbeats_only_an_announced_kill_costs_a_query(django_assert_num_queries):
    ids = running_results(3)
    watch = kill_watch.KillWatch(wake=lambda: None)
    with django_assert_num_queries(0):
        assert watch.check(ids) == ([], set())
    states.request_kill(ids[2], None)
    watch._on_announced(ids[2])  # what the listener does with the notification
    watch._on_announced(10**9)  # a run of another process: never read here
    with django_assert_num_queries(1):
        requests, ended = watch.check(ids)
    assert [request.id for request in requests] == [ids[2]] and ended == set()
    with django_assert_num_queries(0):
        assert watch.check(ids) == ([], set())


@override_settings(JOBS_HEARTBEAT_SECONDS=60, JOBS_KILL_POLL_SECONDS=60)
def test_a_kill_announced_before_its_run_is_watched_is_kept_for_its_watch(django_assert_num_queries):
    """Claimed, then killed before its watch started: the announcement waits for the watch."""
    ids = running_results(2)
    watch = kill_watch.KillWatch(wake=lambda: None)
    assert watch.check(ids[:1]) == ([], set())  # only the first run's watch has started
    states.request_kill(ids[1], None)
    watch._on_announced(ids[1])
    with django_assert_num_queries(0):
        assert watch.check(ids[:1]) == ([], set())
    with django_assert_num_queries(1):
        requests, _ = watch.check(ids)  # the second run's watch starts
    assert [request.id for request in requests] == [ids[1]]


@override_settings(JOBS_HEARTBEAT_SECONDS=60, JOBS_KILL_POLL_SECONDS=60)
def test_an_announced_kill_whose_read_failed_is_read_again_at_the_next_look(monkeypatch):
    ids = running_results(1)
    watch = kill_watch.KillWatch(wake=lambda: None)
    watch.check(ids)
    states.request_kill(ids[0], None)
    watch._on_announced(ids[0])
    read = states.kill_requests

    def connection_lost(result_ids):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(states, "kill_requests", connection_lost)
    with pytest.raises(OperationalError):
        watch.check(ids)
    monkeypatch.setattr(states, "kill_requests", read)
    requests, _ = watch.check(ids)  # not a heartbeat (a minute) later
    assert [request.id for request in requests] == ids


@pytest.mark.usefixtures("postgres")
def test_the_listener_connects_with_every_database_option(monkeypatch):
    """The listener kept 14 known libpq settings and dropped the rest (channel_binding, require_auth, ...): on such a
    deployment it connected more weakly than Django, or never, and the process polled for ever."""
    monkeypatch.setitem(connection.settings_dict, "OPTIONS",
                        {**connection.settings_dict.get("OPTIONS", {}), "channel_binding": "prefer"})
    params = kill_watch._libpq_params()
    assert params["channel_binding"] == "prefer" and params["keepalives"] == 1
    assert params["application_name"] == f"jobs-kill-listener:{os.getpid()}"
