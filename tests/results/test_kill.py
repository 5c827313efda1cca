"""Kill, time limits, concurrency: real worker processes on the configured broker."""
from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path

import pytest

from results import states
from results.dispatch import RunRefused, start_run
from results.models import JobResult, Status
from tests.helpers import make_job, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_pending_result_killed_never_starts_even_when_its_message_arrives_later(worker_factory, tmp_path):
    trace = tmp_path / "trace.txt"
    job = make_job("pending-kill", (10, "testing.touch", {"path": str(trace)}), queue="nobody-yet")
    result = start_run(job)
    assert states.request_kill(result.id, None).status == "killed"
    assert JobResult.objects.get(id=result.id).status == Status.KILLED
    worker_factory("late", "nobody-yet")  # the message is delivered now
    probe = start_run(make_job("probe", (10, "testing.echo", {}), queue="nobody-yet"))
    assert wait_for_status(probe.id).status == Status.SUCCESS
    killed = JobResult.objects.get(id=result.id)
    assert killed.status == Status.KILLED and killed.started_at is None
    assert not trace.exists() and killed.line_results.count() == 0


@pytest.mark.usefixtures("celery_worker")
def test_a_cooperative_sleep_is_killed_and_later_lines_do_not_run(admin_user, tmp_path):
    trace = tmp_path / "trace.txt"
    job = make_job("coop", (10, "core.sleep", {"seconds": 60}), (20, "testing.touch", {"path": str(trace)}))
    result = start_run(job)
    wait_for_status(result.id, {Status.RUNNING})
    assert states.request_kill(result.id, admin_user).status == "requested"
    assert JobResult.objects.get(id=result.id).kill_requested_by == admin_user
    ended = wait_for_status(result.id, timeout=10)
    assert ended.status == Status.KILLED
    assert ended.message.startswith("Killed by root at ")
    assert list(ended.line_results.values_list("line_no", "status")) == [(10, "killed")]
    assert not trace.exists()


@pytest.mark.usefixtures("celery_worker")
def test_a_busy_python_loop_that_never_checks_is_stopped_by_force(tmp_path):
    pid_file = tmp_path / "pid"
    job = make_job("busy", (10, "testing.busy_loop", {"seconds": 120, "pid_file": str(pid_file)}),
                   (20, "testing.echo", {}))
    result = start_run(job)
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the loop to start"))
    states.request_kill(result.id, None)
    ended = wait_for_status(result.id, timeout=15)
    assert ended.status == Status.KILLED
    assert list(ended.line_results.values_list("line_no", "status")) == [(10, "killed")]
    assert ended.log_entries.filter(message__contains="stopped by force").exists()
    wait_until(lambda: not alive(pid), timeout=10, what="the pool process to end")
    # The worker replaced its pool process and still runs jobs.
    assert wait_for_status(start_run(make_job("after-busy", (10, "testing.echo", {}))).id).status == Status.SUCCESS


@pytest.mark.usefixtures("celery_worker")
def test_killing_a_shell_line_ends_its_children_and_grandchildren(tmp_path):
    pids = tmp_path / "pids"
    script = tmp_path / "tree.sh"
    script.write_text(
        f"echo $$ >> {pids}\n"
        f"sleep 300 &\necho $! >> {pids}\n"
        f"sh -c 'sleep 300 & echo $! >> {pids}; wait' &\necho $! >> {pids}\n"
        "echo tree-started\nwait\n"
    )
    result = start_run(make_job("tree", (10, "core.shell", {"command": f"sh {script}"})))
    wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 4, what="the process tree")
    tree = [int(pid) for pid in pids.read_text().split()]
    assert all(alive(pid) for pid in tree)
    states.request_kill(result.id, None)
    ended = wait_for_status(result.id, timeout=15)
    assert ended.status == Status.KILLED
    wait_until(lambda: not any(alive(pid) for pid in tree), timeout=5, what="every process of the tree to end")


@pytest.mark.usefixtures("celery_worker")
def test_a_kill_racing_the_natural_end_gives_one_final_status_that_never_changes():
    job = make_job("race", (10, "core.sleep", {"seconds": 0.3}), concurrency="parallel")
    seen = set()
    for _ in range(6):
        result = start_run(job)
        wait_for_status(result.id, {Status.RUNNING})
        time.sleep(random.uniform(0.2, 0.4))
        with contextlib.suppress(states.NotKillable):
            states.request_kill(result.id, None)
        ended = wait_for_status(result.id, timeout=10)
        assert ended.status in (Status.KILLED, Status.SUCCESS)
        time.sleep(0.3)
        again = JobResult.objects.get(id=result.id)
        assert (again.status, again.message, again.finished_at) == (ended.status, ended.message, ended.finished_at)
        line = again.line_results.get()
        assert line.status == (Status.KILLED if again.status == Status.KILLED else Status.SUCCESS) or (
            again.status == Status.KILLED and line.status == Status.SUCCESS  # killed between the line and the end
        )
        seen.add(again.status)
    assert seen  # every iteration ended in exactly one final status


@pytest.mark.usefixtures("celery_worker")
def test_a_run_over_its_time_limit_is_killed_with_the_reason():
    job = make_job("slow", (10, "core.sleep", {"seconds": 60}), time_limit=1)
    ended = wait_for_status(start_run(job).id, timeout=15)
    assert ended.status == Status.KILLED
    assert ended.message == "Time limit of 1 s exceeded."


def test_one_at_a_time_refuses_a_second_run_naming_the_first():
    job = make_job("single", (10, "core.sleep", {"seconds": 0}), queue="nobody-single")
    first = start_run(job)
    with pytest.raises(RunRefused, match=f"result #{first.id} is pending"):
        start_run(job)
    assert job.results.count() == 1


def test_parallel_runs_are_allowed_when_the_job_says_so():
    job = make_job("parallel", (10, "core.sleep", {"seconds": 0}), queue="nobody-parallel", concurrency="parallel")
    start_run(job)
    start_run(job)
    assert job.results.count() == 2


def test_a_finished_result_is_not_killable():
    job = make_job("done")
    result = JobResult.objects.create(job=job, status=Status.SUCCESS)
    with pytest.raises(states.NotKillable):
        states.request_kill(result.id, None)
    assert JobResult.objects.get(id=result.id).status == Status.SUCCESS


def test_sigkill_of_the_worker_ends_the_run_as_worker_lost(worker_factory, beat):
    worker = worker_factory("doomed", "doomed")
    job = make_job("lost", (10, "core.sleep", {"seconds": 120}), queue="doomed")
    result = start_run(job)
    wait_for_status(result.id, {Status.RUNNING})
    worker.kill()
    ended = wait_for_status(result.id, timeout=30)
    assert ended.status == Status.ERROR
    assert "Worker lost" in ended.message
    assert "not retried because the job is not idempotent" in ended.message
    assert not ended.retries.exists()


def test_an_idempotent_job_lost_with_its_worker_is_retried_and_succeeds(worker_factory, beat, tmp_path):
    mark = tmp_path / "first-attempt"
    command = f"if [ -f {mark} ]; then echo second attempt; else touch {mark}; sleep 120; fi"
    job = make_job("lost-idempotent", (10, "core.shell", {"command": command}), queue="doomed2",
                   idempotent=True, retries=1, retry_delay=0)
    worker = worker_factory("doomed2", "doomed2")
    result = start_run(job)
    wait_until(mark.exists, what="the first attempt to start")
    worker.kill()
    lost = wait_for_status(result.id, timeout=30)
    assert lost.status == Status.ERROR and "Worker lost" in lost.message
    retry = wait_until(lambda: lost.retries.first(), timeout=10, what="the retry")
    worker_factory("doomed2-again", "doomed2", purge=False)  # keep the retry's message
    done = wait_for_status(retry.id, timeout=30)
    assert done.status == Status.SUCCESS
    assert done.attempt == 2 and done.trigger == "retry"
    assert done.log_entries.filter(message="second attempt").exists()


@pytest.mark.usefixtures("celery_worker")
def test_a_failed_run_is_retried_as_many_times_as_the_job_says():
    job = make_job("flaky", (10, "testing.fail", {}), retries=2, retry_delay=0, concurrency="parallel")
    first = start_run(job)

    def chain_done():
        results = list(job.results.order_by("id"))
        return results if len(results) == 3 and all(r.is_finished for r in results) else None

    results = wait_until(chain_done, timeout=30, what="two retries")
    assert [r.attempt for r in results] == [1, 2, 3]
    assert [r.retry_of_id for r in results] == [None, first.id, results[1].id]
    assert all(r.status == Status.ERROR for r in results)
    time.sleep(0.5)
    assert job.results.count() == 3


