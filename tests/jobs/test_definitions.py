"""Job definition files: import_jobs / export_jobs (jobs/definitions.py and the two commands)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from jobs.definitions import DefinitionError, export_jobs, import_jobs, same
from jobs.models import Action, Domain, FilterTemplate, Job, JobLine, Schedule
from tests.conftest import database_url

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parent.parent.parent

FULL = textwrap.dedent("""\
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
            parameters: {command: 'echo "$JOBS_PARAM_DAYS $JOBS_TODAY"'}
          - line_no: 20
            action: testing.typed
            active: false
            parameters: {count: 3, mode: slow}
      - identifier: cleanup
        name: Cleanup
        active: false
        stops_on_error: false
        schedule: {type: interval, every: 900}
        lines:
          - line_no: 5
            action: core.sleep
            parameters: {seconds: 0.5}
""")


@pytest.fixture(autouse=True)
def setup_rows():
    Action.objects.sync_with_registry()
    Domain.objects.create(name="Acme", slug="acme")


def job_doc(identifier: str = "job-a", **fields) -> dict:
    return {"identifier": identifier, "name": identifier.title(),
            "lines": [{"line_no": 10, "action": "core.sleep", "parameters": {"seconds": 0}}], **fields}


def dump(*docs: dict) -> str:
    return yaml.safe_dump({"jobs": list(docs)})


def import_error(text: str) -> str:
    with pytest.raises(DefinitionError) as info:
        import_jobs(text)
    return str(info.value)


def export_all() -> str:
    return export_jobs(Job.objects.order_by("identifier"))


# --- importing ----------------------------------------------------------------------------------------------------


def test_import_creates_jobs_with_every_field_and_line():
    report = import_jobs(FULL)
    assert report == {"created": ["weekly-report", "cleanup"], "updated": [], "unchanged": [], "skipped": []}
    job = Job.objects.get(identifier="weekly-report")
    assert (job.name, job.description, job.domain.slug, job.active, job.stops_on_error, job.module) == (
        "Weekly report", "Sends the weekly report", "acme", True, True, "reports")
    assert job.params == [
        {"name": "days", "type": "int", "required": False, "default": 7},
        {"name": "region", "type": "choice", "required": True, "choices": ["north", "south"]},
    ]
    schedule = job.schedules.get()
    assert (schedule.kind, schedule.cron, schedule.timezone) == ("calendar", "0 18 * * 5", "Europe/Madrid")
    assert job.report == {"recipients": ["ops@example.com"], "when": "failure"}
    lines = list(job.lines.order_by("line_no").values_list("line_no", "action__name", "active", "parameters"))
    assert lines == [(10, "core.shell", True, {"command": 'echo "$JOBS_PARAM_DAYS $JOBS_TODAY"'}),
                     (20, "testing.typed", False, {"count": 3, "mode": "slow"})]
    cleanup = Job.objects.get(identifier="cleanup")
    assert (cleanup.domain, cleanup.active, cleanup.stops_on_error, cleanup.params) == (None, False, False, [])
    schedule = cleanup.schedules.get()
    assert (schedule.kind, schedule.every, schedule.every_unit) == ("interval", 15, "minutes")


def test_import_defaults_for_omitted_keys():
    import_jobs(dump({"identifier": "minimal", "lines": [{"line_no": 1, "action": "testing.echo"}]}))
    job = Job.objects.get(identifier="minimal")
    assert (job.name, job.description, job.domain_id, job.active, job.stops_on_error, job.module) == (
        "minimal", "", None, True, True, "")
    assert (job.params, job.report, Schedule.objects.filter(job=job).exists()) == ([], None, False)
    line = job.lines.get()
    assert (line.active, line.is_filter, line.parameters, line.module) == (True, False, {}, "")


def test_reimport_changes_nothing():
    import_jobs(FULL)
    before = {job.identifier: job.updated_at for job in Job.objects.all()}
    line_pks = set(JobLine.objects.values_list("pk", flat=True))
    assert import_jobs(FULL) == {"created": [], "updated": [], "unchanged": ["weekly-report", "cleanup"],
                                 "skipped": []}
    assert {job.identifier: job.updated_at for job in Job.objects.all()} == before
    assert set(JobLine.objects.values_list("pk", flat=True)) == line_pks


def test_reimport_changing_a_job_field_updates_it():
    import_jobs(FULL)
    before = Job.objects.get(identifier="cleanup").updated_at
    import_jobs(FULL.replace("name: Cleanup", "name: Nightly cleanup"))
    job = Job.objects.get(identifier="cleanup")
    assert job.name == "Nightly cleanup"
    assert job.updated_at > before


def test_reimport_changing_a_line_updates_the_line_in_place():
    import_jobs(FULL)
    line = JobLine.objects.get(job__identifier="cleanup", line_no=5)
    report = import_jobs(FULL.replace("{seconds: 0.5}", "{seconds: 2}"))
    assert report["updated"] == ["cleanup"]
    assert report["unchanged"] == ["weekly-report"]
    assert JobLine.objects.get(pk=line.pk).parameters == {"seconds": 2}


def test_reimport_deletes_lines_that_left_the_file_and_adds_new_ones():
    import_jobs(dump(job_doc(lines=[{"line_no": 10, "action": "core.sleep"}, {"line_no": 20, "action": "core.sleep"}])))
    report = import_jobs(dump(job_doc(lines=[{"line_no": 20, "action": "core.sleep"},
                                             {"line_no": 30, "action": "testing.echo"}])))
    assert report["updated"] == ["job-a"]
    assert list(JobLine.objects.values_list("line_no", "action__name")) == [(20, "core.sleep"), (30, "testing.echo")]


def test_import_one_of_many_updates_only_that_one():
    import_jobs(dump(job_doc("job-a"), job_doc("job-b")))
    report = import_jobs(dump(job_doc("job-b", description="new")))
    assert report == {"created": [], "updated": ["job-b"], "unchanged": [], "skipped": []}
    assert Job.objects.count() == 2


def test_skip_existing_leaves_existing_jobs_alone():
    import_jobs(dump(job_doc("job-a", description="original")))
    report = import_jobs(dump(job_doc("job-a", description="changed"), job_doc("job-b")), update_existing=False)
    assert report == {"created": ["job-b"], "updated": [], "unchanged": [], "skipped": ["job-a"]}
    assert Job.objects.get(identifier="job-a").description == "original"


def test_an_error_in_a_later_job_imports_nothing():
    import_jobs(dump(job_doc("job-a", description="original")))
    text = dump(job_doc("job-a", description="changed"), job_doc("job-b"),
                job_doc("job-c", lines=[{"line_no": 10, "action": "nope.nothing"}]))
    assert "job job-c, line 10: unknown action 'nope.nothing'" in import_error(text)
    assert list(Job.objects.values_list("identifier", "description")) == [("job-a", "original")]
    assert JobLine.objects.count() == 1


def test_line_params_may_use_the_params_declared_in_the_same_file():
    import_jobs(dump(job_doc(params=[{"name": "who", "type": "str"}],
                             lines=[{"line_no": 1, "action": "testing.echo", "parameters": {"text": "${param.who}"}}])))
    assert JobLine.objects.get().parameters == {"text": "${param.who}"}


def test_a_filter_line_with_its_template():
    FilterTemplate.objects.create(name="Active users", model="auth.User", definition={"is_active": True})
    import_jobs(dump(job_doc(lines=[
        {"line_no": 10, "is_filter": True, "filter_template": "Active users",
         "filter_definition": {"username__startswith": "a"}},
        {"line_no": 20, "action": "testing.echo"},
    ])))
    line = JobLine.objects.get(line_no=10)
    assert (line.is_filter, line.filter_template.name, line.filter_definition, line.action) == (
        True, "Active users", {"username__startswith": "a"}, None)


# --- errors name the job and the line -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["jobs: [unclosed", "jobs:\n  - identifier: a\n   name: b", "\tjobs: []"])
def test_malformed_yaml(text):
    assert import_error(text).startswith("not valid YAML")


@pytest.mark.parametrize("text", ["", "- identifier: a", "jobs: {identifier: a}", "job: []", "just text"])
def test_a_file_without_a_jobs_list(text):
    assert import_error(text) == "the file must hold a mapping with a 'jobs' list"


def test_an_empty_jobs_list_imports_nothing():
    assert import_jobs("jobs: []") == {"created": [], "updated": [], "unchanged": [], "skipped": []}


@pytest.mark.parametrize(("doc", "message"), [
    ("just text", "job 1: must be a mapping"),
    ({"name": "No identifier"}, "job 1: identifier is required"),
    ({"identifier": "Not A Slug!", "name": "x"}, "job Not A Slug!: identifier: Use lowercase letters"),
    ({"identifier": "job-a", "colour": "red", "size": 1}, "job job-a: unknown keys colour, size"),
    ({"identifier": "job-a", "domain": "nowhere"}, "job job-a: unknown domain 'nowhere'"),
    ({"identifier": "job-a", "lines": "10: core.sleep"}, "job job-a: lines must be a list"),
    ({"identifier": "job-a", "params": [{"name": "d", "type": "integer"}]},
     "job job-a: params: parameter 'd': type must be one of"),
    ({"identifier": "job-a", "report": {"when": "sometimes"}}, "job job-a: report.when must be always, failure"),
    ({"identifier": "job-a", "report": {"recipients": ["not-an-address"]}},
     "job job-a: report recipient 'not-an-address' is not a valid e-mail address"),
    ({"identifier": "job-a", "report": {"recipients": "ops@example.com"}},
     "job job-a: report.recipients must be a list"),
    ({"identifier": "job-a", "queue": "bad queue"}, "job job-a: queue: Letters, digits"),
])
def test_job_errors_name_the_job(doc, message):
    assert message in import_error(dump(doc))


def test_a_job_twice_in_one_file():
    assert import_error(dump(job_doc("job-a"), job_doc("job-a"))) == "job job-a: appears twice in the file"


@pytest.mark.parametrize(("line", "message"), [
    ({"action": "core.sleep"}, "job job-a, line 1: needs a line_no"),
    ({"line_no": 10, "action": "nope.nothing"}, "job job-a, line 10: unknown action 'nope.nothing'"),
    ({"line_no": 10, "action": "core.sleep", "color": 1}, "job job-a, line 10: unknown keys color"),
    ({"line_no": "ten", "action": "core.sleep"}, "job job-a, line ten: line_no must be a whole number"),
    ({"line_no": 10}, "job job-a, line 10: action: Choose the action this line runs."),
    ({"line_no": 10, "action": "testing.typed", "parameters": {"count": "many"}},
     "job job-a, line 10: parameters: count: must be a whole number"),
    ({"line_no": 10, "action": "testing.typed", "parameters": {}},
     "job job-a, line 10: parameters: count: this parameter is required"),
    ({"line_no": 10, "action": "testing.echo", "parameters": {"txt": "hi"}},
     "job job-a, line 10: parameters: txt: unknown parameter of testing.echo"),
    ({"line_no": 10, "action": "testing.echo", "parameters": {"text": "${param.who}"}},
     "job job-a, line 10: parameters: text: unknown variable ${param.who}"),
    ({"line_no": 10, "action": "core.shell", "parameters": {"command": "echo '${job.identifier}'"}},
     'job job-a, line 10: parameters: command: ${job.identifier} would be read by the shell as code; write '
     '"$JOBS_JOB_IDENTIFIER" instead (variables reach the command as environment variables)'),
    ({"line_no": 10, "action": "core.management_command", "parameters": {"command": "dumpdata"}},
     "job job-a, line 10: parameters: command: the management command 'dumpdata' is not allowed in jobs"),
    ({"line_no": 10, "is_filter": True, "filter_template": "Missing"},
     "job job-a, line 10: unknown filter template 'Missing'"),
    ({"line_no": -1, "action": "core.sleep"}, "job job-a, line -1: line_no must be a whole number, 0 or more"),
])
def test_line_errors_name_the_job_and_the_line(line, message):
    assert message in import_error(dump({"identifier": "job-a", "lines": [line]}))


def test_the_same_line_no_twice():
    lines = [{"line_no": 10, "action": "core.sleep"}, {"line_no": 10, "action": "testing.echo"}]
    assert import_error(dump(job_doc(lines=lines))) == "job job-a, line 10: line_no appears twice"


def test_an_unavailable_action_is_unknown():
    Action.objects.filter(name="testing.echo").update(available=False)
    assert "job job-a, line 1: unknown action 'testing.echo'" in import_error(
        dump(job_doc(lines=[{"line_no": 1, "action": "testing.echo"}])))


# Schedules in definition files: tests/jobs/test_definitions_schedule.py


def test_a_non_text_recipient_is_a_definition_error():
    assert "job job-a: report recipient 123 is not a valid e-mail address" in import_error(
        dump(job_doc(report={"recipients": [123]})))


@pytest.mark.parametrize("identifier", [["a", "b"], {"a": 1}])
def test_a_non_text_identifier_is_a_definition_error(identifier):
    assert "identifier" in import_error(dump({"identifier": identifier}))


@pytest.mark.parametrize("line_no", [10.7, True])
def test_a_non_integer_line_no_is_refused(line_no):
    assert "line_no must be a whole number" in import_error(
        dump(job_doc(lines=[{"line_no": line_no, "action": "core.sleep"}])))


@pytest.mark.parametrize(("doc", "message"), [
    ({"identifier": "job-a", 1: "y", None: "z"}, "job job-a: unknown keys 1, None"),
    ({"identifier": "job-a", "lines": [{"line_no": 1, 2: 3}]}, "job job-a, line 1: unknown keys 2"),
    ({"identifier": "job-a", "schedule": {"type": "interval", "every": 60, None: 1}},
     "job job-a: schedule: unknown keys None"),
    ({"identifier": "job-a", "lines": [{"line_no": 1, "action": "testing.echo", "parameters": {1: "a", "b": 2}}]},
     "parameters: 1: unknown parameter of testing.echo b: unknown parameter of testing.echo"),
])
def test_keys_that_are_not_text_are_named_like_any_unknown_key(doc, message):
    assert message in import_error(dump(doc))


@pytest.mark.parametrize(("doc", "message"), [
    (job_doc(report={"when": "always", "x": float("nan")}), "report must not hold NaN or Infinity"),
    (job_doc(params=[{"name": "a", "type": "json", "default": float("inf")}]), "parameter 'a': must not hold NaN"),
    (job_doc(params=[{"name": "r", "type": "float", "default": 10**400}]), "the default must be a number"),
    (job_doc(lines=[{"line_no": 1, "action": "testing.typed", "parameters": {"count": 1, "ratio": 10**400}}]),
     "parameters: ratio: must be a number"),
    (job_doc(lines=[{"line_no": 1, "is_filter": True, "filter_template": "Users",
                     "filter_definition": {"id__gt": float("nan")}}]), "id__gt: must not hold NaN or Infinity"),
])
def test_numbers_no_json_column_stores_are_refused(doc, message):
    FilterTemplate.objects.create(name="Users", model="auth.User")
    assert message in import_error(dump(doc))


@pytest.mark.parametrize(("doc", "message"), [
    ({"identifier": "job-a", "name": "a\x00b"}, "jobs[0].name: must not contain NUL characters"),
    (job_doc(lines=[{"line_no": 1, "action": "testing.echo", "parameters": {"text": "a\x00"}}]),
     "jobs[0].lines[0].parameters.text: must not contain NUL characters"),
])
def test_nul_characters_are_refused_with_where_they_are(doc, message):
    assert import_error(dump(doc)) == message


@pytest.mark.parametrize("text", [
    "jobs: [{identifier: x, schedule: {type: interval, every: 60, start: 2026-02-30}}]",
    "jobs: [{identifier: x, name: !!timestamp x}]",
    "jobs: [{identifier: x, active: !!bool maybe}]",
    "jobs: [{identifier: x, name: " + "1" * 5000 + "}]",
    "jobs: " + "[" * 1500,
])
def test_values_yaml_cannot_construct_are_malformed_yaml(text):
    assert import_error(text).startswith("not valid YAML: ")


def test_a_yaml_alias_cycle_is_refused():
    text = "jobs: [{identifier: x, lines: [{line_no: 1, action: testing.echo, parameters: &p {text: *p}}]}]"
    assert import_error(text) == (
        "jobs[0].lines[0].parameters.text: a YAML alias refers to a mapping or list that contains it")


def test_yaml_aliases_that_multiply_beyond_the_limit_are_refused():
    text = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(5))
    assert "more than 100000 mappings and lists" in import_error(text + "jobs: []")


@pytest.mark.parametrize("ratio", [7.20575940379215e16, 1.5e300, -2.0**60])
def test_reimporting_large_floats_changes_nothing(ratio):
    # PostgreSQL's jsonb writes such a float back as the integer it equals (7.20575940379215e16 as 72057594037921500).
    text = dump(job_doc(lines=[{"line_no": 1, "action": "testing.typed", "parameters": {"count": 1, "ratio": ratio}}]))
    assert import_jobs(text)["created"] == ["job-a"]
    assert import_jobs(text)["unchanged"] == ["job-a"]


def test_same_compares_numbers_as_stored_but_keeps_true_apart_from_one():
    assert same({"r": [72057594037921500]}, {"r": [7.20575940379215e16]})
    assert not same(10**400, 1e308)
    assert not same(True, 1) and not same(1, 1.0000001) and same(2, 2.0)


# --- exporting ----------------------------------------------------------------------------------------------------


def test_export_writes_the_contract_shape():
    import_jobs(FULL)
    data = yaml.safe_load(export_all())
    assert (data["version"], data["filter_templates"]) == (1, [])
    assert [job["identifier"] for job in data["jobs"]] == ["cleanup", "weekly-report"]
    weekly = data["jobs"][1]
    assert weekly == {
        "identifier": "weekly-report", "name": "Weekly report", "description": "Sends the weekly report",
        "domain": "acme", "active": True, "stops_on_error": True, "module": "reports", "queue": "",
        "job_type": "manual", "execution": "installation", "run_as": None, "required_permission": "",
        "destructive": False, "external": False, "concurrency": "one", "time_limit": None, "idempotent": False,
        "retries": 0, "retry_delay": 60, "owner": "", "expected_runtime": "", "expected_result": "",
        "troubleshooting": "",
        "params": [{"name": "days", "type": "int", "required": False, "default": 7},
                   {"name": "region", "type": "choice", "required": True, "choices": ["north", "south"]}],
        "schedule": {"type": "calendar", "cron": "0 18 * * 5", "timezone": "Europe/Madrid", "start": None,
                     "end": None, "catch_up": "once"},
        "report": {"recipients": ["ops@example.com"], "when": "failure"},
        "lines": [
            {"line_no": 10, "action": "core.shell", "active": True,
             "parameters": {"command": 'echo "$JOBS_PARAM_DAYS $JOBS_TODAY"'}, "module": "", "is_filter": False,
             "filter_template": None, "filter_definition": {}},
            {"line_no": 20, "action": "testing.typed", "active": False, "parameters": {"count": 3, "mode": "slow"},
             "module": "", "is_filter": False, "filter_template": None, "filter_definition": {}},
        ],
    }
    assert list(weekly)[-3:] == ["schedule", "report", "lines"]
    assert data["jobs"][0]["domain"] is None
    assert data["jobs"][0]["report"] is None


def test_export_then_import_round_trips_exactly():
    FilterTemplate.objects.create(name="Active users", model="auth.User")
    import_jobs(FULL)
    import_jobs(dump(job_doc("with-filter", module="extra", description="Ünïcödé: ✓\nsecond line", lines=[
        {"line_no": 1, "is_filter": True, "filter_template": "Active users", "filter_definition": {"is_staff": True},
         "module": "extra"},
        {"line_no": 2, "action": "core.shell", "parameters": {"command": "echo 'a: b' \"c\" $${x}"}},
    ])))
    exported = export_all()

    assert import_jobs(exported)["unchanged"] == ["cleanup", "weekly-report", "with-filter"]

    Job.objects.all().delete()
    assert import_jobs(exported)["created"] == ["cleanup", "weekly-report", "with-filter"]
    assert export_all() == exported


def test_export_of_nothing_is_an_empty_list():
    assert yaml.safe_load(export_all()) == {"version": 1, "filter_templates": [], "jobs": []}


# --- the commands -------------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "jobs.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_command_reports_what_happened(tmp_path):
    path = write(tmp_path, FULL)
    out = StringIO()
    call_command("import_jobs", path, stdout=out)
    assert out.getvalue().splitlines() == ["created: weekly-report, cleanup"]
    out = StringIO()
    call_command("import_jobs", path, stdout=out)
    assert out.getvalue().splitlines() == ["unchanged: weekly-report, cleanup"]


def test_import_command_skip_existing(tmp_path):
    import_jobs(dump(job_doc("job-a", description="original")))
    out = StringIO()
    call_command("import_jobs", write(tmp_path, dump(job_doc("job-a", description="x"), job_doc("job-b"))),
                 "--skip-existing", stdout=out)
    assert out.getvalue().splitlines() == ["created: job-b", "skipped: job-a"]
    assert Job.objects.get(identifier="job-a").description == "original"


def test_import_command_error_is_exit_2_and_imports_nothing(tmp_path):
    path = write(tmp_path, dump(job_doc("job-a"), job_doc("job-b", domain="nowhere")))
    with pytest.raises(CommandError) as info:
        call_command("import_jobs", path)
    assert info.value.returncode == 2
    assert str(info.value) == f"{path}: job job-b: unknown domain 'nowhere' (nothing was imported)"
    assert not Job.objects.exists()


def test_import_command_missing_file_is_exit_2(tmp_path):
    with pytest.raises(CommandError) as info:
        call_command("import_jobs", str(tmp_path / "missing.yaml"))
    assert info.value.returncode == 2
    assert "cannot read" in str(info.value) and "missing.yaml" in str(info.value)


def test_export_command_all_by_module_and_by_identifier():
    import_jobs(FULL)

    def exported(*args) -> list[str]:
        out = StringIO()
        call_command("export_jobs", *args, stdout=out)
        return [job["identifier"] for job in yaml.safe_load(out.getvalue())["jobs"]]

    assert exported() == ["cleanup", "weekly-report"]
    assert exported("--module", "reports") == ["weekly-report"]
    assert exported("--module", "nothing-here") == []
    assert exported("weekly-report") == ["weekly-report"]


def test_export_command_unknown_identifier_is_exit_2():
    import_jobs(FULL)
    with pytest.raises(CommandError) as info:
        call_command("export_jobs", "cleanup", "ghost", "phantom")
    assert info.value.returncode == 2
    assert str(info.value) == "unknown job(s): ghost, phantom"


def manage(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "jobs_project.settings_test", "DATABASE_URL": database_url()}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_import_export_commands_as_processes(tmp_path):
    created = manage("import_jobs", write(tmp_path, FULL))
    assert (created.returncode, created.stdout.splitlines()) == (0, ["created: weekly-report, cleanup"])
    exported = manage("export_jobs")
    assert exported.returncode == 0
    assert exported.stdout == export_all()
    broken = manage("import_jobs", write(tmp_path, "jobs: [unclosed"))
    assert broken.returncode == 2
    assert "not valid YAML" in broken.stderr and "nothing was imported" in broken.stderr


@pytest.mark.django_db(transaction=True)
def test_import_command_reads_standard_input():
    done = manage("import_jobs", "-", stdin=dump(job_doc("from-stdin")))
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "created: from-stdin", "")
    assert Job.objects.filter(identifier="from-stdin").exists()


# --- dry run, and folders of one file per job ---------------------------------------------------------------------


def rows() -> tuple:
    return tuple(list(model.objects.order_by("pk").values()) for model in (Job, JobLine, Schedule, FilterTemplate))


def test_import_dry_run_says_what_would_change_field_by_field_and_changes_nothing(tmp_path):
    import_jobs(FULL)
    before = rows()
    changed = FULL.replace("name: Cleanup", "name: Nightly cleanup").replace("{seconds: 0.5}", "{seconds: 2}")
    out = StringIO()
    call_command("import_jobs", write(tmp_path, changed + "  - {identifier: job-new}\n"),
                 "--dry-run", stdout=out)
    assert out.getvalue().splitlines() == [
        "unchanged: job weekly-report",
        "changed: job cleanup",
        '  name: "Cleanup" -> "Nightly cleanup"',
        "  line 5.parameters.seconds: 0.5 -> 2",
        "created: job job-new",
        "dry run: nothing was changed",
    ]
    assert rows() == before


def test_import_dry_run_of_a_bad_file_is_exit_2(tmp_path):
    with pytest.raises(CommandError) as info:
        call_command("import_jobs", write(tmp_path, dump(job_doc(domain="nowhere"))), "--dry-run")
    assert info.value.returncode == 2 and "unknown domain 'nowhere'" in str(info.value)
    assert not Job.objects.exists()


def test_export_split_writes_one_stable_file_per_job_and_the_folder_imports_back(tmp_path):
    FilterTemplate.objects.create(name="Active users", model="auth.User", definition={"is_active": True})
    import_jobs(FULL)
    import_jobs(dump(job_doc("with-filter", lines=[
        {"line_no": 1, "is_filter": True, "filter_template": "Active users"},
        {"line_no": 2, "action": "testing.echo"}])))
    folder = tmp_path / "definitions"
    call_command("export_jobs", "--split", str(folder), stdout=StringIO())
    files = sorted(path.name for path in folder.iterdir())
    assert files == ["cleanup.yaml", "weekly-report.yaml", "with-filter.yaml"]
    texts = {name: (folder / name).read_text() for name in files}
    assert texts["cleanup.yaml"] == export_jobs(Job.objects.filter(identifier="cleanup"))
    assert yaml.safe_load(texts["with-filter.yaml"])["filter_templates"][0]["name"] == "Active users"
    assert yaml.safe_load(texts["cleanup.yaml"])["filter_templates"] == []

    Job.objects.all().delete()
    FilterTemplate.objects.all().delete()
    out = StringIO()
    call_command("import_jobs", str(folder), stdout=out)
    assert out.getvalue().splitlines() == [
        "created: cleanup, weekly-report, filter template Active users, with-filter"]
    call_command("export_jobs", "--split", str(folder), stdout=StringIO())
    assert {name: (folder / name).read_text() for name in files} == texts  # the same bytes: nothing to commit


def test_export_split_removes_the_files_of_deleted_jobs_and_nothing_else(tmp_path):
    """On the old code a deleted job's file stayed in the folder, and importing the folder brought the job back."""
    import_jobs(FULL)
    import_jobs(dump(job_doc("other-module", module="billing")))
    folder = tmp_path / "definitions"
    call_command("export_jobs", "--split", str(folder), stdout=StringIO())
    (folder / "notes.yaml").write_text("just: notes\n")  # not an export: someone else's file
    (folder / "renamed.yaml").write_text((folder / "cleanup.yaml").read_text())  # not under its own name
    Job.objects.filter(identifier__in=["weekly-report", "other-module"]).delete()

    out = StringIO()
    call_command("export_jobs", "--split", str(folder), "--module", "billing", stdout=out)
    assert "other-module.yaml" not in {path.name for path in folder.iterdir()}
    assert (folder / "weekly-report.yaml").exists()  # not of that module: kept
    call_command("export_jobs", "--split", str(folder), "cleanup", stdout=out)
    assert (folder / "weekly-report.yaml").exists()  # a named export removes nothing
    out = StringIO()
    call_command("export_jobs", "--split", str(folder), stdout=out)
    assert sorted(path.name for path in folder.iterdir()) == ["cleanup.yaml", "notes.yaml", "renamed.yaml"]
    assert out.getvalue().splitlines()[-1] == "removed (their jobs no longer exist): weekly-report.yaml"


def test_a_folder_imports_in_one_transaction_and_errors_name_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text(dump(job_doc("job-a")))
    (tmp_path / "b.yaml").write_text(dump(job_doc("job-b", domain="nowhere")))
    with pytest.raises(CommandError) as info:
        call_command("import_jobs", str(tmp_path))
    assert str(info.value) == f"{tmp_path}: b.yaml: job job-b: unknown domain 'nowhere' (nothing was imported)"
    assert not Job.objects.exists()


def test_a_job_in_two_files_of_a_folder_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(dump(job_doc("job-a")))
    (tmp_path / "b.yaml").write_text(dump(job_doc("job-a", description="other")))
    with pytest.raises(CommandError) as info:
        call_command("import_jobs", str(tmp_path))
    assert "b.yaml: job job-a: appears twice in the file (and in a.yaml)" in str(info.value)


def test_an_empty_folder_is_exit_2(tmp_path):
    with pytest.raises(CommandError) as info:
        call_command("import_jobs", str(tmp_path))
    assert info.value.returncode == 2 and "no *.yaml file" in str(info.value)


def test_the_demo_jobs_import_and_their_shell_commands_use_environment_variables():
    report = import_jobs((REPO / "demo" / "jobs.yaml").read_text())
    assert "hello-world" in report["created"] and not report["skipped"]
    assert JobLine.objects.get(job__identifier="hello-world", line_no=10).parameters == {
        "command": 'echo "Hello $JOBS_PARAM_WHO, today is $JOBS_TODAY"'}
