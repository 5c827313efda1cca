"""The operator's views: log pages (earlier, levels, download), unread log icon, last-run filter, history chart."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from results.models import JobLogEntry, JobResult, LogRead
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


def with_log(job, lines: int, **fields) -> JobResult:
    result = JobResult.objects.create(job=job, status=fields.pop("status", "success"), **fields)
    levels = ["DEBUG", "INFO", "WARNING", "ERROR"]
    JobLogEntry.objects.bulk_create(
        JobLogEntry(result=result, seq=n, level=levels[n % 4], message=f"entry {n}", at=timezone.now())
        for n in range(1, lines + 1)
    )
    return result


def log_page(user, result, **params):
    client = APIClient()
    client.force_authenticate(user)
    return client.get(f"/api/results/{result.id}/log/", params).json()


def test_load_earlier_gives_the_entries_just_before_the_first_one_shown(admin_user):
    result = with_log(make_job("long-log"), 50)
    tail = log_page(admin_user, result, tail=10)
    assert [e["seq"] for e in tail["entries"]] == list(range(41, 51))
    earlier = log_page(admin_user, result, before=41, limit=15)
    assert [e["seq"] for e in earlier["entries"]] == list(range(26, 41))


def test_the_level_filter_keeps_only_the_levels_asked_for(admin_user):
    result = with_log(make_job("levels"), 20)
    page = log_page(admin_user, result, level="warning,ERROR")
    assert {e["level"] for e in page["entries"]} == {"WARNING", "ERROR"}
    client = APIClient()
    client.force_authenticate(admin_user)
    bad = client.get(f"/api/results/{result.id}/log/", {"level": "LOUD"})
    assert bad.status_code == 400 and "level" in bad.json()["errors"]


def test_the_log_downloads_as_a_text_file(client, admin_user):
    result = with_log(make_job("download"), 12000)
    client.force_login(admin_user)
    response = client.get(reverse("admin:results_jobresult_log", args=[result.id]))
    assert response["Content-Type"].startswith("text/plain")
    assert 'filename="download-' in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    lines = text.splitlines()
    assert len(lines) == 12000 and lines[0].endswith("entry 1") and lines[-1].endswith("entry 12000")


def test_the_log_icon_is_unread_until_the_user_reads_the_log(client, admin_user):
    job = make_job("icon")
    result = with_log(job, 5)
    client.force_login(admin_user)
    listing = client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "log-unread" in listing
    log_page(admin_user, result, tail=500)  # what the result page does
    assert LogRead.objects.get(user=admin_user, result=result).seq == 5
    listing = client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "log-unread" not in listing and "log-read" in listing
    JobLogEntry.objects.create(result=result, seq=6, level="INFO", message="new", at=timezone.now())
    assert "log-unread" in client.get(reverse("admin:jobs_job_changelist")).content.decode()


def test_reading_an_older_page_never_makes_newer_entries_unread(admin_user):
    result = with_log(make_job("older"), 30)
    log_page(admin_user, result, tail=10)
    log_page(admin_user, result, before=21, limit=5)
    assert LogRead.objects.get(user=admin_user, result=result).seq == 30


def test_the_last_run_filter_narrows_the_job_list(client, admin_user):
    failed, fine, never = make_job("failed-job"), make_job("fine-job"), make_job("never-job")
    JobResult.objects.create(job=failed, status="error")
    JobResult.objects.create(job=fine, status="success")
    client.force_login(admin_user)
    html = client.get(reverse("admin:jobs_job_changelist"), {"last_run": "error"}).content.decode()
    assert "failed-job" in html and "fine-job" not in html and "never-job" not in html
    html = client.get(reverse("admin:jobs_job_changelist"), {"last_run": "never"}).content.decode()
    assert "never-job" in html and "failed-job" not in html
    assert never.pk


def test_the_job_page_draws_the_history_and_filters_latest_executions(client, admin_user):
    job = make_job("charted")
    start = timezone.now() - dt.timedelta(hours=1)
    for n, status in enumerate(["success", "error", "success"]):
        JobResult.objects.create(job=job, status=status, started_at=start, message=f"run {n}",
                                 finished_at=start + dt.timedelta(seconds=n + 1))
    client.force_login(admin_user)
    page = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert page.count('class="bar-success"') == 2 and page.count('class="bar-error"') == 1
    filtered = client.get(reverse("admin:jobs_job_change", args=[job.pk]), {"results_status": "error"})
    latest = list(filtered.context["results_page"])
    assert [r.status for r in latest] == ["error"]


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_job_list_uses_the_same_number_of_queries_for_3_or_30_jobs(client, admin_user):
    client.force_login(admin_user)
    url = reverse("admin:jobs_job_changelist")
    for n in range(3):
        with_log(make_job(f"job-{n}"), 2)
    few = count_queries(client, url)
    for n in range(3, 30):
        with_log(make_job(f"job-{n}"), 2)
    assert count_queries(client, url) == few


def test_the_result_list_uses_the_same_number_of_queries_for_3_or_30_results(client, admin_user):
    client.force_login(admin_user)
    url = reverse("admin:results_jobresult_changelist")
    job = make_job("many-results")
    for _ in range(3):
        JobResult.objects.create(job=job, status="running")
    few = count_queries(client, url)
    for _ in range(27):
        JobResult.objects.create(job=job, status="running")
    assert count_queries(client, url) == few
