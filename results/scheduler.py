"""Scheduling: claim the due schedules and start their runs.

Celery beat is the clock; the database decides. ``JobsScheduler`` (set as
``CELERY_BEAT_SCHEDULER``) calls ``fire_due`` on every tick and sleeps until
the next due slot (at most ``JOBS_SCHEDULER_POLL_SECONDS``, so an edited
schedule takes effect at once). Each due slot is claimed by one conditional
UPDATE of ``next_run_at`` in the same transaction that creates the pending
result, so several beat processes (or beat and the ``fire_schedules`` cron
command) never fire a slot twice, and a beat restart never loses one. Beat
(or the cron command) also runs the reaper's sweep.
"""
from __future__ import annotations

import datetime as dt
import logging
import time

from celery.beat import PersistentScheduler
from celery.utils.log import get_logger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import Min
from django.utils import timezone

from jobs import maintenance
from jobs.models import Schedule
from jobs.text import problems_in_words

from . import backfill, reaper, runat, states
from .dispatch import RunRefused, start_run
from .models import JobResult, Trigger

logger = logging.getLogger(__name__)
beat_logger = get_logger("celery.beat")  # shown by ``celery beat -l info``, like beat's own lines


def due_schedules(now: dt.datetime, limit: int = 500):
    """Uses the partial index on next_run_at: cheap with any number of schedules."""
    return (
        Schedule.objects.filter(next_run_at__isnull=False, next_run_at__lte=now)
        .select_related("job", "job__domain").order_by("next_run_at")[:limit]
    )


def fire_due(now: dt.datetime | None = None) -> list[JobResult]:
    """Fire every due slot once; returns the results created (started or skipped)."""
    now = now or timezone.now()
    fired = []
    for schedule in due_schedules(now):
        result = fire(schedule, now)
        if result is not None:
            fired.append(result)
    return fired + fire_planned(now)


def fire_planned(now: dt.datetime) -> list[JobResult]:
    """Run-at runs (``results.runat``, the same kind of claim) and the next days of backfills."""
    fired = runat.fire_due(now)
    backfill.advance_open()
    return fired


def fire(schedule: Schedule, now: dt.datetime) -> JobResult | None:
    """Claim the schedule's due slot and start (or record the skip of) its run."""
    slot = schedule.next_run_at
    following = schedule.compute_next(after=now)  # past slots are not fired one by one
    missed = (now - slot).total_seconds() > settings.JOBS_SCHEDULE_MISSED_AFTER_SECONDS
    with transaction.atomic():
        claimed = Schedule.objects.filter(pk=schedule.pk, next_run_at=slot).update(
            next_run_at=following, last_run_at=now
        )
        if not claimed:
            return None  # another scheduler fired this slot
        quiet = maintenance.suppression(schedule.job.domain_id, slot)  # a window or the pause: recorded, not run
        if quiet:
            return states.record_skipped(schedule.job, f"Scheduled run suppressed: {quiet}", slot)
        if missed and schedule.catch_up == Schedule.CATCH_UP_SKIP:
            logger.info("schedule %s of %s skipped missed slot %s", schedule.label(), schedule.job.identifier, slot)
            return None
        return start_scheduled_run(schedule, slot, missed)


def start_scheduled_run(schedule: Schedule, slot: dt.datetime, missed: bool) -> JobResult:
    """The run of a claimed slot, with the schedule's parameter values (or the record of why it did not start)."""
    notes = [f"schedule {schedule.name}" if schedule.name else ""]
    if missed:
        notes.append(f"missed slot of {timezone.localtime(slot):%Y-%m-%d %H:%M}, caught up")
    note = ", ".join(n for n in notes if n)
    try:
        return start_run(schedule.job, parameters=schedule.parameters, trigger=Trigger.SCHEDULE, note=note,
                         scheduled_for=slot)
    except RunRefused as exc:
        return states.record_skipped(schedule.job, f"Scheduled run skipped: {exc}", slot)
    except ValidationError as exc:
        problems = problems_in_words(exc)
        return states.record_skipped(schedule.job, f"Scheduled run of schedule {schedule.label()} not started: "
                                     f"{problems}", slot, failed=True)


def seconds_until_next_due(now: dt.datetime | None = None) -> float | None:
    now = now or timezone.now()
    upcoming = Schedule.objects.filter(next_run_at__isnull=False).aggregate(first=Min("next_run_at"))["first"]
    until_schedule = None if upcoming is None else max(0.0, (upcoming - now).total_seconds())
    waits = [wait for wait in (until_schedule, runat.seconds_until_next(now)) if wait is not None]
    return min(waits, default=None)


class JobsScheduler(PersistentScheduler):
    """Celery beat's scheduler: its own entries, the jobs' schedules and the reaper's sweep.

    The sweep runs here rather than as a task: a task would wait in the queue
    behind the very runs whose worker was lost, ending them late.
    """

    next_sweep = 0.0

    def tick(self, *args, **kwargs) -> float:
        wait = super().tick(*args, **kwargs)
        poll = settings.JOBS_SCHEDULER_POLL_SECONDS
        try:
            fire_due()
            until_next = seconds_until_next_due()
            until_sweep = self.sweep_if_due()
        except DatabaseError:
            logger.exception("could not read the schedules; trying again")
            close_old_connections()
            return poll
        candidates = [wait if wait is not None else poll, poll, until_sweep]
        if until_next is not None:
            candidates.append(until_next)
        return max(0.0, min(candidates))

    def sweep_if_due(self) -> float:
        """Run the reaper's sweep every JOBS_REAPER_INTERVAL_SECONDS; returns the seconds until the next."""
        now = time.monotonic()
        if not self.next_sweep:
            beat_logger.info("Jobs scheduler ticking: schedules from the database, reaper sweep every %g s",
                             settings.JOBS_REAPER_INTERVAL_SECONDS)
        if now >= self.next_sweep:
            self.next_sweep = now + settings.JOBS_REAPER_INTERVAL_SECONDS
            try:
                reaper.sweep()
            except Exception:  # beat must outlive a database or broker outage; the next sweep tries again
                logger.exception("the reaper's sweep failed")
                close_old_connections()
        return self.next_sweep - now
