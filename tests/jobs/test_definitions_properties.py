"""Properties of job definition files (jobs/definitions.py): ``import_jobs`` on any document either succeeds or
raises DefinitionError with a message, and after a DefinitionError the database is exactly as before.
A file that imported once imports again without changing anything.

Documents are Python structures dumped with ``yaml.safe_dump`` (mostly plausible jobs, some nonsense) and raw
text. The tests at the end pin the bugs found here (all fixed), each with the inputs that showed it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from django.db import transaction
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from jobs.definitions import DefinitionError, import_jobs
from jobs.models import Action, Domain, FilterTemplate, Job, JobLine, Schedule
from tests.property_support import json_values, prop_settings, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    """A domain, a filter template, the registered actions and one job that a file may update."""
    Action.objects.sync_with_registry()
    Domain.objects.create(name="Acme", slug="acme")
    FilterTemplate.objects.create(name="Users", model="auth.User", definition={"is_active": True})
    import_jobs(yaml.safe_dump({"jobs": [{
        "identifier": "existing", "name": "Existing", "params": [{"name": "days", "type": "int", "default": 7}],
        "schedule": {"type": "interval", "every": 900},
        "lines": [{"line_no": 10, "action": "testing.echo", "parameters": {"text": "${param.days}"}}],
    }]}))


def snapshot() -> tuple:
    """Every row an import may write, in a comparable form."""
    return tuple(list(model.objects.order_by("pk").values()) for model in (Job, JobLine, Schedule))


# --- documents ----------------------------------------------------------------------------------------------------

junk = json_values(max_leaves=6)  # with NaN, Infinity, ints beyond float range and NUL
words = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)  # valid text: NUL is refused
identifier_texts = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)

SPEC_DEFAULTS = {"str": ["", "hello"], "int": [7, "7", 0], "float": [0.5, 2], "bool": [True, "no"],
                 "date": ["2026-11-20"], "datetime": ["2026-11-20T08:30:00+01:00"], "choice": ["north"],
                 "email": ["ops@example.com"], "json": [{"a": [1]}, "[1, 2]"]}


@st.composite
def param_specs(draw) -> list[dict]:
    specs = []
    for name in draw(st.lists(st.sampled_from(["days", "region", "day", "to", "x1"]), unique=True, max_size=3)):
        kind = draw(st.sampled_from(sorted(SPEC_DEFAULTS)))
        spec = {"name": name, "type": kind, "required": draw(st.booleans())}
        if kind == "choice":
            spec["choices"] = ["north", "south"]
        if draw(st.booleans()):
            spec["default"] = draw(st.sampled_from(SPEC_DEFAULTS[kind]))
        if draw(st.booleans()):
            spec["help"] = draw(words)
        specs.append(spec)
    return specs


valid_instants = st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2100, 1, 1))
valid_schedules = st.one_of(
    st.fixed_dictionaries({"type": st.just("interval"), "every": st.sampled_from([60, 900, 3600, 86400, 90061])},
                          optional={"catch_up": st.sampled_from(["once", "skip"]),
                                    "start": valid_instants.map(lambda d: d.isoformat(timespec="minutes"))}),
    st.fixed_dictionaries({"type": st.just("calendar"), "cron": st.sampled_from(["0 18 * * 5", "*/15 * * * *"])},
                          optional={"timezone": st.sampled_from(["UTC", "Europe/Madrid", "America/New_York"])}),
    st.fixed_dictionaries({"type": st.just("calendar"),
                           "weekdays": st.lists(st.sampled_from(["mon", "fri", "Sunday", 0, 6]), min_size=1,
                                                max_size=3),
                           "times": st.lists(st.sampled_from(["08:00", "18:30"]), min_size=1, max_size=2)}),
    st.fixed_dictionaries({"type": st.sampled_from(["disabled", "automatic"])}),
)
# Several schedules: names unique within the job (unnamed ones may be many); their values are drawn per job below.
named_schedules = st.lists(
    st.tuples(valid_schedules, st.sampled_from(["", "", "nightly", "weekly", "Fin de mes"])).map(
        lambda pair: {**pair[0], "name": pair[1]} if pair[1] or len(pair[0]) % 2 else pair[0]),
    max_size=3, unique_by=lambda schedule: schedule.get("name") or object())
valid_reports = st.fixed_dictionaries({"when": st.sampled_from(["always", "failure", "warning", "never"]),
                                       "recipients": st.lists(st.just("ops@example.com"), max_size=2)})
ACTION_PARAMETERS = {
    "testing.echo": {"text": st.sampled_from(["hi", "${today}", "${job.identifier}"]), "repeat": st.integers(0, 5)},
    # Large floats too: PostgreSQL's jsonb writes 7.2e16 back as an integer (BUG 15).
    "testing.typed": {"count": st.integers(-5, 5), "ratio": st.floats(allow_nan=False, allow_infinity=False),
                      "mode": st.sampled_from(["fast", "slow"]), "flag": st.booleans()},
    "core.sleep": {"seconds": st.sampled_from([0, 0.5, "0.1"])},
}
REQUIRED = {"testing.typed": ["count"]}
FILTERS = [{}, {"is_active": True}, {"username__startswith": "a"}, {"groups__name__in": ["ops"]},
           {"date_joined__date__lte": "${today}"}]


@st.composite
def valid_lines(draw) -> list[dict]:
    result = []
    for line_no in draw(st.lists(st.integers(0, 100), unique=True, max_size=3)):
        line: dict[str, Any] = {"line_no": line_no}
        if draw(st.integers(0, 3)) == 0:
            line.update(is_filter=True, filter_template="Users", filter_definition=draw(st.sampled_from(FILTERS)))
        else:
            action = draw(st.sampled_from(sorted(ACTION_PARAMETERS)))
            values = draw(st.fixed_dictionaries({}, optional=ACTION_PARAMETERS[action]))
            for name in REQUIRED.get(action, []):
                values.setdefault(name, 1)
            line.update(action=action, parameters=values)
        if draw(st.booleans()):
            line["active"] = draw(st.booleans())
        result.append(line)
    return result


VALID_JOB_FIELDS = {
    "name": words, "description": words, "domain": st.sampled_from(["acme", None, ""]),
    "active": st.booleans(), "stops_on_error": st.booleans(), "module": words,
    "queue": st.sampled_from(["", "nobody-props"]), "params": param_specs(),
    "schedule": st.one_of(st.none(), valid_schedules), "schedules": named_schedules,
    "report": st.one_of(st.none(), valid_reports), "lines": valid_lines(),
}
WRONG_JOB_FIELDS = {
    "identifier": st.one_of(st.sampled_from(["Bad Id", "", "-x", None]), junk),
    "name": st.one_of(st.just("x" * 201), junk), "domain": st.one_of(st.just("nowhere"), junk),
    "active": junk.filter(lambda v: not isinstance(v, bool)), "queue": st.sampled_from(["bad queue!", "a" * 101]),
    "params": st.one_of(junk, st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", "1x", "days"]),
                                                              "type": st.sampled_from(["int", "colour"]),
                                                              "default": st.sampled_from(["x", 1])}), max_size=2)),
    "schedule": st.one_of(junk, st.fixed_dictionaries({
        "type": st.sampled_from(["interval", "calendar", "weekly"]),
        "every": st.one_of(st.integers(-10, 0), st.just(86400 * 3_000_000), junk),
        "cron": st.sampled_from(["61 * * * *", "* * *", "x", "0 0 30 2 *", "0 0 31 4 *"]),
        "weekdays": st.lists(st.sampled_from([7, "xyz", True]), max_size=2),
        "times": st.lists(st.sampled_from(["25:00", "8:00", 800]), max_size=2),
        "timezone": st.sampled_from(["Nowhere/Zone", "../etc"]),
        "start": st.sampled_from(["tomorrow", 5, "0001-01-01T00:00:00+05:00"]),
        "end": st.sampled_from(["9999-12-31T23:59:00-05:00", "2000-01-01T00:00"]),
        "catch_up": st.sampled_from(["always", 1]),
    })),
    "schedules": st.one_of(junk, st.lists(st.fixed_dictionaries(
        {"type": st.just("interval"), "every": st.just(60)},
        optional={"name": st.one_of(st.sampled_from(["same", "x" * 101, "a\x00"]), junk),
                  "parameters": st.one_of(junk, st.dictionaries(st.sampled_from(["days", "nope"]), junk, max_size=2))}),
        min_size=1, max_size=3)),
    "report": st.one_of(junk, st.fixed_dictionaries({"when": st.sampled_from(["sometimes", 1]),
                                                     "recipients": st.sampled_from(["ops", ["not-an-address"]])})),
    "lines": st.one_of(junk, st.lists(st.fixed_dictionaries({}, optional={
        "line_no": st.one_of(st.sampled_from([-1, True, "10", 1.5, None]), st.integers(0, 3)),
        "action": st.sampled_from(["nope.missing", "testing.typed", "testing.echo"]),
        "parameters": st.one_of(junk, st.dictionaries(st.sampled_from(["text", "count", "colour", "ratio"]),
                                                      junk, max_size=2)),
        "is_filter": st.one_of(st.booleans(), junk), "filter_template": st.sampled_from(["Users", "Ghosts", ""]),
        "filter_definition": st.one_of(junk, st.dictionaries(
            st.sampled_from(["is_active", "shoe_size", "id__id", "password"]),
            st.sampled_from([True, "${param.zone}", "${today}"]), max_size=2)),
    }), min_size=1, max_size=2)),
    "unknown key": junk,
}


@st.composite
def job_documents(draw, wrong: bool = True) -> dict:
    """A valid job; with ``wrong``, often one or two of its fields replaced by something wrong."""
    identifier = draw(st.one_of(identifier_texts, st.sampled_from(["existing", "new-job"])))
    job = {"identifier": identifier, **draw(st.fixed_dictionaries({}, optional=VALID_JOB_FIELDS))}
    if "schedule" in job and "schedules" in job:
        del job[draw(st.sampled_from(["schedule", "schedules"]))]
    for schedule in job.get("schedules") or []:
        specs = [spec for spec in job.get("params") or [] if draw(st.booleans())]
        if specs:  # values the job's params accept, as given in a file (a default's form)
            schedule["parameters"] = {spec["name"]: draw(st.sampled_from(spec.get("choices") or
                                                                         SPEC_DEFAULTS[spec["type"]]))
                                      for spec in specs}
    if wrong and draw(st.booleans()):
        for key in draw(st.lists(st.sampled_from(sorted(WRONG_JOB_FIELDS)), min_size=1, max_size=2, unique=True)):
            job[key] = draw(WRONG_JOB_FIELDS[key])
    return job


documents = st.one_of(
    st.fixed_dictionaries({"jobs": st.lists(job_documents(), max_size=3)}),
    st.fixed_dictionaries({"jobs": st.lists(job_documents(), max_size=3)}),
    st.fixed_dictionaries({"jobs": st.lists(job_documents(), max_size=3)}),
    st.fixed_dictionaries({"jobs": junk}),
    junk,
)
valid_documents = st.fixed_dictionaries({"jobs": st.lists(job_documents(wrong=False), min_size=1, max_size=2,
                                                          unique_by=lambda job: job["identifier"])})
RAW_CRASHES = [
    "jobs: [{identifier: x, schedule: {type: interval, every: 60, start: 2026-02-30}}]",  # ValueError (a date)
    "jobs: [{identifier: x, name: !!float abc}]",  # ValueError
    "jobs: [{identifier: x, name: !!timestamp x}]",  # AttributeError
    "jobs: [{identifier: x, active: !!bool maybe}]",  # KeyError
    "jobs: [{identifier: x, name: " + "1" * 5000 + "}]",  # ValueError: int with more than 4300 digits
    "jobs: " + "[" * 1500,  # RecursionError
]
ALIAS_CYCLES = [
    "jobs: [{identifier: x, lines: [{line_no: 1, action: testing.echo, parameters: &p {text: *p}}]}]",
    "jobs: [{identifier: x, report: &r {when: always, again: *r}}]",
    "jobs: [{identifier: x, lines: [{line_no: 1, is_filter: true, filter_template: Users, "
    "filter_definition: &d {is_active: [*d]}}]}]",
]
raw_texts = st.one_of(
    text(),
    st.sampled_from(["", "jobs:", "jobs: []", "jobs: {}", "- a\n- b", "jobs: [1, 2]", "jobs:\n  - identifier: x\n"
                     "    lines: [{line_no: 1}]", "{", "jobs: [", "!!python/object:os.system x", "a: *b",
                     "jobs: [{identifier: x, schedule: {type: interval, every: 60, start: 2026-01-31}}]",
                     "0000-00-00", *RAW_CRASHES, *ALIAS_CYCLES]),
)


# --- the properties -----------------------------------------------------------------------------------------------


def check_import(source: str) -> dict | None:
    """Imported, or a DefinitionError with a message and nothing written; returns the report or None."""
    before = snapshot()
    try:
        report = import_jobs(source)
    except DefinitionError as exc:
        assert str(exc).strip(), "a DefinitionError says what is wrong"
        assert snapshot() == before, "a refused file imports nothing"
        event("refused")
        return None
    event("imported")
    assert set(report) == {"created", "updated", "unchanged", "skipped"}
    return report


@prop_settings(80)
@given(document=documents)
@example(document={"jobs": [{"identifier": "existing", "params": [{"name": "days", "type": "int", "default": 7}],
                             "schedule": {"type": "interval", "every": 900},
                             "lines": [{"line_no": 10, "action": "testing.echo",
                                        "parameters": {"text": "${param.days}"}}]}]})
@example(document={"jobs": [{"identifier": "new-job", "lines": [
    {"line_no": 1, "is_filter": True, "filter_template": "Users", "filter_definition": {"is_active": True}},
    {"line_no": 2, "action": "testing.typed", "parameters": {"count": 2, "mode": "slow"}}]}]})
@example(document={"jobs": [{"identifier": "good"}, {"identifier": "bad", "lines": "nope"}]})
def test_import_succeeds_or_refuses_with_a_message_and_writes_nothing(world, document):
    check_import(yaml.safe_dump(document, allow_unicode=True))


@prop_settings(80)
@given(source=raw_texts)
def test_import_of_raw_text_succeeds_or_refuses_with_a_message(world, source):
    check_import(source)


def check_import_twice(document: dict) -> None:
    source = yaml.safe_dump(document, allow_unicode=True)
    first = check_import(source)
    assume(first is not None)
    before = snapshot()
    second = import_jobs(source)
    assert second["created"] == [] and second["updated"] == [], (first, second)
    assert snapshot() == before


@prop_settings(40)
@given(document=valid_documents)
def test_importing_the_same_file_twice_changes_nothing(world, document):
    check_import_twice(document)


# --- bugs found here (fixed), with the inputs that showed them -----------------------------------------------------

any_document = st.one_of(documents, json_values())


# BUG 15 (fixed; PostgreSQL): jsonb rewrites a large float, which made a re-import report it updated.
@prop_settings(10)
@given(document=valid_documents)
@example(document={"jobs": [{"identifier": "floaty", "lines": [
    {"line_no": 1, "action": "testing.typed", "parameters": {"count": 1, "ratio": 7.20575940379215e16}}]}]})
@example(document={"jobs": [{"identifier": "floaty", "lines": [
    {"line_no": 1, "action": "testing.typed", "parameters": {"count": 1, "ratio": 1.5e300}}]}]})
def test_bug_reimport_with_large_floats(world, document):
    check_import_twice(document)


# BUG 12 (fixed): a mapping key that is not text made the unknown-keys message raise TypeError.
@prop_settings(10)
@given(document=any_document)
@example(document={"jobs": [{"identifier": "x", 1: "y"}]})
@example(document={"jobs": [{"identifier": "x", "schedule": {"type": "interval", "every": 60, None: 1}}]})
@example(document={"jobs": [{"identifier": "x", "lines": [{"line_no": 1, 2: 3}]}]})
@example(document={"jobs": [{"identifier": "x", "params": [{"name": "a", 1: 2}]}]})
@example(document={"jobs": [{"identifier": "x", "lines": [
    {"line_no": 1, "action": "testing.echo", "parameters": {1: "a", "b": 2}}]}]})
def test_bug_non_text_keys(world, document):
    check_import(yaml.safe_dump(document))


# BUG 3 (fixed): NaN/Infinity in a JSON field passed validation and the database refused them.
@prop_settings(10)
@given(document=any_document)
@example(document={"jobs": [{"identifier": "x", "report": {"when": "always", "x": float("nan")}}]})
@example(document={"jobs": [{"identifier": "x", "params": [{"name": "a", "type": "json", "default": float("inf")}]}]})
@example(document={"jobs": [{"identifier": "x", "lines": [
    {"line_no": 1, "is_filter": True, "filter_template": "Users", "filter_definition": {"id__gt": float("nan")}}]}]})
def test_bug_non_finite_numbers_in_json_fields(world, document):
    check_import(yaml.safe_dump(document))


# BUG 1 (fixed): a float parameter given an int beyond float range raised OverflowError.
@prop_settings(10)
@given(document=any_document)
@example(document={"jobs": [{"identifier": "x", "lines": [
    {"line_no": 1, "action": "testing.typed", "parameters": {"count": 1, "ratio": 10**400}}]}]})
@example(document={"jobs": [{"identifier": "x", "params": [{"name": "r", "type": "float", "default": 10**400}]}]})
def test_bug_float_overflow(world, document):
    check_import(yaml.safe_dump(document))


# BUG 13 (fixed): a schedule that cannot compute its next run crashed on save (impossible cron, interval beyond
# the calendar).
@prop_settings(10)
@given(document=any_document)
@example(document={"jobs": [{"identifier": "x", "schedule": {"type": "calendar", "cron": "0 0 30 2 *"}}]})
@example(document={"jobs": [{"identifier": "x", "schedule": {"type": "calendar", "cron": "0 0 31 4 *"}}]})
@example(document={"jobs": [{"identifier": "x", "schedule": {"type": "interval", "every": 86400 * 3_000_000}}]})
def test_bug_schedules_that_never_fire(world, document):
    check_import(yaml.safe_dump(document))


# BUG 13 (fixed): a start or end at the edge of the calendar overflowed on save (OverflowError on SQLite, DataError
# on PostgreSQL).
@prop_settings(10)
@given(document=any_document)
@example(document={"jobs": [{"identifier": "x", "schedule": {
    "type": "interval", "every": 60, "start": "0001-01-01T00:00:00+05:00"}}]})
@example(document={"jobs": [{"identifier": "x", "schedule": {
    "type": "interval", "every": 60, "end": "9999-12-31T23:59:00-05:00"}}]})
def test_bug_instants_at_the_edge_of_the_calendar(world, document):
    check_import(yaml.safe_dump(document))


# BUG 10 (fixed): PostgreSQL cannot store NUL; text with NUL gave a DataError.
@prop_settings(10)
@given(document=any_document)
@example(document={"jobs": [{"identifier": "x\x00"}]})
@example(document={"jobs": [{"identifier": "x", "name": "a\x00b"}]})
@example(document={"jobs": [{"identifier": "x", "lines": [
    {"line_no": 1, "action": "testing.echo", "parameters": {"text": "a\x00"}}]}]})
def test_bug_nul_characters(world, document):
    check_import(yaml.safe_dump(document))




# BUG 16 (fixed): definitions.load let non-YAMLError exceptions of yaml.safe_load out.
@prop_settings(10)
@given(source=raw_texts)
@example(source=RAW_CRASHES[0])
@example(source=RAW_CRASHES[1])
@example(source=RAW_CRASHES[2])
@example(source=RAW_CRASHES[3])
@example(source=RAW_CRASHES[4])
@example(source=RAW_CRASHES[5])
@example(source="0000-00-00")
def test_bug_yaml_errors_that_are_not_yaml_errors(world, source):
    check_import(source)


# BUG 14 (fixed): YAML aliases can build a cycle; validating it recursed forever.
@prop_settings(10)
@given(source=raw_texts)
@example(source="jobs: [{identifier: x, lines: [{line_no: 1, action: testing.echo, parameters: &p {text: *p}}]}]")
@example(source="jobs: [{identifier: x, report: &r {when: always, again: *r}}]")
@example(source="jobs: [{identifier: x, lines: [{line_no: 1, is_filter: true, filter_template: Users, "
                "filter_definition: &d {is_active: [*d]}}]}]")
def test_bug_recursive_aliases(world, source):
    check_import(source)



# --- lossless: export, import into an empty database, export again is the same text (issue 14) --------------------

EVERY_OTHER_FIELD = {
    "job_type": st.sampled_from([kind for kind, _ in Job.TYPES]), "run_as": st.sampled_from([None, "svc-props"]),
    "required_permission": st.sampled_from(["", "jobs.view_job"]), "destructive": st.booleans(),
    "external": st.booleans(), "concurrency": st.sampled_from(["one", "parallel"]),
    "time_limit": st.one_of(st.none(), st.integers(1, 7 * 24 * 3600)), "idempotent": st.booleans(),
    "retries": st.integers(0, 10), "retry_delay": st.integers(0, 24 * 3600), "owner": words,
    "expected_runtime": words, "expected_result": words, "troubleshooting": words,
}


@st.composite
def complete_job_documents(draw) -> dict:
    """A valid job with any of the fields the first format left out."""
    job = draw(job_documents(wrong=False))
    job.update(draw(st.fixed_dictionaries({}, optional=EVERY_OTHER_FIELD)))
    if not job.get("domain") and draw(st.booleans()):
        job["execution"] = "per_domain"
    return job


template_documents = st.fixed_dictionaries({"name": st.just("Users"), "model": st.just("auth.User")}, optional={
    "domain": st.sampled_from(["acme", None]), "domain_path": st.sampled_from(["", "memberships__domain"]),
    "definition": st.sampled_from(FILTERS), "module": words})
complete_documents = st.fixed_dictionaries(
    {"jobs": st.lists(complete_job_documents(), min_size=1, max_size=2, unique_by=lambda job: job["identifier"])},
    optional={"filter_templates": st.lists(template_documents, max_size=1), "version": st.just(1)})


@pytest.fixture
def service_user(django_user_model):
    return django_user_model.objects.create_user("svc-props", "svc@example.com", "pw")


@prop_settings(40)
@given(document=complete_documents)
def test_export_import_into_an_empty_database_export_is_identical(world, service_user, document):
    from jobs.definition_schema import schema_errors
    from jobs.definitions import export_jobs
    from tests.jobs.test_definitions_format import everything

    with transaction.atomic():  # each example starts from the same world
        try:
            import_jobs(yaml.safe_dump(document, allow_unicode=True))
        except DefinitionError as exc:
            event(f"refused: {str(exc)[:40]}")
            assume(False)
        exported = export_jobs(Job.objects.order_by("identifier"))
        assert schema_errors(yaml.safe_load(exported)) == []
        FilterTemplate.objects.filter(lines__isnull=True).delete()  # a file holds the templates its lines use
        before = everything()
        Job.objects.all().delete()
        FilterTemplate.objects.all().delete()
        import_jobs(exported)
        assert everything() == before  # every field of every row, not only the text
        assert export_jobs(Job.objects.order_by("identifier")) == exported
        transaction.set_rollback(True)
