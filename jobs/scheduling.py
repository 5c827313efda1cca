"""When a schedule fires: interval and calendar plans, in the schedule's time zone.

Pure functions of a plan and an instant, so they are tested with a frozen
clock. A plan is the dict of job definition files::

    {"type": "interval", "every": 900, "start": ..., "end": ...}
    {"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid"}
    {"type": "calendar", "weekdays": [0, 4], "times": ["08:00", "18:30"], "timezone": "Europe/Madrid"}

Calendar times are wall-clock times, with the daylight-saving rule of cron(8):

- A fixed time ("every day at 02:30", ``30 2 * * *``) stays at 02:30 across the
  changes; on the spring-forward day, when 02:30 does not exist, it fires once
  at the next valid minute (03:00); on the fall-back day, when 02:30 happens
  twice, it fires once (the first).
- A cron expression with a wildcard (``*``) in its minute or hour field
  (``*/15 * * * *``, ``0 * * * *``) fires whenever the clock shows a matching
  time: through a fall-back the repeated times fire again (every real period,
  no silent hour), and across a spring-forward the next matching time after
  the jump fires (the times the clock skips do not exist).
"""
from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cron_descriptor import FormatError, MissingFieldError, Options, WrongArgumentError, get_description
from croniter import CroniterError, croniter

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
UTC = dt.UTC


class PlanError(ValueError):
    """A plan that cannot fire; the message names the field and the rule."""


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlanError(f"timezone: unknown time zone {name!r}") from None


# Instants a plan may name: a day inside the calendar, so that no time zone conversion leaves it.
EARLIEST = dt.datetime(1, 1, 2, tzinfo=UTC)
LATEST = dt.datetime(9999, 12, 30, tzinfo=UTC)


def check_instant(field: str, value: dt.datetime | None) -> None:
    """Raise PlanError when ``value`` is too close to the edges of the calendar to compute with."""
    if value is not None and value.tzinfo is not None and not EARLIEST <= value <= LATEST:
        raise PlanError(f"{field}: must be between {EARLIEST.date()} and {LATEST.date()} (UTC)")


def check(plan: dict[str, Any]) -> None:
    """Raise PlanError naming the field when ``plan`` cannot fire."""
    kind = plan.get("type")
    zone(plan.get("timezone"))
    start, end = plan.get("start"), plan.get("end")
    if start and end and end <= start:
        raise PlanError("end: must be after the start")
    if kind == "interval":
        every = plan.get("every")
        if not isinstance(every, int) or isinstance(every, bool) or every <= 0:
            raise PlanError("every: must be a whole number of seconds above 0")
    elif kind == "calendar":
        if plan.get("cron"):
            cron = plan["cron"]
            if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
                raise PlanError(f"cron: {cron!r} is not a valid five-field cron expression")
        else:
            weekdays, times = plan.get("weekdays") or [], plan.get("times") or []
            if not weekdays or any(day not in range(7) for day in weekdays):
                raise PlanError("weekdays: choose at least one day of the week")
            if not times or any(not isinstance(t, str) or not TIME_RE.match(t) for t in times):
                raise PlanError("times: give one or more times of day as HH:MM")
    else:
        raise PlanError("type: must be interval or calendar")


def cron_expressions(plan: dict[str, Any]) -> list[str]:
    if plan.get("cron"):
        return [plan["cron"]]
    days = ",".join(WEEKDAYS[d] for d in sorted(set(plan["weekdays"])))
    expressions = []
    for time_of_day in sorted(set(plan["times"])):
        hour, minute = time_of_day.split(":")
        expressions.append(f"{int(minute)} {int(hour)} * * {days}")
    return expressions


def next_fire(plan: dict[str, Any], after: dt.datetime, anchor: dt.datetime | None = None) -> dt.datetime | None:
    """The first instant strictly after ``after`` when ``plan`` fires, or None when it never will again.

    Raises PlanError naming the field when no next run can be computed (a date that does not exist, a
    run beyond the year 9999).
    """
    start, end = plan.get("start"), plan.get("end")
    if start and after < start:
        after = start - dt.timedelta(microseconds=1)
    try:
        candidate = _next_candidate(plan, after, anchor)
    except PlanError:
        raise
    except (CroniterError, OverflowError, ValueError) as exc:
        raise PlanError(f"{_field_of(plan)}: it has no next run before the end of the calendar ({exc})") from exc
    if end and candidate > end:
        return None
    return candidate


GAP_SAMPLE_FIRES = 200


def shortest_gap(plan: dict[str, Any], after: dt.datetime, anchor: dt.datetime | None = None,
                 fires: int = GAP_SAMPLE_FIRES) -> float | None:
    """Seconds between the two closest fires of ``plan``: an interval's period; for a calendar, the
    shortest gap among its next ``fires`` fires (ignoring its end). None if it fires at most once."""
    if plan["type"] == "interval":
        return float(plan["every"])
    return shortest_combined_gap([(plan, anchor)], after, fires)


def shortest_combined_gap(plans: list[tuple[dict[str, Any], dt.datetime | None]], after: dt.datetime,
                          fires: int = GAP_SAMPLE_FIRES) -> float | None:
    """Seconds between the two closest fires of several plans together (each ``(plan, anchor)``): a job's
    schedules fire side by side, so two hourly plans half an hour apart fire every 30 minutes."""
    instants = sorted(instant for plan, anchor in plans for instant in _fires(plan, after, anchor, fires))
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(instants)]
    return min(gaps, default=None)


def _fires(plan: dict[str, Any], after: dt.datetime, anchor: dt.datetime | None, count: int) -> list[dt.datetime]:
    unbounded, instants = {**plan, "end": None}, []
    while len(instants) < count:
        instant = next_fire(unbounded, instants[-1] if instants else after, anchor)
        if instant is None:
            break
        instants.append(instant)
    return instants


def _next_candidate(plan: dict[str, Any], after: dt.datetime, anchor: dt.datetime | None) -> dt.datetime:
    if plan["type"] == "interval":
        return _next_interval(plan["every"], plan.get("start") or anchor or after, after)
    tz = zone(plan.get("timezone"))
    return min(_next_wildcard(expr, tz, after) if has_wildcard_time(expr) else _next_calendar(expr, tz, after)
               for expr in cron_expressions(plan))


def has_wildcard_time(expression: str) -> bool:
    """cron(8)'s test: a ``*`` in the minute or hour field makes the job follow the clock through DST changes."""
    minute, hour = expression.split()[:2]
    return "*" in minute or "*" in hour


def _field_of(plan: dict[str, Any]) -> str:
    if plan["type"] == "interval":
        return "every"
    return "cron" if plan.get("cron") else "times"


def _next_interval(every: int, anchor: dt.datetime, after: dt.datetime) -> dt.datetime:
    if after < anchor:
        return anchor
    periods = int((after - anchor).total_seconds() // every) + 1
    return anchor + dt.timedelta(seconds=every * periods)


def _next_calendar(expression: str, tz: ZoneInfo, after: dt.datetime) -> dt.datetime:
    local_after = after.astimezone(tz).replace(tzinfo=None)
    times = croniter(expression, local_after)
    while True:
        naive = times.get_next(dt.datetime)
        candidate = localize(naive, tz)
        if candidate > after:
            return candidate


def _next_wildcard(expression: str, tz: ZoneInfo, after: dt.datetime) -> dt.datetime:
    """The first real instant after ``after`` whose wall time in ``tz`` matches: a wall time that happens
    twice (a fall-back) matches twice; one that never happens (a spring-forward's gap) not at all."""
    local = after.astimezone(tz)
    start = local.replace(tzinfo=None)
    # Inside the first pass of a repeated hour, the wall times just passed come again: start from them.
    start -= max(dt.timedelta(0), local.replace(fold=0).utcoffset() - local.replace(fold=1).utcoffset())
    times = croniter(expression, start - dt.timedelta(seconds=1))
    best = None
    while True:
        naive = times.get_next(dt.datetime)
        instants = _real_instants(naive, tz)
        later = [instant for instant in instants if instant > after]
        if later:
            best = min(later) if best is None else min(best, *later)
        if best is not None and len(instants) < 2:
            # A wall time outside a repeated hour: every later one is a later instant.
            return best
        if best is not None and naive > best.astimezone(tz).replace(tzinfo=None) + REPEATED_HOUR_MAX:
            return best


# The longest repeated stretch of wall time in the tz database (a fall-back of up to two hours).
REPEATED_HOUR_MAX = dt.timedelta(hours=3)


def _real_instants(naive: dt.datetime, tz: ZoneInfo) -> list[dt.datetime]:
    """The instants (UTC) at which the clock in ``tz`` shows ``naive``: none in a gap, two in a repeated hour."""
    instants = []
    for fold in (0, 1):
        aware = naive.replace(tzinfo=tz, fold=fold)
        instant = aware.astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == naive and instant not in instants:
            instants.append(instant)
    return instants


def localize(naive: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Wall-clock ``naive`` in ``tz``: its first occurrence, or the next valid minute in a gap."""
    probe = naive
    while True:
        aware = probe.replace(tzinfo=tz, fold=0)
        if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == probe:
            return aware.astimezone(UTC)
        probe = (probe + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)


CRON_WORDS = Options()
CRON_WORDS.use_24hour_time_format = True  # like the calendar plans' own times


def cron_in_words(expression: str) -> str | None:
    """A five-field cron expression in English, e.g. "At 18:00, only on Friday" (cron-descriptor)."""
    try:
        return get_description(expression, CRON_WORDS)
    except (FormatError, MissingFieldError, WrongArgumentError, ValueError, KeyError, IndexError):
        return None  # an expression the describer does not take: shown as it is


def describe(plan: dict[str, Any] | None) -> str:
    """The plan in plain words, e.g. "Every Friday at 18:00 (Europe/Madrid)"."""
    if not plan:
        return "By hand only"
    if plan["type"] == "interval":
        every = plan["every"]
        for unit, seconds in reversed(UNITS.items()):
            if every % seconds == 0:
                count = every // seconds
                words = unit[:-1] if count == 1 else f"{count} {unit}"
                return f"Every {words}"
    tz = plan.get("timezone") or "UTC"
    if plan.get("cron"):
        words = cron_in_words(plan["cron"])
        return f"{words} — cron {plan['cron']} ({tz})" if words else f"Cron {plan['cron']} ({tz})"
    days = sorted(set(plan["weekdays"]))
    if days == list(range(7)):
        day_words = "day"
    elif days == list(range(5)):
        day_words = "weekday (Monday to Friday)"
    else:
        day_words = ", ".join(DAY_NAMES[d] for d in days)
    times = ", ".join(sorted(set(plan["times"])))
    return f"Every {day_words} at {times} ({tz})"
