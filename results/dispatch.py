"""Starting runs: validate, create the pending result, publish after commit.

Every way of running a job (admin, API, ``runjob``, application code) comes
through ``start_run``; application code may call it directly::

    from results.dispatch import start_run
    start_run(Job.objects.get(identifier="import-bank-data"), parameters={"day": "2026-11-20"},
              trigger=Trigger.APPLICATION)
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from jobs.models import Job

from .models import JobResult, Trigger


class RunRefused(Exception):
    """The job cannot run now; the message says why."""


def start_run(
    job: Job,
    *,
    parameters: dict | None = None,
    user: AbstractBaseUser | None = None,
    trigger: str = Trigger.MANUAL,
) -> JobResult:
    """Create the pending result of ``job`` and publish its task once committed.

    Raises ``RunRefused`` for an inactive job and ``ValidationError`` (a dict
    naming each bad parameter) for invalid run-time parameters; neither creates
    a result.
    """
    if not job.active:
        raise RunRefused(f"The job {job.identifier} is inactive.")
    values = job.clean_run_parameters(parameters)
    with transaction.atomic():
        result = JobResult.objects.create(
            job=job,
            trigger=trigger,
            requested_by=user if user is not None and user.is_authenticated else None,
            parameters=values,
            queue=job.queue,
            lines_total=job.lines.filter(active=True).count(),
        )
        transaction.on_commit(lambda: publish(result))
    return result


def publish(result: JobResult) -> None:
    """Send the run's message to its queue (the job's, or the default one)."""
    from .tasks import run_result

    options = {"queue": result.queue} if result.queue else {}
    run_result.apply_async(args=[result.id], **options)


__all__ = ["RunRefused", "ValidationError", "publish", "start_run"]
