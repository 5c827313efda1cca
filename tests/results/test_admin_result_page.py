"""The Job result page in the admin: summary, line results, live log container, escaping, access."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from jobs.models import Domain, DomainMembership
from results.models import JobLineResult, JobLogEntry, JobResult, Status
from tests.helpers import make_job

pytestmark = pytest.mark.django_db

MARKUP = '<img src=x onerror="alert(1)">'


@pytest.fixture
def finished(acme):
    job = make_job("nightly-import", name="Nightly import", domain=acme)
    result = JobResult.objects.create(job=job, status=Status.ERROR, message="Line 20 failed: disk full",
                                      started_at=timezone.now(), finished_at=timezone.now())
    JobLineResult.objects.create(result=result, line_no=10, action="core.shell", status=Status.SUCCESS,
                                 message="command exited with status 0")
    JobLineResult.objects.create(result=result, line_no=20, action="core.sleep", status=Status.ERROR,
                                 message="no space left on device")
    return result


def page(client, user, result: JobResult) -> str:
    client.force_login(user)
    response = client.get(reverse("admin:results_jobresult_change", args=[result.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_page_shows_status_and_message(client, admin_user, finished):
    html = page(client, admin_user, finished)
    assert f"Result #{finished.pk} of Nightly import" in html
    assert '<span id="result-status" class="job-status job-status-error">error</span>' in html
    assert '<td colspan="3" id="result-message">Line 20 failed: disk full</td>' in html


def test_page_shows_each_line_result(client, admin_user, finished):
    html = page(client, admin_user, finished)
    assert "core.shell" in html and "command exited with status 0" in html
    assert "core.sleep" in html and "no space left on device" in html


def test_page_has_the_live_log_container_with_the_api_urls(client, admin_user, finished):
    html = page(client, admin_user, finished)
    assert 'id="job-log"' in html
    assert f'data-result-url="{reverse("api:result", args=[finished.pk])}"' in html
    assert f'data-log-url="{reverse("api:result-log", args=[finished.pk])}"' in html
    assert "jobs/result.js" in html


def test_kill_link_on_a_pending_result_for_an_operator(client, member, acme):
    result = JobResult.objects.create(job=make_job("acme-job", domain=acme), status=Status.PENDING)
    html = page(client, member("otto", acme, DomainMembership.OPERATOR), result)
    assert reverse("admin:results_jobresult_kill", args=[result.pk]) in html


@pytest.mark.parametrize("who", ["viewer", "finished"])
def test_no_kill_link_for_a_viewer_or_a_finished_result(client, member, acme, finished, who):
    if who == "viewer":
        result = JobResult.objects.create(job=make_job("running-job", domain=acme), status=Status.RUNNING)
        user = member("vic", acme, DomainMembership.VIEWER)
    else:
        result, user = finished, member("otto", acme, DomainMembership.OPERATOR)
    html = page(client, user, result)
    assert reverse("admin:results_jobresult_kill", args=[result.pk]) not in html


def test_markup_in_job_name_message_and_line_message_is_escaped(client, admin_user):
    result = JobResult.objects.create(job=make_job("markup", name=f"Name {MARKUP}"), status=Status.ERROR,
                                      message=f"Message {MARKUP}")
    JobLineResult.objects.create(result=result, line_no=10, action="core.shell", status=Status.ERROR,
                                 message=f"Line {MARKUP}")
    html = page(client, admin_user, result)
    assert MARKUP not in html
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert f"Name {escaped}" in html and f"Message {escaped}" in html and f"Line {escaped}" in html


def test_log_entries_are_not_rendered_as_html(client, admin_user, finished):
    JobLogEntry.objects.create(result=finished, seq=1, level="INFO", line_no=10, message=f"log {MARKUP}",
                               at=timezone.now())
    assert MARKUP not in page(client, admin_user, finished)
    entries = client.get(reverse("api:result-log", args=[finished.pk])).json()["entries"]
    assert entries[0]["message"] == f"log {MARKUP}"  # raw in JSON: the page script must insert it as text


def test_live_log_script_inserts_text_never_html():
    script = (Path(settings.BASE_DIR) / "static" / "jobs" / "result.js").read_text()
    assert "row.textContent =" in script
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in script, sink


def test_other_domains_result_is_not_shown(client, member, finished):
    other = Domain.objects.create(name="Globex", slug="globex")
    client.force_login(member("gus", other, DomainMembership.ADMIN))
    response = client.get(reverse("admin:results_jobresult_change", args=[finished.pk]), follow=True)
    assert "Nightly import" not in response.content.decode()
    assert "disk full" not in response.content.decode()


def test_other_domains_result_page_is_404(client, member, finished):
    other = Domain.objects.create(name="Globex", slug="globex")
    client.force_login(member("gus", other, DomainMembership.ADMIN))
    assert client.get(reverse("admin:results_jobresult_change", args=[finished.pk])).status_code == 404


def test_results_cannot_be_edited_from_the_page(client, admin_user, finished):
    html = page(client, admin_user, finished)
    assert 'name="_save"' not in html and 'name="status"' not in html
