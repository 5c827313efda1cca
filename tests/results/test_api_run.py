"""POST /api/jobs/<identifier>/run/ {"parameters": {...}}: 202 with the new result."""
from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import DomainMembership
from results.models import JobResult, Status, Trigger
from tests.helpers import client_for, make_job, make_member, wait_for_status

pytestmark = pytest.mark.django_db

CSRF_TOKEN = "a" * 32
PARAMS = [
    {"name": "days", "type": "int", "default": 7},
    {"name": "mode", "type": "choice", "choices": ["fast", "slow"], "default": "fast"},
    {"name": "day", "type": "date"},
    {"name": "dry_run", "type": "bool", "default": False},
]


def run_url(identifier: str) -> str:
    return f"/api/jobs/{identifier}/run/"


@pytest.fixture
def job(acme):
    return make_job("acme-report", (10, "testing.echo", {"text": "days=${param.days}"}), (20, "testing.echo", {}),
                    domain=acme, params=PARAMS)


def post_run(client, identifier: str, parameters=None, **kwargs):
    body = {} if parameters is None else {"parameters": parameters}
    return client.post(run_url(identifier), body, format="json", **kwargs)


def test_operator_run_answers_202_with_the_pending_result(operator, job):
    response = post_run(client_for(operator), job.identifier, {"days": "3", "day": "2026-11-20"})
    assert response.status_code == 202, response.content
    data = response.json()
    result = JobResult.objects.get()
    assert data["id"] == result.id
    assert data["status"] == Status.PENDING == result.status
    assert data["job"] == "acme-report"
    assert data["trigger"] == Trigger.API
    assert data["requested_by"] == "operator"
    assert data["parameters"] == {"days": 3, "mode": "fast", "day": "2026-11-20", "dry_run": False}
    assert data["lines_total"] == 2
    assert data["lines"] == []
    assert data["finished_at"] is None and data["kill_requested_at"] is None


def test_run_without_a_body_uses_the_defaults(operator, acme):
    job = make_job("defaults", (10, "testing.echo", {}), domain=acme, params=[{"name": "days", "type": "int",
                                                                                  "default": 7}])
    response = client_for(operator).post(run_url(job.identifier))
    assert response.status_code == 202, response.content
    assert response.json()["parameters"] == {"days": 7}


def test_domain_admin_may_run(acme, job):
    user = make_member("member", (acme, DomainMembership.ADMIN))
    assert post_run(client_for(user), job.identifier, {"day": "2026-01-01"}).status_code == 202


def test_superuser_may_run_a_global_job(admin_user):
    make_job("global-cleanup", (10, "testing.echo", {}))
    response = post_run(client_for(admin_user), "global-cleanup")
    assert response.status_code == 202
    assert JobResult.objects.get(id=response.json()["id"]).requested_by == admin_user


def test_job_of_another_domain_answers_404_and_creates_nothing(globex, job):
    outsider = make_member("member", (globex, DomainMembership.ADMIN))
    response = post_run(client_for(outsider), job.identifier, {"day": "2026-01-01"})
    assert response.status_code == 404
    assert "detail" in response.json()["errors"]
    assert not JobResult.objects.exists()


def test_global_job_answers_404_to_a_domain_member(operator):
    make_job("global-cleanup", (10, "testing.echo", {}))
    assert post_run(client_for(operator), "global-cleanup").status_code == 404
    assert not JobResult.objects.exists()


def test_unknown_job_answers_404(operator):
    assert post_run(client_for(operator), "no-such-job").status_code == 404


def test_viewer_may_not_run_403(acme, job):
    viewer = make_member("member", (acme, DomainMembership.VIEWER))
    response = post_run(client_for(viewer), job.identifier, {"day": "2026-01-01"})
    assert response.status_code == 403
    assert response.json()["errors"]["detail"]
    assert not JobResult.objects.exists()


def test_operator_elsewhere_but_viewer_here_may_not_run(acme, globex, job):
    user = make_member("member", (acme, DomainMembership.VIEWER))
    DomainMembership.objects.create(user=user, domain=globex, role=DomainMembership.OPERATOR)
    assert post_run(client_for(user), job.identifier, {"day": "2026-01-01"}).status_code == 403
    assert not JobResult.objects.exists()


def test_form_encoded_body_is_refused(operator, job):
    response = client_for(operator).post(run_url(job.identifier), {"parameters": "x"}, format="multipart")
    assert response.status_code == 415
    assert not JobResult.objects.exists()


def test_invalid_parameter_answers_400_named_parameters_dot_name(operator, job):
    response = post_run(client_for(operator), job.identifier, {"days": "many", "day": "2026-01-01"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"parameters.days": ["must be a whole number"]}}
    assert not JobResult.objects.exists()


def test_every_invalid_parameter_is_reported_at_once(operator, job):
    response = post_run(client_for(operator), job.identifier, {"days": 1.5, "mode": "medium", "day": "20/11/2026",
                                                              "dry_run": "maybe"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"parameters.days", "parameters.mode", "parameters.day", "parameters.dry_run"}
    assert errors["parameters.mode"] == ["must be one of: fast, slow"]
    assert all(isinstance(messages, list) and messages for messages in errors.values())
    assert not JobResult.objects.exists()


def test_missing_required_parameter_answers_400(operator, acme):
    job = make_job("needs-day", domain=acme, params=[{"name": "day", "type": "date", "required": True}])
    response = post_run(client_for(operator), job.identifier, {})
    assert response.status_code == 400
    assert response.json() == {"errors": {"parameters.day": ["this parameter is required"]}}
    assert not JobResult.objects.exists()


def test_unknown_parameter_answers_400(operator, job):
    response = post_run(client_for(operator), job.identifier, {"day": "2026-01-01", "colour": "red"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"parameters.colour": ["unknown parameter"]}}
    assert not JobResult.objects.exists()


@pytest.mark.parametrize("parameters", [["days", 3], "days=3", 3])
def test_parameters_that_are_not_an_object_answer_400(operator, job, parameters):
    response = post_run(client_for(operator), job.identifier, parameters)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["parameters"]
    assert not JobResult.objects.exists()


def test_malformed_json_answers_400(operator, job):
    response = client_for(operator).post(run_url(job.identifier), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"]
    assert not JobResult.objects.exists()


def test_a_deeply_nested_json_body_answers_400(operator, job):
    body = '{"parameters": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client_for(operator).post(run_url(job.identifier), body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"detail": ["JSON parse error - nested too deeply"]}}
    assert not JobResult.objects.exists()


@pytest.mark.parametrize(("parameters", "errors"), [
    ({"ratio": 10**400}, {"parameters.ratio": ["must be a number"]}),
    ({"payload": "[" * 100_000 + "]" * 100_000}, {"parameters.payload": ["must be valid JSON"]}),
    ({"payload": "[1e400]"}, {"parameters.payload": ["must be valid JSON"]}),
    ({"note": "a\x00b"}, {"parameters.note": ["must not contain NUL characters"]}),
    ({"payload": {"k\x00": 1}}, {"parameters.payload": ["must not contain NUL characters"]}),
])
def test_parameters_no_column_can_store_answer_400(operator, acme, parameters, errors):
    job = make_job("typed", (10, "testing.echo", {}), domain=acme, params=[
        {"name": "ratio", "type": "float"}, {"name": "payload", "type": "json"}, {"name": "note", "type": "str"}])
    response = post_run(client_for(operator), job.identifier, parameters)
    assert response.status_code == 400
    assert response.json() == {"errors": errors}
    assert not JobResult.objects.exists()


def test_inactive_job_answers_409_and_creates_no_result(operator, acme):
    job = make_job("switched-off", (10, "testing.echo", {}), domain=acme, active=False)
    response = post_run(client_for(operator), job.identifier)
    assert response.status_code == 409
    assert "inactive" in response.json()["errors"]["job"][0]
    assert not JobResult.objects.exists()


def test_anonymous_caller_is_refused(job):
    response = post_run(APIClient(), job.identifier, {"day": "2026-01-01"})
    # 403, not 401: session authentication comes first and sends no WWW-Authenticate challenge.
    assert response.status_code == 403
    assert "credentials were not provided" in str(response.json())
    assert not JobResult.objects.exists()


def test_session_auth_without_csrf_token_is_refused(operator, job):
    client = client_for(operator, enforce_csrf_checks=True)
    response = post_run(client, job.identifier, {"day": "2026-01-01"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["errors"]["detail"][0]
    assert not JobResult.objects.exists()


def test_session_auth_with_csrf_token_is_accepted(operator, job):
    client = client_for(operator, enforce_csrf_checks=True)
    client.cookies["csrftoken"] = CSRF_TOKEN
    response = post_run(client, job.identifier, {"day": "2026-01-01"}, HTTP_X_CSRFTOKEN=CSRF_TOKEN)
    assert response.status_code == 202, response.content


def test_token_auth_needs_no_csrf_token(operator, job):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    response = post_run(client, job.identifier, {"day": "2026-01-01"})
    assert response.status_code == 202, response.content
    assert JobResult.objects.get().requested_by == operator


def test_get_is_not_allowed(operator, job):
    assert client_for(operator).get(run_url(job.identifier)).status_code == 405


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_accepted_run_really_runs_on_the_worker(celery_worker, operator, job):
    response = post_run(client_for(operator), job.identifier, {"days": 3, "day": "2026-01-01"})
    assert response.status_code == 202
    assert response.json()["status"] in Status.values  # a fast worker may have finished it already
    result = wait_for_status(response.json()["id"])
    assert result.status == Status.SUCCESS, result.message
    assert result.log_entries.filter(line_no=10, message="days=3").exists()


def test_one_at_a_time_job_with_a_pending_run_answers_409(operator, acme):
    job = make_job("single", (10, "testing.echo", {}), domain=acme)
    going = JobResult.objects.create(job=job, status=Status.PENDING)
    response = post_run(client_for(operator), job.identifier)
    assert response.status_code == 409
    assert f"#{going.id}" in response.json()["errors"]["job"][0]
    assert list(JobResult.objects.values_list("id", flat=True)) == [going.id]


def test_parallel_job_may_run_while_another_run_is_going(operator, acme):
    job = make_job("parallel", (10, "testing.echo", {}), domain=acme, concurrency="parallel")
    JobResult.objects.create(job=job, status=Status.RUNNING)
    assert post_run(client_for(operator), job.identifier).status_code == 202
    assert JobResult.objects.count() == 2


def test_null_parameter_takes_its_default_or_is_refused(operator, acme):
    job = make_job("nullable", (10, "testing.echo", {"text": "${param.days}"}), domain=acme,
                   params=[{"name": "days", "type": "int", "default": 7}])
    response = post_run(client_for(operator), job.identifier, {"days": None})
    # Accepted with no value at all, the run could only fail later on the unresolved ${param.days}.
    assert response.status_code == 400 or response.json()["parameters"] == {"days": 7}
