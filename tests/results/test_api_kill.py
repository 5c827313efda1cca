"""POST /api/results/<id>/kill/: 202; a pending result is killed at once, a running one is asked to stop."""
from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import DomainMembership
from results import runner, states
from results.dispatch import publish, start_run
from results.models import JobResult, Status
from tests.helpers import client_for, make_job, make_member, wait_for_status

pytestmark = pytest.mark.django_db


def kill_url(result_id: int) -> str:
    return f"/api/results/{result_id}/kill/"


@pytest.fixture
def job(acme, tmp_path):
    return make_job("acme-touch", (10, "testing.touch", {"path": str(tmp_path / "trace.txt")}), domain=acme)


@pytest.fixture
def pending(job):
    """A pending result whose message was never published (no worker can take it)."""
    return JobResult.objects.create(job=job, status=Status.PENDING)


@pytest.fixture
def running(job):
    result = JobResult.objects.create(job=job, status=Status.PENDING)
    assert states.claim(result.id, "test:1")
    return result


def test_killing_a_pending_result_kills_it_at_once(operator, pending):
    response = client_for(operator).post(kill_url(pending.id))
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["kill"] == "killed"
    assert data["status"] == Status.KILLED
    assert data["kill_requested_by"] == "operator"
    pending.refresh_from_db()
    assert pending.status == Status.KILLED
    assert pending.finished_at is not None and pending.kill_requested_at is not None
    assert pending.message == "Killed by operator before it started."


def test_a_killed_pending_result_never_runs_when_its_message_arrives(operator, pending, tmp_path):
    client_for(operator).post(kill_url(pending.id))
    runner.execute(pending.id)  # what the worker does with the late message
    pending.refresh_from_db()
    assert pending.status == Status.KILLED
    assert pending.started_at is None and pending.worker == ""
    assert not pending.line_results.exists()
    assert not (tmp_path / "trace.txt").exists()


def test_killing_a_running_result_requests_the_kill(operator, running):
    response = client_for(operator).post(kill_url(running.id))
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["kill"] == "requested"
    assert data["status"] == Status.RUNNING
    assert data["kill_requested_at"] is not None
    running.refresh_from_db()
    assert running.status == Status.RUNNING
    assert running.kill_requested_at is not None
    assert running.kill_requested_by.username == "operator"
    assert running.finished_at is None


def test_a_second_kill_of_a_running_result_keeps_the_first_request(operator, acme, running):
    client_for(operator).post(kill_url(running.id))
    first = JobResult.objects.get(id=running.id).kill_requested_at
    other = make_member("second", (acme, DomainMembership.ADMIN))
    response = client_for(other).post(kill_url(running.id))
    assert response.status_code == 202
    assert response.json()["kill"] == "requested"
    running.refresh_from_db()
    assert running.kill_requested_at == first
    assert running.kill_requested_by.username == "operator"


@pytest.mark.parametrize("status", [Status.SUCCESS, Status.ERROR, Status.KILLED])
def test_killing_a_finished_result_answers_409_and_changes_nothing(operator, job, status):
    finished_at = timezone.now()
    finished = JobResult.objects.create(job=job, status=status, message="It ended.", finished_at=finished_at)
    response = client_for(operator).post(kill_url(finished.id))
    assert response.status_code == 409
    assert response.json()["errors"]["status"]
    finished.refresh_from_db()
    assert (finished.status, finished.message, finished.finished_at) == (status, "It ended.", finished_at)
    assert finished.kill_requested_at is None and finished.kill_requested_by is None


def test_result_of_another_domain_answers_404_and_is_not_killed(globex, pending):
    outsider = make_member("member", (globex, DomainMembership.ADMIN))
    response = client_for(outsider).post(kill_url(pending.id))
    assert response.status_code == 404
    pending.refresh_from_db()
    assert pending.status == Status.PENDING and pending.kill_requested_at is None


def test_result_of_a_global_job_answers_404_to_a_domain_admin(acme):
    user = make_member("member", (acme, DomainMembership.ADMIN))
    global_pending = JobResult.objects.create(job=make_job("global-cleanup"), status=Status.PENDING)
    assert client_for(user).post(kill_url(global_pending.id)).status_code == 404
    assert JobResult.objects.get(id=global_pending.id).status == Status.PENDING


def test_superuser_may_kill_a_global_jobs_result(admin_user):
    global_pending = JobResult.objects.create(job=make_job("global-cleanup"), status=Status.PENDING)
    assert client_for(admin_user).post(kill_url(global_pending.id)).status_code == 202
    assert JobResult.objects.get(id=global_pending.id).status == Status.KILLED


def test_viewer_may_not_kill_403(acme, pending, running):
    viewer = make_member("member", (acme, DomainMembership.VIEWER))
    client = client_for(viewer)
    for result in (pending, running):
        response = client.post(kill_url(result.id))
        assert response.status_code == 403
        assert response.json()["errors"]["detail"]
        result.refresh_from_db()
        assert result.kill_requested_at is None
    assert pending.status == Status.PENDING


def test_operator_elsewhere_but_viewer_here_may_not_kill(acme, globex, pending):
    user = make_member("member", (acme, DomainMembership.VIEWER))
    DomainMembership.objects.create(user=user, domain=globex, role=DomainMembership.OPERATOR)
    assert client_for(user).post(kill_url(pending.id)).status_code == 403
    assert JobResult.objects.get(id=pending.id).status == Status.PENDING


def test_unknown_result_answers_404(operator):
    assert client_for(operator).post(kill_url(123456)).status_code == 404


def test_anonymous_caller_is_refused(pending):
    assert APIClient().post(kill_url(pending.id)).status_code in (401, 403)
    assert JobResult.objects.get(id=pending.id).status == Status.PENDING


def test_session_auth_without_csrf_token_is_refused(operator, pending):
    response = client_for(operator, enforce_csrf_checks=True).post(kill_url(pending.id))
    assert response.status_code == 403
    assert JobResult.objects.get(id=pending.id).status == Status.PENDING


def test_token_auth_kills_without_csrf_token(operator, pending):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    assert client.post(kill_url(pending.id)).status_code == 202
    assert JobResult.objects.get(id=pending.id).status == Status.KILLED


def test_get_is_not_allowed(operator, pending):
    assert client_for(operator).get(kill_url(pending.id)).status_code == 405
    assert JobResult.objects.get(id=pending.id).status == Status.PENDING


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_killed_pending_result_is_skipped_by_the_real_worker(celery_worker, operator, pending, acme, tmp_path):
    assert client_for(operator).post(kill_url(pending.id)).status_code == 202
    publish(pending)  # its message reaches the worker after the kill
    probe = wait_for_status(start_run(make_job("probe", (10, "testing.echo", {}), domain=acme)).id)
    assert probe.status == Status.SUCCESS
    pending.refresh_from_db()
    assert pending.status == Status.KILLED and pending.started_at is None
    assert not (tmp_path / "trace.txt").exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_kill_stops_a_run_on_the_real_worker(celery_worker, operator, acme):
    job = make_job("sleeper", (10, "core.sleep", {"seconds": 60}), (20, "testing.echo", {}), domain=acme)
    result = wait_for_status(start_run(job).id, statuses={Status.RUNNING})
    response = client_for(operator).post(kill_url(result.id))
    assert response.status_code == 202
    assert response.json()["kill"] == "requested"
    result = wait_for_status(result.id, timeout=15)
    assert result.status == Status.KILLED
    assert "Killed by operator" in result.message
    assert list(result.line_results.values_list("line_no", "status")) == [(10, "killed")]
