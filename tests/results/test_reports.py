"""E-mail reports: when they are sent, what they say, and real delivery through an SMTP server by a real worker."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.core import mail
from django.utils import timezone

from jobs.models import Domain, Job
from results import reaper, reports, states
from results.dispatch import start_run
from results.journal import RunJournal
from results.models import JobLineResult, JobLogEntry, JobResult, Status, Trigger
from results.watchdog import RunControl, RunWatch
from tests.helpers import make_job, wait_for_status

ALL_STATUSES = [Status.SUCCESS, Status.WARNING, Status.INFO, Status.ERROR, Status.KILLED]
EXPECTED = {
    "always": set(ALL_STATUSES),
    "failure": {Status.ERROR, Status.KILLED},
    "warning": {Status.WARNING, Status.ERROR, Status.KILLED},
    "never": set(),
}


def job_with_report(identifier: str, when: str | None, *lines, recipients=("ops@example.com",), **fields):
    report = {"recipients": list(recipients)} | ({"when": when} if when else {})
    return make_job(identifier, *lines, report=report, **fields)


# --- should_send ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("when", list(EXPECTED))
@pytest.mark.parametrize("status", ALL_STATUSES)
def test_should_send_follows_when_for_every_terminal_status(when, status):
    job = Job(identifier="x", name="X", report={"recipients": ["a@example.com"], "when": when})
    assert reports.should_send(job, status) is (status in EXPECTED[when])


@pytest.mark.parametrize("report", [None, {}, {"recipients": [], "when": "always"}, {"when": "always"}])
def test_without_recipients_nothing_is_sent(report):
    job = Job(identifier="x", name="X", report=report)
    assert not any(reports.should_send(job, status) for status in ALL_STATUSES)


def test_a_report_without_when_reports_failures_only():
    job = Job(identifier="x", name="X", report={"recipients": ["a@example.com"]})
    assert {status for status in ALL_STATUSES if reports.should_send(job, status)} == {Status.ERROR, Status.KILLED}


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING])
def test_an_unfinished_status_is_never_reported(status):
    job = Job(identifier="x", name="X", report={"recipients": ["a@b.org"], "when": "always"})
    assert not reports.should_send(job, status)


# --- build_report --------------------------------------------------------------------------------------------------

def finished_result(job, *, status=Status.ERROR, message="Line 20 failed: <script>alert(1)</script>", log_entries=25,
                    **fields) -> JobResult:
    started = timezone.now() - dt.timedelta(minutes=3, seconds=4)
    result = JobResult.objects.create(job=job, status=status, message=message, started_at=started,
                                      finished_at=started + dt.timedelta(minutes=3, seconds=4), lines_total=3,
                                      **fields)
    JobLineResult.objects.create(result=result, line_no=10, action="testing.echo", status=Status.SUCCESS,
                                 message="echoed <1> time(s)")
    JobLineResult.objects.create(result=result, line_no=20, action="testing.fail", status=Status.ERROR,
                                 message="RuntimeError: <b>disk</b> & full")
    JobLogEntry.objects.bulk_create(
        JobLogEntry(result=result, seq=seq, level="INFO", line_no=10, message=f"entry {seq:02d} <tag>", at=started)
        for seq in range(1, log_entries + 1)
    )
    return result


def html_part(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


@pytest.mark.django_db
def test_the_report_gives_status_job_domain_trigger_times_lines_last_log_and_link(django_user_model, settings):
    settings.SITE_URL = "https://jobs.example.com/"
    alice = django_user_model.objects.create_user("alice")
    domain = Domain.objects.create(name="Acme", slug="acme")
    job = job_with_report("weekly-report", "failure", name="Weekly report", domain=domain,
                          recipients=("ops@example.com", "lead@example.com"))
    result = finished_result(job, trigger=Trigger.MANUAL, requested_by=alice, domain=domain)
    message = reports.build_report(result)
    assert message.subject == f"[Jobs] error: Weekly report (weekly-report) #{result.pk}"
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    url = f"https://jobs.example.com/admin/results/jobresult/{result.pk}/change/"
    for body in (message.body, html_part(message)):
        assert "Weekly report" in body and "weekly-report" in body
        assert "Acme" in body and "By hand (admin)" in body and "alice" in body
        assert "3 min 04 s" in body
        assert timezone.localtime(result.started_at).strftime("%Y-%m-%d %H:%M:%S") in body
        assert "testing.fail" in body and "testing.echo" in body
        assert "entry 25" in body and "entry 06" in body and "entry 05" not in body  # the last 20 only
        assert url in body
    assert "Line 20 failed: <script>alert(1)</script>" in message.body  # plain text: as it is
    assert "RuntimeError: <b>disk</b> & full" in message.body
    assert "2 of 3 ran" in message.body


@pytest.mark.django_db
def test_markup_from_the_job_the_message_and_the_log_is_escaped_in_the_html_part():
    job = job_with_report("markup", "always", name='<img src=x onerror="boom">')
    result = finished_result(job)
    html = html_part(reports.build_report(result))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;boom&quot;&gt;" in html
    assert "<tag>" not in html and "entry 25 &lt;tag&gt;" in html
    assert "<b>disk</b>" not in html and "&lt;b&gt;disk&lt;/b&gt; &amp; full" in html


@pytest.mark.django_db
def test_a_global_run_started_by_the_schedule_says_global_and_no_user():
    job = job_with_report("nightly", "always", name="Nightly")
    result = finished_result(job, status=Status.SUCCESS, message="2 line(s) done.", trigger=Trigger.SCHEDULE,
                             log_entries=0)
    message = reports.build_report(result)
    assert message.subject == f"[Jobs] success: Nightly (nightly) #{result.pk}"
    assert "Domain:    global" in message.body
    assert "Trigger:   Schedule\n" in message.body
    assert "The log is empty." in message.body


@pytest.mark.django_db
def test_a_subject_is_always_one_line():
    job = job_with_report("two-lines", "always", name="First\nsecond")
    result = finished_result(job)
    assert reports.subject_of(result) == f"[Jobs] error: First second (two-lines) #{result.pk}"


# --- queue_report and send_report ----------------------------------------------------------------------------------

@pytest.fixture
def published(monkeypatch):
    """The result ids whose report task was published (instead of reaching a broker)."""
    calls: list[tuple[int, str]] = []
    monkeypatch.setattr(reports, "publish_report", lambda result_id, queue="": calls.append((result_id, queue)))
    return calls


@pytest.mark.django_db
def test_queue_report_publishes_only_after_the_commit_and_only_when_wanted(published,
                                                                          django_capture_on_commit_callbacks):
    wanted = finished_result(job_with_report("wanted", "failure", queue="reports"))
    unwanted = finished_result(job_with_report("unwanted", "failure"), status=Status.SUCCESS)
    with django_capture_on_commit_callbacks() as callbacks:
        assert reports.queue_report(wanted.id, Status.ERROR, job=wanted.job)
        assert not reports.queue_report(unwanted.id, Status.SUCCESS, job=unwanted.job)
        assert published == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert published == [(wanted.id, "reports")]


@pytest.mark.django_db
def test_queue_report_reads_the_status_and_job_when_not_given(published, django_capture_on_commit_callbacks):
    result = finished_result(job_with_report("read-back", "failure"), status=Status.KILLED)
    with django_capture_on_commit_callbacks(execute=True):
        assert reports.queue_report(result.id)
    assert published == [(result.id, "")]
    assert not reports.queue_report(10**9)


@pytest.mark.django_db
def test_publishing_errors_are_logged_not_raised(monkeypatch, caplog):
    from results import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.send_report, "apply_async", broker_down)
    with caplog.at_level(logging.ERROR, logger="results.reports"):
        reports.publish_report(42)
    assert "could not publish the e-mail report of result 42" in caplog.text


@pytest.mark.django_db
def test_send_report_sends_the_mail_through_djangos_email_backend():
    result = finished_result(job_with_report("sent", "warning"))
    assert reports.send_report(result.id) is True
    [message] = mail.outbox
    assert message.subject == f"[Jobs] error: Sent (sent) #{result.pk}"
    assert message.to == ["ops@example.com"]


@pytest.mark.django_db
def test_send_report_reads_the_report_again_and_skips_unfinished_results():
    result = finished_result(job_with_report("changed", "always"))
    result.job.report = {"recipients": ["ops@example.com"], "when": "never"}
    result.job.save()
    running = JobResult.objects.create(job=job_with_report("running", "always"), status=Status.RUNNING)
    assert reports.send_report(result.id) is False
    assert reports.send_report(running.id) is False
    assert reports.send_report(10**9) is False
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_mail_that_cannot_be_sent_is_logged(settings, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 5
    result = finished_result(job_with_report("smtp-down", "always"))
    with caplog.at_level(logging.ERROR, logger="results.reports"):
        assert reports.send_report(result.id) is False
    assert f"could not send the e-mail report of result {result.id}" in caplog.text


# --- the hooks of the reaper and the watchdog -----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_run_lost_by_its_worker_is_reported(published, settings):
    settings.JOBS_WORKER_LOST_SECONDS = 20
    job = job_with_report("lost", "failure")
    result = JobResult.objects.create(job=job)
    assert states.claim(result.id, "elsewhere:1")
    JobResult.objects.filter(id=result.id).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=5))
    assert reaper.sweep() == [result.id]
    assert published == [(result.id, "")]


@pytest.mark.django_db(transaction=True)
def test_a_run_stopped_by_force_by_the_watchdog_is_reported(published):
    job = job_with_report("forced", "failure")
    result = JobResult.objects.create(job=job)
    assert states.claim(result.id, "here:1")
    control = RunControl()
    control.stop("Killed by root.")
    RunWatch(result.id, RunJournal(result.id), control, None)._force_stop()
    assert JobResult.objects.get(id=result.id).status == Status.KILLED
    assert published == [(result.id, "")]


# --- real delivery: a real worker sends through a real SMTP server ------------------------------------------------

def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (an SMTP server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], email.message.EmailMessage]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[list[str], email.message.EmailMessage]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} mail(s) arrived, expected {count}")
            time.sleep(0.05)
        return list(self.received)


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=closed_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def start_mail_worker(worker_factory, tmp_path: Path, name: str, smtp_port: int) -> str:
    """A worker of its own queue whose e-mail goes to ``127.0.0.1:smtp_port``.

    ``settings_test`` pins the in-memory e-mail backend, so the EMAIL_* variables
    alone cannot switch it: the worker gets a settings module that extends it.
    """
    module = f"smtp_settings_{name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        "from jobs_project.settings_test import *  # noqa: F403\n"
        'EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"\n'
        f'EMAIL_HOST = "127.0.0.1"\nEMAIL_PORT = {smtp_port}\nEMAIL_TIMEOUT = 10\n'
    )
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{name}"
    python_path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    worker_factory(name, queue, env={
        "DJANGO_SETTINGS_MODULE": module, "PYTHONPATH": python_path,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_port),
    })
    return queue


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return plain, html


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_failed_run_is_reported_through_a_real_smtp_server(worker_factory, tmp_path, smtp_server):
    port, inbox = smtp_server
    queue = start_mail_worker(worker_factory, tmp_path, "mail", port)
    job = job_with_report("mailed", "failure", (10, "testing.echo", {"text": "<i>hello</i>"}),
                          (20, "testing.fail", {"message": "disk <full>"}), name="Mailed <job>", queue=queue,
                          recipients=("ops@example.com", "lead@example.com"))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    [(rcpt_tos, message)] = inbox.wait_for(1)
    assert sorted(rcpt_tos) == ["lead@example.com", "ops@example.com"]
    assert message["Subject"] == f"[Jobs] error: Mailed <job> (mailed) #{result.id}"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    plain, html = parts(message)
    assert "Line 20 failed: RuntimeError: disk <full>" in plain
    assert "20  testing.fail  error  RuntimeError: disk <full>" in plain
    assert "<i>hello</i>" in plain and "&lt;i&gt;hello&lt;/i&gt;" in html and "<i>hello" not in html
    assert "Mailed &lt;job&gt;" in html
    assert f"/admin/results/jobresult/{result.id}/change/" in plain


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_failure_reports_send_nothing_for_a_success_and_a_forced_kill_is_reported(worker_factory, tmp_path,
                                                                                  smtp_server):
    port, inbox = smtp_server
    queue = start_mail_worker(worker_factory, tmp_path, "mail-quiet", port)
    quiet = job_with_report("quiet", "failure", (10, "testing.echo", {}), queue=queue)
    assert wait_for_status(start_run(quiet).id).status == Status.SUCCESS
    pid_file = tmp_path / "pid"
    busy = job_with_report("busy-mailed", "failure", (10, "testing.busy_loop", {"pid_file": str(pid_file)}),
                           queue=queue)
    result = start_run(busy)
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the busy loop did not start"
        time.sleep(0.05)
    states.request_kill(result.id, None)
    assert wait_for_status(result.id, timeout=15).status == Status.KILLED  # stopped by force by the watchdog
    inbox.wait_for(1)
    time.sleep(1)  # a late report of the success would arrive now
    assert [m["Subject"] for _, m in inbox.received] == [f"[Jobs] killed: Busy-Mailed (busy-mailed) #{result.id}"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_smtp_server_is_down_still_ends_normally(worker_factory, tmp_path):
    queue = start_mail_worker(worker_factory, tmp_path, "mail-down", closed_port())
    job = job_with_report("unmailed", "always", (10, "testing.echo", {}), queue=queue)
    first = wait_for_status(start_run(job).id)
    assert first.status == Status.SUCCESS and first.message == "1 line(s) done."
    log = Path(settings.VAR_DIR) / "test-artifacts" / "worker-mail-down.log"
    deadline = time.monotonic() + 30
    while f"could not send the e-mail report of result {first.id}" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the failed mail was not logged"
        time.sleep(0.1)
    # The worker goes on running jobs.
    assert wait_for_status(start_run(job).id).status == Status.SUCCESS
