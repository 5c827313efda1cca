"""GET /api/jobs/: the jobs the caller may see, as a JSON list."""
from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import DomainMembership, Schedule
from results.models import JobResult, Status
from tests.helpers import client_for, make_job, make_member

pytestmark = pytest.mark.django_db

URL = "/api/jobs/"


@pytest.fixture
def jobs(acme, globex):
    return {
        "acme": make_job("acme-report", (10, "testing.echo", {}), domain=acme),
        "globex": make_job("globex-report", (10, "testing.echo", {}), domain=globex),
        "global": make_job("global-cleanup", (10, "testing.echo", {})),
    }


def identifiers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [job["identifier"] for job in response.json()]


def test_superuser_sees_all_jobs_including_global_ones(admin_user, jobs):
    response = client_for(admin_user).get(URL)
    assert response["Content-Type"].startswith("application/json")
    assert identifiers(response) == ["acme-report", "global-cleanup", "globex-report"]


def test_operator_sees_only_their_domains_jobs_never_global_ones(acme, jobs):
    user = make_member("op", (acme, DomainMembership.OPERATOR))
    assert identifiers(client_for(user).get(URL)) == ["acme-report"]


@pytest.mark.parametrize("role", [DomainMembership.ADMIN, DomainMembership.VIEWER])
def test_every_role_sees_its_domains_jobs(globex, jobs, role):
    user = make_member("someone", (globex, role))
    assert identifiers(client_for(user).get(URL)) == ["globex-report"]


def test_member_of_two_domains_sees_both_but_not_global_jobs(acme, globex, jobs):
    user = make_member("both", (acme, DomainMembership.VIEWER), (globex, DomainMembership.OPERATOR))
    assert identifiers(client_for(user).get(URL)) == ["acme-report", "globex-report"]


def test_user_without_membership_gets_an_empty_list(jobs):
    user = make_member("nobody")
    assert identifiers(client_for(user).get(URL)) == []


def test_staff_without_membership_does_not_see_global_jobs(jobs):
    user = make_member("staff")
    user.is_staff = True
    user.save()
    assert identifiers(client_for(user).get(URL)) == []


def test_anonymous_caller_is_refused(jobs):
    response = APIClient().get(URL)
    assert response.status_code in (401, 403)
    assert "detail" in response.json()["errors"]
    assert "acme-report" not in response.content.decode()


def test_token_authentication_works(acme, jobs):
    user = make_member("script", (acme, DomainMembership.OPERATOR))
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert identifiers(client.get(URL)) == ["acme-report"]


def test_superuser_token_sees_global_jobs(admin_user, jobs):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    assert "global-cleanup" in identifiers(client.get(URL))


def test_invalid_token_is_refused(jobs):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.get(URL)
    assert response.status_code in (401, 403)
    assert response.json()["errors"]["detail"]


def test_token_of_an_inactive_user_is_refused(acme, jobs):
    user = make_member("gone", (acme, DomainMembership.ADMIN))
    token = Token.objects.create(user=user)
    user.is_active = False
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(URL).status_code in (401, 403)


def test_job_fields(admin_user, acme):
    make_job("described", (10, "testing.echo", {}), domain=acme, name="Described job", description="Says hello",
             stops_on_error=False, queue="reports", module="billing", params=[{"name": "days", "type": "int"}])
    [job] = client_for(admin_user).get(URL).json()
    assert job == {
        "identifier": "described", "name": "Described job", "description": "Says hello", "domain": "acme",
        "active": True, "stops_on_error": False, "module": "billing", "queue": "reports",
        "params": [{"name": "days", "type": "int"}], "last_result": None, "schedules": [], "next_run_at": None,
    }


def test_a_job_lists_its_schedules_with_their_values_and_its_next_run(admin_user, acme):
    job = make_job("twice", (10, "testing.echo", {}), domain=acme, params=[{"name": "days", "type": "int"}])
    Schedule.objects.create(job=job, name="weekly", kind="calendar", cron="0 18 * * 5", timezone="Europe/Madrid",
                            parameters={"days": 7})
    Schedule.objects.create(job=job, name="hourly", kind="interval", every=1, every_unit="hours")
    [shape] = client_for(admin_user).get(URL).json()
    weekly, hourly = shape["schedules"]
    assert (weekly["name"], weekly["type"], weekly["cron"], weekly["timezone"], weekly["parameters"]) == (
        "weekly", "calendar", "0 18 * * 5", "Europe/Madrid", {"days": 7})
    assert (hourly["name"], hourly["type"], hourly["every"], hourly["parameters"]) == ("hourly", "interval", 3600, {})
    assert shape["next_run_at"] == min(weekly["next_run_at"], hourly["next_run_at"], key=dt.datetime.fromisoformat)


def test_global_job_has_null_domain_and_inactive_jobs_are_listed(admin_user):
    make_job("sleeping", active=False)
    [job] = client_for(admin_user).get(URL).json()
    assert job["domain"] is None
    assert job["active"] is False


def test_last_result_is_the_newest_result_of_each_job(admin_user, jobs):
    JobResult.objects.create(job=jobs["acme"], status=Status.SUCCESS)
    newest = JobResult.objects.create(job=jobs["acme"], status=Status.ERROR)
    other = JobResult.objects.create(job=jobs["globex"], status=Status.PENDING)
    by_id = {job["identifier"]: job for job in client_for(admin_user).get(URL).json()}
    assert by_id["acme-report"]["last_result"] == {"id": newest.id, "status": "error"}
    assert by_id["globex-report"]["last_result"] == {"id": other.id, "status": "pending"}
    assert by_id["global-cleanup"]["last_result"] is None


def test_query_count_does_not_grow_with_the_number_of_jobs(admin_user, acme, django_assert_max_num_queries):
    for n in range(10):
        job = make_job(f"job-{n}", domain=acme)
        JobResult.objects.create(job=job, status=Status.SUCCESS)
    client = client_for(admin_user)
    with django_assert_max_num_queries(4):
        assert len(client.get(URL).json()) == 10


def test_post_is_not_allowed(admin_user, jobs):
    response = client_for(admin_user).post(URL, {}, format="json")
    assert response.status_code == 405
