"""Quiet periods: maintenance windows and the global "pause all schedules" switch.

This module owns both definitions and the one question the scheduler asks
(``suppression``: why must a slot of this job at this instant not fire?).
``results.scheduler`` asks it for every claimed schedule slot and every
run-at run, and records the suppressed slot on the job with the answer.

A window is global (``domain`` empty: system administrators) or a domain's
(its administrators). It is one-off (``starts_at`` … ``ends_at``), weekly
(days of the week and a time range, which may cross midnight) or cron (a
five-field cron expression and a duration), in its own time zone. Wall times
follow ``jobs.scheduling.localize`` (a time skipped by daylight saving is the
next valid minute; a repeated one is its first occurrence).

A global job obeys the global windows only; a domain's job obeys the global
windows and its domain's.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from .models import Domain, _site_time_zone
from .scheduling import WEEKDAYS, PlanError, localize, zone

UTC = dt.UTC
MAX_OCCURRENCES = 1000  # per window and query: a calendar week of a cron every 10 minutes


class MaintenanceWindowQuerySet(models.QuerySet):
    def visible_to(self, user) -> MaintenanceWindowQuerySet:
        """What ``user`` reads: everything for a system administrator; for a member the global windows (their
        jobs obey them) and their domains'; nothing for anyone else."""
        from . import access

        if access.is_system_admin(user):
            return self
        if not access.is_member(user):
            return self.none()
        return self.filter(Q(domain__isnull=True) | Q(domain__in=access.visible_domains(user)))

    def for_domain(self, domain_id: int | None) -> MaintenanceWindowQuerySet:
        """The windows a job of this domain obeys: the global ones and its domain's."""
        windows = self.filter(active=True)
        if domain_id is None:
            return windows.filter(domain__isnull=True)
        return windows.filter(Q(domain__isnull=True) | Q(domain_id=domain_id))


class MaintenanceWindow(models.Model):
    """A period during which schedules (and run-at runs) do not fire, and Run warns."""

    ONE_OFF, WEEKLY, CRON = "once", "weekly", "cron"
    KINDS = [(ONE_OFF, "One-off: from a start to an end"),
             (WEEKLY, "Weekly: days of the week and a time range"),
             (CRON, "Cron: a five-field cron expression and a duration")]

    name = models.CharField(max_length=200)
    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.CASCADE, related_name="maintenance_windows",
        help_text="Empty: a global window, for every job (system administrators only).",
    )
    active = models.BooleanField(default=True)
    kind = models.CharField(max_length=8, choices=KINDS, default=ONE_OFF)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="One-off: the start.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="One-off: the end.")
    weekdays = models.JSONField(default=list, blank=True, help_text="Weekly: 0 = Monday … 6 = Sunday")
    start_time = models.TimeField(null=True, blank=True, help_text="Weekly: from (wall time).")
    end_time = models.TimeField(null=True, blank=True,
                                help_text="Weekly: until (wall time; earlier than the start: the next day).")
    cron = models.CharField(max_length=100, blank=True, help_text="Cron: when it starts, e.g. 0 2 * * 0")
    duration_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="Cron: how long it lasts, in minutes.",
    )
    timezone = models.CharField(max_length=64, default=_site_time_zone)
    note = models.TextField(blank=True, help_text="What happens during it; shown with the suppressed runs.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)

    objects = MaintenanceWindowQuerySet.as_manager()

    class Meta:
        app_label = "jobs"
        ordering = ["name"]

    def __str__(self) -> str:
        scope = self.domain.slug if self.domain_id else "global"
        return f"{self.name} ({scope})"

    def clean(self) -> None:
        try:
            zone(self.timezone)
        except PlanError as exc:
            raise ValidationError({"timezone": str(exc).partition(": ")[2]}) from exc
        problems = getattr(self, f"_{self.kind}_problems", lambda: {})()
        if problems:
            raise ValidationError(problems)

    def _once_problems(self) -> dict[str, str]:
        if self.starts_at is None or self.ends_at is None:
            return {"starts_at": "A one-off window needs a start and an end."}
        if self.ends_at <= self.starts_at:
            return {"ends_at": "must be after the start"}
        return {}

    def _weekly_problems(self) -> dict[str, str]:
        days = self.weekdays or []
        if not isinstance(days, list) or not days or any(day not in range(7) for day in days):
            return {"weekdays": "choose at least one day of the week (0 = Monday … 6 = Sunday)"}
        if self.start_time is None or self.end_time is None:
            return {"start_time": "A weekly window needs a start time and an end time."}
        if self.start_time == self.end_time:
            return {"end_time": "must differ from the start time"}
        return {}

    def _cron_problems(self) -> dict[str, str]:
        if not self.cron or len(self.cron.split()) != 5 or not croniter.is_valid(self.cron):
            return {"cron": f"{self.cron!r} is not a valid five-field cron expression"}
        if not self.duration_minutes:
            return {"duration_minutes": "A cron window needs a duration in minutes."}
        return {}

    # --- when it is on -------------------------------------------------------------------------------------
    def occurrences(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """The periods (UTC, half-open) of this window that overlap ``[start, end)``, in order."""
        periods = {self.ONE_OFF: self._one_off_periods, self.WEEKLY: self._weekly_periods,
                   self.CRON: self._cron_periods}[self.kind](start, end)
        return [(s, e) for s, e in periods if s < end and e > start]

    def covers(self, instant: dt.datetime) -> bool:
        return bool(self.occurrences(instant, instant + dt.timedelta(microseconds=1)))

    def _one_off_periods(self, start, end):
        return [(self.starts_at, self.ends_at)] if self.starts_at and self.ends_at else []

    def _weekly_periods(self, start, end):
        tz = zone(self.timezone)
        day = start.astimezone(tz).date() - dt.timedelta(days=1)  # yesterday's range may cross midnight
        last = end.astimezone(tz).date()
        days = set(self.weekdays or [])
        periods = []
        while day <= last and len(periods) < MAX_OCCURRENCES:
            if day.weekday() in days:
                begins = localize(dt.datetime.combine(day, self.start_time), tz)
                end_day = day + dt.timedelta(days=1) if self.end_time <= self.start_time else day
                periods.append((begins, localize(dt.datetime.combine(end_day, self.end_time), tz)))
            day += dt.timedelta(days=1)
        return periods

    def _cron_periods(self, start, end):
        tz = zone(self.timezone)
        length = dt.timedelta(minutes=self.duration_minutes or 0)
        base = (start - length).astimezone(tz).replace(tzinfo=None)
        times = croniter(self.cron, base - dt.timedelta(seconds=1))
        periods = []
        while len(periods) < MAX_OCCURRENCES:
            begins = localize(times.get_next(dt.datetime), tz)
            if begins >= end:
                break
            periods.append((begins, begins + length))
        return periods

    def describe(self) -> str:
        """In words, e.g. "Sun 02:00-04:00 (Europe/Madrid)"."""
        if self.kind == self.ONE_OFF:
            return f"{_local(self.starts_at, self.timezone)} – {_local(self.ends_at, self.timezone)}"
        if self.kind == self.WEEKLY:
            days = ", ".join(WEEKDAYS[d].title() for d in sorted(set(self.weekdays or [])) if d in range(7))
            times = f"{self.start_time:%H:%M}–{self.end_time:%H:%M}" if self.start_time and self.end_time else ""
            return f"{days} {times} ({self.timezone})"
        return f"Cron {self.cron} for {self.duration_minutes} min ({self.timezone})"


def _local(instant: dt.datetime | None, tz_name: str) -> str:
    if instant is None:
        return "—"
    try:
        return f"{instant.astimezone(zone(tz_name)):%Y-%m-%d %H:%M}"
    except PlanError:
        return instant.isoformat()


class SchedulePause(models.Model):
    """One "pause all schedules" period: who, why, from when to when.

    At most one is open: ``is_open`` is True while it is, None once ended (unique, and NULLs never clash).
    """

    reason = models.CharField(max_length=300)
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    paused_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    is_open = models.BooleanField(null=True, default=True, unique=True, editable=False)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")

    class Meta:
        app_label = "jobs"
        ordering = ["-paused_at"]

    def __str__(self) -> str:
        who = self.paused_by.get_username() if self.paused_by_id else "someone"
        return f"paused by {who} since {self.paused_at:%Y-%m-%d %H:%M} UTC: {self.reason}"


def current_pause() -> SchedulePause | None:
    return SchedulePause.objects.filter(is_open=True).select_related("paused_by").first()


def pause_all(user, reason: str) -> SchedulePause | None:
    """Open the pause; None if one is open already.

    The race of two people pausing at once is settled by the unique ``is_open``
    (one open pause): the second INSERT fails and changes nothing.
    """
    try:
        with transaction.atomic():
            return SchedulePause.objects.create(reason=reason, paused_by=user)
    except IntegrityError:
        return None


def resume_all(user) -> bool:
    """Close the open pause: one conditional UPDATE, so two resumes at once close it once. False if none was open."""
    return bool(SchedulePause.objects.filter(is_open=True).update(is_open=None, ended_at=timezone.now(),
                                                                  ended_by=user))


def window_at(domain_id: int | None, instant: dt.datetime) -> MaintenanceWindow | None:
    """The first window (by name) a job of this domain obeys that covers ``instant``."""
    return next((window for window in MaintenanceWindow.objects.for_domain(domain_id) if window.covers(instant)),
                None)


def suppression(domain_id: int | None, instant: dt.datetime) -> str | None:
    """Why a scheduled or planned run of a job of this domain must not fire at ``instant`` (None: it may)."""
    pause = current_pause()
    if pause is not None:
        who = pause.paused_by.get_username() if pause.paused_by_id else "someone"
        return f"all schedules are paused (by {who}: {pause.reason})"
    window = window_at(domain_id, instant)
    if window is not None:
        return f"inside maintenance window {window.name}"
    return None


def run_warning(domain_id: int | None, instant: dt.datetime | None = None) -> str | None:
    """What the Run dialog says before a run at ``instant`` (default now) inside a window."""
    window = window_at(domain_id, instant or timezone.now())
    return f"inside maintenance window {window.name} ({window.describe()})" if window else None


def windows_between(domain_ids: Any, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """The periods of the windows of these domains (None among them: the global ones) in ``[start, end)``."""
    scope = Q(domain_id__in=[d for d in domain_ids if d is not None])
    if None in domain_ids:
        scope |= Q(domain__isnull=True)
    windows = MaintenanceWindow.objects.filter(active=True).filter(scope)
    return [{"window": window, "start": s, "end": e}
            for window in windows.select_related("domain") for s, e in window.occurrences(start, end)]


def banner_context(request) -> dict:
    """Context processor: the open pause for every admin page's banner (read only when a page shows it)."""
    return {"schedule_pause": SimpleLazyObject(current_pause)}
