"""The killjob management command: exit 0 once the kill is recorded, 2 if not killable."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from results.dispatch import start_run
from results.models import JobResult, Status
from tests.conftest import database_url
from tests.helpers import make_job, wait_for_status

REPO = Path(__file__).resolve().parent.parent.parent


def killjob(result_id) -> str:
    out = StringIO()
    call_command("killjob", str(result_id), stdout=out)
    return out.getvalue()


def not_killable(result_id) -> str:
    with pytest.raises(CommandError) as info:
        killjob(result_id)
    assert info.value.returncode == 2
    return str(info.value)


def manage_env() -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "jobs_project.settings_test", "DATABASE_URL": database_url()}


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=manage_env(), capture_output=True,
                          text=True, timeout=90)


def result_with(status: str, **fields) -> JobResult:
    job = make_job(f"job-{status}-{JobResult.objects.count()}", (10, "core.sleep", {"seconds": 0}))
    return JobResult.objects.create(job=job, status=status, **fields)


# --- without a worker ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_result_is_exit_2():
    assert not_killable(987654) == "unknown result 987654"


@pytest.mark.django_db
def test_a_pending_result_is_killed_at_once():
    result = result_with(Status.PENDING)
    assert killjob(result.id) == "killed\n"
    result.refresh_from_db()
    assert result.status == Status.KILLED
    assert result.message == "Killed by the system before it started."
    assert result.kill_requested_at is not None and result.finished_at is not None
    assert result.kill_requested_by is None


@pytest.mark.django_db
def test_a_running_result_gets_a_kill_request():
    result = result_with(Status.RUNNING, started_at=timezone.now())
    assert killjob(result.id) == "kill requested\n"
    result.refresh_from_db()
    assert result.status == Status.RUNNING
    assert result.kill_requested_at is not None
    assert result.finished_at is None


@pytest.mark.django_db
def test_asking_twice_for_a_running_result_is_still_exit_0_and_keeps_the_first_request():
    result = result_with(Status.RUNNING, started_at=timezone.now())
    killjob(result.id)
    first = JobResult.objects.get(id=result.id).kill_requested_at
    assert killjob(result.id) == "kill requested\n"
    assert JobResult.objects.get(id=result.id).kill_requested_at == first


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.SUCCESS, Status.WARNING, Status.INFO, Status.ERROR, Status.KILLED])
def test_a_finished_result_is_exit_2_and_unchanged(status):
    finished_at = timezone.now()
    result = result_with(status, message="over", finished_at=finished_at)
    assert not_killable(result.id) == f"result {result.id} has already finished"
    result.refresh_from_db()
    assert (result.status, result.message, result.finished_at, result.kill_requested_at) == (
        status, "over", finished_at, None)


@pytest.mark.django_db
def test_a_killed_pending_result_cannot_be_killed_again():
    result = result_with(Status.PENDING)
    killjob(result.id)
    assert not_killable(result.id) == f"result {result.id} has already finished"


@pytest.mark.django_db
def test_a_result_id_must_be_a_number():
    with pytest.raises(CommandError, match="invalid int value"):
        killjob("abc")


# --- as a real process, with a real worker ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_process_exit_codes_for_unknown_finished_and_bad_ids():
    unknown = manage("killjob", "987654")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == ["CommandError: unknown result 987654"]
    finished = result_with(Status.SUCCESS, finished_at=timezone.now())
    done = manage("killjob", str(finished.id))
    assert done.returncode == 2
    assert f"result {finished.id} has already finished" in done.stderr
    assert manage("killjob", "not-a-number").returncode == 2


@pytest.mark.django_db(transaction=True)
def test_process_kills_a_pending_result():
    result = result_with(Status.PENDING)
    done = manage("killjob", str(result.id))
    assert (done.returncode, done.stdout) == (0, "killed\n")
    assert JobResult.objects.get(id=result.id).status == Status.KILLED


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_process_kill_stops_a_running_job_and_runjob_wait_exits_1():
    make_job("long-sleep", (10, "core.sleep", {"seconds": 60}), (20, "testing.echo", {}))
    waiting = subprocess.Popen([sys.executable, "manage.py", "runjob", "long-sleep", "--wait", "--timeout", "60"],
                               cwd=REPO, env=manage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        result_id = int(waiting.stdout.readline())
        wait_for_status(result_id, statuses={Status.RUNNING})
        started = time.monotonic()
        done = manage("killjob", str(result_id))
        assert (done.returncode, done.stdout) == (0, "kill requested\n")
        result = wait_for_status(result_id, timeout=15)
        assert time.monotonic() - started < 10
        assert result.status == Status.KILLED
        assert result.message.startswith("Killed by the system at")
        assert list(result.line_results.values_list("line_no", "status")) == [(10, Status.KILLED)]
        out, err = waiting.communicate(timeout=30)
        assert waiting.returncode == 1
        assert out.splitlines() == [Status.KILLED]
        assert "Killed by the system" in err
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_kill_stops_a_line_that_ignores_it():
    job = make_job("busy", (10, "testing.busy_loop", {"seconds": 60}))
    result = start_run(job)
    wait_for_status(result.id, statuses={Status.RUNNING})
    time.sleep(0.3)  # inside the line
    assert killjob(result.id) == "kill requested\n"
    assert wait_for_status(result.id, timeout=20).status == Status.KILLED
