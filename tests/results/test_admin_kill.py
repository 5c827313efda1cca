"""Kill from the admin: the confirmation page and what the POST does."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Domain, DomainMembership
from results.models import JobResult, Status
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(member, acme):
    return member("otto", acme, DomainMembership.OPERATOR)


def result_of(domain: Domain | None, status: str = Status.PENDING, **fields) -> JobResult:
    job = make_job("long-export", name="Long export", domain=domain)
    return JobResult.objects.create(job=job, status=status, **fields)


def kill_url(result: JobResult) -> str:
    return reverse("admin:results_jobresult_kill", args=[result.pk])


def result_url(result: JobResult) -> str:
    return reverse("admin:results_jobresult_change", args=[result.pk])


def test_confirmation_page_names_the_result_and_warns_about_partial_changes(client, operator, acme):
    result = result_of(acme, Status.RUNNING)
    client.force_login(operator)
    response = client.get(kill_url(result))
    html = response.content.decode()
    assert response.status_code == 200
    assert f"#{result.pk}" in html and "Long export" in html and "long-export" in html and "running" in html
    assert "may leave partial changes" in html
    assert 'id="confirm-kill"' in html and f'href="{result_url(result)}"' in html


def test_get_does_not_kill(client, operator, acme):
    result = result_of(acme)
    client.force_login(operator)
    client.get(kill_url(result))
    result.refresh_from_db()
    assert (result.status, result.kill_requested_at) == (Status.PENDING, None)


def test_post_on_a_pending_result_kills_it_at_once(client, operator, acme):
    result = result_of(acme)
    client.force_login(operator)
    response = client.post(kill_url(result))
    assert response.status_code == 302 and response["Location"] == result_url(result)
    result.refresh_from_db()
    assert result.status == Status.KILLED
    assert result.kill_requested_by == operator and result.finished_at is not None
    assert result.message == "Killed by otto before it started."
    assert "was killed before it started" in client.get(result_url(result)).content.decode()


def test_post_on_a_running_result_asks_its_worker_to_stop(client, operator, acme):
    result = result_of(acme, Status.RUNNING, started_at=timezone.now())
    client.force_login(operator)
    client.post(kill_url(result))
    result.refresh_from_db()
    assert result.status == Status.RUNNING  # the runner ends it; the admin only records the request
    assert result.kill_requested_at is not None and result.kill_requested_by == operator
    assert "is being killed" in client.get(result_url(result)).content.decode()


@pytest.mark.parametrize("status", [Status.SUCCESS, Status.ERROR, Status.KILLED])
def test_post_on_a_finished_result_is_an_error_and_changes_nothing(client, operator, acme, status):
    finished_at = timezone.now()
    result = result_of(acme, status, message="all done", finished_at=finished_at)
    client.force_login(operator)
    response = client.post(kill_url(result), follow=True)
    assert f"Not killed: result {result.pk} has already finished." in response.content.decode()
    result.refresh_from_db()
    assert (result.status, result.message, result.finished_at) == (status, "all done", finished_at)
    assert result.kill_requested_at is None


@pytest.mark.parametrize("method", ["get", "post"])
def test_other_domains_result_is_not_found(client, member, acme, method):
    result = result_of(acme)
    other = Domain.objects.create(name="Globex", slug="globex")
    client.force_login(member("gus", other, DomainMembership.ADMIN))
    assert getattr(client, method)(kill_url(result)).status_code == 404
    result.refresh_from_db()
    assert result.status == Status.PENDING


def test_domain_member_cannot_kill_a_global_jobs_result(client, operator):
    result = result_of(None)
    client.force_login(operator)
    assert client.post(kill_url(result)).status_code == 404
    result.refresh_from_db()
    assert result.status == Status.PENDING


def test_viewer_is_forbidden(client, member, acme):
    result = result_of(acme)
    client.force_login(member("vic", acme, DomainMembership.VIEWER))
    assert client.post(kill_url(result)).status_code == 403
    result.refresh_from_db()
    assert result.status == Status.PENDING


def test_superuser_kills_a_global_jobs_result(client, admin_user):
    result = result_of(None)
    client.force_login(admin_user)
    client.post(kill_url(result))
    result.refresh_from_db()
    assert result.status == Status.KILLED
