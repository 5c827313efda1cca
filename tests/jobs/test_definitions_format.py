"""Definition files are lossless, versioned and described by a JSON Schema (issue 14, items 1 and 2).

Every field of Job, JobLine, Schedule and FilterTemplate is in the file unless it is listed here as
bookkeeping: a field added later that the format misses fails this suite.
"""
from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from jsonschema import Draft202012Validator

from jobs import definitions
from jobs.definition_schema import SCHEMA_PATH, schema_errors
from jobs.definitions import DefinitionError, export_jobs, import_jobs
from jobs.models import Action, Domain, FilterTemplate, Job, JobLine, Schedule
from tests.helpers import make_job

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parent.parent.parent
# The only fields a file leaves out, and why: the database's own keys and times, the revision token of plans,
# the job a line or schedule belongs to (the nesting says it), and the schedule's runtime state (see the schema).
BOOKKEEPING = {
    Job: {"id", "created_at", "updated_at", "revision"},
    JobLine: {"id", "job"},
    Schedule: {"id", "job", "anchor_at", "next_run_at", "last_run_at"},
    FilterTemplate: {"id"},
}
MADRID = dt.timezone(dt.timedelta(hours=1))


def concrete_fields(model) -> set[str]:
    return {field.name for field in model._meta.get_fields() if field.concrete}


def export_all() -> str:
    return export_jobs(Job.objects.order_by("identifier"))


def empty_the_database() -> None:
    """What another installation has before the import: its domains, users and actions, none of our definitions."""
    Job.objects.all().delete()
    FilterTemplate.objects.all().delete()


# --- every field is in the format ---------------------------------------------------------------------------------


def test_the_format_names_every_field_but_the_bookkeeping():
    assert set(definitions.JOB_FIELDS) == concrete_fields(Job) - BOOKKEEPING[Job]
    assert set(definitions.JOB_BOOKKEEPING) == BOOKKEEPING[Job]
    assert set(definitions.LINE_FIELDS) == concrete_fields(JobLine) - BOOKKEEPING[JobLine]
    assert set(definitions.SCHEDULE_KEYS_BY_FIELD) == concrete_fields(Schedule) - BOOKKEEPING[Schedule]
    assert set(definitions.TEMPLATE_FIELDS) == concrete_fields(FilterTemplate) - BOOKKEEPING[FilterTemplate]


@pytest.fixture
def every_field(acme, django_user_model):
    """Three jobs that together give every field a value other than its default."""
    Action.objects.sync_with_registry()
    service = django_user_model.objects.create_user("svc-reports", "svc@example.com", "pw")
    template = FilterTemplate.objects.create(
        name="Acme users", model="auth.User", domain=acme, domain_path="memberships__domain",
        definition={"is_active": True}, module="people")
    per_domain = Job(
        identifier="everything", name="Everything", description="All of it\nin two lines", active=False,
        stops_on_error=False, module="reports", queue="reports-q", job_type="integration", execution="per_domain",
        run_as=service, required_permission="jobs.view_job", destructive=True, external=True, concurrency="parallel",
        time_limit=600, idempotent=True, retries=3, retry_delay=30, owner="Ops team", expected_runtime="5 minutes",
        expected_result="A report", troubleshooting="See the log",
        report={"recipients": ["ops@example.com"], "when": "always"},
        params=[{"name": "code", "type": "str", "required": True, "pattern": "[A-Z]{3}", "help": "Three letters",
                 "label": "Code"}, {"name": "days", "type": "int", "default": 7}])
    per_domain.full_clean()  # as the admin and import store it (params in their checked form)
    per_domain.save()
    JobLine.objects.create(job=per_domain, line_no=5, active=False, is_filter=True, filter_template=template,
                           filter_definition={"username__startswith": "${param.code}"}, module="people")
    JobLine.objects.create(job=per_domain, line_no=10, action=Action.objects.get(name="testing.echo"),
                           parameters={"text": "${param.days}", "repeat": 2}, module="reports")
    Schedule.objects.create(job=per_domain, kind="interval", every=2, every_unit="hours", timezone="Europe/Madrid",
                            starts_at=dt.datetime(2030, 1, 1, 8, 0, tzinfo=MADRID),
                            ends_at=dt.datetime(2031, 1, 1, 8, 0, tzinfo=MADRID), catch_up="skip")
    # A second schedule of the same job, with a name and values of its own (the file then lists them all).
    Schedule.objects.create(job=per_domain, name="monthly", kind="calendar", cron="0 6 1 * *",
                            timezone="America/New_York", parameters={"code": "ABC", "days": 30})
    in_domain = make_job("in-acme", (10, "core.sleep", {"seconds": 0}), domain=acme)
    Schedule.objects.create(job=in_domain, kind="calendar", weekdays=[0, 4], times=["08:00"], timezone="UTC")
    by_cron = make_job("by-cron", (10, "core.sleep", {"seconds": 1}))
    Schedule.objects.create(job=by_cron, kind="calendar", cron="0 18 * * 5", timezone="UTC")
    return [per_domain, in_domain, by_cron]


def natural(obj) -> dict:
    """Every field of ``obj`` but the bookkeeping, relations by the name they have in every installation."""
    values = {}
    for name in concrete_fields(type(obj)) - BOOKKEEPING[type(obj)]:
        value = getattr(obj, name)
        if isinstance(value, Domain | FilterTemplate | Action):
            value = getattr(value, "slug", None) or value.name
        elif hasattr(value, "get_username"):
            value = value.get_username()
        values[name] = value
    return values


def everything() -> dict:
    return {
        "jobs": {job.identifier: natural(job) for job in Job.objects.all()},
        "lines": {(line.job.identifier, line.line_no): natural(line) for line in JobLine.objects.all()},
        "schedules": {(schedule.job.identifier, schedule.name): natural(schedule)
                      for schedule in Schedule.objects.all()},
        "templates": {template.name: natural(template) for template in FilterTemplate.objects.all()},
    }


def test_the_fixture_sets_every_field_so_the_round_trip_below_covers_it(every_field):
    """A new field must be given a value here; otherwise the round trip could not tell that it was lost."""
    for model, rows in ((Job, Job.objects.all()), (JobLine, JobLine.objects.all()),
                        (Schedule, Schedule.objects.all()), (FilterTemplate, FilterTemplate.objects.all())):
        for name in concrete_fields(model) - BOOKKEEPING[model]:
            default = model._meta.get_field(name).get_default()
            assert any(getattr(row, model._meta.get_field(name).attname) not in (default, None, "", [], {})
                       or (isinstance(default, bool) and getattr(row, name) is not default) for row in rows), \
                f"no {model.__name__} of the fixture sets {name}"


def test_export_then_import_into_an_empty_database_gives_every_field_back(every_field):
    before = everything()
    exported = export_all()
    empty_the_database()
    report = import_jobs(exported)
    assert report["created"] == ["filter template Acme users", "by-cron", "everything", "in-acme"]
    assert everything() == before
    assert export_all() == exported


def test_a_destructive_job_keeps_its_confirmation_on_another_installation():
    job = make_job("wipe", (10, "core.sleep", {"seconds": 0}), destructive=True, external=True)
    assert job.confirmation_reasons()
    exported = export_jobs(Job.objects.filter(pk=job.pk))
    empty_the_database()
    import_jobs(exported)
    moved = Job.objects.get(identifier="wipe")
    assert moved.confirmation_reasons() == ["it deletes or overwrites data", "it calls an external system"]
    with pytest.raises(ValidationError, match="Type the job's identifier"):
        moved.clean_confirmation(None)


def test_the_filter_templates_the_lines_use_travel_with_the_jobs(acme):
    Action.objects.sync_with_registry()
    template = FilterTemplate.objects.create(name="Staff", model="auth.User", definition={"is_staff": True},
                                             domain=acme, domain_path="memberships__domain", module="people")
    FilterTemplate.objects.create(name="Unused", model="auth.User")
    job = make_job("staff-mail", (20, "testing.echo", {"text": "hi"}))
    JobLine.objects.create(job=job, line_no=10, is_filter=True, filter_template=template)
    exported = export_all()
    assert yaml.safe_load(exported)["filter_templates"] == [{
        "name": "Staff", "model": "auth.User", "domain": "acme", "domain_path": "memberships__domain",
        "definition": {"is_staff": True}, "module": "people"}]
    empty_the_database()
    import_jobs(exported)
    assert JobLine.objects.get(line_no=10).filter_template.definition == {"is_staff": True}
    assert not FilterTemplate.objects.filter(name="Unused").exists()


def test_an_imported_filter_template_updates_the_one_of_the_same_name():
    FilterTemplate.objects.create(name="Staff", model="auth.User", definition={"is_staff": False})
    text = "filter_templates:\n  - {name: Staff, model: auth.User, definition: {is_staff: true}}\njobs: []\n"
    assert import_jobs(text)["updated"] == ["filter template Staff"]
    assert FilterTemplate.objects.get(name="Staff").definition == {"is_staff": True}
    assert import_jobs(text) == {"created": [], "updated": [], "unchanged": [], "skipped": []}


@pytest.mark.parametrize(("text", "message"), [
    ("filter_templates:\n  - {name: X, model: no.Such}\njobs: []", "filter template X: model:"),
    ("filter_templates:\n  - {name: X, model: auth.User, domain: nowhere}\njobs: []",
     "filter template X: unknown domain 'nowhere'"),
    ("filter_templates:\n  - {name: X, model: auth.User, colour: red}\njobs: []",
     "filter template X: unknown keys colour"),
    ("filter_templates: {name: X}\njobs: []", "filter_templates must be a list"),
    ("jobs:\n  - {identifier: a, run_as: nobody}", "job a: run_as: unknown user 'nobody'"),
    ("jobs:\n  - {identifier: a, destructive: yes please}", "job a: destructive must be true or false"),
    ("jobs:\n  - {identifier: a, domain: acme, execution: per_domain}", "job a: execution: Only a global job"),
])
def test_errors_in_the_new_fields_name_the_job_or_template(acme, text, message):
    with pytest.raises(DefinitionError) as info:
        import_jobs(text)
    assert message in str(info.value)
    assert not Job.objects.exists() and not FilterTemplate.objects.exists()


# --- the version and the schema -----------------------------------------------------------------------------------


def test_the_schema_is_a_valid_json_schema_and_follows_the_models():
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    job = schema["$defs"]["job"]["properties"]
    assert set(job) == set(definitions.JOB_KEYS)
    for name in ("job_type", "execution", "concurrency"):
        assert job[name]["enum"] == [value for value, _ in Job._meta.get_field(name).choices], name
    assert set(schema["$defs"]["line"]["properties"]) == set(definitions.LINE_FIELDS)
    assert set(schema["$defs"]["schedule"]["properties"]) == set(definitions.SCHEDULE_KEYS)
    assert set(schema["$defs"]["filter_template"]["properties"]) == set(definitions.TEMPLATE_FIELDS)
    assert set(schema["$defs"]["schedule"]["properties"]["type"]["enum"]) == {kind for kind, _ in Schedule.KINDS}


def test_the_schema_validates_the_demo_jobs_and_an_export_with_every_field(every_field):
    assert schema_errors(yaml.safe_load((REPO / "demo" / "jobs.yaml").read_text())) == []
    exported = yaml.safe_load(export_all())
    assert exported["version"] == 1
    assert schema_errors(exported) == []


CONTRACT_EXAMPLE = textwrap.dedent("""\
    jobs:
      - identifier: weekly-report
        name: Weekly report
        description: Sends the weekly report
        domain: acme
        active: true
        stops_on_error: true
        module: reports
        params:
          - {name: days, type: int, default: 7}
          - {name: region, type: choice, choices: [north, south], required: true}
        schedule:
          type: calendar
          cron: "0 18 * * 5"
          timezone: Europe/Madrid
        report: {recipients: [ops@example.com], when: failure}
        lines:
          - line_no: 10
            action: core.shell
            active: true
            parameters: {command: "echo ${param.days} ${today}"}
""")


def test_the_contract_example_without_version_follows_the_schema_and_imports(acme):
    Action.objects.sync_with_registry()
    assert schema_errors(yaml.safe_load(CONTRACT_EXAMPLE)) == []
    assert import_jobs(CONTRACT_EXAMPLE)["created"] == ["weekly-report"]
    assert import_jobs("version: 1\n" + CONTRACT_EXAMPLE)["unchanged"] == ["weekly-report"]


@pytest.mark.parametrize(("text", "message"), [
    ("jobs:\n  - {identifier: a, retries: '5'}", "jobs[0].retries: '5' is not of type 'integer'"),
    ("jobs:\n  - {identifier: a, name: 5}", "jobs[0].name: 5 is not of type 'string', 'null'"),
    ("jobs:\n  - {identifier: a, retry_delay: 1.5}", "jobs[0].retry_delay: 1.5 is not of type 'integer'"),
    ("jobs:\n  - identifier: a\n  - identifier: b\n    lines: [{line_no: 1, action: core.sleep, module: 5}]",
     "jobs[1].lines[0].module: 5 is not of type 'string', 'null'"),
    ("jobs:\n  - {identifier: a, schedule: {type: interval, every: 60, times: [800]}}",
     "jobs[0].schedule: times[0]: 800 is not of type 'string'"),
])
def test_what_only_the_schema_catches_is_named_by_its_path_and_rule(text, message):
    Action.objects.sync_with_registry()
    with pytest.raises(DefinitionError) as info:
        import_jobs(text)
    assert message in str(info.value)
    assert not Job.objects.exists()


@pytest.mark.parametrize(("text", "message"), [
    ("version: 2\njobs: []", "version: 2 is not a format this installation reads (it reads 1)"),
    ("version: true\njobs: []", "version: True is not a format"),
    ("version: 1\njobs: []\nextra: 1", "unknown top-level keys extra"),
])
def test_an_unknown_version_is_refused(text, message):
    with pytest.raises(DefinitionError) as info:
        import_jobs(text)
    assert message in str(info.value)


def test_a_file_without_version_is_version_1_and_missing_fields_take_their_defaults():
    Action.objects.sync_with_registry()
    import_jobs("jobs:\n  - {identifier: old, lines: [{line_no: 1, action: core.sleep}]}\n")
    job = Job.objects.get(identifier="old")
    assert (job.job_type, job.execution, job.concurrency, job.retries, job.retry_delay, job.destructive,
            job.run_as, job.time_limit) == ("manual", "installation", "one", 0, 60, False, None, None)


def test_a_rolled_back_import_keeps_nothing():
    """import_jobs is one transaction also inside the caller's (the dry run relies on it)."""
    with transaction.atomic():
        import_jobs("jobs: [{identifier: a}]", dry_run=True)
        assert not Job.objects.exists()
