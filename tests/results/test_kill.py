"""Kill, time limits, concurrency: real worker processes on the configured broker."""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

from results import states
from results.dispatch import RunRefused, start_run
from results.models import JobResult, Status
from tests.conftest import WorkerProcess
from tests.helpers import make_job, wait_for_status, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


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


KILL_QUEUE = "kill-tests"


@pytest.fixture(scope="module")
def single_worker(django_db_setup, django_db_blocker):
    """A worker with one pool process: the run after a kill shows that this very process serves it."""
    worker = WorkerProcess("killer", KILL_QUEUE, concurrency=1).start()
    yield worker
    worker.stop()


def gone(pid: int) -> bool:
    """Nothing left in ``ps``: not even a zombie."""
    return not Path(f"/proc/{pid}").exists()


def kill_and_wait(result_id: int) -> tuple[JobResult, float]:
    """Request the kill; the ended result and how long after the request it was ended."""
    asked = time.monotonic()
    states.request_kill(result_id, None)
    ended = wait_for_status(result_id, timeout=15)
    return ended, time.monotonic() - asked


def forced(result: JobResult) -> bool:
    return result.log_entries.filter(message__contains="stopped by force").exists()


def next_run_pid(tmp_path: Path, name: str) -> int:
    """Run a one-line job on the single worker; the pid of the pool process that ran it."""
    trace = tmp_path / f"{name}.trace"
    done = wait_for_status(start_run(make_job(name, (10, "testing.touch", {"path": str(trace)}), queue=KILL_QUEUE)).id)
    assert done.status == Status.SUCCESS
    return int(trace.read_text().split(":")[-1])


def test_a_busy_python_loop_that_never_checks_is_interrupted_and_its_pool_process_serves_the_next_run(
        single_worker, tmp_path, settings):
    pid_file = tmp_path / "pid"
    job = make_job("busy", (10, "testing.busy_loop", {"seconds": 120, "pid_file": str(pid_file)}),
                   (20, "testing.echo", {}), queue=KILL_QUEUE)
    result = start_run(job)
    pool_pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the loop to start"))
    ended, took = kill_and_wait(result.id)
    assert ended.status == Status.KILLED
    assert list(ended.line_results.values_list("line_no", "status", "message")) == [
        (10, "killed", "Killed during this line.")]
    assert took < settings.JOBS_KILL_GRACE_SECONDS  # interrupted (its `except Exception` did not swallow it)
    assert not forced(ended) and alive(pool_pid)
    assert next_run_pid(tmp_path, "after-busy") == pool_pid


def test_code_blocked_in_c_is_forced_after_the_grace_and_the_worker_serves_the_next_run(
        single_worker, tmp_path, settings):
    pid_file = tmp_path / "pid"
    result = start_run(make_job("c-sleep", (10, "testing.sleep_in_c", {"pid_file": str(pid_file)}),
                                queue=KILL_QUEUE))
    pool_pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the sleep to start"))
    ended, took = kill_and_wait(result.id)
    assert ended.status == Status.KILLED and forced(ended)
    assert took >= settings.JOBS_KILL_GRACE_SECONDS
    assert list(ended.line_results.values_list("line_no", "status", "message")) == [
        (10, "killed", "Stopped by force.")]
    wait_until(lambda: gone(pool_pid), timeout=10, what="the pool process to end")
    assert next_run_pid(tmp_path, "after-c-sleep") != pool_pid  # a fresh pool process


@pytest.mark.parametrize("c_sleep", [False, True], ids=["interrupted", "forced"])
def test_processes_a_line_started_without_registering_them_end_with_it(single_worker, tmp_path, c_sleep):
    pids = tmp_path / "pids"
    result = start_run(make_job(f"spawner-{c_sleep}", (10, "testing.spawn_and_loop",
                                                        {"pids": str(pids), "c_sleep": c_sleep}), queue=KILL_QUEUE))
    tree = [int(pid) for pid in wait_until(
        lambda: pids.exists() and len(pids.read_text().split()) == 4 and pids.read_text().split(),
        what="the child, the grandchild and the orphan")]
    assert all(alive(pid) for pid in tree)
    ended, _ = kill_and_wait(result.id)
    assert ended.status == Status.KILLED and forced(ended) == c_sleep
    wait_until(lambda: all(gone(pid) for pid in tree), timeout=5, what="every process the line started to end")


def test_a_shell_that_traps_sigterm_is_ended_with_its_children(single_worker, tmp_path):
    pids = tmp_path / "pids"
    command = (f"trap 'echo TERM ignored' TERM; echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; "
               "while true; do sleep 0.1; done")
    result = start_run(make_job("trapper", (10, "core.shell", {"command": command}), queue=KILL_QUEUE))
    tree = [int(pid) for pid in wait_until(
        lambda: pids.exists() and len(pids.read_text().split()) == 2 and pids.read_text().split(),
        what="the shell and its child")]
    ended, _ = kill_and_wait(result.id)
    assert ended.status == Status.KILLED
    assert ended.log_entries.filter(message="TERM ignored").exists()  # it got SIGTERM and stayed: SIGKILL ended it
    wait_until(lambda: all(gone(pid) for pid in tree), timeout=5, what="the shell and its child to end")


def test_a_forced_stop_kills_the_process_groups_the_line_registered(single_worker, tmp_path):
    pids = tmp_path / "pids"
    result = start_run(make_job("daemon", (10, "testing.register_daemon_then_block", {"pids": str(pids)}),
                                queue=KILL_QUEUE))
    daemon, pool_pid = (int(pid) for pid in wait_until(
        lambda: pids.exists() and len(pids.read_text().split()) == 2 and pids.read_text().split(),
        what="the daemon"))
    assert alive(daemon)
    ended, _ = kill_and_wait(result.id)
    assert ended.status == Status.KILLED and forced(ended)
    wait_until(lambda: not alive(daemon), timeout=5, what="the registered daemon to end")
    wait_until(lambda: gone(pool_pid), timeout=10, what="the pool process to end")


@pytest.mark.usefixtures("celery_worker")
def test_killing_a_shell_line_ends_its_children_and_grandchildren(tmp_path):
    pids = tmp_path / "pids"
    script = tmp_path / "tree.sh"
    own_group = tmp_path / "own_group.py"  # a group of its own in the shell's session, as job control makes
    own_group.write_text(f"import os, time\nos.setpgid(0, 0)\nwith open({str(pids)!r}, 'a') as f:\n"
                         "    f.write(f'{os.getpid()}\\n')\ntime.sleep(300)\n")
    script.write_text(
        f"echo $$ >> {pids}\n"
        f"sleep 300 &\necho $! >> {pids}\n"
        f"sh -c 'sleep 300 & echo $! >> {pids}; wait' &\necho $! >> {pids}\n"
        f"sh -c '{sys.executable} {own_group} &'\n"  # orphaned at once
        "echo tree-started\nwait\n"
    )
    result = start_run(make_job("tree", (10, "core.shell", {"command": f"sh {script}"})))
    wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 5, what="the process tree")
    tree = [int(pid) for pid in pids.read_text().split()]
    assert all(alive(pid) for pid in tree)
    states.request_kill(result.id, None)
    ended = wait_for_status(result.id, timeout=15)
    assert ended.status == Status.KILLED and not forced(ended)  # the line ended by itself, its tree with it
    wait_until(lambda: not any(alive(pid) for pid in tree), timeout=5, what="every process of the tree to end")


@pytest.mark.usefixtures("celery_worker")
def test_a_kill_after_the_natural_end_is_refused_and_changes_nothing():
    ended = wait_for_status(start_run(make_job("ended", (10, "core.sleep", {"seconds": 0}))).id)
    assert ended.status == Status.SUCCESS
    with pytest.raises(states.NotKillable):
        states.request_kill(ended.id, None)
    again = JobResult.objects.get(id=ended.id)
    assert (again.status, again.message, again.finished_at) == (Status.SUCCESS, "1 line(s) done.", ended.finished_at)
    assert again.kill_requested_at is None


@pytest.mark.usefixtures("celery_worker")
def test_a_kill_racing_the_natural_end_gives_one_final_status_that_never_changes():
    job = make_job("race", (10, "core.sleep", {"seconds": 0.3}), concurrency="parallel")
    for _ in range(6):
        result = start_run(job)
        wait_for_status(result.id, {Status.RUNNING})
        time.sleep(random.uniform(0.2, 0.4))
        try:
            states.request_kill(result.id, None)
            recorded = True
        except states.NotKillable:
            recorded = False
        ended = wait_for_status(result.id, timeout=10)
        time.sleep(0.3)
        again = JobResult.objects.get(id=result.id)
        assert (again.status, again.message, again.finished_at) == (ended.status, ended.message, ended.finished_at)
        line = again.line_results.get()
        if not recorded:  # the run had ended: the kill changed nothing
            assert (again.status, again.message, again.kill_requested_at) == (Status.SUCCESS, "1 line(s) done.", None)
            assert line.status == Status.SUCCESS
        elif again.status == Status.SUCCESS:  # recorded, but the runner ended the run before it saw the kill
            assert again.message == "1 line(s) done." and line.status == Status.SUCCESS
        else:  # seen: killed in the line, or between the line's end and the run's
            assert again.status == Status.KILLED and again.message.startswith("Killed by the system at ")
            assert (line.status, line.message) in {(Status.KILLED, "Killed during this line."),
                                                   (Status.SUCCESS, "slept 0.3 s")}


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


