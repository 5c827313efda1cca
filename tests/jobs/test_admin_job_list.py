"""The Job changelist in the admin: columns, search, domain scoping, the bulk "Run now" action, query count."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.models import Domain, DomainMembership, Job
from results.models import JobResult, Status, Trigger
from tests.helpers import make_job, make_member

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:jobs_job_changelist"


def changelist(client, user, **query):
    client.force_login(user)
    response = client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    return response.content.decode()


def row_of(html: str, job: Job) -> str:
    """The <tr> of the changelist that links to ``job``'s change page."""
    href = reverse("admin:jobs_job_change", args=[job.pk])
    rows = [row for row in re.findall(r"<tr\b.*?</tr>", html, flags=re.S) if f'href="{href}"' in row]
    assert len(rows) == 1, f"expected one row for {job.identifier}, found {len(rows)}"
    return rows[0]


def run_now(client, user, *jobs: Job):
    client.force_login(user)
    data = {"action": "run_now", "index": 0, "_selected_action": [job.pk for job in jobs]}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_columns_show_identifier_name_and_domain_or_global(admin_user, client, acme):
    scoped = make_job("acme-report", name="Acme report", domain=acme)
    global_job = make_job("cleanup", name="Nightly cleanup")
    html = changelist(client, admin_user)
    scoped_row, global_row = row_of(html, scoped), row_of(html, global_job)
    assert "acme-report" in scoped_row and "Acme report" in scoped_row and "Acme Corp" in scoped_row
    assert "cleanup" in global_row and "Nightly cleanup" in global_row and "Global" in global_row
    assert "Global" not in scoped_row


def test_last_run_column_shows_the_newest_status_linked_to_its_result(admin_user, client):
    job = make_job("reported")
    JobResult.objects.create(job=job, status=Status.ERROR)
    newest = JobResult.objects.create(job=job, status=Status.SUCCESS)
    row = row_of(changelist(client, admin_user), job)
    assert "job-status-ok" in row and "success" in row
    assert "job-status-bad" not in row
    assert f'href="{reverse("admin:results_jobresult_change", args=[newest.pk])}"' in row


def test_a_job_that_never_ran_says_so(admin_user, client):
    job = make_job("fresh")
    row = row_of(changelist(client, admin_user), job)
    assert "never run" in row
    assert "/admin/results/jobresult/" not in row


def test_search_matches_identifier_name_and_description(admin_user, client):
    make_job("invoices", name="Send invoices", description="Monthly billing run")
    make_job("backup", name="Database backup")
    for term in ("invoices", "Send invoices", "billing"):
        html = changelist(client, admin_user, q=term)
        assert "Send invoices" in html, term
        assert "Database backup" not in html, term


def test_domain_admin_sees_only_their_domains_jobs(client, acme, globex):
    make_job("acme-job", name="Acme only", domain=acme)
    make_job("globex-job", name="Globex only", domain=globex)
    make_job("global-job", name="Installation wide")
    html = changelist(client, make_member("ann", (acme, DomainMembership.ADMIN), staff=True))
    assert "Acme only" in html
    assert "Globex only" not in html
    assert "Installation wide" not in html


def test_domain_filter_offers_only_the_users_domains(client, acme, globex):
    make_job("acme-job", domain=acme)
    html = changelist(client, make_member("ann", (acme, DomainMembership.ADMIN), staff=True))
    assert f"?domain__id__exact={acme.pk}" in html
    assert "Globex" not in html and f"?domain__id__exact={globex.pk}" not in html


def test_superuser_sees_every_domain_and_the_global_jobs(admin_user, client, acme, globex):
    make_job("acme-job", name="Acme only", domain=acme)
    make_job("globex-job", name="Globex only", domain=globex)
    make_job("global-job", name="Installation wide")
    html = changelist(client, admin_user)
    assert all(name in html for name in ("Acme only", "Globex only", "Installation wide"))


def test_run_now_queues_a_pending_manual_result_per_selected_job(admin_user, client):
    first, second, unselected = make_job("first"), make_job("second"), make_job("third")
    response = run_now(client, admin_user, first, second)
    assert response.status_code == 200
    for job in (first, second):
        result = JobResult.objects.get(job=job)
        assert (result.status, result.trigger, result.requested_by) == (Status.PENDING, Trigger.MANUAL, admin_user)
        assert f"{job.identifier} #{result.pk}" in response.content.decode()
    assert not JobResult.objects.filter(job=unselected).exists()


def test_run_now_leaves_out_jobs_the_user_may_only_view(client, acme, globex):
    runnable = make_job("acme-job", domain=acme)
    view_only = make_job("globex-job", domain=globex)
    operator = make_member("otto", (acme, DomainMembership.OPERATOR), (globex, DomainMembership.VIEWER), staff=True)
    response = run_now(client, operator, runnable, view_only)
    assert JobResult.objects.filter(job=runnable).count() == 1
    assert not JobResult.objects.filter(job=view_only).exists()
    assert "1 job(s) you may not run were left out." in response.content.decode()


def test_run_now_ignores_jobs_of_domains_the_user_cannot_see(client, acme, globex):
    own = make_job("acme-job", domain=acme)
    foreign = make_job("globex-job", domain=globex)
    global_job = make_job("global-job")
    run_now(client, make_member("ann", (acme, DomainMembership.ADMIN), staff=True), own, foreign, global_job)
    assert list(JobResult.objects.values_list("job__identifier", flat=True)) == ["acme-job"]


def test_viewer_run_now_creates_nothing(client, acme):
    job = make_job("acme-job", domain=acme)
    response = run_now(client, make_member("vic", (acme, DomainMembership.VIEWER), staff=True), job)
    assert not JobResult.objects.exists()
    offered = [value for value, _ in response.context["action_form"].fields["action"].choices]
    assert "run_now" not in offered and "export_yaml" in offered  # a viewer may export, not run


def test_run_now_refuses_an_inactive_job_with_a_reason(admin_user, client):
    job = make_job("sleeping", active=False)
    response = run_now(client, admin_user, job)
    assert not JobResult.objects.exists()
    assert "Not run: sleeping" in response.content.decode()
    assert "inactive" in response.content.decode()


def changelist_queries(client, user) -> int:
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    return len(queries)


def add_jobs_with_results(count: int, domain: Domain, start: int = 0) -> None:
    for index in range(start, start + count):
        job = make_job(f"job-{index:03d}", (10, "core.sleep", {"seconds": 0}), domain=domain)
        JobResult.objects.create(job=job, status=Status.SUCCESS)


@pytest.mark.parametrize("role", ["superuser", DomainMembership.ADMIN])
def test_changelist_query_count_does_not_grow_with_the_number_of_jobs(client, admin_user, acme, role):
    user = admin_user if role == "superuser" else make_member("ann", (acme, role), staff=True)
    add_jobs_with_results(3, acme)
    with_3 = changelist_queries(client, user)
    add_jobs_with_results(27, acme, start=3)
    with_30 = changelist_queries(client, user)
    assert with_30 <= with_3, f"{with_3} queries for 3 jobs but {with_30} for 30"
