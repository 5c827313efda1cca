"""GET /api/results/<id>/: the result with its lines."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import DomainMembership
from results.models import JobLineResult, JobResult, Status, Trigger
from tests.helpers import client_for, make_job, make_member

pytestmark = pytest.mark.django_db


def result_url(result_id: int) -> str:
    return f"/api/results/{result_id}/"


@pytest.fixture
def result(acme, admin_user):
    """A finished run of an Acme job with two lines, the second stored first."""
    job = make_job("acme-report", (10, "testing.echo", {}), (20, "testing.warn", {}), domain=acme)
    start = timezone.now() - dt.timedelta(minutes=1)
    result = JobResult.objects.create(
        job=job, status=Status.WARNING, message="2 line(s) done; warnings in line(s) 20.", started_at=start,
        finished_at=start + dt.timedelta(seconds=5), trigger=Trigger.API, requested_by=admin_user,
        parameters={"days": 3}, variables={"param.days": 3}, lines_total=2, worker="host:42", job_version=4,
    )
    JobLineResult.objects.create(result=result, line_no=20, action="testing.warn", status=Status.WARNING,
                                 message="careful", started_at=start + dt.timedelta(seconds=2),
                                 finished_at=start + dt.timedelta(seconds=5))
    JobLineResult.objects.create(result=result, line_no=10, action="testing.echo", status=Status.SUCCESS,
                                 message="echoed 1 time(s)", parameters={"text": "hello", "repeat": 1},
                                 started_at=start, finished_at=start + dt.timedelta(seconds=2))
    return result


def test_result_has_its_fields_and_lines_in_line_order(acme, result):
    viewer = make_member("member", (acme, DomainMembership.VIEWER))
    response = client_for(viewer).get(result_url(result.id))
    assert response.status_code == 200
    data = response.json()
    assert data["id"] == result.id
    assert data["job"] == "acme-report"
    assert data["status"] == "warning"
    assert data["message"] == "2 line(s) done; warnings in line(s) 20."
    assert data["trigger"] == "api"
    assert data["requested_by"] == "root"
    assert data["parameters"] == {"days": 3}
    assert data["variables"] == {"param.days": 3}
    assert data["lines_total"] == 2 and data["worker"] == "host:42"
    assert data["job_version"] == 4  # the version of the job it ran with
    assert dt.datetime.fromisoformat(data["finished_at"]) == result.finished_at
    assert [line["line_no"] for line in data["lines"]] == [10, 20]
    assert data["lines"][0] == {
        "line_no": 10, "action": "testing.echo", "status": "success", "message": "echoed 1 time(s)",
        "parameters": {"text": "hello", "repeat": 1},
        "started_at": data["lines"][0]["started_at"], "finished_at": data["lines"][0]["finished_at"],
        "records_total": None, "records_processed": 0, "records_failed": 0, "failures": [],
        "data_changed": None, "external_called": None,
    }
    assert dt.datetime.fromisoformat(data["lines"][1]["started_at"]) == result.started_at + dt.timedelta(seconds=2)


def test_pending_result_has_no_lines_and_null_times(admin_user, acme):
    pending = JobResult.objects.create(job=make_job("waiting", domain=acme), status=Status.PENDING)
    data = client_for(admin_user).get(result_url(pending.id)).json()
    assert data["status"] == "pending"
    assert data["lines"] == []
    assert data["started_at"] is None and data["finished_at"] is None
    assert data["requested_by"] is None and data["kill_requested_by"] is None


def test_running_line_without_finish_time_is_shown(admin_user, acme):
    running = JobResult.objects.create(job=make_job("busy", domain=acme), status=Status.RUNNING,
                                       started_at=timezone.now())
    JobLineResult.objects.create(result=running, line_no=10, action="core.sleep", started_at=timezone.now())
    [line] = client_for(admin_user).get(result_url(running.id)).json()["lines"]
    assert line["status"] == "running" and line["finished_at"] is None


def test_kill_requester_is_named(admin_user, acme):
    killed = JobResult.objects.create(job=make_job("stopped", domain=acme), status=Status.KILLED,
                                      kill_requested_at=timezone.now(), kill_requested_by=admin_user)
    data = client_for(admin_user).get(result_url(killed.id)).json()
    assert data["kill_requested_by"] == "root"
    assert data["kill_requested_at"] is not None


def test_lines_of_other_results_are_not_included(admin_user, result):
    other = JobResult.objects.create(job=result.job, status=Status.SUCCESS)
    JobLineResult.objects.create(result=other, line_no=30, action="testing.echo", status=Status.SUCCESS)
    data = client_for(admin_user).get(result_url(result.id)).json()
    assert [line["line_no"] for line in data["lines"]] == [10, 20]


def test_result_of_another_domains_job_answers_404(globex, result):
    outsider = make_member("member", (globex, DomainMembership.ADMIN))
    response = client_for(outsider).get(result_url(result.id))
    assert response.status_code == 404
    assert list(response.json()["errors"]) == ["detail"]
    assert "acme-report" not in response.content.decode()


def test_result_of_a_global_job_answers_404_to_a_domain_member(acme):
    user = make_member("member", (acme, DomainMembership.ADMIN))
    global_result = JobResult.objects.create(job=make_job("global-cleanup"), status=Status.SUCCESS)
    assert client_for(user).get(result_url(global_result.id)).status_code == 404


def test_superuser_sees_results_of_global_jobs(admin_user):
    global_result = JobResult.objects.create(job=make_job("global-cleanup"), status=Status.SUCCESS)
    response = client_for(admin_user).get(result_url(global_result.id))
    assert response.status_code == 200
    assert response.json()["job"] == "global-cleanup"


@pytest.mark.parametrize("result_id", [999_999, 2**63, 10**30])
def test_unknown_result_answers_404(admin_user, result, result_id):
    assert client_for(admin_user).get(result_url(result_id)).status_code == 404


def test_non_numeric_id_is_not_routed(admin_user):
    assert client_for(admin_user).get("/api/results/abc/").status_code == 404


def test_anonymous_caller_is_refused(result):
    response = APIClient().get(result_url(result.id))
    assert response.status_code in (401, 403)
    assert "lines" not in response.json()


def test_token_authentication_works(acme, result):
    operator = make_member("member", (acme, DomainMembership.OPERATOR))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    response = client.get(result_url(result.id))
    assert response.status_code == 200
    assert response.json()["id"] == result.id
