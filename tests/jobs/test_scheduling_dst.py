"""Daylight saving as cron(8) has it (jobs.scheduling): pure, over zones with whole-hour and 30-minute
shifts, both hemispheres and zones that abolished DST.

A wildcard in the minute or hour (``*/15 * * * *``, ``0 * * * *``) fires every real period through a
fall-back (the repeated wall times fire again) and a spring-forward; a fixed time fires once on the
fall-back day and soon after the gap on the spring-forward day.
"""
from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from jobs.scheduling import has_wildcard_time, next_fire

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def fires(cron: str, zone: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every fire of the plan in [start, end), as the scheduler takes them: each from the one before."""
    plan = {"type": "calendar", "cron": cron, "timezone": zone}
    instants, instant = [], start - dt.timedelta(microseconds=1)
    while (instant := next_fire(plan, instant)) < end:
        instants.append(instant)
    return instants


def gaps(instants: list[dt.datetime]) -> set[dt.timedelta]:
    return {later - earlier for earlier, later in itertools.pairwise(instants)}


def walls(instants: list[dt.datetime], zone: str) -> list[str]:
    return [f"{instant.astimezone(ZoneInfo(zone)):%H:%M%z}" for instant in instants]


# (zone, cron, period, the UTC stretch around one change, how many fires it holds)
WILDCARD_CASES = [
    # Europe/Madrid falls back on 2026-10-25 at 03:00 CEST (01:00 UTC): 02:00-02:59 happen twice.
    ("Europe/Madrid", "*/15 * * * *", 15, utc(2026, 10, 24, 23), utc(2026, 10, 25, 3), 16),
    # ... and springs forward on 2026-03-29 at 02:00 CET (01:00 UTC): 02:00-02:59 never happen.
    ("Europe/Madrid", "*/15 * * * *", 15, utc(2026, 3, 28, 23), utc(2026, 3, 29, 3), 16),
    # America/New_York: 2026-11-01 02:00 EDT → 01:00 EST (06:00 UTC); 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC).
    ("America/New_York", "0 * * * *", 60, utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 9, 30), 6),
    ("America/New_York", "0 * * * *", 60, utc(2026, 3, 8, 4, 30), utc(2026, 3, 8, 10, 30), 6),
    ("America/New_York", "*/10 * * * *", 10, utc(2026, 11, 1, 4), utc(2026, 11, 1, 8), 24),
    # Australia/Lord_Howe moves 30 minutes: 2026-04-05 02:00 (+11) → 01:30 (+10:30) at 15:00 UTC the day before;
    # 2026-10-04 02:00 (+10:30) → 02:30 (+11) at 15:30 UTC the day before.
    ("Australia/Lord_Howe", "*/15 * * * *", 15, utc(2026, 4, 4, 13), utc(2026, 4, 4, 17), 16),
    ("Australia/Lord_Howe", "*/15 * * * *", 15, utc(2026, 10, 3, 14), utc(2026, 10, 3, 17), 12),
    # Southern hemisphere: Australia/Sydney falls back in April (03:00 AEDT → 02:00 AEST, 16:00 UTC) and
    # springs forward in October (02:00 AEST → 03:00 AEDT, 16:00 UTC).
    ("Australia/Sydney", "*/30 * * * *", 30, utc(2026, 4, 4, 14), utc(2026, 4, 4, 18), 8),
    ("Australia/Sydney", "0 * * * *", 60, utc(2026, 10, 3, 14), utc(2026, 10, 3, 18, 30), 5),
    # America/Santiago: 2026-04-05 00:00 (-03) → 2026-04-04 23:00 (-04); 2026-09-06 00:00 (-04) → 01:00 (-03).
    ("America/Santiago", "*/20 * * * *", 20, utc(2026, 4, 5, 1), utc(2026, 4, 5, 5), 12),
    ("America/Santiago", "0 * * * *", 60, utc(2026, 9, 6, 2, 30), utc(2026, 9, 6, 6, 30), 4),
    # Zones that abolished DST: Sao Paulo (2019) on the day it used to spring forward, Tehran (2022) on the
    # days it used to change.
    ("America/Sao_Paulo", "*/15 * * * *", 15, utc(2026, 11, 1, 1), utc(2026, 11, 1, 5), 16),
    ("Asia/Tehran", "0 * * * *", 60, utc(2026, 3, 21, 18), utc(2026, 3, 22, 0), 6),
    ("Asia/Tehran", "*/30 * * * *", 30, utc(2026, 9, 21, 18), utc(2026, 9, 21, 22), 8),
]


@pytest.mark.parametrize(("zone", "cron", "minutes", "start", "end", "count"), WILDCARD_CASES)
def test_a_wildcard_schedule_fires_every_real_period_through_a_change(zone, cron, minutes, start, end, count):
    instants = fires(cron, zone, start, end)
    assert len(instants) == count
    assert gaps(instants) == {dt.timedelta(minutes=minutes)}


def test_madrid_every_15_minutes_fires_the_repeated_hour_twice_on_the_fall_back_night():
    instants = fires("*/15 * * * *", "Europe/Madrid", utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 1, 50))
    assert walls(instants, "Europe/Madrid") == [
        "01:30+0200", "01:45+0200",
        "02:00+0200", "02:15+0200", "02:30+0200", "02:45+0200",  # the first pass (summer time) ...
        "02:00+0100", "02:15+0100", "02:30+0100", "02:45+0100",  # ... and the second (no 75 silent minutes)
    ]


def test_new_york_hourly_fires_the_repeated_one_oclock_on_the_fall_back_night():
    instants = fires("0 * * * *", "America/New_York", utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 8, 30))
    assert walls(instants, "America/New_York") == ["01:00-0400", "01:00-0500", "02:00-0500", "03:00-0500"]


def test_lord_howe_every_15_minutes_on_the_new_time_across_its_half_hour_gap():
    instants = fires("*/15 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 15), utc(2026, 10, 3, 16))
    assert walls(instants, "Australia/Lord_Howe") == ["01:30+1030", "01:45+1030", "02:30+1100", "02:45+1100"]


def test_from_inside_the_first_pass_of_the_repeated_hour_the_next_fire_is_the_next_real_period():
    plan = {"type": "calendar", "cron": "0 * * * *", "timezone": "America/New_York"}
    first_pass = dt.datetime(2026, 11, 1, 1, 50, tzinfo=ZoneInfo("America/New_York"))  # 01:50 EDT
    assert next_fire(plan, first_pass) == utc(2026, 11, 1, 6)  # 01:00 EST, ten minutes later
    second_pass = dt.datetime(2026, 11, 1, 1, 50, fold=1, tzinfo=ZoneInfo("America/New_York"))  # 01:50 EST
    assert next_fire(plan, second_pass) == utc(2026, 11, 1, 7)  # 02:00 EST


# (zone, cron at a fixed time, the day of the change in UTC terms, the one fire expected that day)
FIXED_CASES = [
    ("Europe/Madrid", "30 2 * * *", utc(2026, 10, 24, 12), utc(2026, 10, 25, 0, 30)),  # once: the first 02:30
    ("Europe/Madrid", "30 2 * * *", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1)),  # 02:30 missing: at 03:00
    ("America/New_York", "30 1 * * *", utc(2026, 10, 31, 12), utc(2026, 11, 1, 5, 30)),
    ("America/New_York", "30 2 * * *", utc(2026, 3, 7, 12), utc(2026, 3, 8, 7)),
    ("Australia/Lord_Howe", "45 1 * * *", utc(2026, 4, 4, 0), utc(2026, 4, 4, 14, 45)),
    ("Australia/Lord_Howe", "15 2 * * *", utc(2026, 10, 3, 0), utc(2026, 10, 3, 15, 30)),  # at 02:30, after the gap
    ("Australia/Sydney", "30 2 * * *", utc(2026, 4, 4, 0), utc(2026, 4, 4, 15, 30)),
    ("Australia/Sydney", "30 2 * * *", utc(2026, 10, 3, 0), utc(2026, 10, 3, 16)),
    ("America/Sao_Paulo", "30 0 * * *", utc(2026, 10, 31, 12), utc(2026, 11, 1, 3, 30)),
]


@pytest.mark.parametrize(("zone", "cron", "day_start", "expected"), FIXED_CASES)
def test_a_fixed_time_fires_once_on_the_day_of_a_change_and_soon_after_a_gap(zone, cron, day_start, expected):
    assert fires(cron, zone, day_start, day_start + dt.timedelta(hours=24)) == [expected]


def test_a_days_and_times_plan_is_a_fixed_time():
    plan = {"type": "calendar", "weekdays": list(range(7)), "times": ["02:15", "02:45"], "timezone": "Europe/Madrid"}
    after, instants = utc(2026, 10, 24, 12), []
    while (after := next_fire(plan, after)) < utc(2026, 10, 25, 12):
        instants.append(after)
    assert walls(instants, "Europe/Madrid") == ["02:15+0200", "02:45+0200"]


@pytest.mark.parametrize(("cron", "wildcard"), [
    ("*/15 * * * *", True), ("0 * * * *", True), ("* 3 * * *", True), ("0-59/15 2 * * *", False),
    ("30 2 * * *", False), ("0 8-18 * * 1-5", False), ("0 18 * * 5", False),
])
def test_which_expressions_follow_the_clock(cron, wildcard):
    assert has_wildcard_time(cron) is wildcard
