"""The Job result list in the admin: rows, status filter, search, Kill buttons, domain scoping."""
from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import DomainMembership
from results.models import JobResult, Status
from tests.helpers import make_job

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:results_jobresult_changelist"


def result_url(result: JobResult) -> str:
    return reverse("admin:results_jobresult_change", args=[result.pk])


def kill_url(result: JobResult) -> str:
    return reverse("admin:results_jobresult_kill", args=[result.pk])


def result_list(client, user, **query) -> str:
    client.force_login(user)
    response = client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    return response.content.decode()


def listed(html: str, *results: JobResult) -> list[bool]:
    return [f'href="{result_url(result)}' in html for result in results]  # links may carry the filters


def test_rows_show_the_job_status_and_message(client, admin_user):
    job = make_job("nightly-import")
    result = JobResult.objects.create(job=job, status=Status.ERROR, message="Line 10 failed: disk full")
    html = result_list(client, admin_user)
    assert listed(html, result) == [True]
    assert "nightly-import" in html and reverse("admin:jobs_job_change", args=[job.pk]) in html
    assert "job-status-bad" in html and "Error" in html
    assert "Line 10 failed: disk full" in html


def test_long_messages_are_shortened_in_the_list(client, admin_user):
    JobResult.objects.create(job=make_job("chatty"), status=Status.SUCCESS, message="x" * 150 + "TAIL")
    html = result_list(client, admin_user)
    assert "x" * 99 + "…" in html
    assert "TAIL" not in html


def test_filter_by_status(client, admin_user):
    job = make_job("mixed")
    failed = JobResult.objects.create(job=job, status=Status.ERROR)
    passed = JobResult.objects.create(job=job, status=Status.SUCCESS)
    assert listed(result_list(client, admin_user, status__exact="error"), failed, passed) == [True, False]
    assert listed(result_list(client, admin_user, status__exact="success"), failed, passed) == [False, True]


def test_search_by_job_identifier_name_or_message(client, admin_user):
    invoices = JobResult.objects.create(job=make_job("invoices", name="Send invoices"), message="sent 12 invoices")
    backup = JobResult.objects.create(job=make_job("backup", name="Database backup"), message="dumped 3 GB")
    assert listed(result_list(client, admin_user, q="invoices"), invoices, backup) == [True, False]
    assert listed(result_list(client, admin_user, q="Database"), invoices, backup) == [False, True]
    assert listed(result_list(client, admin_user, q="3 GB"), invoices, backup) == [False, True]


@pytest.mark.parametrize(("status", "killable"), [
    (Status.PENDING, True), (Status.RUNNING, True), (Status.SUCCESS, False), (Status.WARNING, False),
    (Status.INFO, False), (Status.ERROR, False), (Status.KILLED, False),
])
def test_kill_button_only_on_pending_and_running_rows(client, admin_user, status, killable):
    result = JobResult.objects.create(job=make_job("any"), status=status)
    html = result_list(client, admin_user)
    assert listed(html, result) == [True]
    assert (kill_url(result) in html) is killable


def test_domain_member_sees_only_their_domains_results(client, member, acme, globex):
    own = JobResult.objects.create(job=make_job("acme-job", domain=acme))
    foreign = JobResult.objects.create(job=make_job("globex-job", domain=globex))
    global_result = JobResult.objects.create(job=make_job("global-job"))
    html = result_list(client, member("vic", acme, DomainMembership.VIEWER))
    assert listed(html, own, foreign, global_result) == [True, False, False]
    assert "globex-job" not in html and "global-job" not in html


def test_search_does_not_reach_other_domains(client, member, acme, globex):
    JobResult.objects.create(job=make_job("globex-job", domain=globex), message="secret payroll")
    html = result_list(client, member("ann", acme, DomainMembership.ADMIN), q="payroll")
    assert "secret payroll" not in html and "globex-job" not in html


def test_superuser_sees_every_result(client, admin_user, acme, globex):
    results = [JobResult.objects.create(job=make_job(name, domain=domain))
               for name, domain in (("acme-job", acme), ("globex-job", globex), ("global-job", None))]
    assert listed(result_list(client, admin_user), *results) == [True, True, True]


def test_staff_user_without_membership_is_forbidden(client, django_user_model):
    JobResult.objects.create(job=make_job("any"))
    client.force_login(django_user_model.objects.create_user("nobody", password="pw", is_staff=True))
    assert client.get(reverse(CHANGELIST)).status_code == 403


def test_beyond_the_cap_the_list_stops_counting_and_says_more_than(client, admin_user, monkeypatch):
    from results.admin import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "CAP", 5)
    job = make_job("chatty")
    JobResult.objects.bulk_create([JobResult(job=job, status=Status.SUCCESS) for _ in range(7)])
    html = result_list(client, admin_user)
    assert "more than 5 job results (filter to narrow them)" in html
    html = result_list(client, admin_user, status__exact="error")
    assert "0 job results" in html and "more than" not in html


def test_under_the_cap_the_count_is_exact(client, admin_user):
    job = make_job("quiet")
    JobResult.objects.bulk_create([JobResult(job=job, status=Status.SUCCESS) for _ in range(3)])
    assert "3 job results" in result_list(client, admin_user)
