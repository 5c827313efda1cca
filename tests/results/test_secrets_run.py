"""Secrets in a real run: the worker resolves them, and nothing the run stores or shows holds one in clear."""
from __future__ import annotations

import hashlib
import json

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from jobs.models import DomainMembership, JobLine, Secret
from jobs.secrets import MASK
from results import reports
from results.models import JobResult, Status
from tests.helpers import client_for, make_job, make_member, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]

STORED = "stored-s3cr3t-Value"
TYPED = "typed-pa55word-Value"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def finished(acme):
    """An Acme job using a stored secret and a secret run-time parameter, run by an operator through the API."""
    secret = Secret(name="api_token", domain=acme)
    secret.set_value(STORED)
    secret.save()
    job = make_job(
        "acme-login",
        (10, "testing.login", {"user": "u", "password": "${param.pw}", "token": "Bearer ${secret.api_token}"}),
        (20, "testing.fail", {"message": "refused ${secret.api_token} and ${param.pw}"}),
        (30, "core.shell", {"command": 'echo "env $JOBS_SECRET_API_TOKEN"; printf %s "$JOBS_SECRET_API_TOKEN"'
                                       " | sha256sum"}),
        (40, "core.shell", {"command": 'echo "others=$(env | grep -c ^JOBS_SECRET || true)"'}),
        (50, "core.shell", {"command": 'echo "pw sha $(printf %s "$JOBS_PARAM_PW" | sha256sum)"; '
                                       'echo "pw=$JOBS_PARAM_PW"'}),
        domain=acme, stops_on_error=False, params=[{"name": "pw", "type": "secret", "required": True}],
    )
    operator = make_member("oper", (acme, DomainMembership.OPERATOR))
    response = client_for(operator).post(f"/api/jobs/{job.identifier}/run/", {"parameters": {"pw": TYPED}},
                                         format="json")
    assert response.status_code == 202, response.content
    assert TYPED not in response.content.decode()
    return wait_for_status(response.json()["id"])


def log_of(result: JobResult) -> str:
    return "\n".join(result.log_entries.order_by("seq").values_list("message", flat=True))


def raw_rows(sql: str, *args) -> str:
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return json.dumps([list(map(str, row)) for row in cursor.fetchall()], ensure_ascii=False)


def test_the_worker_gets_the_values_and_the_log_shows_the_mask(finished):
    log = log_of(finished)
    assert f"password sha256 {sha256(TYPED)}" in log  # the action got the typed value
    assert f"logging in as u with password {MASK} and token Bearer {MASK}" in log
    assert f"ctx.secret says {MASK}" in log
    assert f"env {MASK}" in log and sha256(STORED) in log  # $JOBS_SECRET_API_TOKEN, for the line naming it
    assert "others=0" in log  # a line that names no secret gets none in its environment
    assert f"pw sha {sha256(TYPED)}" in log and f"pw={MASK}" in log  # $JOBS_PARAM_PW in clear for the line naming it
    assert STORED not in log and TYPED not in log


def test_nothing_stored_by_the_run_holds_a_secret_in_clear(finished):
    assert finished.status == Status.ERROR
    assert finished.message == f"Line 20 failed: RuntimeError: refused {MASK} and {MASK}"
    stored = (raw_rows("SELECT * FROM results_jobresult WHERE id = %s", finished.id)
              + raw_rows("SELECT * FROM results_joblineresult WHERE result_id = %s", finished.id)
              + raw_rows("SELECT * FROM results_joblogentry WHERE result_id = %s", finished.id)
              + raw_rows("SELECT * FROM jobs_secret"))
    assert STORED not in stored and TYPED not in stored
    assert finished.variables["param.pw"] == MASK and "secret.api_token" not in finished.variables
    line = finished.line_results.get(line_no=10)
    assert line.parameters == {"user": "u", "password": MASK, "token": f"Bearer {MASK}"}
    assert line.message == f"logged in as u:{MASK}"


def test_a_viewer_sees_masks_in_the_api_the_result_page_the_log_download_and_the_mail(finished, acme):
    viewer = make_member("view", (acme, DomainMembership.VIEWER), staff=True)
    api = client_for(viewer)
    data = api.get(f"/api/results/{finished.id}/").json()
    assert data["parameters"] == {"pw": MASK}
    assert data["variables"]["param.pw"] == MASK
    assert data["lines"][0]["parameters"]["password"] == MASK
    log = api.get(f"/api/results/{finished.id}/log/").content.decode()
    browser = Client()
    browser.force_login(viewer)
    page = browser.get(reverse("admin:results_jobresult_change", args=[finished.id])).content.decode()
    download = b"".join(browser.get(reverse("admin:results_jobresult_log", args=[finished.id])).streaming_content)
    finished.job.report = {"recipients": ["ops@example.com"], "when": "always"}
    mail = reports.build_report(finished)
    shown = {"api": json.dumps(data, ensure_ascii=False), "log": log, "page": page,
             "download": download.decode(), "mail": mail.body + mail.alternatives[0][0]}
    token = finished.parameters["pw"]["$secret"]  # sealed at rest: not even the token is shown
    for where, text in shown.items():
        assert STORED not in text and TYPED not in text and token not in text, where
    assert json.dumps(MASK, ensure_ascii=False).strip('"') in shown["page"]
    assert MASK in shown["mail"] and MASK in shown["download"]


def retry(browser: Client, result_id: int) -> JobResult:
    assert browser.post(reverse("admin:results_jobresult_retry", args=[result_id])).status_code == 302
    return wait_for_status(JobResult.objects.order_by("-id").first().id)


def test_a_retry_runs_with_the_same_secret_and_a_deleted_secret_fails_the_line(finished, acme):
    browser = Client()
    browser.force_login(make_member("adm", (acme, DomainMembership.ADMIN), staff=True))
    again = retry(browser, finished.id)
    assert again.id != finished.id and f"password sha256 {sha256(TYPED)}" in log_of(again)
    assert again.parameters["pw"] != finished.parameters["pw"]  # sealed again: a new token, never clear text
    Secret.objects.all().delete()
    JobLine.objects.filter(line_no__in=[20, 30, 40]).delete()
    last = retry(browser, again.id)
    assert last.status == Status.ERROR
    assert last.message == "Line 10 failed: The secret api_token is not in the secrets of this job's domain any more"
