"""The reaper: no run stays ``running`` once its worker is gone.

It also publishes again the message of a result left pending too long (the
broker lost it, or no worker ever took it).

A running result's heartbeat is beaten every JOBS_HEARTBEAT_SECONDS, with the other runs
of its worker process in one UPDATE (``results.kill_watch``).
Celery beat (``results.scheduler``) runs ``sweep`` every 10 s; a result whose heartbeat is older than
JOBS_WORKER_LOST_SECONDS is ended through ``states.lose``. When a worker
starts, ``sweep_host`` also ends at once the runs of this host whose process
is gone (a worker restarted after a crash need not wait for the timeout).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import aftermath, dispatch, states
from .models import JobResult, Status

logger = logging.getLogger(__name__)


def sweep() -> list[int]:
    stale_before = timezone.now() - dt.timedelta(seconds=settings.JOBS_WORKER_LOST_SECONDS)
    candidates = JobResult.objects.filter(status=Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True)
    ).values_list("id", "job__idempotent")
    ended = [
        result_id for result_id, idempotent in candidates
        if states.lose(result_id, stale_before=stale_before, reason=lost_reason(": no heartbeat", idempotent))
    ]
    if ended:
        logger.warning("reaper ended lost runs %s", ended)
    for result_id in ended:
        aftermath.run_ended(result_id, worker_lost=True)
    republished = dispatch.republish_lost_messages(dt.timedelta(seconds=settings.JOBS_REPUBLISH_AFTER_SECONDS))
    if republished:
        logger.warning("reaper published again the lost messages of pending results %s", republished)
    return ended


def lost_reason(why: str, idempotent: bool) -> str:
    """Said in the same update that ends the run, so nobody sees a half-written message."""
    return why if idempotent else f"{why}; not retried because the job is not idempotent"


def sweep_host(hostname: str | None = None) -> list[int]:
    hostname = hostname or socket.gethostname()
    ended = []
    running_here = JobResult.objects.filter(status=Status.RUNNING, worker__startswith=f"{hostname}:")
    for result_id, worker, idempotent in running_here.values_list("id", "worker", "job__idempotent"):
        pid = int(worker.rsplit(":", 1)[1])
        reason = lost_reason(f": process {pid} on {hostname} is gone", idempotent)
        if not _process_alive(pid) and states.lose(result_id, reason=reason):
            ended.append(result_id)
            aftermath.run_ended(result_id, worker_lost=True)
    return ended


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
