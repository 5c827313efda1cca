"""What follows the end of a run, whoever ended it (runner, watchdog, reaper)."""
from __future__ import annotations

from jobs.models import Job

from . import dispatch, reports
from .models import Status


def run_ended(result_id: int, status: str | None = None, *, job: Job | None = None,
              worker_lost: bool = False) -> None:
    """Queue the e-mail report and, after a failure, the retry the job asks for.

    Call it only when the ending took effect (the state machine's transition
    returned True), so a run is reported and retried once.
    """
    reports.queue_report(result_id, status, job=job)
    if status in (None, Status.ERROR):
        dispatch.retry_if_due(result_id, worker_lost=worker_lost)
