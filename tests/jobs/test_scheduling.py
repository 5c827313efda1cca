"""Plan computations (jobs/scheduling.py): pure functions of a plan and a frozen instant, no database."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from jobs.scheduling import PlanError, check, describe, next_fire

UTC = dt.UTC
MADRID = ZoneInfo("Europe/Madrid")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def madrid(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MADRID)


def fires(plan: dict, after: dt.datetime, count: int, anchor: dt.datetime | None = None) -> list[dt.datetime]:
    """The next ``count`` instants ``plan`` fires at, each computed from the one before (as the scheduler does)."""
    found = []
    for _ in range(count):
        after = next_fire(plan, after, anchor=anchor)
        if after is None:
            break
        found.append(after)
    return found


def daily(times: list[str], tz: str = "Europe/Madrid") -> dict:
    return {"type": "calendar", "weekdays": list(range(7)), "times": times, "timezone": tz}


# --- interval ---------------------------------------------------------------------------------------------------


def test_interval_slots_follow_the_anchor():
    anchor = utc(2026, 5, 1, 12, 0, 0)
    plan = {"type": "interval", "every": 900}
    assert next_fire(plan, utc(2026, 5, 1, 12, 7), anchor=anchor) == utc(2026, 5, 1, 12, 15)
    assert fires(plan, utc(2026, 5, 1, 12, 7), 3, anchor=anchor) == [
        utc(2026, 5, 1, 12, 15), utc(2026, 5, 1, 12, 30), utc(2026, 5, 1, 12, 45)]


def test_interval_slot_is_strictly_after_the_given_instant():
    anchor = utc(2026, 5, 1, 12, 0, 0)
    plan = {"type": "interval", "every": 60}
    assert next_fire(plan, utc(2026, 5, 1, 12, 5), anchor=anchor) == utc(2026, 5, 1, 12, 6)
    assert next_fire(plan, anchor, anchor=anchor) == utc(2026, 5, 1, 12, 1)


def test_interval_keeps_the_anchor_grid_after_a_long_gap():
    anchor = utc(2026, 5, 1, 12, 0, 10)
    plan = {"type": "interval", "every": 3600}
    # Days later, the next slot is still at 10 seconds past an hour.
    assert next_fire(plan, utc(2026, 5, 4, 7, 30), anchor=anchor) == utc(2026, 5, 4, 8, 0, 10)


def test_interval_without_anchor_counts_from_the_given_instant():
    plan = {"type": "interval", "every": 90}
    assert next_fire(plan, utc(2026, 5, 1, 12, 0)) == utc(2026, 5, 1, 12, 1, 30)


def test_interval_with_a_future_start_fires_first_at_the_start():
    start = utc(2026, 6, 1, 8, 0)
    plan = {"type": "interval", "every": 3600, "start": start}
    assert next_fire(plan, utc(2026, 5, 1, 12, 0), anchor=utc(2026, 5, 1, 11, 17)) == start
    assert fires(plan, utc(2026, 5, 1, 12, 0), 3) == [start, utc(2026, 6, 1, 9, 0), utc(2026, 6, 1, 10, 0)]


def test_interval_with_a_past_start_uses_the_start_as_its_grid():
    plan = {"type": "interval", "every": 600, "start": utc(2026, 5, 1, 12, 3)}
    assert next_fire(plan, utc(2026, 5, 2, 9, 0), anchor=utc(2026, 5, 1, 12, 0)) == utc(2026, 5, 2, 9, 3)


def test_interval_stops_at_the_end_bound():
    end = utc(2026, 5, 1, 13, 0)
    plan = {"type": "interval", "every": 1800, "end": end}
    anchor = utc(2026, 5, 1, 12, 0)
    assert fires(plan, utc(2026, 5, 1, 12, 0), 5, anchor=anchor) == [utc(2026, 5, 1, 12, 30), end]
    assert next_fire(plan, end, anchor=anchor) is None
    assert next_fire(plan, utc(2026, 5, 2, 0, 0), anchor=anchor) is None


def test_interval_is_exact_seconds_across_a_daylight_saving_change():
    plan = {"type": "interval", "every": 3600, "timezone": "Europe/Madrid"}
    anchor = utc(2026, 3, 28, 23, 0)
    fired = fires(plan, anchor, 4, anchor=anchor)
    assert [b - a for a, b in zip([anchor, *fired], fired, strict=False)] == [dt.timedelta(hours=1)] * 4


# --- calendar: days of the week and times -----------------------------------------------------------------------


def test_calendar_fires_at_each_time_on_the_chosen_days_only():
    # Monday and Friday at 08:00 and 18:30, Madrid (UTC+2 in May). 2026-05-04 is a Monday.
    plan = {"type": "calendar", "weekdays": [0, 4], "times": ["18:30", "08:00"], "timezone": "Europe/Madrid"}
    fired = fires(plan, madrid(2026, 5, 4, 0, 0), 6)
    assert [t.astimezone(MADRID) for t in fired] == [
        madrid(2026, 5, 4, 8, 0), madrid(2026, 5, 4, 18, 30),
        madrid(2026, 5, 8, 8, 0), madrid(2026, 5, 8, 18, 30),
        madrid(2026, 5, 11, 8, 0), madrid(2026, 5, 11, 18, 30),
    ]
    assert {t.astimezone(MADRID).weekday() for t in fired} == {0, 4}


def test_calendar_results_are_utc_instants():
    plan = {"type": "calendar", "weekdays": [4], "times": ["18:00"], "timezone": "Europe/Madrid"}
    fired = next_fire(plan, utc(2026, 5, 4, 0, 0))
    assert fired == utc(2026, 5, 8, 16, 0)
    assert fired.utcoffset() == dt.timedelta(0)


def test_calendar_later_the_same_day_then_the_next_chosen_day():
    plan = {"type": "calendar", "weekdays": [1, 3], "times": ["09:00", "12:00", "17:45"], "timezone": "UTC"}
    # Tuesday 2026-05-05 at 10:00: 12:00 is next, then 17:45, then Thursday 09:00.
    assert fires(plan, utc(2026, 5, 5, 10, 0), 3) == [
        utc(2026, 5, 5, 12, 0), utc(2026, 5, 5, 17, 45), utc(2026, 5, 7, 9, 0)]


def test_calendar_at_the_exact_slot_moves_to_the_next_one():
    plan = daily(["06:00"], "UTC")
    assert next_fire(plan, utc(2026, 5, 5, 6, 0)) == utc(2026, 5, 6, 6, 0)


def test_calendar_start_and_end_bounds():
    plan = {**daily(["09:00"]), "start": madrid(2026, 5, 10, 9, 0), "end": madrid(2026, 5, 12, 9, 0)}
    fired = fires(plan, utc(2026, 1, 1), 10)
    assert [t.astimezone(MADRID) for t in fired] == [
        madrid(2026, 5, 10, 9, 0), madrid(2026, 5, 11, 9, 0), madrid(2026, 5, 12, 9, 0)]
    assert next_fire(plan, madrid(2026, 5, 12, 9, 0)) is None


# --- calendar: cron -----------------------------------------------------------------------------------------------


def test_cron_fires_in_its_time_zone():
    plan = {"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid"}
    fired = fires(plan, utc(2026, 5, 4, 0, 0), 3)
    assert [t.astimezone(MADRID) for t in fired] == [
        madrid(2026, 5, 8, 18, 0), madrid(2026, 5, 15, 18, 0), madrid(2026, 5, 22, 18, 0)]
    # In winter Madrid is UTC+1: the same wall-clock time is another UTC hour.
    assert next_fire(plan, utc(2026, 12, 1)) == utc(2026, 12, 4, 17, 0)


def test_cron_with_steps_and_ranges():
    plan = {"type": "calendar", "cron": "*/20 9-10 * * mon-fri", "timezone": "UTC"}
    assert fires(plan, utc(2026, 5, 8, 10, 30), 4) == [  # Friday 10:30
        utc(2026, 5, 8, 10, 40), utc(2026, 5, 11, 9, 0), utc(2026, 5, 11, 9, 20), utc(2026, 5, 11, 9, 40)]


def test_cron_without_time_zone_is_utc():
    plan = {"type": "calendar", "cron": "30 7 * * *"}
    assert next_fire(plan, utc(2026, 5, 1, 8, 0)) == utc(2026, 5, 2, 7, 30)


# --- time zones ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "expected"), [
    ("UTC", utc(2026, 7, 1, 9, 0)),
    ("Europe/Madrid", utc(2026, 7, 1, 7, 0)),
    ("America/New_York", utc(2026, 7, 1, 13, 0)),
    ("Asia/Tokyo", utc(2026, 7, 2, 0, 0)),  # 09:00 of 1 July in Tokyo was before the instant; the next is 2 July
    ("Asia/Kolkata", utc(2026, 7, 1, 3, 30)),
])
def test_calendar_time_of_day_is_wall_clock_in_the_schedule_zone(tz, expected):
    assert next_fire(daily(["09:00"], tz), utc(2026, 7, 1, 0, 30)) == expected
    assert expected.astimezone(ZoneInfo(tz)).strftime("%H:%M") == "09:00"


def test_calendar_weekday_is_the_weekday_in_the_schedule_zone():
    # Monday 00:30 in Tokyo is still Sunday in UTC.
    plan = {"type": "calendar", "weekdays": [0], "times": ["00:30"], "timezone": "Asia/Tokyo"}
    fired = next_fire(plan, utc(2026, 5, 1))
    assert fired == utc(2026, 5, 3, 15, 30)
    assert fired.weekday() == 6
    assert fired.astimezone(ZoneInfo("Asia/Tokyo")).weekday() == 0


# --- daylight saving time (Europe/Madrid, daily at 02:30) -------------------------------------------------------


def test_spring_forward_day_fires_once_at_three():
    # 2026-03-29: clocks go from 02:00 to 03:00, so 02:30 does not exist.
    fired = fires(daily(["02:30"]), utc(2026, 3, 27, 12, 0), 4)
    local = [t.astimezone(MADRID) for t in fired]
    assert [(t.date(), t.strftime("%H:%M")) for t in local] == [
        (dt.date(2026, 3, 28), "02:30"),
        (dt.date(2026, 3, 29), "03:00"),
        (dt.date(2026, 3, 30), "02:30"),
        (dt.date(2026, 3, 31), "02:30"),
    ]
    assert fired[1] == utc(2026, 3, 29, 1, 0)
    assert sum(1 for t in local if t.date() == dt.date(2026, 3, 29)) == 1


def test_spring_forward_day_after_the_gap_fires_the_next_day():
    assert next_fire(daily(["02:30"]), utc(2026, 3, 29, 1, 0)) == madrid(2026, 3, 30, 2, 30)


def test_fall_back_day_fires_once_although_the_time_happens_twice():
    # 2026-10-25: clocks go from 03:00 back to 02:00, so 02:30 happens twice.
    fired = fires(daily(["02:30"]), utc(2026, 10, 23, 12, 0), 4)
    local = [t.astimezone(MADRID) for t in fired]
    assert [(t.date(), t.strftime("%H:%M")) for t in local] == [
        (dt.date(2026, 10, 24), "02:30"),
        (dt.date(2026, 10, 25), "02:30"),
        (dt.date(2026, 10, 26), "02:30"),
        (dt.date(2026, 10, 27), "02:30"),
    ]
    assert fired[1] == utc(2026, 10, 25, 0, 30)  # the first 02:30 (summer time, UTC+2)
    assert sum(1 for t in local if t.date() == dt.date(2026, 10, 25)) == 1


def test_fall_back_day_between_the_two_occurrences_waits_for_the_next_day():
    # 01:15 UTC is 02:15 in the repeated (winter) hour: the first 02:30 already fired.
    assert next_fire(daily(["02:30"]), utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 26, 1, 30)
    assert next_fire(daily(["02:30"]), utc(2026, 10, 25, 0, 45)) == utc(2026, 10, 26, 1, 30)


def test_days_around_daylight_saving_changes_keep_their_utc_offset():
    plan = daily(["02:30"])
    assert next_fire(plan, utc(2026, 3, 27, 12)) == utc(2026, 3, 28, 1, 30)  # winter, UTC+1
    assert next_fire(plan, utc(2026, 3, 29, 12)) == utc(2026, 3, 30, 0, 30)  # summer, UTC+2
    assert next_fire(plan, utc(2026, 10, 23, 12)) == utc(2026, 10, 24, 0, 30)  # summer
    assert next_fire(plan, utc(2026, 10, 25, 12)) == utc(2026, 10, 26, 1, 30)  # winter


def test_cron_across_daylight_saving_changes_follows_the_same_rules():
    plan = {"type": "calendar", "cron": "30 2 * * *", "timezone": "Europe/Madrid"}
    spring = fires(plan, utc(2026, 3, 28, 12), 2)
    assert [t.astimezone(MADRID).strftime("%d %H:%M") for t in spring] == ["29 03:00", "30 02:30"]
    autumn = fires(plan, utc(2026, 10, 24, 12), 2)
    assert autumn == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


# --- describe -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("every", "words"), [
    (900, "Every 15 minutes"),
    (60, "Every minute"),
    (1, "Every second"),
    (90, "Every 90 seconds"),
    (3600, "Every hour"),
    (7200, "Every 2 hours"),
    (86400, "Every day"),
    (3 * 86400, "Every 3 days"),
])
def test_describe_interval(every, words):
    assert describe({"type": "interval", "every": every}) == words


def test_describe_one_weekday():
    plan = {"type": "calendar", "weekdays": [4], "times": ["18:00"], "timezone": "Europe/Madrid"}
    assert describe(plan) == "Every Friday at 18:00 (Europe/Madrid)"


def test_describe_every_day():
    assert describe(daily(["02:30"])) == "Every day at 02:30 (Europe/Madrid)"


def test_describe_weekdays_monday_to_friday():
    plan = {"type": "calendar", "weekdays": [4, 3, 2, 1, 0], "times": ["07:15"], "timezone": "UTC"}
    assert describe(plan) == "Every weekday (Monday to Friday) at 07:15 (UTC)"


def test_describe_several_days_and_times_sorted():
    plan = {"type": "calendar", "weekdays": [4, 0], "times": ["18:30", "08:00"], "timezone": "Europe/Madrid"}
    assert describe(plan) == "Every Monday, Friday at 08:00, 18:30 (Europe/Madrid)"


def test_describe_cron_names_the_expression_and_zone():
    words = describe({"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid"})
    assert "0 18 * * 5" in words
    assert words.endswith("(Europe/Madrid)")


def test_describe_without_a_plan():
    assert describe(None) == "By hand only"


# --- check --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "after", "anchor", "fires"), [
    ({"type": "interval", "every": 900}, utc(2026, 5, 1, 12, 7), utc(2026, 5, 1, 12, 0), utc(2026, 5, 1, 12, 15)),
    ({"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid"}, utc(2026, 5, 4, 10, 0), None,
     utc(2026, 5, 8, 16, 0)),  # Friday 18:00 in Madrid (UTC+2)
    ({"type": "calendar", "weekdays": [0, 4], "times": ["08:00", "23:59"], "timezone": "Asia/Tokyo",
      "start": utc(2026, 1, 1), "end": utc(2026, 12, 31)}, utc(2026, 5, 4, 10, 0), None,
     utc(2026, 5, 4, 14, 59)),  # Monday 23:59 in Tokyo (UTC+9)
], ids=["interval", "cron", "weekdays"])
def test_check_accepts_valid_plans_and_they_fire(plan, after, anchor, fires):
    assert check(plan) is None
    assert next_fire(plan, after, anchor=anchor) == fires


@pytest.mark.parametrize(("plan", "field"), [
    ({"type": "calendar", "cron": "61 * * * *"}, "cron"),
    ({"type": "calendar", "cron": "not a cron"}, "cron"),
    ({"type": "calendar", "cron": "* * * *"}, "cron"),
    ({"type": "calendar", "cron": "0 0 * * * *"}, "cron"),
    ({"type": "interval", "every": 60, "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"type": "calendar", "cron": "0 1 * * *", "timezone": "Europe/Nowhere"}, "timezone"),
    ({"type": "interval", "every": 60, "start": utc(2026, 5, 2), "end": utc(2026, 5, 1)}, "end"),
    ({"type": "interval", "every": 60, "start": utc(2026, 5, 1), "end": utc(2026, 5, 1)}, "end"),
    ({"type": "interval", "every": 0}, "every"),
    ({"type": "interval", "every": -60}, "every"),
    ({"type": "interval", "every": None}, "every"),
    ({"type": "interval", "every": "900"}, "every"),
    ({"type": "interval", "every": True}, "every"),
    ({"type": "interval"}, "every"),
    ({"type": "calendar", "weekdays": [], "times": ["08:00"]}, "weekdays"),
    ({"type": "calendar", "times": ["08:00"]}, "weekdays"),
    ({"type": "calendar", "weekdays": [7], "times": ["08:00"]}, "weekdays"),
    ({"type": "calendar", "weekdays": [1], "times": ["25:00"]}, "times"),
    ({"type": "calendar", "weekdays": [1], "times": ["08:60"]}, "times"),
    ({"type": "calendar", "weekdays": [1], "times": ["8am"]}, "times"),
    ({"type": "calendar", "weekdays": [1], "times": []}, "times"),
    ({"type": "weekly"}, "type"),
])
def test_check_errors_name_the_field(plan, field):
    with pytest.raises(PlanError) as caught:
        check(plan)
    assert str(caught.value).startswith(f"{field}: ")


def test_check_error_quotes_the_bad_value():
    with pytest.raises(PlanError, match="Mars/Olympus_Mons"):
        check({"type": "interval", "every": 60, "timezone": "Mars/Olympus_Mons"})
    with pytest.raises(PlanError, match=r"61 \* \* \* \*"):
        check({"type": "calendar", "cron": "61 * * * *"})


def test_plan_error_is_a_value_error():
    assert issubclass(PlanError, ValueError)


@pytest.mark.parametrize(("cron", "words"), [
    ("0 18 * * 5", "At 18:00, only on Friday — cron 0 18 * * 5 (Europe/Madrid)"),
    ("*/5 * * * *", "Every 5 minutes — cron */5 * * * * (Europe/Madrid)"),
    ("30 2 1 * *", "At 02:30, on day 1 of the month — cron 30 2 1 * * (Europe/Madrid)"),
])
def test_describe_puts_a_cron_plan_in_words(cron, words):
    assert describe({"type": "calendar", "cron": cron, "timezone": "Europe/Madrid"}) == words


def test_describe_keeps_an_expression_the_describer_does_not_take():
    assert describe({"type": "calendar", "cron": "not a cron", "timezone": "UTC"}) == "Cron not a cron (UTC)"
