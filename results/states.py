"""The state machine of a run: every change of ``JobResult.status`` happens here.

    pending --claim--> running --finish--> success | warning | info | error | killed
    pending --kill---> killed
    running --lose---> error ("worker lost")          (reaper)

An error or warning run may then be acknowledged once (``acknowledge``: who and when; its status stays).

Each transition is one conditional UPDATE on the old status, so two processes
racing (two deliveries of one message, a kill and a natural end, the reaper and
a slow worker) cannot both win, and a terminal status never changes again.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from jobs.models import Job
from jobs.text import storable

from . import statements
from .models import NEEDS_ATTENTION, TERMINAL, JobLineResult, JobResult, Status

# The PostgreSQL channel a kill is announced on (payload: the result's id); see results.kill_watch.
KILL_CHANNEL = "jobs_kill"


class NotKillable(Exception):
    """The result has already finished."""


@dataclass(frozen=True)
class Claim:
    """What the runner needs of the result it claimed, read by the claim itself."""

    result_id: int
    job_id: int
    job_revision: uuid.UUID
    domain_slug: str | None
    parameters: dict
    message: str
    domain_id: int | None
    run_as_id: int | None  # whose permissions the run has (``JobResult.run_as``); None: nobody's


CLAIM_SQL = """
    UPDATE results_jobresult SET status = %s, started_at = %s, heartbeat_at = %s, worker = %s
    WHERE id = %s AND status = %s AND kill_requested_at IS NULL
    RETURNING job_id,
              (SELECT revision FROM jobs_job WHERE jobs_job.id = results_jobresult.job_id),
              (SELECT slug FROM jobs_domain WHERE jobs_domain.id = results_jobresult.domain_id),
              parameters, message, domain_id, run_as_id
"""


def claim(result_id: int, worker: str) -> Claim | None:
    """pending -> running for this worker; None if the result is not (or no longer) pending.

    Prevents a second delivery of the same message (or a second worker) from
    running the result again, and a killed pending result from ever starting.
    One statement (UPDATE ... RETURNING) both claims and reads, so a run
    starts after a single round trip to the database.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with statements.hot_cursor() as cursor:
        cursor.execute(CLAIM_SQL, [Status.RUNNING, now, now, worker, result_id, Status.PENDING])
        row = cursor.fetchone()
    if row is None:
        return None
    job_id, revision, domain_slug, parameters, message, domain_id, run_as_id = row
    parameters_field = JobResult._meta.get_field("parameters")
    revision_field = Job._meta.get_field("revision")
    return Claim(result_id=result_id, job_id=job_id, job_revision=revision_field.to_python(revision),
                 domain_slug=domain_slug, domain_id=domain_id, run_as_id=run_as_id,
                 parameters=parameters_field.from_db_value(parameters, None, connection) or {}, message=message)


def finish(result_id: int, status: str, message: str, *, cut_short: bool = False,
           also: dict | None = None) -> bool:
    """running -> a terminal status; False if something else ended it first.

    Prevents a run that was already ended (reaped as lost, killed by force)
    from being overwritten by its own late ending. ``cut_short`` also ends the
    line results still marked running (the runner did not get to end them).
    ``also``: other fields of the result written in the same statement.
    """
    if status not in TERMINAL:
        raise ValueError(f"{status!r} is not a terminal status")
    values = {"status": status, "message": storable(message), "finished_at": timezone.now(), **(also or {})}
    ended = bool(statements.update(JobResult, values, id=result_id, status=Status.RUNNING))
    if ended and cut_short:
        end_running_lines(result_id, status)
    return ended


def end_running_lines(result_id: int, status: str) -> None:
    """A line still marked running when its run ends was cut short with it."""
    line_status = Status.KILLED if status == Status.KILLED else Status.ERROR
    JobLineResult.objects.filter(result_id=result_id, status=Status.RUNNING).update(
        status=line_status, message="Ended with the run.", finished_at=timezone.now()
    )


@dataclass(frozen=True)
class KillOutcome:
    status: str  # "killed" when it was pending, "requested" when a worker must stop it
    result_id: int


def request_kill(result_id: int, user: AbstractBaseUser | None) -> KillOutcome:
    """Record a kill in the database, where every worker on every host sees it.

    A pending result becomes ``killed`` at once (the claim refuses it from then
    on); a running one gets ``kill_requested_at`` and its runner stops it. On
    PostgreSQL the request is announced (NOTIFY) in the same transaction, so
    the run's worker hears of it when, and only when, it is committed; the
    worker's slow poll finds it anyway if the announcement is lost.
    """
    now = timezone.now()
    who = _who(user)
    user_id = user.pk if user is not None else None
    killed_pending = JobResult.objects.filter(id=result_id, status=Status.PENDING).update(
        status=Status.KILLED, kill_requested_at=now, kill_requested_by_id=user_id, finished_at=now,
        message=f"Killed by {who} before it started.",
    )
    if killed_pending:
        return KillOutcome("killed", result_id)
    with transaction.atomic():
        requested = JobResult.objects.filter(
            id=result_id, status=Status.RUNNING, kill_requested_at__isnull=True
        ).update(kill_requested_at=now, kill_requested_by_id=user_id)
        if requested:
            _announce_kill(result_id)
    if requested:
        return KillOutcome("requested", result_id)
    if JobResult.objects.filter(id=result_id, status=Status.RUNNING).exists():
        return KillOutcome("requested", result_id)  # asked for already; still stopping
    raise NotKillable(f"result {result_id} has already finished")


def kill_message(result: JobResult) -> str:
    at = result.kill_requested_at
    when = timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S %Z") if at else "an unknown time"
    return f"Killed by {_who(result.kill_requested_by)} at {when}."


def _announce_kill(result_id: int) -> None:
    """NOTIFY the listening workers (results.kill_watch); sent by PostgreSQL at commit, dropped on rollback."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [KILL_CHANNEL, str(result_id)])


def beat(result_ids: Collection[int]) -> dict[int, bool]:
    """Refresh the heartbeats of these runs (all of one worker process's) in one statement.

    Returns ``{id: kill requested}`` for those still running: the same round trip is the
    process's safety-net poll for kills (results.kill_watch). A run missing from it was
    ended elsewhere (reaped, or stopped by force).
    """
    ids = list(result_ids)
    if not ids:
        return {}
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE results_jobresult SET heartbeat_at = %s WHERE id IN ({placeholders}) AND status = %s "  # noqa: S608
            "RETURNING id, kill_requested_at", [now, *ids, Status.RUNNING])
        return {result_id: kill_requested_at is not None for result_id, kill_requested_at in cursor.fetchall()}


def kill_requests(result_ids: Collection[int]) -> list[JobResult]:
    """Those of these results whose kill was asked for, with who asked (for ``kill_message``): one query."""
    return list(JobResult.objects.filter(id__in=list(result_ids), kill_requested_at__isnull=False)
                .select_related("kill_requested_by").only("kill_requested_at", "kill_requested_by__username"))


def lose(result_id: int, *, stale_before: dt.datetime | None = None, reason: str = "") -> bool:
    """running -> error "worker lost" (or killed, when a kill had been asked for).

    With ``stale_before``, only while the heartbeat is still older than that:
    a worker that beats again, or finishes, at the same moment wins instead.
    """
    rows = JobResult.objects.filter(id=result_id, status=Status.RUNNING)
    if stale_before is not None:
        rows = rows.filter(Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True))
    kill_requested = rows.filter(kill_requested_at__isnull=False)
    now = timezone.now()
    if kill_requested.update(status=Status.KILLED, finished_at=now, message=f"Killed; its worker was gone{reason}."):
        end_running_lines(result_id, Status.KILLED)
        return True
    if rows.update(status=Status.ERROR, finished_at=now, message=f"Worker lost{reason}."):
        end_running_lines(result_id, Status.ERROR)
        return True
    return False


def acknowledge(result_id: int, user: AbstractBaseUser) -> bool:
    """Mark a failed or warning run as seen by ``user``; False if it is not one or was acknowledged already.

    Two operators acknowledging the same run at once: the first UPDATE wins and keeps its name and time,
    the second changes nothing (and is told who did it). The status is not touched: it stays as the run ended.
    """
    return bool(JobResult.objects.filter(
        id=result_id, status__in=NEEDS_ATTENTION, acknowledged_at__isnull=True,
    ).update(acknowledged_at=timezone.now(), acknowledged_by_id=user.pk))


def record_skipped(job, message: str, slot: dt.datetime | None = None, *, failed: bool = False,
                   trigger: str = "schedule") -> JobResult:
    """A run that was due but could not start (or was suppressed): recorded as finished, never silent."""
    return JobResult.objects.create(
        job=job, status=Status.ERROR if failed else Status.INFO, message=message, trigger=trigger,
        finished_at=timezone.now(), scheduled_for=slot,
    )


def _who(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else "the system"
