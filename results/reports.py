"""E-mail reports of finished runs.

A job's ``report`` (``{"recipients": [...], "when": "always" | "failure" |
"warning" | "never"}``) says who hears about its runs. The run itself never
waits for a mail: whoever ends a run calls ``queue_report`` once the final
status is committed, which only publishes the Celery task
``results.send_report``; that task renders the mail and sends it through
Django's e-mail framework (``EMAIL_*`` settings). A mail that cannot be sent is
logged, never raised into the worker.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job

from .journal import cut
from .models import TERMINAL, JobLogEntry, JobResult, Status

logger = logging.getLogger(__name__)

# The statuses each "when" reports; "failure" is the default of a report without "when".
WHEN_STATUSES: dict[str, frozenset[str]] = {
    "always": frozenset(TERMINAL),
    "failure": frozenset({Status.ERROR, Status.KILLED}),
    "warning": frozenset({Status.WARNING, Status.ERROR, Status.KILLED}),
    "never": frozenset(),
}
DEFAULT_WHEN = "failure"
LOG_LINES = 20
# A log entry may hold 10,000 characters (a traceback); the mail shows its start.
LOG_ENTRY_MAX_CHARS = 2000


def recipients(job: Job) -> list[str]:
    return list((job.report or {}).get("recipients") or [])


def should_send(job: Job, status: str) -> bool:
    """True when the job's report asks for a mail about a run that ended ``status``."""
    report = job.report or {}
    if not recipients(job):
        return False
    return status in WHEN_STATUSES.get(report.get("when") or DEFAULT_WHEN, frozenset())


def queue_report(result_id: int, status: str | None = None, job: Job | None = None) -> bool:
    """Publish ``results.send_report`` once the current transaction commits, if the job wants a mail.

    Called by whoever ended the run (runner, reaper, watchdog). Without
    ``status`` or ``job`` they are read from the database. Outside a
    transaction the task is published at once. Never raises: a report must not
    change how a run ends.
    """
    try:
        if job is None or status is None:
            row = JobResult.objects.select_related("job").only("status", "job__report", "job__queue").filter(
                id=result_id).first()
            if row is None:
                return False
            job, status = row.job, row.status
        if not should_send(job, status):
            return False
        queue = job.queue
        transaction.on_commit(lambda: publish_report(result_id, queue))
        return True
    except Exception:
        logger.exception("could not queue the e-mail report of result %s", result_id)
        return False


def publish_report(result_id: int, queue: str = "") -> None:
    """Send the task to the job's queue: its workers are alive (they just ran it); a broker error is logged."""
    from .tasks import send_report as send_report_task

    try:
        send_report_task.apply_async(args=[result_id], **({"queue": queue} if queue else {}))
    except Exception:
        logger.exception("could not publish the e-mail report of result %s", result_id)


def send_report(result_id: int) -> bool:
    """Render and send the report of a finished result; False (and a log entry) when nothing was sent.

    The job's report is read again here, so a report switched off meanwhile is not sent.
    """
    result = (
        JobResult.objects.select_related("job", "job__domain", "domain", "requested_by")
        .filter(id=result_id).first()
    )
    if result is None or result.status not in TERMINAL or not should_send(result.job, result.status):
        return False
    try:
        message = build_report(result)
        message.send()
    except Exception:
        logger.exception("could not send the e-mail report of result %s to %s", result_id, recipients(result.job))
        return False
    logger.info("e-mail report of result %s (%s) sent to %s", result_id, result.status, ", ".join(message.to))
    return True


def build_report(result: JobResult) -> EmailMultiAlternatives:
    """The mail: a plain-text body and an HTML alternative (autoescaped) from the same context."""
    context = report_context(result)
    text = render_to_string("results/report_email.txt", context)
    html = render_to_string("results/report_email.html", context)
    message = EmailMultiAlternatives(
        subject=context["subject"], body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=recipients(result.job),
    )
    message.attach_alternative(html, "text/html")
    return message


def subject_of(result: JobResult) -> str:
    """E.g. ``[Jobs] error: Weekly report (weekly-report) #123``, always on one line."""
    job = result.job
    subject = f"[Jobs] {result.status}: {job.name} ({job.identifier}) #{result.pk}"
    return " ".join(subject.split())


def report_context(result: JobResult) -> dict:
    job = result.job
    domain = result.domain if result.domain_id else job.domain
    return {
        "subject": subject_of(result),
        "result": result,
        "job": job,
        "status": result.status,
        "domain": domain.name if domain is not None else "global",
        "trigger": result.get_trigger_display(),
        "who": result.requested_by.get_username() if result.requested_by_id else "",
        "started": _when(result.started_at),
        "finished": _when(result.finished_at),
        "duration": duration_text(result.duration) if result.finished_at else "—",
        "lines": list(result.line_results.order_by("line_no").values("line_no", "action", "status", "message")),
        "log": last_log_lines(result.pk),
        "url": result_url(result.pk),
    }


def last_log_lines(result_id: int, count: int = LOG_LINES) -> list[dict]:
    """The last ``count`` log entries, oldest first, each message cut to a readable length."""
    newest = JobLogEntry.objects.filter(result_id=result_id).order_by("-seq")[:count]
    return [
        {"seq": entry.seq, "at": timezone.localtime(entry.at).strftime("%H:%M:%S"), "level": entry.level,
         "line_no": entry.line_no, "message": cut(entry.message, LOG_ENTRY_MAX_CHARS)}
        for entry in reversed(list(newest))
    ]


def result_url(result_id: int) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("admin:results_jobresult_change", args=[result_id])


def duration_text(duration: dt.timedelta | None) -> str:
    """``2 h 03 min 04 s``, ``3 min 04 s`` or ``1.25 s``."""
    if duration is None:
        return "—"
    seconds = duration.total_seconds()
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _when(instant: dt.datetime | None) -> str:
    return timezone.localtime(instant).strftime("%Y-%m-%d %H:%M:%S %Z") if instant else "—"
