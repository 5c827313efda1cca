"""Backfill: one run of a job per day of a date range, in date order, N at a time, with one Kill for all.

A job with a ``date`` run-time parameter is backfilled by giving the parameter,
the first and the last day, how many runs may go at once and the values of
its other parameters (every day's values are validated when the backfill is
created, like a Run). A ``BackfillDay`` per day links the day to its run.

``advance`` starts the next days while fewer than ``parallel`` runs of the
backfill are pending or running; it is called when the backfill is created
and on every tick of beat (``results.scheduler``), so a day starts within a
tick of the previous one ending. ``kill`` stops the whole backfill: the runs
going are killed and the days not started never start. Both take the
backfill's row lock first, so "how many are going, which day is next, is it
killed" and the starts that follow are one step: two beats never start a day
twice nor go beyond ``parallel``, and no day starts after the kill commits.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from jobs import access
from jobs.models import Job
from jobs.text import problems_in_words

from . import states
from .dispatch import RunRefused, start_run
from .models import ACTIVE, FAILED, TERMINAL, JobResult, Trigger

logger = logging.getLogger(__name__)

MAX_DAYS = 3660  # ten years of days
MAX_PARALLEL = 20


class Backfill(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="backfills")
    parameter = models.CharField(max_length=100, help_text="The job's date parameter that takes each day.")
    first_day = models.DateField()
    last_day = models.DateField()
    parallel = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_PARALLEL)],
        help_text="How many days may run at once (1: one after the other).")
    parameters = models.JSONField(default=dict, blank=True, help_text="The values of the job's other parameters.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    killed_at = models.DateTimeField(null=True, blank=True)
    killed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        app_label = "results"
        ordering = ["-id"]
        indexes = [models.Index(fields=["id"], name="backfill_open",
                                condition=models.Q(finished_at__isnull=True, killed_at__isnull=True))]

    def __str__(self) -> str:
        return f"Backfill of {self.job.identifier} {self.first_day} … {self.last_day}"

    @property
    def is_open(self) -> bool:
        return self.finished_at is None and self.killed_at is None

    def progress(self) -> dict:
        """Days by state: done (ended), going (pending or running), waiting (not started), and the total."""
        statuses = list(self.days.values_list("result__status", flat=True))
        done = sum(1 for status in statuses if status in TERMINAL)
        going = sum(1 for status in statuses if status in ACTIVE)
        failed = sum(1 for status in statuses if status in FAILED)
        return {"total": len(statuses), "done": done, "going": going, "failed": failed,
                "waiting": len(statuses) - done - going}

    @property
    def state(self) -> str:
        if self.killed_at:
            return "killed"
        return "finished" if self.finished_at else "running"


class BackfillDay(models.Model):
    backfill = models.ForeignKey(Backfill, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    result = models.OneToOneField(JobResult, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="backfill_day")

    class Meta:
        app_label = "results"
        ordering = ["backfill", "day"]
        constraints = [models.UniqueConstraint(fields=["backfill", "day"], name="one_backfill_day")]

    def __str__(self) -> str:
        return f"{self.backfill_id}: {self.day}"


def date_parameters(job: Job) -> list[str]:
    return [spec["name"] for spec in job.params or [] if spec.get("type") == "date"]


def create(job: Job, *, parameter: str, first_day: dt.date, last_day: dt.date, parallel: int = 1,
           parameters: dict | None = None, user=None) -> Backfill:
    """Validate every day's values, store the backfill and its days, and start the first ones.

    Raises ValidationError naming the field and RunRefused (inactive job); neither stores anything.
    """
    if not job.active:
        raise RunRefused(f"The job {job.identifier} is inactive.")
    errors = _range_errors(job, parameter, first_day, last_day, parallel)
    if errors:
        raise ValidationError(errors)
    others = dict(parameters or {})
    others.pop(parameter, None)
    days = [first_day + dt.timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    for day in (days[0], days[-1]):  # the values differ only by the day: the first and last check them all
        job.clean_run_parameters({**others, parameter: day.isoformat()})
    stored = job.clean_run_parameters({**others, parameter: days[0].isoformat()})
    stored.pop(parameter, None)
    with transaction.atomic():
        backfill = Backfill.objects.create(job=job, parameter=parameter, first_day=first_day, last_day=last_day,
                                           parallel=parallel, parameters=stored,
                                           created_by=user if user is not None and user.is_authenticated else None)
        BackfillDay.objects.bulk_create([BackfillDay(backfill=backfill, day=day) for day in days])
    advance(backfill.pk)
    return backfill


def _range_errors(job: Job, parameter: str, first_day, last_day, parallel: int) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if job.domain_id is None and job.execution == Job.PER_DOMAIN:
        errors["job"] = [f"{job.identifier} runs once per domain: a backfill follows one run a day; run it by domain"]
    if parameter not in date_parameters(job):
        errors["parameter"] = [f"must be a date parameter of {job.identifier} "
                               f"({', '.join(date_parameters(job)) or 'it has none'})"]
    if first_day and last_day and last_day < first_day:
        errors["last_day"] = ["must not be before the first day"]
    elif first_day and last_day and (last_day - first_day).days >= MAX_DAYS:
        errors["last_day"] = [f"a backfill covers at most {MAX_DAYS} days"]
    if not isinstance(parallel, int) or not 1 <= parallel <= MAX_PARALLEL:
        errors["parallel"] = [f"must be a whole number from 1 to {MAX_PARALLEL}"]
    elif parallel > 1 and job.concurrency == Job.ONE_AT_A_TIME:
        errors["parallel"] = ["this job runs one at a time: use 1, or allow parallel runs on the job"]
    return errors


def advance(backfill_id: int) -> list[JobResult]:
    """Start the next days while fewer than ``parallel`` are going; close the backfill once every day ended."""
    with transaction.atomic():
        backfill = (Backfill.objects.select_for_update(of=("self",)).select_related("job", "job__domain", "created_by")
                    .filter(pk=backfill_id, finished_at__isnull=True, killed_at__isnull=True).first())
        if backfill is None:
            return []
        refusal = _stop_reason(backfill)
        if refusal:
            _stop(backfill, refusal)
            return []
        days = backfill.days.select_related("result").order_by("day")
        going = days.filter(result__status__in=ACTIVE).count()
        waiting = list(days.filter(result__isnull=True)[:max(0, backfill.parallel - going)])
        if not waiting and not going:
            Backfill.objects.filter(pk=backfill.pk).update(finished_at=timezone.now())
            return []
        started = []
        for day in waiting:
            result = _start_day(backfill, day)
            if result is None:
                break  # refused for now (another run of a one-at-a-time job): tried again at the next tick
            started.append(result)
        return started


def _stop_reason(backfill: Backfill) -> str | None:
    """Why the next days may not start any more: they run as their author, who must still be allowed to."""
    job, user = backfill.job, backfill.created_by
    if not job.active:
        return f"the job {job.identifier} is inactive"
    if user is not None and not access.can_run(user, job):
        return f"{user.get_username()} may no longer run this job"
    return None


def _stop(backfill: Backfill, reason: str) -> None:
    """End a backfill whose days may not start (inside ``advance``'s lock): its waiting days never start, said once
    on the job; its going runs finish."""
    if _end_open(backfill.pk, None):
        states.record_skipped(backfill.job, f"Backfill #{backfill.pk} stopped: {reason}.", failed=True,
                              trigger=Trigger.BACKFILL)


def _end_open(backfill_id: int, user) -> bool:
    """Mark an open backfill killed (by ``user``; None: stopped for a reason of its own); False if it was over
    already. One conditional UPDATE: a kill and a stop at the same moment end it once."""
    return bool(Backfill.objects.filter(pk=backfill_id, killed_at__isnull=True, finished_at__isnull=True).update(
        killed_at=timezone.now(), killed_by=user if user is not None and user.is_authenticated else None))


def _start_day(backfill: Backfill, day: BackfillDay) -> JobResult | None:
    values = {**backfill.parameters, backfill.parameter: day.day.isoformat()}
    try:
        with transaction.atomic():
            result = start_run(backfill.job, parameters=values, user=backfill.created_by, trigger=Trigger.BACKFILL,
                               note=f"Backfill #{backfill.pk}: {day.day.isoformat()}")
    except RunRefused as exc:
        logger.info("backfill %s: %s not started yet: %s", backfill.pk, day.day, exc)
        return None
    except ValidationError as exc:  # the job's parameters changed since the backfill was created
        problems = problems_in_words(exc)
        result = states.record_skipped(backfill.job, f"Backfill #{backfill.pk} {day.day}: not started: {problems}",
                                       failed=True, trigger=Trigger.BACKFILL)
    BackfillDay.objects.filter(pk=day.pk).update(result=result)
    return result


def kill(backfill_id: int, user) -> bool:
    """Kill the whole backfill: its going runs are killed, its waiting days never start. False if already over."""
    with transaction.atomic():
        backfill = Backfill.objects.select_for_update().filter(pk=backfill_id).first()
        if backfill is None:
            return False
        if not _end_open(backfill_id, user):
            return False
        going = backfill.days.filter(result__status__in=ACTIVE).values_list("result_id", flat=True)
        for result_id in list(going):
            with contextlib.suppress(states.NotKillable):  # it ended meanwhile
                states.request_kill(result_id, user)
        return True


def advance_open() -> int:
    """Beat's tick: advance every open backfill; returns how many runs started."""
    started = 0
    for backfill_id in Backfill.objects.filter(finished_at__isnull=True, killed_at__isnull=True).values_list(
            "id", flat=True)[:100]:
        started += len(advance(backfill_id))
    return started
