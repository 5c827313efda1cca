"""Several schedules in definition files (jobs/definitions.py): ``schedules:``, the contract's ``schedule:``,
their names and values, and the versions that record them (jobs/versions.py)."""
from __future__ import annotations

import pytest
import yaml

from jobs import versions
from jobs.definitions import DefinitionError, export_jobs, import_jobs
from jobs.models import Action, Job, Schedule
from tests.jobs.test_definitions_schedule import dump
from tests.jobs.test_definitions_schedule import job_doc as one_job

pytestmark = pytest.mark.django_db

PARAMS = [{"name": "days", "type": "int", "default": 7}, {"name": "region", "type": "choice",
                                                          "choices": ["north", "south"]}]


@pytest.fixture(autouse=True)
def actions():
    Action.objects.sync_with_registry()


def job_doc(**fields) -> dict:
    return one_job("report", params=PARAMS, **fields)


def exported() -> dict:
    [document] = yaml.safe_load(export_jobs(Job.objects.all()))["jobs"]
    return document


TWO = [{"name": "north", "type": "calendar", "cron": "0 6 * * *", "timezone": "Europe/Madrid",
        "parameters": {"region": "north"}},
       {"name": "south", "type": "interval", "every": 3600, "timezone": "America/Santiago",
        "parameters": {"region": "south", "days": 30}}]


def test_several_schedules_are_imported_and_exported_with_their_names_and_values():
    assert import_jobs(dump(job_doc(schedules=TWO)))["created"] == ["report"]
    job = Job.objects.get(identifier="report")
    assert [(s.name, s.kind, s.timezone, s.parameters) for s in job.schedules.all()] == [
        ("north", "calendar", "Europe/Madrid", {"region": "north"}),
        ("south", "interval", "America/Santiago", {"region": "south", "days": 30})]
    document = exported()
    assert "schedule" not in document
    assert [(s["name"], s["type"], s["parameters"]) for s in document["schedules"]] == [
        ("north", "calendar", {"region": "north"}), ("south", "interval", {"region": "south", "days": 30})]
    assert import_jobs(export_jobs(Job.objects.all()))["unchanged"] == ["report"]


def test_one_plain_schedule_is_written_as_the_contracts_schedule_key():
    import_jobs(dump(job_doc(schedule={"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid"})))
    document = exported()
    assert "schedules" not in document
    assert document["schedule"]["cron"] == "0 18 * * 5"
    # One schedule with a name (or values) needs the list: the single key would lose them.
    Schedule.objects.update(name="friday")
    assert exported()["schedules"][0]["name"] == "friday"


def test_a_reimport_keeps_the_row_of_a_schedule_of_the_same_name_and_drops_the_others():
    import_jobs(dump(job_doc(schedules=TWO)))
    north = Schedule.objects.get(name="north")
    changed = [{**TWO[1], "parameters": {"region": "south", "days": 1}}, {**TWO[0], "cron": "0 7 * * *"}]
    assert import_jobs(dump(job_doc(schedules=changed)))["updated"] == ["report"]
    assert Schedule.objects.get(name="north").pk == north.pk
    assert Schedule.objects.get(name="north").cron == "0 7 * * *"
    assert import_jobs(dump(job_doc(schedules=[TWO[0]])))["updated"] == ["report"]
    assert list(Schedule.objects.values_list("name", flat=True)) == ["north"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"schedule": {"type": "interval", "every": 60}, "schedules": TWO},
     "job report: give schedule (one) or schedules (a list), not both"),
    ({"schedules": [TWO[0], {**TWO[1], "name": "north"}]},
     "job report: schedules[1]: name 'north' is given to two schedules"),
    ({"schedules": [TWO[0], {**TWO[1], "parameters": {"days": "lots"}}]},
     "job report: schedules[1]: parameters: schedule 'south': parameter days: must be a whole number"),
    ({"schedules": [{**TWO[0], "parameters": {"colour": "red"}}]},
     "job report: schedules[0]: parameters: schedule 'north': parameter colour: unknown parameter"),
    ({"schedules": [{**TWO[0], "parameters": ["region"]}]},
     "job report: schedules[0]: parameters must be a mapping of name: value"),
    ({"schedules": {"north": TWO[0]}}, "job report: schedules must be a list"),
])
def test_bad_schedules_are_refused_naming_the_job_the_schedule_and_the_rule(fields, message):
    with pytest.raises(DefinitionError) as caught:
        import_jobs(dump(job_doc(**fields)))
    assert str(caught.value) == message
    assert not Job.objects.exists()


def test_a_version_records_the_schedules_and_restoring_it_brings_them_back(admin_user):
    import_jobs(dump(job_doc(schedules=TWO)))
    job = Job.objects.get(identifier="report")
    first = versions.latest(job)
    assert "name: south" in first.definition and "days: 30" in first.definition
    Schedule.objects.filter(name="south").delete()
    second = versions.record(job, admin_user, "dropped south")
    assert any(line.kind == "removed" and "south" in line.text for line in versions.diff(first, second))
    versions.restore(job, first, admin_user)
    assert sorted(job.schedules.values_list("name", flat=True)) == ["north", "south"]
