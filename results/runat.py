"""Run at: a one-off run of a job at a given time, stored until beat fires it.

A ``PlannedRun`` is created by the admin's Run dialog ("later at…"), the API
(``run_at``) or ``runjob --at``, with its parameters validated and typed then,
like a Run. It shows as a pending future run on the job page and in the
"Planned runs" list, where those who may run the job cancel it. Beat fires it
through the schedules' mechanism: one conditional UPDATE (``pending`` ->
``fired``) claims it in the transaction that creates the result, so several
beats (or beat and the ``fire_schedules`` command) never fire it twice, and a
restart loses none. Inside a maintenance window, or while schedules are paused,
it is not run: the run-at is recorded on the job as suppressed (like a
schedule's slot), with the window's name.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from jobs import access, maintenance
from jobs.models import Job
from jobs.text import problems_in_words

from . import states
from .dispatch import RunRefused, start_run
from .models import JobResult, Trigger

logger = logging.getLogger(__name__)


class PlannedRunQuerySet(models.QuerySet):
    def pending(self) -> PlannedRunQuerySet:
        return self.filter(state=PlannedRun.PENDING)

    def due(self, now: dt.datetime) -> PlannedRunQuerySet:
        return self.pending().filter(run_at__lte=now).select_related("job", "job__domain", "requested_by")


class PlannedRun(models.Model):
    PENDING, FIRED, SUPPRESSED, CANCELLED = "pending", "fired", "suppressed", "cancelled"
    STATES = [(PENDING, "Pending"), (FIRED, "Fired"), (SUPPRESSED, "Suppressed"), (CANCELLED, "Cancelled")]

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="planned_runs")
    run_at = models.DateTimeField()
    parameters = models.JSONField(default=dict, blank=True, help_text="Run-time parameters, typed when planned.")
    state = models.CharField(max_length=16, choices=STATES, default=PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL,
                               help_text="Where it was planned: admin, API or command line.")
    created_at = models.DateTimeField(auto_now_add=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    result = models.ForeignKey(JobResult, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    objects = PlannedRunQuerySet.as_manager()

    class Meta:
        app_label = "results"
        ordering = ["run_at", "id"]
        indexes = [models.Index(fields=["run_at"], name="planned_run_due", condition=models.Q(state="pending"))]

    def __str__(self) -> str:
        return f"{self.job.identifier} at {timezone.localtime(self.run_at):%Y-%m-%d %H:%M}"

    @property
    def is_cancellable(self) -> bool:
        return self.state == self.PENDING

    def cancel(self, user) -> bool:
        """pending -> cancelled; False if beat fired it first (or it was cancelled already).

        One conditional UPDATE on the state: a cancel and beat's claim at the same moment cannot both win.
        """
        return bool(PlannedRun.objects.filter(pk=self.pk, state=self.PENDING).update(
            state=self.CANCELLED, cancelled_by=user, fired_at=timezone.now()))


def plan_run(job: Job, run_at: dt.datetime, *, parameters: dict | None = None, user=None,
             trigger: str = Trigger.MANUAL) -> PlannedRun:
    """Store a run of ``job`` at ``run_at``; raises ValidationError naming the field (``run_at`` or a parameter)
    and RunRefused (inactive job), like ``start_run``, and creates nothing then."""
    if not job.active:
        raise RunRefused(f"The job {job.identifier} is inactive.")
    if timezone.is_naive(run_at):
        raise ValidationError({"run_at": ["give a time zone (e.g. 2026-12-03T18:00:00+01:00 or …Z)"]})
    if run_at <= timezone.now():
        raise ValidationError({"run_at": ["must be in the future"]})
    if run_at > timezone.now() + dt.timedelta(days=366):
        raise ValidationError({"run_at": ["must be within a year"]})
    values = job.clean_run_parameters(parameters)
    requested_by = user if user is not None and user.is_authenticated else None
    return PlannedRun.objects.create(job=job, run_at=run_at, parameters=values, requested_by=requested_by,
                                     trigger=trigger)


def fire_due(now: dt.datetime | None = None) -> list[JobResult]:
    """Fire every due planned run once (beat's tick); returns the results created (started or suppressed)."""
    now = now or timezone.now()
    fired = []
    for planned in PlannedRun.objects.due(now)[:500]:
        result = fire(planned, now)
        if result is not None:
            fired.append(result)
    return fired


def fire(planned: PlannedRun, now: dt.datetime) -> JobResult | None:
    """Claim the planned run and start it (or record why it did not start), in one transaction.

    The claim is one conditional UPDATE (pending -> fired): of several beats, and of a beat and a cancel,
    exactly one wins; the loser sees 0 rows and does nothing.
    """
    job = planned.job
    with transaction.atomic():
        quiet = maintenance.suppression(job.domain_id, planned.run_at)
        claimed = PlannedRun.objects.filter(pk=planned.pk, state=PlannedRun.PENDING).update(
            state=PlannedRun.SUPPRESSED if quiet else PlannedRun.FIRED, fired_at=now)
        if not claimed:
            return None
        result = _start(planned, job, quiet)
        PlannedRun.objects.filter(pk=planned.pk).update(result=result)
        return result


def _start(planned: PlannedRun, job: Job, quiet: str | None) -> JobResult:
    planned_at = planned.run_at
    if quiet:
        return states.record_skipped(job, f"Planned run not started: {quiet}", planned_at, trigger=Trigger.RUN_AT)
    user = planned.requested_by
    if user is not None and not access.can_run(user, job):
        return states.record_skipped(job, f"Planned run not started: {user.get_username()} may no longer run this job",
                                     planned_at, failed=True, trigger=Trigger.RUN_AT)
    try:
        return start_run(job, parameters=planned.parameters, user=user, trigger=Trigger.RUN_AT,
                         note=f"Planned for {timezone.localtime(planned_at):%Y-%m-%d %H:%M}", scheduled_for=planned_at)
    except RunRefused as exc:
        return states.record_skipped(job, f"Planned run skipped: {exc}", planned_at, trigger=Trigger.RUN_AT)
    except ValidationError as exc:
        problems = problems_in_words(exc)
        return states.record_skipped(job, f"Planned run not started: {problems}", planned_at, failed=True,
                                     trigger=Trigger.RUN_AT)


def seconds_until_next(now: dt.datetime | None = None) -> float | None:
    now = now or timezone.now()
    first = PlannedRun.objects.pending().order_by("run_at").values_list("run_at", flat=True).first()
    return None if first is None else max(0.0, (first - now).total_seconds())
