"""The `schedule` of job definition files (jobs/definitions.py): import, export, round trips and errors."""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import yaml

from jobs.definitions import DefinitionError, export_jobs, import_jobs
from jobs.models import Action, Job, Schedule

pytestmark = pytest.mark.django_db

MADRID = ZoneInfo("Europe/Madrid")


@pytest.fixture(autouse=True)
def actions():
    Action.objects.sync_with_registry()


def job_doc(identifier: str = "job-a", **fields) -> dict:
    return {"identifier": identifier, "name": identifier.title(),
            "lines": [{"line_no": 10, "action": "core.sleep", "parameters": {"seconds": 0}}], **fields}


def dump(*docs: dict) -> str:
    return yaml.safe_dump({"jobs": list(docs)}, sort_keys=False)


def export_all() -> str:
    return export_jobs(Job.objects.order_by("identifier"))


def exported_schedules() -> dict[str, dict | None]:
    return {doc["identifier"]: doc.get("schedule") for doc in yaml.safe_load(export_all())["jobs"]}


def schedule_of(identifier: str = "job-a") -> Schedule:
    return Schedule.objects.get(job__identifier=identifier)


def import_error(text: str) -> str:
    with pytest.raises(DefinitionError) as caught:
        import_jobs(text)
    return str(caught.value)


# --- import and export of each kind -------------------------------------------------------------------------------


def test_interval_in_seconds_is_stored_in_a_readable_unit_and_exported_as_seconds():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 900})))
    schedule = schedule_of()
    assert (schedule.kind, schedule.every, schedule.every_unit) == ("interval", 15, "minutes")
    assert exported_schedules()["job-a"]["every"] == 900
    assert exported_schedules()["job-a"]["type"] == "interval"


@pytest.mark.parametrize(("every", "stored"), [
    (90, (90, "seconds")), (60, (1, "minutes")), (7200, (2, "hours")), (86400, (1, "days")), (1, (1, "seconds")),
])
def test_interval_units(every, stored):
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": every})))
    schedule = schedule_of()
    assert (schedule.every, schedule.every_unit) == stored
    assert exported_schedules()["job-a"]["every"] == every


def test_calendar_cron_with_timezone():
    import_jobs(dump(job_doc(schedule={"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid"})))
    schedule = schedule_of()
    assert (schedule.kind, schedule.cron, schedule.timezone) == ("calendar", "0 18 * * 5", "Europe/Madrid")
    assert schedule.weekdays == [] and schedule.times == []
    assert exported_schedules()["job-a"] == {"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid",
                                            "start": None, "end": None, "catch_up": "once"}
    local = schedule.next_run_at.astimezone(MADRID)
    assert (local.weekday(), local.strftime("%H:%M")) == (4, "18:00")


def test_calendar_weekdays_and_times():
    import_jobs(dump(job_doc(schedule={"type": "calendar", "weekdays": ["mon", "fri"], "times": ["18:30", "08:00"],
                                       "timezone": "Europe/Madrid"})))
    schedule = schedule_of()
    assert (schedule.kind, schedule.cron) == ("calendar", "")
    assert sorted(schedule.weekdays) == [0, 4]
    assert sorted(schedule.times) == ["08:00", "18:30"]
    assert exported_schedules()["job-a"] == {
        "type": "calendar", "weekdays": ["mon", "fri"], "times": ["08:00", "18:30"], "timezone": "Europe/Madrid",
        "start": None, "end": None, "catch_up": "once"}
    assert schedule.describe() == "Every Monday, Friday at 08:00, 18:30 (Europe/Madrid)"


@pytest.mark.parametrize("weekdays", [["Monday", "FRIDAY"], [0, 4], ["fri", "mon"], ["Mon", 4]])
def test_weekdays_may_be_names_or_numbers_and_export_as_short_names(weekdays):
    import_jobs(dump(job_doc(schedule={"type": "calendar", "weekdays": weekdays, "times": ["08:00"]})))
    assert sorted(schedule_of().weekdays) == [0, 4]
    assert exported_schedules()["job-a"]["weekdays"] == ["mon", "fri"]


def test_start_and_end_are_read_in_the_schedule_time_zone_and_exported_with_their_offset():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 3600, "timezone": "Europe/Madrid",
                                       "start": "2030-06-01T08:00", "end": "2030-12-01T08:00"})))
    schedule = schedule_of()
    assert schedule.starts_at == dt.datetime(2030, 6, 1, 6, 0, tzinfo=dt.UTC)  # summer: UTC+2
    assert schedule.ends_at == dt.datetime(2030, 12, 1, 7, 0, tzinfo=dt.UTC)  # winter: UTC+1
    exported = exported_schedules()["job-a"]
    assert exported["start"] == "2030-06-01T08:00:00+02:00"
    assert exported["end"] == "2030-12-01T08:00:00+01:00"
    assert schedule.next_run_at == schedule.starts_at


def test_start_with_an_explicit_offset_keeps_it():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 3600, "timezone": "Europe/Madrid",
                                       "start": "2030-06-01T08:00:00+00:00"})))
    assert schedule_of().starts_at == dt.datetime(2030, 6, 1, 8, 0, tzinfo=dt.UTC)
    assert exported_schedules()["job-a"]["start"] == "2030-06-01T10:00:00+02:00"


def test_catch_up_skip_is_imported_and_exported():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 600, "catch_up": "skip"})))
    assert schedule_of().catch_up == "skip"
    assert exported_schedules()["job-a"]["catch_up"] == "skip"


def test_catch_up_once_is_the_default_and_is_exported_like_every_field():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 600})))
    assert schedule_of().catch_up == "once"
    assert exported_schedules()["job-a"]["catch_up"] == "once"


@pytest.mark.parametrize(("every", "unit", "stored"), [(3600, "minutes", (60, "minutes")), (3600, None, (1, "hours")),
                                                       (120, "seconds", (120, "seconds"))])
def test_the_unit_an_interval_is_shown_in_is_kept(every, unit, stored):
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": every, "every_unit": unit})))
    assert (schedule_of().every, schedule_of().every_unit) == stored
    assert exported_schedules()["job-a"]["every_unit"] == stored[1]


def test_every_must_be_a_whole_number_of_its_unit():
    message = import_error(dump(job_doc(schedule={"type": "interval", "every": 90, "every_unit": "minutes"})))
    assert message == "job job-a: schedule: every: 90 seconds is not a whole number of minutes"


def test_a_schedule_without_timezone_uses_the_site_time_zone(settings):
    import_jobs(dump(job_doc(schedule={"type": "calendar", "cron": "0 6 * * *"})))
    assert schedule_of().timezone == settings.TIME_ZONE
    assert exported_schedules()["job-a"]["timezone"] == settings.TIME_ZONE


def test_a_job_without_schedule_exports_none_and_has_no_schedule_row():
    import_jobs(dump(job_doc()))
    assert not Schedule.objects.exists()
    assert exported_schedules() == {"job-a": None}


def test_imported_schedule_has_its_next_run_computed():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 900}),
                     job_doc("job-off", active=False, schedule={"type": "interval", "every": 900})))
    assert schedule_of().next_run_at is not None
    assert schedule_of().next_run_at == schedule_of().anchor_at + dt.timedelta(seconds=900)
    assert schedule_of("job-off").next_run_at is None


def test_automatic_schedule_is_imported_and_exported():
    import_jobs(dump(job_doc(schedule={"type": "automatic", "timezone": "UTC"})))
    assert schedule_of().kind == "automatic"
    assert exported_schedules()["job-a"] == {"type": "automatic", "timezone": "UTC", "start": None, "end": None,
                                            "catch_up": "once"}


# --- round trips and re-imports -----------------------------------------------------------------------------------

ALL_KINDS = [
    job_doc("a-interval", schedule={"type": "interval", "every": 900}),
    job_doc("b-cron", schedule={"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid"}),
    job_doc("c-days", schedule={"type": "calendar", "weekdays": ["mon", "fri"], "times": ["08:00", "18:30"],
                                "timezone": "America/New_York"}),
    job_doc("d-bounded", schedule={"type": "interval", "every": 7200, "timezone": "Europe/Madrid",
                                   "start": "2030-01-01T00:00", "end": "2031-01-01T00:00", "catch_up": "skip"}),
    job_doc("e-by-hand"),
]


def test_export_import_export_is_identical():
    import_jobs(dump(*ALL_KINDS))
    exported = export_all()
    Job.objects.all().delete()
    assert not Schedule.objects.exists()
    assert import_jobs(exported)["created"] == ["a-interval", "b-cron", "c-days", "d-bounded", "e-by-hand"]
    assert export_all() == exported


def test_importing_the_export_changes_nothing():
    import_jobs(dump(*ALL_KINDS))
    exported = export_all()
    before = list(Schedule.objects.order_by("pk").values())
    report = import_jobs(exported)
    assert report["unchanged"] == ["a-interval", "b-cron", "c-days", "d-bounded", "e-by-hand"]
    assert report["updated"] == [] and report["created"] == []
    assert list(Schedule.objects.order_by("pk").values()) == before


def test_importing_the_same_file_twice_is_unchanged():
    text = dump(*ALL_KINDS)
    assert import_jobs(text)["created"] == ["a-interval", "b-cron", "c-days", "d-bounded", "e-by-hand"]
    before = list(Schedule.objects.order_by("pk").values())
    report = import_jobs(text)
    assert report["unchanged"] == ["a-interval", "b-cron", "c-days", "d-bounded", "e-by-hand"]
    assert report["updated"] == []
    assert list(Schedule.objects.order_by("pk").values()) == before  # not even next_run_at moved


def test_changing_the_schedule_updates_it_in_place():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 900})))
    pk = schedule_of().pk
    report = import_jobs(dump(job_doc(schedule={"type": "calendar", "cron": "0 3 * * *", "timezone": "UTC"})))
    assert report["updated"] == ["job-a"]
    schedule = schedule_of()
    assert schedule.pk == pk
    assert (schedule.kind, schedule.cron, schedule.every) == ("calendar", "0 3 * * *", None)
    assert schedule.next_run_at.strftime("%H:%M") == "03:00"


def test_removing_the_schedule_from_the_file_deletes_it():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 900})))
    assert Schedule.objects.count() == 1
    report = import_jobs(dump(job_doc()))
    assert report["updated"] == ["job-a"]
    assert not Schedule.objects.exists()
    assert Job.objects.filter(identifier="job-a").exists()
    assert exported_schedules() == {"job-a": None}


def test_a_null_schedule_deletes_it_too():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 900})))
    import_jobs(dump(job_doc(schedule=None)))
    assert not Schedule.objects.exists()


# --- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("schedule", "field"), [
    ({"type": "calendar", "cron": "61 * * * *"}, "cron"),
    ({"type": "calendar", "cron": "0 18 * * 5 2026"}, "cron"),
    ({"type": "calendar", "cron": "0 18 * * 5", "timezone": "Mars/Olympus"}, "timezone"),
    ({"type": "interval", "every": 900, "timezone": "Europe/"}, "timezone"),
    ({"type": "interval", "every": 0}, "every"),
    ({"type": "interval", "every": -60}, "every"),
    ({"type": "interval", "every": "900"}, "every"),
    ({"type": "interval", "every": 1.5}, "every"),
    ({"type": "interval"}, "every"),
    ({"type": "calendar", "weekdays": ["mon", "funday"], "times": ["08:00"]}, "weekdays"),
    ({"type": "calendar", "weekdays": [7], "times": ["08:00"]}, "weekdays"),
    ({"type": "calendar", "weekdays": [], "times": ["08:00"]}, "weekdays"),
    ({"type": "calendar", "times": ["08:00"]}, "weekdays"),
    ({"type": "calendar", "weekdays": ["mon"], "times": ["25:00"]}, "times"),
    ({"type": "calendar", "weekdays": ["mon"]}, "times"),
    ({"type": "interval", "every": 60, "start": "2030-06-02T08:00", "end": "2030-06-01T08:00"}, "end"),
    ({"type": "interval", "every": 60, "start": "tomorrow morning"}, "start"),
    ({"type": "interval", "every": 60, "catch_up": "sometimes"}, "catch_up"),
    ({"type": "weekly"}, "type"),
    ({"cron": "0 18 * * 5"}, "type"),
    ({"type": "interval", "every": 60, "colour": "red"}, "colour"),
])
def test_bad_schedules_name_the_job_and_the_field_and_import_nothing(schedule, field):
    message = import_error(dump(job_doc("job-bad", schedule=schedule)))
    assert message.startswith("job job-bad: schedule")
    assert re.search(rf"\b{field}", message), message
    assert not Job.objects.exists()
    assert not Schedule.objects.exists()


def test_a_schedule_that_is_not_a_mapping():
    message = import_error(dump(job_doc("job-bad", schedule="every friday")))
    assert message == "job job-bad: schedule: must be a mapping"


def test_a_bad_schedule_in_a_later_job_imports_no_job_at_all():
    text = dump(job_doc("first-good", schedule={"type": "interval", "every": 900}),
                job_doc("second-bad", schedule={"type": "calendar", "cron": "not cron"}))
    message = import_error(text)
    assert message.startswith("job second-bad: schedule")
    assert "cron" in message
    assert not Job.objects.exists()
    assert not Schedule.objects.exists()


def test_a_bad_schedule_leaves_an_existing_job_and_schedule_as_they_were():
    import_jobs(dump(job_doc(schedule={"type": "interval", "every": 900})))
    before_job = Job.objects.values().get()
    before_schedule = Schedule.objects.values().get()
    message = import_error(dump(job_doc(name="Renamed", description="changed", lines=[],
                                        schedule={"type": "interval", "every": 900, "timezone": "Nowhere/Land"})))
    assert message.startswith("job job-a: schedule")
    assert "timezone" in message
    assert Job.objects.values().get() == before_job
    assert Schedule.objects.values().get() == before_schedule
    assert Job.objects.get().lines.count() == 1


def test_a_word_that_only_starts_like_a_day_is_not_a_weekday():
    message = import_error(dump(job_doc(schedule={"type": "calendar", "weekdays": ["monkey"], "times": ["08:00"]})))
    assert "weekdays" in message
