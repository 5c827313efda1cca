"""The job page's executions (results.job_page): the Results window, the history chart, the read-only page."""
from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import DomainMembership, Schedule
from results.job_page import duration_text, duration_ticks
from results.models import JobResult
from tests.helpers import make_job

pytestmark = pytest.mark.django_db

JOBS_APP = Path(__file__).resolve().parents[2] / "jobs"


def finished(job, status: str, seconds: float, **fields) -> JobResult:
    began = fields.pop("started_at", timezone.now() - dt.timedelta(hours=1))
    return JobResult.objects.create(job=job, status=status, started_at=began,
                                    finished_at=began + dt.timedelta(seconds=seconds), **fields)


def job_page(client, job, **params):
    response = client.get(reverse("admin:jobs_job_change", args=[job.pk]), params)
    assert response.status_code == 200
    return response


def test_no_module_of_the_jobs_app_imports_results():
    """Definitions never depend on executions: the job admin reaches them through jobs.executions (an import inside
    a function, an ``if`` or a ``try`` counts too)."""
    offenders = []
    for path in JOBS_APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "results"]
    assert offenders == []


# --- the Results window ------------------------------------------------------------------------------------

def test_the_results_window_pages_by_20_newest_first(client, admin_user):
    job = make_job("paged")
    ids = [JobResult.objects.create(job=job, status="success").pk for _ in range(45)]
    client.force_login(admin_user)
    first = job_page(client, job)
    assert [r.pk for r in first.context["results_page"]] == ids[::-1][:20]
    assert "Page 1 of 3 · 45 results" in first.content.decode()
    last = job_page(client, job, results_page=3)
    assert [r.pk for r in last.context["results_page"]] == ids[::-1][40:]
    assert job_page(client, job, results_page="nonsense").context["results_page"].number == 1


def test_the_results_window_searches_by_number_message_and_user_and_filters_by_status(client, admin_user):
    job = make_job("searched")
    disk = JobResult.objects.create(job=job, status="error", message="disk full on /var")
    JobResult.objects.create(job=job, status="success", message="all fine")
    by_root = JobResult.objects.create(job=job, status="success", message="ok", requested_by=admin_user)
    client.force_login(admin_user)

    def found(**params):
        return [r.pk for r in job_page(client, job, **params).context["results_page"]]

    assert found(results_q="DISK") == [disk.pk]
    assert found(results_q=f"#{disk.pk}") == [disk.pk]
    assert found(results_q="root") == [by_root.pk]
    assert found(results_status="error") == [disk.pk]
    assert found(results_status="success", results_q="disk") == []
    assert len(found(results_status="not-a-status")) == 3  # an unknown status filters nothing
    assert found(results_q="9" * 40) == []  # no number too large for the database


def test_search_text_is_shown_escaped(client, admin_user):
    job = make_job("escaped")
    JobResult.objects.create(job=job, status="success")
    client.force_login(admin_user)
    html = job_page(client, job, results_q='"><script>alert(1)</script>').content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


@pytest.mark.parametrize("role, may_act", [(DomainMembership.OPERATOR, True), (DomainMembership.ADMIN, True),
                                           (DomainMembership.VIEWER, False)])
def test_kill_and_retry_are_offered_to_those_who_may_run(client, member, acme, role, may_act):
    job = make_job("acted", domain=acme)
    running = JobResult.objects.create(job=job, domain=acme, status="running")
    failed = finished(job, "error", 3, domain=acme)
    client.force_login(member("mia", acme, role))
    html = job_page(client, job).content.decode()
    kill = reverse("admin:results_jobresult_kill", args=[running.pk])
    retry = reverse("admin:results_jobresult_retry", args=[failed.pk])
    assert (kill in html) is may_act and (retry in html) is may_act
    assert reverse("admin:results_jobresult_kill", args=[failed.pk]) not in html  # finished: nothing to kill
    assert reverse("admin:results_jobresult_retry", args=[running.pk]) not in html  # still running


def test_each_execution_opens_its_log_in_the_popup(client, admin_user):
    job = make_job("popups")
    result = finished(job, "success", 2)
    client.force_login(admin_user)
    html = job_page(client, job).content.decode()
    url = reverse("admin:results_jobresult_change", args=[result.pk])
    assert f'href="{url}?_popup=1#job-log" data-popup="{url}" class="result-popup"' in html
    assert '<script src="/static/jobs/popup.js"></script>' in html


# --- the history chart --------------------------------------------------------------------------------------

def test_duration_ticks_are_round_and_carry_their_unit():
    assert duration_ticks(37)[1][-1] == (40, "40 s")
    top, ticks = duration_ticks(250)
    assert top == 300 and [label for _, label in ticks] == ["0 min", "1 min", "2 min", "3 min", "4 min", "5 min"]
    assert duration_ticks(3 * 3600)[1][1][1] == "1 h"
    assert duration_ticks(0)[1][0] == (0, "0 s")
    assert duration_text(4.25) == "4.2 s" and duration_text(250) == "4 min 10 s" and duration_text(7500) == "2 h 5 min"


def test_the_chart_has_a_time_axis_a_duration_axis_a_legend_and_links(client, admin_user):
    job = make_job("charted")
    start = timezone.now() - dt.timedelta(hours=3)
    runs = [finished(job, status, 30 * (n + 1), started_at=start + dt.timedelta(hours=n))
            for n, status in enumerate(["success", "error", "success"])]
    client.force_login(admin_user)
    html = job_page(client, job).content.decode()
    start_at = html.index('<svg class="history-chart"')
    svg = html[start_at:html.index("</svg>", start_at)]
    assert 'width="720"' in svg
    assert re.findall(r'class="y-tick"[^>]*>([^<]+)<', svg) == ["0 s", "20 s", "40 s", "60 s", "80 s", "100 s"]
    local = timezone.localtime(start)
    assert f"{local:%H:%M}" in re.findall(r'class="x-tick[^"]*"[^>]*>([^<]+)<', svg)
    assert "Start time" in svg and "Duration" in svg
    # Each bar: where it starts (left to right in time), its tooltip, and the link to its result.
    xs = [float(x) for x in re.findall(r'<rect class="bar-\w+" x="([\d.]+)"', svg)]
    assert xs == sorted(xs) and len(xs) == 3
    url = reverse("admin:results_jobresult_change", args=[runs[1].pk])
    assert f'<a href="{url}?_popup=1#job-log" data-popup="{url}"><rect class="bar-error"' in svg
    assert f"<title>#{runs[1].pk} error · started " in svg and "· 1 min</title>" in svg
    legend = html[html.index('id="history-legend"'):]
    assert "success (2)" in legend and "error (1)" in legend


def test_no_chart_before_the_first_run(client, admin_user):
    job = make_job("unrun")
    client.force_login(admin_user)
    response = job_page(client, job)
    assert response.context["history_chart"] is None
    assert "This job has not run yet." in response.content.decode()


# --- the read-only page -------------------------------------------------------------------------------------

FORM_CONTROL = re.compile(r"<(input|select|textarea)\b[^>]*>")


@pytest.mark.parametrize("role", [DomainMembership.OPERATOR, DomainMembership.VIEWER])
def test_a_reader_gets_the_definition_with_no_input_and_the_notes_first(client, member, acme, role):
    job = make_job("read-only", (10, "core.shell", {"command": "echo from-the-line"}), domain=acme,
                   owner="Team Blue", troubleshooting="Restart the export host.",
                   params=[{"name": "days", "type": "int", "default": 7}],
                   report={"recipients": ["ops@example.com"], "when": "failure"})
    Schedule.objects.create(job=job, kind=Schedule.CALENDAR, weekdays=[5, 6], times=["08:00"])
    finished(job, "success", 1, domain=acme)
    client.force_login(member("rita", acme, role))
    html = job_page(client, job).content.decode()
    controls = FORM_CONTROL.findall(html)
    names = set(re.findall(r'<(?:input|select|textarea)\b[^>]*name="([^"]+)"', html))
    assert names <= {"results_q", "results_status", "csrfmiddlewaretoken"}, names
    assert 'id="job_form"' not in html and controls  # the only controls are the Results window's
    assert html.index("Team Blue") < html.index('id="job-results"') < html.index('id="job-definition"')
    assert html.count("Restart the export host.") == 1  # the notes once, in the panel
    assert "from-the-line" in html and "Sent to ops@example.com after a failure." in html
    assert "<code>days</code></td><td>int</td>" in html
    assert "Every Saturday, Sunday at 08:00" in html  # the schedule, read-only, in words


def test_an_editor_keeps_the_form_and_gets_the_notes_above_it_and_results_below(client, member, acme):
    job = make_job("editable", domain=acme, owner="Team Blue")
    finished(job, "success", 1, domain=acme)
    client.force_login(member("eve", acme, DomainMembership.ADMIN))
    html = job_page(client, job).content.decode()
    assert html.index('id="operator-panel"') < html.index('name="name"') < html.index('name="_save"')
    assert html.index("</form>", html.index('name="_save"')) < html.index('id="job-results"')


# --- query counts -------------------------------------------------------------------------------------------

def busy_job(acme, lines: int, results: int):
    job = make_job("busy", *[(10 * (n + 1), "core.sleep", {"seconds": 0}) for n in range(lines)], domain=acme)
    Schedule.objects.create(job=job, kind=Schedule.INTERVAL, every=5, every_unit="minutes")
    for n in range(results):
        finished(job, ["success", "error", "warning"][n % 3], n, domain=acme)
    JobResult.objects.create(job=job, domain=acme, status="running", started_at=timezone.now())
    return job


@pytest.mark.parametrize("role, queries", [(DomainMembership.OPERATOR, 23), (DomainMembership.ADMIN, 26),
                                            ("system administrator", 19)])
def test_the_job_page_takes_a_fixed_number_of_queries(client, member, acme, admin_user, role, queries,
                                                      django_assert_num_queries):
    job = busy_job(acme, lines=3, results=25)
    client.force_login(admin_user if role == "system administrator" else member("quinn", acme, role))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    client.get(url)  # warms the caches a process fills once (content types)
    with django_assert_num_queries(queries):
        assert client.get(url).status_code == 200
    # More lines and more runs: the same number.
    for n in range(4, 9):
        job.lines.create(line_no=10 * n, action=job.lines.first().action, parameters={"seconds": 0})
    for n in range(30):
        finished(job, "success", n, domain=acme)
    with django_assert_num_queries(queries):
        assert client.get(url).status_code == 200
