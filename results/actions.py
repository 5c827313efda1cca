"""Built-in actions about executions: ``core.purge_results`` (retention) and ``core.send_email``.

Imported at start-up like every installed app's ``actions.py`` (see ``jobs.registry``).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from jobs.models import Job
from jobs.registry import action

from .models import TERMINAL, JobLineResult, JobLogEntry, JobResult

# Results deleted per transaction: a huge table is never locked for long, and a kill stops between batches.
PURGE_BATCH_SIZE = 1000
SMTP_TIMEOUT_SECONDS = 60


@action(
    "core.purge_results",
    label="Purge old results",
    help={"older_than_days": "Only results created more than this many days ago are deleted.",
          "keep_last": "The newest results of each job that are kept, however old."},
    destructive=True,
    dangerous=True,  # it deletes the results of every domain: system administrators only
    supports_cancel=True,
    # Retention is housekeeping: nightly, at a quiet hour of the schedule's time zone.
    schedule={"type": "calendar", "weekdays": [0, 1, 2, 3, 4, 5, 6], "times": ["03:30"]},
)
def purge_results(ctx, older_than_days: int = 90, keep_last: int = 100) -> str:
    """Delete finished results (with their lines and log) older than ``older_than_days``
    beyond the newest ``keep_last`` of each job; pending and running results are never deleted."""
    if older_than_days < 0 or keep_last < 0:
        raise ValueError("older_than_days and keep_last must be zero or more")
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    ctx.log.info(f"Deleting finished results created before {cutoff:%Y-%m-%d %H:%M %Z}, "
                 f"keeping the newest {keep_last} of each job.")
    deleted: Counter[str] = Counter()
    for job_id in Job.objects.order_by("id").values_list("id", flat=True):
        ctx.check_cancelled()
        doomed = purgeable(job_id, cutoff, keep_last, exclude_id=ctx.result_id)
        if doomed is not None:
            deleted += delete_in_batches(ctx, doomed)
    summary = (f"{deleted[JobResult._meta.label]} result(s) deleted, with {deleted[JobLineResult._meta.label]} "
               f"line result(s) and {deleted[JobLogEntry._meta.label]} log entries")
    ctx.log.info(summary)
    return summary


def purgeable(job_id: int, cutoff: dt.datetime, keep_last: int, exclude_id: int | None = None) -> QuerySet | None:
    """The results of one job that may go, or None when the job has no more than ``keep_last``.

    The newest ``keep_last`` are found through the (job, created_at) index, so
    this costs one indexed look-up per job however big the table is.
    """
    rows = JobResult.objects.filter(job_id=job_id, created_at__lt=cutoff, status__in=TERMINAL)
    if exclude_id is not None:
        rows = rows.exclude(id=exclude_id)  # never the result of the run that is purging
    if keep_last:
        newest = JobResult.objects.filter(job_id=job_id).order_by("-created_at", "-id")
        boundary = newest.values_list("created_at", "id")[keep_last - 1:keep_last].first()
        if boundary is None:
            return None
        at, pk = boundary
        rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
    return rows


def delete_in_batches(ctx, rows: QuerySet, batch_size: int | None = None) -> Counter[str]:
    """Delete ``rows`` (with their line results and log) ``batch_size`` results per transaction."""
    batch_size = batch_size or PURGE_BATCH_SIZE
    deleted: Counter[str] = Counter()
    while True:
        ctx.check_cancelled()
        ids = list(rows.order_by("created_at", "id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            count, per_model = JobResult.objects.filter(id__in=ids, status__in=TERMINAL).delete()
        deleted.update(per_model)
        ctx.log.debug(f"deleted {per_model.get(JobResult._meta.label, 0)} result(s): #{ids[0]}…#{ids[-1]}")
        if not count:  # nothing matched any more (deleted by someone else): do not spin
            return deleted


@action(
    "core.send_email",
    label="Send an e-mail",
    help={"to": "Addresses separated by commas.", "subject": "One line.", "body": "Plain text."},
    idempotent=False,
    external=True,
)
def send_email(ctx, to: str, subject: str, body: str) -> str:
    """Send a plain-text mail through the site's e-mail settings; a refused mail fails the line."""
    addresses = parse_addresses(to)
    if "\n" in subject or "\r" in subject:
        raise ValueError("subject must be on one line")
    ctx.check_cancelled()
    connection = get_connection(timeout=SMTP_TIMEOUT_SECONDS)
    sent = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, addresses, connection=connection).send()
    ctx.log.info(f"mail {subject!r} sent to {', '.join(addresses)}")
    return f"sent to {len(addresses)} recipient(s)" if sent else "the mail was not sent"


def parse_addresses(text: str) -> list[str]:
    """``"a@x.org, b@y.org"`` as a list; ValueError names the first invalid address."""
    addresses = [part.strip() for part in str(text).split(",") if part.strip()]
    if not addresses:
        raise ValueError("to: give at least one e-mail address")
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValueError(f"to: {address!r} is not a valid e-mail address") from None
    return addresses
