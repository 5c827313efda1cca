"""The reaper: no run stays ``running`` once its worker is gone.

A running result's watchdog beats its heartbeat every JOBS_HEARTBEAT_SECONDS.
Celery beat runs ``sweep`` every 10 s; a result whose heartbeat is older than
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

from . import states
from .models import JobResult, Status

logger = logging.getLogger(__name__)


def sweep() -> list[int]:
    stale_before = timezone.now() - dt.timedelta(seconds=settings.JOBS_WORKER_LOST_SECONDS)
    candidates = JobResult.objects.filter(status=Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True)
    ).values_list("id", flat=True)
    ended = [rid for rid in candidates if states.lose(rid, stale_before=stale_before, reason=": no heartbeat")]
    if ended:
        logger.warning("reaper ended lost runs %s", ended)
    return ended


def sweep_host(hostname: str | None = None) -> list[int]:
    hostname = hostname or socket.gethostname()
    ended = []
    running_here = JobResult.objects.filter(status=Status.RUNNING, worker__startswith=f"{hostname}:")
    for result_id, worker in running_here.values_list("id", "worker"):
        pid = int(worker.rsplit(":", 1)[1])
        if not _process_alive(pid) and states.lose(result_id, reason=f": process {pid} on {hostname} is gone"):
            ended.append(result_id)
    return ended


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
