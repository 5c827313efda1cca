"""Domains on every path: per-domain runs of global jobs, user context, confirmations, required permissions."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from jobs import access
from jobs.models import DomainMembership, Job
from results.dispatch import RunRefused, start_runs
from results.models import JobResult, Status
from tests.helpers import make_job, wait_for_status

pytestmark = pytest.mark.django_db


def test_a_per_domain_global_job_gets_one_result_for_each_domain(acme, globex, admin_user):
    job = make_job("nightly-per-domain", (10, "testing.echo", {}), execution=Job.PER_DOMAIN, queue="nobody-dom")
    results = start_runs(job, user=admin_user)
    assert sorted(r.domain.slug for r in results) == ["acme", "globex"]
    assert all(r.run_as == admin_user and r.requested_by == admin_user for r in results)


def test_each_domain_admin_sees_only_their_domains_run_of_a_global_job(acme, globex, member, admin_user):
    job = make_job("per-domain", (10, "testing.echo", {}), execution=Job.PER_DOMAIN, queue="nobody-dom")
    start_runs(job, user=admin_user)
    ann = member("ann", acme, DomainMembership.ADMIN)
    visible = access.visible_results(ann, JobResult.objects.all())
    assert [r.domain.slug for r in visible] == ["acme"]
    assert not access.visible_jobs(ann).filter(pk=job.pk).exists()  # the global job itself stays hidden
    client = APIClient()
    client.force_authenticate(ann)
    other = JobResult.objects.get(domain=globex)
    assert client.get(f"/api/results/{other.id}/").status_code == 404
    assert client.get(f"/api/results/{visible.get().id}/").status_code == 200


def test_a_job_in_a_domain_cannot_run_per_domain(acme):
    job = make_job("scoped", domain=acme, execution=Job.PER_DOMAIN)
    with pytest.raises(Exception, match="Only a global job can run per domain"):
        job.full_clean()


def test_per_domain_without_any_domain_is_refused():
    job = make_job("lonely", (10, "testing.echo", {}), execution=Job.PER_DOMAIN)
    with pytest.raises(RunRefused, match="no domain"):
        start_runs(job)
    assert not JobResult.objects.exists()


def test_a_service_user_is_recorded_beside_who_started_it(acme, member, django_user_model):
    service = django_user_model.objects.create_user("svc-billing")
    make_job("as-service", (10, "testing.echo", {}), domain=acme, run_as=service, queue="nobody-dom")
    operator = member("olga", acme, DomainMembership.OPERATOR)
    client = APIClient()
    client.force_authenticate(operator)
    data = client.post("/api/jobs/as-service/run/", {}, format="json").json()
    assert (data["requested_by"], data["run_as"]) == ("olga", "svc-billing")


def test_a_destructive_job_needs_its_identifier_typed_to_run_through_the_api(acme, member):
    make_job("wipe-cache", (10, "testing.echo", {}), domain=acme, destructive=True, queue="nobody-dom")
    client = APIClient()
    client.force_authenticate(member("olga", acme, DomainMembership.OPERATOR))
    refused = client.post("/api/jobs/wipe-cache/run/", {}, format="json")
    assert refused.status_code == 400
    assert "deletes or overwrites data" in refused.json()["errors"]["confirm"][0]
    wrong = client.post("/api/jobs/wipe-cache/run/", {"confirm": "wipe"}, format="json")
    assert wrong.status_code == 400
    assert not JobResult.objects.exists()
    accepted = client.post("/api/jobs/wipe-cache/run/", {"confirm": "wipe-cache"}, format="json")
    assert accepted.status_code == 202


def test_an_external_job_is_confirmed_on_the_admin_run_page_and_refused_in_bulk(client, acme, member):
    job = make_job("post-invoices", (10, "testing.echo", {}), domain=acme, external=True, queue="nobody-dom")
    client.force_login(member("olga", acme, DomainMembership.OPERATOR))
    page = client.get(f"/admin/jobs/job/{job.pk}/run/")
    assert "calls an external system" in page.content.decode()
    refused = client.post(f"/admin/jobs/job/{job.pk}/run/", {"confirm": "nope"})
    assert refused.status_code == 200 and not JobResult.objects.exists()
    client.post("/admin/jobs/job/", {"action": "run_now", "_selected_action": [job.pk]})
    assert not JobResult.objects.exists()
    done = client.post(f"/admin/jobs/job/{job.pk}/run/", {"confirm": "post-invoices"})
    assert done.status_code == 302 and JobResult.objects.count() == 1


def test_a_required_permission_is_needed_besides_the_role(acme, member):
    job = make_job("close-books", (10, "testing.echo", {}), domain=acme, required_permission="jobs.change_job",
                   queue="nobody-dom")
    operator = member("olga", acme, DomainMembership.OPERATOR)
    assert not access.can_run(operator, job)
    client = APIClient()
    client.force_authenticate(operator)
    assert client.post("/api/jobs/close-books/run/", {}, format="json").status_code == 403
    operator.user_permissions.add(Permission.objects.get(codename="change_job"))
    operator = type(operator).objects.get(pk=operator.pk)  # the permission cache is per instance
    assert access.can_run(operator, job)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_the_domain_variable_of_a_per_domain_run_is_its_own_domain(acme, globex, celery_worker):
    job = make_job("say-domain", (10, "core.shell", {"command": 'echo domain="$JOBS_DOMAIN"'}),
                   execution=Job.PER_DOMAIN, concurrency="parallel")
    results = start_runs(job)
    for result in results:
        done = wait_for_status(result.id)
        assert done.status == Status.SUCCESS
        assert done.log_entries.filter(message=f"domain={result.domain.slug}").exists()
