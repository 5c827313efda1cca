"""The Schedule model (jobs/models.py): validation, next_run_at on save, inactive jobs, automatic plans."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from jobs import registry
from jobs.models import Action, Job, Schedule
from jobs.registry import action
from jobs.scheduling import next_fire
from tests.helpers import make_job

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)  # a Monday


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Django's clock frozen at T0; ``clock.advance(minutes=...)`` moves it."""
    frozen = Clock(T0)
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


def auto_plan(ctx) -> str:
    return "ran on its own plan"


def auto_calendar(ctx) -> str:
    return "ran at night"


@pytest.fixture
def declaring_actions(monkeypatch):
    """Two actions that declare a plan, registered for this test only."""
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    action("testing.auto_plan", schedule={"type": "interval", "every": 3600})(auto_plan)
    action("testing.auto_calendar", schedule={"type": "calendar", "cron": "0 3 * * *"})(auto_calendar)
    Action.objects.sync_with_registry()


def job(identifier: str = "scheduled", **fields) -> Job:
    return make_job(identifier, (10, "testing.echo", {}), **fields)


def errors_of(schedule: Schedule) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        schedule.full_clean()
    return caught.value.message_dict


# --- validation ---------------------------------------------------------------------------------------------------


def clean_and_saved(schedule: Schedule) -> Schedule:
    """``schedule`` after a validation that must pass, saved (which computes its next run)."""
    assert schedule.full_clean() is None
    schedule.save()
    return schedule


def test_a_valid_interval_schedule_is_clean(clock):
    schedule = clean_and_saved(Schedule(job=job(), kind="interval", every=15, every_unit="minutes"))
    assert schedule.plan()["every"] == 900
    assert schedule.next_run_at == T0 + dt.timedelta(minutes=15)


def test_a_valid_calendar_schedule_is_clean(clock):
    days = clean_and_saved(Schedule(job=job(), kind="calendar", weekdays=[0, 4], times=["08:00", "18:30"],
                                    timezone="Europe/Madrid"))
    assert days.next_run_at == dt.datetime(2026, 5, 4, 16, 30, tzinfo=dt.UTC)  # Monday 18:30 in Madrid (UTC+2)
    cron = clean_and_saved(Schedule(job=job("cron-job"), kind="calendar", cron="0 18 * * 5",
                                    timezone="Europe/Madrid"))
    assert cron.next_run_at == dt.datetime(2026, 5, 8, 16, 0, tzinfo=dt.UTC)  # Friday 18:00 in Madrid


def test_a_disabled_schedule_needs_nothing(clock):
    schedule = clean_and_saved(Schedule(job=job(), kind="disabled"))
    assert schedule.plan() is None and schedule.next_run_at is None
    assert schedule.describe() == "By hand only"


@pytest.mark.parametrize("every", [None, 0])
def test_interval_without_a_positive_every_names_every(every):
    errors = errors_of(Schedule(job=job(), kind="interval", every=every))
    assert "every" in errors
    assert set(errors) == {"every"}


def test_invalid_cron_names_cron():
    errors = errors_of(Schedule(job=job(), kind="calendar", cron="61 * * * *"))
    assert list(errors) == ["cron"]
    assert "61 * * * *" in errors["cron"][0]


def test_six_field_cron_names_cron():
    assert list(errors_of(Schedule(job=job(), kind="calendar", cron="0 0 18 * * 5"))) == ["cron"]


def test_ends_at_before_starts_at_names_ends_at():
    schedule = Schedule(job=job(), kind="interval", every=1, every_unit="hours",
                        starts_at=T0, ends_at=T0 - dt.timedelta(days=1))
    errors = errors_of(schedule)
    assert list(errors) == ["ends_at"]
    assert "after the start" in errors["ends_at"][0]


def test_unknown_timezone_names_timezone():
    errors = errors_of(Schedule(job=job(), kind="calendar", cron="0 18 * * 5", timezone="Europe/Atlantis"))
    assert list(errors) == ["timezone"]
    assert "Europe/Atlantis" in errors["timezone"][0]


def test_calendar_without_weekdays_names_weekdays():
    assert list(errors_of(Schedule(job=job(), kind="calendar", weekdays=[], times=["08:00"]))) == ["weekdays"]


def test_calendar_with_a_bad_time_names_times():
    assert list(errors_of(Schedule(job=job(), kind="calendar", weekdays=[1], times=["25:00"]))) == ["times"]


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *"])
def test_a_cron_on_a_date_that_never_comes_names_cron(cron):
    errors = errors_of(Schedule(job=job(), kind="calendar", cron=cron))
    assert list(errors) == ["cron"]
    assert "no next run" in errors["cron"][0]


def test_an_interval_beyond_the_calendar_names_every():
    errors = errors_of(Schedule(job=job(), kind="interval", every=3_000_000, every_unit="days"))
    assert list(errors) == ["every"]
    assert "no next run" in errors["every"][0]


@pytest.mark.parametrize(("field", "instant"), [
    ("starts_at", dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))),
    ("ends_at", dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
])
def test_an_instant_at_the_edge_of_the_calendar_names_its_field(field, instant):
    errors = errors_of(Schedule(job=job(), kind="interval", every=1, every_unit="hours", **{field: instant}))
    assert errors == {field: ["must be between 0001-01-02 and 9999-12-30 (UTC)"]}


def test_a_plan_with_no_next_run_any_more_never_fires_instead_of_crashing(clock):
    schedule = Schedule(job=job(), kind="calendar", cron="0 0 30 2 *")  # as saved before validation refused it
    assert schedule.compute_next() is None


# --- next_run_at on save ------------------------------------------------------------------------------------------


def test_interval_next_run_at_is_computed_on_save(clock):
    schedule = Schedule.objects.create(job=job(), kind="interval", every=5, every_unit="minutes")
    assert schedule.anchor_at == T0
    assert schedule.next_run_at == T0 + dt.timedelta(minutes=5)
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == T0 + dt.timedelta(minutes=5)


def test_interval_units_are_converted_to_seconds(clock):
    schedule = Schedule.objects.create(job=job(), kind="interval", every=2, every_unit="hours")
    assert schedule.plan()["every"] == 7200
    assert schedule.next_run_at == T0 + dt.timedelta(hours=2)
    assert schedule.describe() == "Every 2 hours"


def test_calendar_next_run_at_is_computed_on_save(clock):
    schedule = Schedule.objects.create(job=job(), kind="calendar", weekdays=[4], times=["18:00"],
                                       timezone="Europe/Madrid")
    assert schedule.next_run_at == dt.datetime(2026, 5, 8, 16, 0, tzinfo=dt.UTC)  # Friday 18:00 in Madrid
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == schedule.next_run_at
    assert schedule.describe() == "Every Friday at 18:00 (Europe/Madrid)"


def test_cron_next_run_at_is_computed_on_save(clock):
    schedule = Schedule.objects.create(job=job(), kind="calendar", cron="30 6 * * *", timezone="Asia/Tokyo")
    assert schedule.next_run_at == next_fire(schedule.plan(), T0)
    assert schedule.next_run_at == dt.datetime(2026, 5, 4, 21, 30, tzinfo=dt.UTC)


def test_editing_the_plan_recomputes_next_run_at(clock):
    schedule = Schedule.objects.create(job=job(), kind="interval", every=1, every_unit="hours")
    clock.advance(minutes=10)
    schedule.every, schedule.every_unit = 15, "minutes"
    schedule.save()
    assert schedule.next_run_at == T0 + dt.timedelta(minutes=25)


def test_saving_an_unchanged_interval_keeps_its_slots(clock):
    schedule = Schedule.objects.create(job=job(), kind="interval", every=1, every_unit="hours")
    clock.advance(minutes=10)
    reloaded = Schedule.objects.get(pk=schedule.pk)
    reloaded.catch_up = Schedule.CATCH_UP_SKIP
    reloaded.save()
    assert reloaded.anchor_at == T0
    assert reloaded.next_run_at == T0 + dt.timedelta(hours=1)


def test_a_disabled_schedule_has_no_next_run(clock):
    schedule = Schedule.objects.create(job=job(), kind="interval", every=1, every_unit="hours")
    schedule.kind = Schedule.DISABLED
    schedule.save()
    assert Schedule.objects.get(pk=schedule.pk).next_run_at is None
    assert schedule.describe() == "By hand only"


def test_a_schedule_past_its_end_has_no_next_run(clock):
    schedule = Schedule.objects.create(job=job(), kind="interval", every=1, every_unit="hours",
                                       ends_at=T0 - dt.timedelta(minutes=1))
    assert schedule.next_run_at is None


def test_a_schedule_with_a_future_start_first_runs_at_the_start(clock):
    start = T0 + dt.timedelta(days=3, minutes=7)
    schedule = Schedule.objects.create(job=job(), kind="interval", every=1, every_unit="hours", starts_at=start)
    assert schedule.next_run_at == start


# --- inactive jobs ------------------------------------------------------------------------------------------------


def test_an_inactive_jobs_schedule_has_no_next_run(clock):
    schedule = Schedule.objects.create(job=job(active=False), kind="interval", every=5, every_unit="minutes")
    assert schedule.next_run_at is None
    assert Schedule.objects.get(pk=schedule.pk).next_run_at is None


def test_deactivating_the_job_clears_the_next_run(clock):
    scheduled = job()
    schedule = Schedule.objects.create(job=scheduled, kind="interval", every=1, every_unit="hours")
    assert schedule.next_run_at is not None
    scheduled.active = False
    scheduled.save()
    assert Schedule.objects.get(pk=schedule.pk).next_run_at is None


def test_reactivating_the_job_schedules_the_next_future_slot_not_a_missed_one(clock):
    scheduled = job()
    schedule = Schedule.objects.create(job=scheduled, kind="interval", every=1, every_unit="hours")
    clock.advance(minutes=10)
    scheduled.active = False
    scheduled.save()
    now = clock.advance(hours=5, minutes=20)  # T0 + 5:30; the slots at 1:00 ... 5:00 were missed
    scheduled.active = True
    scheduled.save()
    next_run_at = Schedule.objects.get(pk=schedule.pk).next_run_at
    assert next_run_at > now
    assert next_run_at == T0 + dt.timedelta(hours=6)


def test_reactivating_a_calendar_job_schedules_the_next_future_slot(clock):
    scheduled = job(active=False)
    schedule = Schedule.objects.create(job=scheduled, kind="calendar", weekdays=list(range(7)), times=["09:00"],
                                       timezone="UTC")
    assert schedule.next_run_at is None
    now = clock.advance(days=2)
    scheduled.active = True
    scheduled.save()
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == dt.datetime(2026, 5, 7, 9, 0, tzinfo=dt.UTC)
    assert Schedule.objects.get(pk=schedule.pk).next_run_at > now


def test_reactivating_with_the_real_clock_gives_a_future_next_run():
    scheduled = job(active=False)
    schedule = Schedule.objects.create(job=scheduled, kind="interval", every=30, every_unit="seconds")
    Schedule.objects.filter(pk=schedule.pk).update(anchor_at=timezone.now() - dt.timedelta(days=1))
    scheduled.active = True
    scheduled.save()
    assert Schedule.objects.get(pk=schedule.pk).next_run_at > timezone.now()


# --- switching kinds ----------------------------------------------------------------------------------------------


def test_switching_from_disabled_to_interval_never_gives_a_past_next_run(clock):
    schedule = Schedule.objects.create(job=job(), kind="disabled", every=1, every_unit="hours")
    now = clock.advance(days=3, minutes=17)
    reloaded = Schedule.objects.get(pk=schedule.pk)
    reloaded.kind = Schedule.INTERVAL
    reloaded.save()
    assert reloaded.next_run_at > now
    assert reloaded.next_run_at == now + dt.timedelta(hours=1)


def test_interval_disabled_then_enabled_again_never_gives_a_past_next_run(clock):
    schedule = Schedule.objects.create(job=job(), kind="interval", every=1, every_unit="hours")
    clock.advance(minutes=5)
    schedule.kind = Schedule.DISABLED
    schedule.save()
    now = clock.advance(hours=7, minutes=42)
    reloaded = Schedule.objects.get(pk=schedule.pk)
    reloaded.kind = Schedule.INTERVAL
    reloaded.save()
    assert reloaded.next_run_at > now
    assert reloaded.next_run_at - now <= dt.timedelta(hours=1)


def test_switching_from_disabled_to_interval_with_a_past_start_gives_a_future_slot(clock):
    schedule = Schedule.objects.create(job=job(), kind="disabled")
    now = clock.advance(hours=2)
    schedule.kind, schedule.every, schedule.every_unit = Schedule.INTERVAL, 45, "minutes"
    schedule.starts_at = T0 - dt.timedelta(days=1)
    schedule.save()
    assert schedule.next_run_at > now
    assert (schedule.next_run_at - schedule.starts_at) % dt.timedelta(minutes=45) == dt.timedelta(0)


# --- automatic ----------------------------------------------------------------------------------------------------


def test_automatic_follows_the_plan_its_action_declares(clock, declaring_actions):
    scheduled = make_job("auto", (10, "testing.echo", {}), (20, "testing.auto_plan", {}))
    schedule = Schedule.objects.create(job=scheduled, kind="automatic")
    assert schedule.plan()["type"] == "interval"
    assert schedule.plan()["every"] == 3600
    assert schedule.next_run_at == T0 + dt.timedelta(hours=1)
    assert schedule.describe() == "Every hour"
    schedule.full_clean()


def test_automatic_uses_the_first_declaring_active_line(clock, declaring_actions):
    scheduled = make_job("auto-first", (5, "testing.auto_plan", {}, False), (10, "testing.auto_calendar", {}),
                         (20, "testing.auto_plan", {}))
    schedule = Schedule.objects.create(job=scheduled, kind="automatic", timezone="Europe/Madrid")
    assert schedule.plan()["cron"] == "0 3 * * *"
    assert schedule.describe() == "At 03:00 — cron 0 3 * * * (Europe/Madrid)"
    assert schedule.next_run_at == dt.datetime(2026, 5, 5, 1, 0, tzinfo=dt.UTC)  # 03:00 in Madrid


def test_automatic_without_a_declaring_action_says_so_and_never_fires(clock):
    schedule = Schedule.objects.create(job=job(), kind="automatic")
    assert schedule.describe() == "Automatic, but no action of this job declares a plan"
    assert schedule.describe().startswith("Automatic, but no action")
    assert schedule.plan() is None
    assert schedule.next_run_at is None
    schedule.full_clean()


def test_automatic_keeps_the_schedule_bounds(clock, declaring_actions):
    scheduled = make_job("auto-bounded", (10, "testing.auto_plan", {}))
    start = T0 + dt.timedelta(days=1)
    schedule = Schedule.objects.create(job=scheduled, kind="automatic", starts_at=start)
    assert schedule.plan()["start"] == start
    assert schedule.next_run_at == start


def test_saving_the_job_does_not_postpone_an_automatic_interval(clock, declaring_actions):
    scheduled = make_job("auto-anchored", (10, "testing.auto_plan", {}))
    schedule = Schedule.objects.create(job=scheduled, kind="automatic")
    assert schedule.next_run_at == T0 + dt.timedelta(hours=1)
    clock.advance(minutes=40)
    scheduled.name = "Renamed"
    scheduled.save()
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == T0 + dt.timedelta(hours=1)
