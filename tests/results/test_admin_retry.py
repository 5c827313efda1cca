"""Issue 13: Retry of a job that must be confirmed (destructive, external) goes through Run's confirmation.

Before, the result page's Retry button started the run at once: an operator re-ran a destructive job
without typing its identifier or seeing the pre-flight checks.
"""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import DomainMembership
from results.models import JobResult, Status, Trigger
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


def failed_run(job, **parameters) -> JobResult:
    return JobResult.objects.create(job=job, domain=job.domain, status=Status.ERROR, message="it failed",
                                    parameters=parameters, started_at=timezone.now(), finished_at=timezone.now())


@pytest.fixture
def purge(acme):
    """A destructive job whose line has a pre-flight check (core.shell checks its folder)."""
    return make_job("purge", (10, "core.shell", {"command": "echo purge ${param.days}", "cwd": "/no/such/folder"}),
                    domain=acme, destructive=True, concurrency="parallel",
                    params=[{"name": "days", "type": "int", "default": 30}])


@pytest.fixture
def otto(member, acme):
    return member("otto", acme, DomainMembership.OPERATOR)


def retry_url(result: JobResult) -> str:
    return reverse("admin:results_jobresult_retry", args=[result.pk])


def test_retry_of_a_destructive_job_asks_for_confirmation_first(client, otto, purge):
    failed = failed_run(purge, days=7)
    client.force_login(otto)
    response = client.post(retry_url(failed))
    assert response.status_code == 200
    assert JobResult.objects.count() == 1  # nothing started
    html = response.content.decode()
    assert 'id="confirm-reasons"' in html and "it deletes or overwrites data" in html
    assert 'id="preflight"' in html and "Line 10 · core.shell" in html  # Run's pre-flight checks
    assert f"retry of <strong>#{failed.pk}</strong>" in html and 'id="run-values"' in html
    assert 'name="confirm"' in html and "Type purge to run it." in html


def test_retry_with_a_wrong_identifier_is_refused(client, otto, purge):
    failed = failed_run(purge, days=7)
    client.force_login(otto)
    response = client.post(retry_url(failed), {"confirm": "yes"})
    assert response.status_code == 200
    assert response.context["form"].errors["confirm"] == [
        "Type the job's identifier (purge) to confirm: it deletes or overwrites data."]
    assert JobResult.objects.count() == 1


def test_retry_confirmed_with_the_identifier_runs_again_with_the_same_parameters(client, otto, purge):
    failed = failed_run(purge, days=7)
    client.force_login(otto)
    response = client.post(retry_url(failed), {"confirm": "purge", "days": "999"})  # posted values are ignored
    retry = JobResult.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:results_jobresult_change",
                                                                          args=[retry.pk])
    assert (retry.retry_of_id, retry.trigger, retry.parameters, retry.requested_by) == (
        failed.pk, Trigger.RETRY, {"days": 7}, otto)


def test_retry_of_a_job_calling_an_external_system_asks_too(client, otto, acme):
    job = make_job("notify", (10, "core.sleep", {"seconds": 0}), domain=acme, external=True)
    failed = failed_run(job)
    client.force_login(otto)
    response = client.post(retry_url(failed))
    assert response.status_code == 200 and "it calls an external system" in response.content.decode()
    assert JobResult.objects.count() == 1


def test_retry_of_a_job_without_confirmation_starts_at_once(client, otto, acme):
    job = make_job("plain", (10, "core.sleep", {"seconds": 0}), domain=acme)
    failed = failed_run(job)
    client.force_login(otto)
    assert client.post(retry_url(failed)).status_code == 302
    assert JobResult.objects.exclude(pk=failed.pk).get().retry_of_id == failed.pk
