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


# --- filters: domain, job, date range --------------------------------------------------------------------------
def listed_ids(client, user, **query) -> set[int]:
    client.force_login(user)
    response = client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    return {result.pk for result in response.context["cl"].result_list}


def test_filter_by_domain_includes_its_runs_of_global_jobs(client, admin_user, acme, globex):
    own = JobResult.objects.create(job=make_job("acme-job", domain=acme))
    other = JobResult.objects.create(job=make_job("globex-job", domain=globex))
    per_domain = JobResult.objects.create(job=make_job("everywhere"), domain=acme)
    assert listed_ids(client, admin_user, domain=acme.pk) == {own.pk, per_domain.pk}
    assert listed_ids(client, admin_user, domain=globex.pk) == {other.pk}


def test_domain_and_job_filters_offer_only_what_the_member_sees(client, member, acme, globex):
    make_job("acme-job", domain=acme)
    make_job("globex-job", domain=globex)
    make_job("global-job")
    client.force_login(member("vic", acme, DomainMembership.VIEWER))
    response = client.get(reverse(CHANGELIST))
    specs = {spec.title: spec for spec in response.context["cl"].filter_specs}
    assert [label for _, label in specs["domain"].lookup_choices] == [acme.name]
    assert [label for _, label in specs["job"].lookup_choices] == ["acme-job"]
    html = response.content.decode()
    assert "globex" not in html.lower() and "global-job" not in html


def test_filter_by_job_and_a_foreign_job_id_shows_nothing(client, member, acme, globex):
    first, second = make_job("first", domain=acme), make_job("second", domain=acme)
    foreign = make_job("globex-job", domain=globex)
    wanted = JobResult.objects.create(job=first)
    JobResult.objects.create(job=second)
    JobResult.objects.create(job=foreign)
    ann = member("ann", acme, DomainMembership.ADMIN)
    assert listed_ids(client, ann, job=first.pk) == {wanted.pk}
    assert listed_ids(client, ann, job=foreign.pk) == set()


def test_filter_by_date_range_includes_both_days_in_the_site_time_zone(client, admin_user, settings):
    import datetime as dt

    from django.utils import timezone

    job = make_job("daily")
    made = {}
    for day in (1, 2, 3, 4):
        result = JobResult.objects.create(job=job)
        at = timezone.make_aware(dt.datetime(2026, 11, day, 23, 30))  # late in the day, site time
        JobResult.objects.filter(pk=result.pk).update(created_at=at)
        made[day] = result.pk
    assert listed_ids(client, admin_user, created_from="2026-11-02", created_to="2026-11-03") == {made[2], made[3]}
    assert listed_ids(client, admin_user, created_from="2026-11-04") == {made[4]}
    assert listed_ids(client, admin_user, created_to="2026-11-01") == {made[1]}


@pytest.mark.parametrize("typed", ["yesterday", "2026-13-01", "<script>", "2026-11-02'--"])
def test_a_bad_date_is_named_and_left_out_never_a_500(client, admin_user, typed):
    result = JobResult.objects.create(job=make_job("any"))
    client.force_login(admin_user)
    response = client.get(reverse(CHANGELIST), {"created_from": typed}, follow=True)
    assert response.status_code == 200
    assert {r.pk for r in response.context["cl"].result_list} == {result.pk}
    text = [str(message) for message in response.context["messages"]]
    assert any(message.startswith("From date: enter a date as YYYY-MM-DD") for message in text), text
    assert "<script>" not in response.content.decode()


def test_the_date_form_keeps_the_other_filters(client, admin_user, acme):
    html = result_list(client, admin_user, status__exact="error", domain=acme.pk, created_from="2026-11-02")
    form = html[html.index('id="date-range-filter"'):]
    form = form[:form.index("</form>")]
    assert '<input type="hidden" name="status__exact" value="error">' in form
    assert f'<input type="hidden" name="domain" value="{acme.pk}">' in form
    assert 'name="created_from" id="id_created_from" value="2026-11-02"' in form


# --- bulk Kill and Retry ---------------------------------------------------------------------------------------
def bulk(client, user, action: str, *results: JobResult, confirmed: bool):
    client.force_login(user)
    data = {"action": action, "index": 0, "_selected_action": [result.pk for result in results]}
    return client.post(reverse(CHANGELIST), {**data, **({"post": "yes"} if confirmed else {})}, follow=confirmed)


def test_bulk_kill_asks_once_listing_what_happens_to_each(client, admin_user):
    job = make_job("busy", concurrency="parallel")
    pending = JobResult.objects.create(job=job, status=Status.PENDING)
    running = JobResult.objects.create(job=job, status=Status.RUNNING)
    done = JobResult.objects.create(job=job, status=Status.SUCCESS)
    response = bulk(client, admin_user, "kill_selected", pending, running, done, confirmed=False)
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 of the 3 selected result(s) will be killed" in html
    assert "left out: already success" in html
    assert JobResult.objects.get(pk=pending.pk).status == Status.PENDING  # nothing yet
    assert JobResult.objects.get(pk=running.pk).kill_requested_at is None


def test_bulk_kill_confirmed_kills_what_it_may_and_says_what_it_left_out(client, admin_user):
    job = make_job("busy", concurrency="parallel")
    pending = JobResult.objects.create(job=job, status=Status.PENDING)
    running = JobResult.objects.create(job=job, status=Status.RUNNING)
    done = JobResult.objects.create(job=job, status=Status.SUCCESS)
    response = bulk(client, admin_user, "kill_selected", pending, running, done, confirmed=True)
    html = response.content.decode()
    assert JobResult.objects.get(pk=pending.pk).status == Status.KILLED
    assert JobResult.objects.get(pk=running.pk).kill_requested_at is not None
    assert JobResult.objects.get(pk=done.pk).status == Status.SUCCESS
    assert f"#{pending.pk} killed" in html and f"#{running.pk} being killed" in html
    assert f"Left out: #{done.pk} (already success)" in html


def test_bulk_kill_leaves_out_the_domains_where_the_member_only_views(client, member, acme, globex):
    mixed = member("max", acme, DomainMembership.OPERATOR)
    DomainMembership.objects.create(user=mixed, domain=globex, role=DomainMembership.VIEWER)
    own = JobResult.objects.create(job=make_job("acme-job", domain=acme), status=Status.PENDING)
    viewed = JobResult.objects.create(job=make_job("globex-job", domain=globex), status=Status.PENDING)
    hidden = JobResult.objects.create(job=make_job("global-job"), status=Status.PENDING)
    html = bulk(client, mixed, "kill_selected", own, viewed, hidden, confirmed=True).content.decode()
    assert JobResult.objects.get(pk=own.pk).status == Status.KILLED
    assert JobResult.objects.get(pk=viewed.pk).status == Status.PENDING
    assert JobResult.objects.get(pk=hidden.pk).status == Status.PENDING
    assert f"#{viewed.pk} (you may not kill it)" in html
    assert f"#{hidden.pk}" not in html  # not even named: outside their domains


def test_bulk_retry_runs_finished_results_again_with_their_parameters(client, admin_user):
    job = make_job("flaky", concurrency="parallel", params=[{"name": "days", "type": "int", "default": 7}])
    failed = JobResult.objects.create(job=job, status=Status.ERROR, parameters={"days": 3})
    running = JobResult.objects.create(job=job, status=Status.RUNNING)
    confirm_first = JobResult.objects.create(job=make_job("wipe", destructive=True), status=Status.ERROR)
    page = bulk(client, admin_user, "retry_selected", failed, running, confirm_first, confirmed=False)
    assert "1 of the 3 selected result(s) will be run again" in page.content.decode()
    assert not JobResult.objects.filter(retry_of__isnull=False).exists()
    html = bulk(client, admin_user, "retry_selected", failed, running, confirm_first, confirmed=True).content.decode()
    retry = JobResult.objects.get(retry_of=failed)
    assert (retry.trigger, retry.parameters, retry.requested_by) == ("retry", {"days": 3}, admin_user)
    assert not JobResult.objects.filter(retry_of__in=[running, confirm_first]).exists()
    assert f"#{failed.pk} as #{retry.pk}" in html
    assert f"#{running.pk} (still running)" in html
    assert f"#{confirm_first.pk} (its job must be confirmed: retry it from its page)" in html


def test_bulk_actions_are_capped(client, admin_user, monkeypatch):
    from results.admin import JobResultAdmin

    monkeypatch.setattr(JobResultAdmin, "BULK_MAX", 2)
    job = make_job("many", concurrency="parallel")
    results = [JobResult.objects.create(job=job, status=Status.PENDING) for _ in range(3)]
    html = bulk(client, admin_user, "kill_selected", *results, confirmed=True).content.decode()
    assert "Select at most 2 results for a bulk kill" in html
    assert not JobResult.objects.filter(status=Status.KILLED).exists()


# --- CSV export ------------------------------------------------------------------------------------------------
def export(client, user, **query) -> tuple[object, list[list[str]]]:
    import csv
    import io

    client.force_login(user)
    response = client.get(reverse("admin:results_jobresult_export"), query)
    assert response.status_code == 200
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    return response, list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_export_is_the_filtered_list_with_no_parameters(client, admin_user, acme):
    job = make_job("payroll", name="Payroll", domain=acme)
    failed = JobResult.objects.create(job=job, status=Status.ERROR, message="bank refused",
                                      parameters={"token": "s3cr3t-value"}, variables={"param.token": "s3cr3t"})
    JobResult.objects.create(job=job, status=Status.SUCCESS)
    response, rows = export(client, admin_user, status__exact="error")
    assert rows[0] == ["id", "job", "job_name", "domain", "status", "trigger", "requested_by", "created_at",
                       "started_at", "finished_at", "duration_s", "message"]
    assert [row[:5] for row in rows[1:]] == [[str(failed.pk), "payroll", "Payroll", acme.name, "error"]]
    assert rows[1][-1] == "bank refused"
    assert "s3cr3t" not in "".join(",".join(row) for row in rows)
    assert response["Content-Disposition"].startswith('attachment; filename="job-results-')


def test_export_keeps_to_the_members_domains_whatever_the_filters_say(client, member, acme, globex):
    own = JobResult.objects.create(job=make_job("acme-job", domain=acme))
    foreign_job = make_job("globex-job", domain=globex)
    JobResult.objects.create(job=foreign_job)
    JobResult.objects.create(job=make_job("global-job"))
    vic = member("vic", acme, DomainMembership.VIEWER)
    assert [row[0] for row in export(client, vic)[1][1:]] == [str(own.pk)]
    assert export(client, vic, job=foreign_job.pk)[1][1:] == []
    assert export(client, vic, domain=globex.pk)[1][1:] == []


def test_export_cells_never_become_spreadsheet_formulas(client, admin_user):
    JobResult.objects.create(job=make_job("formula", name="=HYPERLINK(\"http://x\")"), message="+cmd|' /C calc'!A0")
    row = export(client, admin_user)[1][1]
    assert row[2] == "'=HYPERLINK(\"http://x\")"
    assert row[-1] == "'+cmd|' /C calc'!A0"


def test_export_has_a_link_on_the_list_keeping_its_filters(client, admin_user):
    html = result_list(client, admin_user, status__exact="error", q="disk")
    assert f'href="{reverse("admin:results_jobresult_export")}?status__exact=error&amp;q=disk"' in html


def test_export_of_a_bad_filter_is_a_clear_400(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("admin:results_jobresult_export"), {"no_such_field__exact": "1"})
    assert response.status_code == 400
    assert "filters are not valid" in response.content.decode()


# --- query counts ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("role", "queries"), [("superuser", 7), (DomainMembership.OPERATOR, 12)])
def test_result_list_query_count_is_fixed(client, admin_user, member, acme, role, queries,
                                          django_assert_num_queries):
    """The same count for 4 jobs and for 20: nothing is read once per row."""
    user = admin_user if role == "superuser" else member("otto", acme, role)
    client.force_login(user)
    for first, last in ((0, 4), (4, 20)):
        for index in range(first, last):
            job = make_job(f"job-{index}", domain=acme)
            JobResult.objects.create(job=job, status=Status.RUNNING, requested_by=admin_user)
            JobResult.objects.create(job=job, status=Status.ERROR, domain=acme)
        with django_assert_num_queries(queries):
            assert client.get(reverse(CHANGELIST)).status_code == 200


def test_show_counts_counts_per_domain_and_job(client, admin_user, acme, globex):
    """Django's "Show counts" (facets) runs each filter with each choice: the choices' values must be text."""
    JobResult.objects.create(job=make_job("acme-job", domain=acme), status=Status.ERROR)
    JobResult.objects.create(job=make_job("acme-other", domain=acme), status=Status.ERROR)
    JobResult.objects.create(job=make_job("globex-job", domain=globex), status=Status.ERROR)
    html = result_list(client, admin_user, _facets="True", domain=acme.pk)
    assert f"{acme.name} (2)" in html and f"{globex.name} (1)" in html
    assert "acme-job (1)" in html and "globex-job (0)" in html


def test_export_refuses_a_bad_date_naming_the_field(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("admin:results_jobresult_export"), {"created_to": "31/12/2026"})
    assert response.status_code == 400
    assert response.content.decode() == "To date: enter a date as YYYY-MM-DD (e.g. 2026-12-03), not '31/12/2026'."


def test_bulk_retry_leaves_out_jobs_the_member_may_not_run(client, member, acme, globex):
    otto = member("otto", acme, DomainMembership.OPERATOR)
    DomainMembership.objects.create(user=otto, domain=globex, role=DomainMembership.VIEWER)
    fine = JobResult.objects.create(job=make_job("fine", domain=acme), status=Status.ERROR)
    guarded = JobResult.objects.create(job=make_job("guarded", domain=acme, required_permission="auth.delete_user"),
                                       status=Status.ERROR)
    viewed = JobResult.objects.create(job=make_job("viewed", domain=globex), status=Status.ERROR)
    html = bulk(client, otto, "retry_selected", fine, guarded, viewed, confirmed=True).content.decode()
    assert JobResult.objects.filter(retry_of=fine).count() == 1
    assert not JobResult.objects.filter(retry_of__in=[guarded, viewed]).exists()
    assert f"#{guarded.pk} (you may not run its job)" in html and f"#{viewed.pk} (you may not run its job)" in html


def test_with_many_jobs_the_job_filter_offers_those_of_the_latest_runs(client, admin_user):
    """Ten thousand jobs made the page draw ten thousand links (300 ms at a million results in make bench)."""
    from jobs.models import Job
    from results.listing import JobFilter

    Job.objects.bulk_create(Job(identifier=f"idle-{n:03}", name="Idle") for n in range(JobFilter.OFFERED + 1))
    ran = [make_job(f"ran-{n}") for n in range(3)]
    for job in ran:
        JobResult.objects.create(job=job, status=Status.SUCCESS)
    quiet = Job.objects.get(identifier="idle-007")  # never ran: not offered, yet its link still filters
    client.force_login(admin_user)
    page = client.get(reverse(CHANGELIST)).content.decode()
    offered = {f"?job={job.pk}" for job in Job.objects.all() if f"?job={job.pk}\"" in page}
    assert offered == {f"?job={job.pk}" for job in ran}
    chosen = client.get(reverse(CHANGELIST), {"job": quiet.pk})
    assert chosen.status_code == 200 and list(chosen.context["cl"].result_list) == []
    assert f"?job={quiet.pk}\"" in chosen.content.decode()  # the chosen one stays offered
