"""The calendar of upcoming runs: a week of the next runs of the jobs a user sees, windows shaded.

Pure server-side: ``week`` computes a grid of 7 days x 24 hours (in the site's time zone) holding
the schedules' next fires, the planned runs (run at) and the maintenance windows' periods; the
admin renders it as an HTML table (no script, no inline style: the CSP forbids them).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from jobs import access, maintenance
from jobs.models import Schedule

from .runat import PlannedRun

MAX_FIRES_PER_SCHEDULE = 24 * 7 * 4  # a fire every 15 minutes for a week; beyond: "and more"
SHOWN_PER_CELL = 4


@dataclass
class Entry:
    at: dt.datetime
    job: object
    kind: str  # "schedule" or "planned"
    label: str = ""


@dataclass
class Cell:
    start: dt.datetime
    entries: list[Entry] = field(default_factory=list)
    windows: list[str] = field(default_factory=list)

    @property
    def shown(self) -> list[Entry]:
        return self.entries[:SHOWN_PER_CELL]

    @property
    def more(self) -> int:
        return max(0, len(self.entries) - SHOWN_PER_CELL)


@dataclass
class Week:
    start: dt.datetime
    days: list[dt.date]
    rows: list[tuple[int, list[Cell]]]  # (hour, the cells of the 7 days)
    frequent: list[tuple[object, str]]  # schedules firing too often to list: (job, plan in words)
    windows: list[dict]

    @property
    def previous(self) -> dt.date:
        return self.days[0] - dt.timedelta(days=7)

    @property
    def following(self) -> dt.date:
        return self.days[0] + dt.timedelta(days=7)


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def week(user, first_day: dt.date | None = None, now: dt.datetime | None = None) -> Week:
    """The week starting on the Monday of ``first_day`` (default: this week) as the user may see it."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    monday = monday_of(first_day or timezone.localtime(now).date())
    days = [monday + dt.timedelta(days=n) for n in range(7)]
    start = timezone.make_aware(dt.datetime.combine(monday, dt.time()), tz)
    end = timezone.make_aware(dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time()), tz)
    jobs = access.visible_jobs(user).filter(active=True)
    grid = {(day, hour): Cell(timezone.make_aware(dt.datetime.combine(day, dt.time(hour)), tz))
            for day in days for hour in range(24)}
    frequent = []
    for schedule in Schedule.objects.filter(job__in=jobs).select_related("job").order_by("job__identifier"):
        fires, capped = _fires(schedule, max(start, now), end)
        if capped:
            frequent.append((schedule.job, schedule.describe()))
            continue
        for instant in fires:
            _place(grid, Entry(instant, schedule.job, "schedule", schedule.name), tz)
    planned = PlannedRun.objects.pending().filter(job__in=jobs, run_at__gte=start, run_at__lt=end)
    for run in planned.select_related("job"):
        _place(grid, Entry(run.run_at, run.job, "planned", "run at"), tz)
    domain_ids = {None, *jobs.values_list("domain_id", flat=True)}
    periods = maintenance.windows_between(domain_ids, start, end)
    for period in periods:
        _shade(grid, period, tz)
    for cell in grid.values():
        cell.entries.sort(key=lambda entry: (entry.at, entry.job.identifier))
    rows = [(hour, [grid[day, hour] for day in days]) for hour in range(24)]
    return Week(start=start, days=days, rows=rows, frequent=frequent, windows=periods)


def _fires(schedule: Schedule, start: dt.datetime, end: dt.datetime) -> tuple[list[dt.datetime], bool]:
    """The schedule's fires in ``[start, end)``; capped: it fires more often than the calendar lists."""
    fires: list[dt.datetime] = []
    after = start - dt.timedelta(microseconds=1)
    while len(fires) <= MAX_FIRES_PER_SCHEDULE:
        instant = schedule.compute_next(after=after)
        if instant is None or instant >= end:
            return fires, False
        fires.append(instant)
        after = instant
    return fires, True


def _place(grid: dict, entry: Entry, tz) -> None:
    local = timezone.localtime(entry.at, tz)
    cell = grid.get((local.date(), local.hour))
    if cell is not None:
        cell.entries.append(entry)


def _shade(grid: dict, period: dict, tz) -> None:
    name = period["window"].name
    for cell in grid.values():
        cell_end = cell.start + dt.timedelta(hours=1)
        if period["start"] < cell_end and period["end"] > cell.start and name not in cell.windows:
            cell.windows.append(name)
