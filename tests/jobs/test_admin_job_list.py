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


@pytest.mark.parametrize("role", ["superuser", DomainMembership.ADMIN, DomainMembership.OPERATOR])
def test_changelist_query_count_does_not_grow_with_the_number_of_jobs(client, admin_user, acme, role):
    user = admin_user if role == "superuser" else make_member("ann", (acme, role), staff=True)
    add_jobs_with_results(3, acme)
    with_3 = changelist_queries(client, user)
    add_jobs_with_results(27, acme, start=3)
    with_30 = changelist_queries(client, user)
    assert with_30 <= with_3, f"{with_3} queries for 3 jobs but {with_30} for 30"


# --- the list as a control panel ------------------------------------------------------------------------------
def live(client, user, *jobs: Job, ids: str | None = None):
    client.force_login(user)
    return client.get(reverse("admin:jobs_job_live"), {"ids": ids if ids is not None else
                                                       ",".join(str(job.pk) for job in jobs)})


def test_each_row_has_run_for_who_may_run_and_kill_while_its_last_run_is_active(client, acme):
    idle, busy, waiting = (make_job(name, domain=acme) for name in ("idle", "busy", "waiting"))
    JobResult.objects.create(job=idle, status=Status.SUCCESS)
    running = JobResult.objects.create(job=busy, status=Status.RUNNING)
    pending = JobResult.objects.create(job=waiting, status=Status.PENDING)
    html = changelist(client, make_member("otto", (acme, DomainMembership.OPERATOR), staff=True))
    for job in (idle, busy, waiting):
        assert f'href="{reverse("admin:jobs_job_run", args=[job.pk])}"' in row_of(html, job)
    assert "kill-button" not in row_of(html, idle)
    assert f'href="{reverse("admin:results_jobresult_kill", args=[running.pk])}"' in row_of(html, busy)
    assert f'href="{reverse("admin:results_jobresult_kill", args=[pending.pk])}"' in row_of(html, waiting)


def test_a_viewer_gets_neither_run_nor_kill(client, acme):
    job = make_job("busy", domain=acme)
    JobResult.objects.create(job=job, status=Status.RUNNING)
    row = row_of(changelist(client, make_member("vic", (acme, DomainMembership.VIEWER), staff=True)), job)
    assert "run-link" not in row and "kill-button" not in row


def test_no_run_button_on_an_inactive_job_or_without_the_permission_the_job_requires(client, acme):
    sleeping = make_job("sleeping", domain=acme, active=False)
    guarded = make_job("guarded", domain=acme, required_permission="auth.delete_user")
    html = changelist(client, make_member("otto", (acme, DomainMembership.OPERATOR), staff=True))
    assert "run-link" not in row_of(html, sleeping)
    assert "inactive" in row_of(html, sleeping)
    assert "run-link" not in row_of(html, guarded)


def test_the_description_is_under_the_name_as_text(admin_user, client):
    job = make_job("tricky", name="Tricky", description="Sends <b>bold</b> & " + "long " * 60)
    row = row_of(changelist(client, admin_user), job)
    assert '<div class="job-description">Sends &lt;b&gt;bold&lt;/b&gt; &amp; long' in row
    assert "<b>bold</b>" not in row
    assert "long " * 40 not in row and "…" in row  # cut at 160 characters


@pytest.mark.parametrize(("chosen", "listed"), [
    ("error", {"failed"}),
    ("error,killed", {"failed", "stopped"}),
    ("killed,never", {"stopped", "fresh"}),
    ("running,pending,success", {"fine"}),
    ("", {"failed", "stopped", "fresh", "fine"}),
    ("nonsense,<script>", {"failed", "stopped", "fresh", "fine"}),
])
def test_status_toggles_filter_by_several_statuses_at_once(admin_user, client, chosen, listed):
    for identifier, status in (("failed", Status.ERROR), ("stopped", Status.KILLED), ("fine", Status.SUCCESS)):
        JobResult.objects.create(job=make_job(identifier), status=status)
    make_job("fresh")
    client.force_login(admin_user)
    response = client.get(reverse(CHANGELIST), {"last_run": chosen})
    assert response.status_code == 200
    assert {job.identifier for job in response.context["cl"].result_list} == listed


def test_a_toggle_adds_or_removes_its_status_from_the_choice(admin_user, client):
    html = changelist(client, admin_user, last_run="error")
    toggles = {status: href for href, status in
               re.findall(r'<a class="status-toggle[^"]*" href="([^"]*)" data-status="(\w+)"', html)}
    assert toggles["killed"] == "?last_run=error%2Ckilled"  # added to the choice
    assert toggles["error"] == "?"  # removed: every status again
    assert toggles["all"] == "?"
    assert re.search(r'class="status-toggle job-status-bad selected" href="[^"]*" data-status="error" '
                     r'aria-pressed="true"', html)


def test_dates_are_absolute_with_a_relative_part_and_cron_plans_in_words(admin_user, client, settings):
    from django.utils import timezone

    from jobs.models import Schedule

    job = make_job("weekly")
    Schedule.objects.create(job=job, kind=Schedule.CALENDAR, cron="0 18 * * 5", timezone="Europe/Madrid")
    JobResult.objects.create(job=job, status=Status.SUCCESS)
    row = row_of(changelist(client, admin_user), job)
    assert "At 18:00, only on Friday" in row
    schedule = Schedule.objects.get(job=job)
    local = timezone.localtime(schedule.next_run_at)
    assert f'{local:%Y-%m-%d %H:%M} <span class="when-relative">(in ' in row  # the next run
    ran = timezone.localtime(JobResult.objects.get(job=job).created_at)
    assert re.search(rf'{ran:%Y-%m-%d %H:%M} <span class="when-relative">\((\d+ s ago|now)\)</span>', row)


def test_a_sub_minute_schedule_shows_seconds(admin_user, client):
    from jobs.models import Schedule

    fast, slow = make_job("fast"), make_job("slow")
    Schedule.objects.create(job=fast, kind=Schedule.INTERVAL, every=15, every_unit="seconds")
    Schedule.objects.create(job=slow, kind=Schedule.INTERVAL, every=5, every_unit="minutes")
    html = changelist(client, admin_user)
    assert re.search(r"next: <time [^>]*>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d <span", row_of(html, fast))
    assert re.search(r"next: <time [^>]*>\d{4}-\d\d-\d\d \d\d:\d\d <span", row_of(html, slow))


def test_the_live_view_answers_the_rows_of_visible_jobs_only(client, acme, globex):
    own, foreign, global_job = make_job("own", domain=acme), make_job("foreign", domain=globex), make_job("global")
    running = JobResult.objects.create(job=own, status=Status.RUNNING)
    for job in (foreign, global_job):
        JobResult.objects.create(job=job, status=Status.RUNNING)
    response = live(client, make_member("otto", (acme, DomainMembership.OPERATOR), staff=True), own, foreign,
                    global_job)
    assert response.status_code == 200
    rows = response.json()["jobs"]
    assert set(rows) == {str(own.pk)}
    assert f'data-result="{running.pk}"' in rows[str(own.pk)]["last_run"]
    assert "job-status-running" in rows[str(own.pk)]["last_run"]
    assert reverse("admin:results_jobresult_kill", args=[running.pk]) in rows[str(own.pk)]["buttons"]


def test_the_live_view_follows_a_new_run_and_its_end(admin_user, client):
    job = make_job("changing")
    JobResult.objects.create(job=job, status=Status.SUCCESS)
    newer = JobResult.objects.create(job=job, status=Status.RUNNING)
    row = live(client, admin_user, job).json()["jobs"][str(job.pk)]
    assert f'data-result="{newer.pk}"' in row["last_run"] and "kill-button" in row["buttons"]
    JobResult.objects.filter(pk=newer.pk).update(status=Status.ERROR)
    row = live(client, admin_user, job).json()["jobs"][str(job.pk)]
    assert "job-status-bad" in row["last_run"] and "kill-button" not in row["buttons"]


@pytest.mark.parametrize("ids", ["1,x", "1;2", ",".join(["1"] * 201), "-1", "9" * 20])
def test_the_live_view_refuses_bad_ids_naming_the_field(admin_user, client, ids):
    response = live(client, admin_user, ids=ids)
    assert response.status_code == 400
    assert response.json() == {"errors": {"ids": ["comma-separated job ids, at most 200"]}}


def test_the_live_view_is_for_members(client, django_user_model):
    outsider = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    assert live(client, outsider, ids="1").status_code == 403


def test_job_list_query_count_is_fixed(client, admin_user, acme, django_assert_num_queries):
    """Session, user, the count, the page's rows (with last run, log icon and schedule) and the filters."""
    from jobs.models import Schedule

    add_jobs_with_results(5, acme)
    Schedule.objects.create(job=Job.objects.get(identifier="job-000"), kind=Schedule.INTERVAL, every=2)
    client.force_login(admin_user)
    with django_assert_num_queries(JOB_LIST_QUERIES["superuser"]):
        assert client.get(reverse(CHANGELIST)).status_code == 200
    operator = make_member("otto", (acme, DomainMembership.OPERATOR), staff=True)
    client.force_login(operator)
    with django_assert_num_queries(JOB_LIST_QUERIES["operator"]):
        assert client.get(reverse(CHANGELIST)).status_code == 200


def test_live_view_query_count_is_fixed(client, admin_user, acme, django_assert_num_queries):
    add_jobs_with_results(5, acme)
    ids = ",".join(str(pk) for pk in Job.objects.values_list("pk", flat=True))
    client.force_login(admin_user)
    with django_assert_num_queries(4):  # session, user, the rows, their schedules
        assert client.get(reverse("admin:jobs_job_live"), {"ids": ids}).status_code == 200
    client.force_login(make_member("otto", (acme, DomainMembership.OPERATOR), staff=True))
    with django_assert_num_queries(6):  # session, user, membership, where they may run, the rows, schedules
        assert client.get(reverse("admin:jobs_job_live"), {"ids": ids}).status_code == 200


JOB_LIST_QUERIES = {"superuser": 9, "operator": 14}
