"""Text people type (job names, descriptions, parameters) and text runs produce (messages, log lines)
(failed records' ids and errors too) is shown escaped on every admin page that shows it, and returned
by the API as plain JSON strings.

Every field gets both payloads behind its own tag (``name:<script>…``), so a page is checked both for
"no raw payload anywhere" and for "this field was really shown, escaped". Identifiers are slugs and
are not tested. The result page draws its log and live lines in the browser from the API: there
the check is that ``result.js`` only ever writes text (``textContent``), never HTML.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from jobs.models import Domain
from results.models import JobLineResult, JobLogEntry, JobResult, Status
from tests.helpers import make_job

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
RAW = [SCRIPT, "<img src=x onerror=alert(1)>", "<script>", "onerror=alert(1)>"]


def payload(tag: str) -> str:
    return f"{tag}:{SCRIPT}{tag}:{IMG}"


def shown_escaped(tag: str) -> str:
    """How the tagged ``<script>`` part reads once HTML-escaped."""
    return f"{tag}:{escape(SCRIPT)}"


@pytest.fixture
def hostile(admin_user):
    """A job, its run, its line result and its log, every free text field carrying the payloads."""
    domain = Domain.objects.create(name=payload("domain"), slug="acme")
    job = make_job(
        "hostile", (10, "testing.echo", {"text": payload("line-parameter")}),
        name=payload("name"), description=payload("description"), domain=domain,
        params=[
            {"name": "note", "type": "str", "label": payload("param-label"), "help": payload("param-help"),
             "default": payload("param-default")},
            {"name": "region", "type": "choice", "choices": [payload("param-choice"), "north"]},
        ],
    )
    now = timezone.now()
    result = JobResult.objects.create(job=job, status=Status.RUNNING, message=payload("result-message"),
                                      started_at=now, parameters={"note": payload("result-parameter")})
    JobLineResult.objects.create(result=result, line_no=10, action="testing.echo", status=Status.RUNNING,
                                 message=payload("line-message"), parameters={"text": payload("line-argument")},
                                 started_at=now, records_failed=1,
                                 failures=[{"id": payload("record-id"), "error": payload("record-error")}])
    JobLogEntry.objects.create(result=result, seq=1, level="INFO", line_no=10, message=payload("log"), at=now)
    LogEntry.objects.log_actions(admin_user.pk, [job], CHANGE, change_message="edited")
    return job, result


def page(name: str, hostile) -> str:
    job, result = hostile
    lists = {"jobs": "admin:jobs_job_changelist", "results": "admin:results_jobresult_changelist",
             "index": "admin:index"}
    if name in lists:
        return reverse(lists[name])
    on_job = {"job": "admin:jobs_job_change", "run": "admin:jobs_job_run", "job-delete": "admin:jobs_job_delete",
              "job-history": "admin:jobs_job_history"}
    if name in on_job:
        return reverse(on_job[name], args=[job.pk])
    on_result = {"result": "admin:results_jobresult_change", "kill": "admin:results_jobresult_kill",
                 "result-history": "admin:results_jobresult_history"}
    return reverse(on_result[name], args=[result.pk])


# (page, the tagged fields it shows)
PAGES = [
    ("jobs", ["name", "domain"]),
    ("job", ["name", "description", "param-label", "param-help", "param-default", "param-choice", "line-parameter",
             "result-message"]),
    ("run", ["name", "domain", "line-parameter", "param-label", "param-help", "param-default", "param-choice"]),
    ("job-delete", ["name"]),
    ("job-history", ["name"]),
    ("results", ["result-message"]),
    ("result", ["name", "result-message", "line-message", "result-parameter"]),
    ("kill", ["name"]),
    ("result-history", []),
    ("index", ["name"]),  # the "Recent actions" list names the edited job
]


@pytest.mark.parametrize(("name", "fields"), PAGES, ids=[name for name, _ in PAGES])
def test_admin_page_shows_the_text_escaped(client, admin_user, hostile, name, fields):
    client.force_login(admin_user)
    response = client.get(page(name, hostile))
    assert response.status_code == 200
    html = response.content.decode()
    for raw in RAW:
        assert raw not in html, f"{name}: raw {raw!r} in the page"
    for tag in fields:
        assert shown_escaped(tag) in html, f"{name}: the {tag} is not shown (escaped) on the page"


def test_run_page_with_form_errors_still_escapes(client, admin_user, hostile):
    """The Run form sent back with an error (a choice not offered) shows everything escaped too."""
    job, _ = hostile
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_job_run", args=[job.pk]), {"note": payload("posted"),
                                                                        "region": payload("posted-choice")})
    assert response.status_code == 200
    html = response.content.decode()
    for raw in RAW:
        assert raw not in html
    assert shown_escaped("posted") in html


def test_result_page_script_writes_text_never_html():
    """The log and the live lines are drawn by result.js from the API: text nodes only."""
    source = (Path(settings.BASE_DIR) / "static" / "jobs" / "result.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, f"result.js uses {sink}"
    assert "textContent = " in source
    # The message of a log entry and of a line only ever reach the page through textContent.
    assert re.search(r"row\.textContent = .*entry\.message", source)
    assert "cell.textContent = value" in source  # lines' messages, failed records' ids and errors


def api_get(client, url: str):
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.get("X-Content-Type-Options") == "nosniff"
    text = response.content.decode()
    assert "&lt;" not in text and "&quot;" not in text, "the API must not HTML-escape its strings"
    return response.json()


def test_api_returns_the_text_as_plain_json_strings(client, admin_user, hostile):
    _job, result = hostile
    client.force_login(admin_user)
    jobs = api_get(client, reverse("api:jobs"))
    (data,) = [item for item in jobs if item["identifier"] == "hostile"]
    assert data["name"] == payload("name")
    assert data["description"] == payload("description")
    assert data["params"][0]["label"] == payload("param-label")
    assert data["params"][0]["help"] == payload("param-help")
    assert data["params"][0]["default"] == payload("param-default")
    assert data["params"][1]["choices"][0] == payload("param-choice")

    detail = api_get(client, reverse("api:result", args=[result.pk]))
    assert detail["message"] == payload("result-message")
    assert detail["parameters"] == {"note": payload("result-parameter")}
    assert detail["lines"][0]["message"] == payload("line-message")
    assert detail["lines"][0]["parameters"] == {"text": payload("line-argument")}
    failure = {"id": payload("record-id"), "error": payload("record-error")}
    assert detail["lines"][0]["failures"] == [failure]
    assert detail["answers"]["failures"] == [failure | {"line_no": 10}]

    log = api_get(client, reverse("api:result-log", args=[result.pk]))
    assert [entry["message"] for entry in log["entries"]] == [payload("log")]


def test_api_errors_quote_the_input_as_plain_json(client, admin_user, hostile):
    """A bad run-time value is named in a 400 answer: JSON, not HTML."""
    job, _ = hostile
    client.force_login(admin_user)
    response = client.post(reverse("api:job-run", args=[job.identifier]),
                           {"parameters": {"region": payload("bad-choice")}}, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "parameters.region" in response.json()["errors"]
    assert "&lt;" not in response.content.decode()


def test_log_download_is_plain_text_never_html(client, admin_user, hostile):
    """The log file carries the lines as written, in a download the browser never renders as a page."""
    _job, result = hostile
    client.force_login(admin_user)
    response = client.get(reverse("admin:results_jobresult_log", args=[result.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Disposition"].startswith("attachment")
    assert response.get("X-Content-Type-Options") == "nosniff"
    assert payload("log") in b"".join(response.streaming_content).decode()


def test_operations_page_carries_the_text_as_data_and_draws_it_as_text(client, admin_user, hostile):
    """The operations page embeds its state as JSON (json_script) and operations.js writes it as text only."""
    job, _ = hostile
    JobResult.objects.create(job=job, status=Status.ERROR, message=payload("failure-message"),
                             started_at=timezone.now(), finished_at=timezone.now())
    client.force_login(admin_user)
    html = client.get(reverse("operations:page")).content.decode()
    for raw in RAW:
        assert raw not in html, f"operations: raw {raw!r} in the page"
    state = api_get(client, reverse("operations:state"))
    assert [row["job_name"] for row in state["running"]] == [payload("name")]
    assert state["attention"][0]["message"] == payload("failure-message")
    source = (Path(settings.BASE_DIR) / "static" / "jobs" / "operations.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, f"operations.js uses {sink}"
    assert 'node.textContent = value' in source
