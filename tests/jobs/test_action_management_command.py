"""core.management_command: called directly, validated as a line, and run by a real worker."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
from django.core import checks
from django.core.management import CommandError

from jobs import registry
from jobs.actions import REFUSED_COMMANDS, LineWriter, management_command
from jobs.models import Action, Job, JobLine
from jobs.registry import LineFailed
from results.dispatch import start_run
from results.models import JobLogEntry, LogLevel, Status
from tests.helpers import FakeContext, make_job, wait_for_status

CHECK_TAG = "jobs_action_test"
NOT_ALLOWED = ("the management command 'dumpdata' is not allowed in jobs; the system administrators allow check, "
               "clearsessions, createcachetable, fire_schedules, showmigrations, sync_actions "
               "(setting JOBS_MANAGEMENT_COMMANDS)")


@pytest.fixture
def tagged_check() -> Iterator[Callable[[Callable[[], list]], None]]:
    """Register a system check under CHECK_TAG: ``check --tag jobs_action_test`` runs only it."""
    registered: list[Callable] = []

    def install(body: Callable[[], list]) -> None:
        def check(app_configs=None, **kwargs) -> list:
            return body()

        checks.register(check, CHECK_TAG)
        registered.append(check)

    yield install
    for check in registered:
        checks.registry.registry.registered_checks.discard(check)


# Called directly -------------------------------------------------------------------------------------------------

def test_stdout_lines_are_logged_as_info():
    ctx = FakeContext()
    assert management_command(ctx, "check") == "manage.py check finished (1 line(s) of output)"
    assert ctx.log.entries == [("INFO", "manage.py check"),
                               ("INFO", "System check identified no issues (0 silenced).")]


@pytest.mark.django_db
def test_arguments_are_split_like_a_shell_does():
    ctx = FakeContext()
    message = management_command(ctx, "showmigrations", "'jobs'  results")
    assert message.startswith("manage.py showmigrations jobs results finished (")
    logged = ctx.log.messages("INFO")
    assert logged[0] == "manage.py showmigrations jobs results"
    assert "jobs" in logged and "results" in logged
    assert any(line.strip().startswith("[X] 0001_initial") for line in logged)


def test_options_may_be_written_in_the_command_too():
    ctx = FakeContext()
    assert management_command(ctx, "check --fail-level ERROR").startswith("manage.py check --fail-level ERROR")


def test_stderr_lines_are_logged_as_warnings(tagged_check):
    tagged_check(lambda: [checks.Warning("mind the gap", id="jobs_test.W001")])
    ctx = FakeContext()
    management_command(ctx, "check", f"--tag {CHECK_TAG}")
    warnings = ctx.log.messages("WARNING")
    assert "?: (jobs_test.W001) mind the gap" in warnings
    assert "System check identified 1 issue (0 silenced)." in warnings


def test_a_command_error_fails_with_its_message(tagged_check):
    tagged_check(lambda: [checks.Error("broken", id="jobs_test.E001")])
    with pytest.raises(CommandError, match="SystemCheckError: System check identified some issues"):
        management_command(FakeContext(), "check", f"--tag {CHECK_TAG}")
    with pytest.raises(CommandError, match=r"^Error: unrecognized arguments: --bogus$"):
        management_command(FakeContext(), "check", "--bogus")
    with pytest.raises(CommandError, match=r'There is no system check with the "nope" tag'):
        management_command(FakeContext(), "check", "--tag nope")


def test_sys_exit_in_a_command_fails_the_line_and_does_not_end_the_process(tagged_check):
    def leave() -> list:
        raise SystemExit(3)

    tagged_check(leave)
    with pytest.raises(LineFailed, match=r"^manage.py check exited with status 3$"):
        management_command(FakeContext(), "check", f"--tag {CHECK_TAG}")


def test_exit_status_zero_is_success(tagged_check):
    def leave() -> list:
        raise SystemExit(0)

    tagged_check(leave)
    assert management_command(FakeContext(), "check", f"--tag {CHECK_TAG}").endswith("finished (0 line(s) of output)")


def test_a_prompt_fails_instead_of_waiting(tagged_check):
    answers: list[str] = []
    tagged_check(lambda: answers.append(input("Are you sure? ")) or [])
    stdin = sys.stdin
    with pytest.raises(LineFailed, match=r"^manage.py check asked for input, which a job cannot give"):
        management_command(FakeContext(), "check", f"--tag {CHECK_TAG}")
    assert answers == [] and sys.stdin is stdin


@pytest.mark.parametrize(("command", "arguments", "message"), [
    ("nope", "", "unknown management command 'nope'"),
    ("", "", "command is empty: give the name of a management command"),
    ("   ", "--verbosity 2", "command is empty"),  # the first word is the command
    ("check", "'unclosed", "arguments cannot be split into words: No closing quotation"),
    ("'check", "", "command cannot be split into words"),
    *[(name, "", f"the management command '{name}' cannot run in a job: {why}")
      for name, why in REFUSED_COMMANDS.items()],
    ("flush", "--noinput", "the management command 'flush' cannot run in a job: it deletes every row"),
])
def test_bad_input_is_refused_before_anything_runs(command, arguments, message):
    ctx = FakeContext()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        management_command(ctx, command, arguments)
    assert ctx.log.entries == []


def test_the_refused_commands():
    assert set(REFUSED_COMMANDS) == {"runserver", "shell", "dbshell", "flush", "testserver"}


def test_line_writer_hands_over_complete_lines():
    lines: list[str] = []
    writer = LineWriter(lines.append)
    writer.write("one\ntw")
    writer.write("o\r\nthree")
    assert lines == ["one", "two"]
    writer.finish()
    assert lines == ["one", "two", "three"] and writer.lines == 3


# Declared parameters and line validation --------------------------------------------------------------------------

def test_registered_with_its_metadata():
    spec = registry.get("core.management_command")
    assert (spec.dangerous, spec.idempotent) == (True, False)
    assert spec.parameters[0]["name"] == "command" and spec.parameters[0]["required"] is True
    assert spec.parameter("arguments")["default"] == ""


@pytest.mark.django_db
@pytest.mark.parametrize(("parameters", "errors"), [
    ({"command": "check", "arguments": "--deploy"}, {}),
    ({"command": "nope"}, {"parameters": [
        "command: the management command 'nope' is not allowed in jobs; the system administrators allow check, "
        "clearsessions, createcachetable, fire_schedules, showmigrations, sync_actions "
        "(setting JOBS_MANAGEMENT_COMMANDS)"]}),
    ({}, {"parameters": ["command: this parameter is required"]}),
    ({"command": "check", "arguments": ["--deploy"]}, {"parameters": ["arguments: must be text"]}),
    ({"command": "check", "options": "x"}, {"parameters": ["options: unknown parameter of core.management_command"]}),
])
def test_line_validation_checks_the_types(parameters, errors):
    Action.objects.sync_with_registry()
    job = Job.objects.create(identifier="command-validation", name="Command validation")
    line = JobLine(job=job, line_no=10, action=Action.objects.get(name="core.management_command"),
                   parameters=parameters)
    assert line.validation_errors([]) == errors


# Through the real worker -----------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_commands_run_on_the_worker_and_their_output_is_logged():
    job = make_job("command-ok", (10, "core.management_command", {"command": "check"}),
                   (20, "core.management_command", {"command": "showmigrations", "arguments": "jobs"}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.SUCCESS, result.message
    first, second = result.line_results.order_by("line_no")
    assert first.message == "manage.py check finished (1 line(s) of output)"
    assert second.message.startswith("manage.py showmigrations jobs finished (")
    entries = list(JobLogEntry.objects.filter(result_id=result.id, line_no=10).values_list("level", "message"))
    assert (LogLevel.INFO, "System check identified no issues (0 silenced).") in entries
    logged = JobLogEntry.objects.filter(result_id=result.id, line_no=20).values_list("message", flat=True)
    assert any(message.strip().startswith("[X] 0001_initial") for message in logged)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_failing_commands_on_the_worker_say_what_happened():
    job = make_job("command-fail", (10, "core.management_command", {"command": "nope"}),
                   (20, "core.management_command", {"command": "check", "arguments": "--bogus"}),
                   (30, "core.management_command", {"command": "flush", "arguments": "--noinput"}),
                   (35, "core.management_command", {"command": "dumpdata", "arguments": "auth.user"}),
                   (40, "core.sleep", {"seconds": 0}),
                   stops_on_error=False)
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    assert [(line.status, line.message) for line in result.line_results.order_by("line_no")] == [
        (Status.ERROR, "ValueError: unknown management command 'nope'"),
        (Status.ERROR, "CommandError: Error: unrecognized arguments: --bogus"),
        (Status.ERROR, "ValueError: the management command 'flush' cannot run in a job: "
                       "it deletes every row of the database"),
        (Status.ERROR, f"ValueError: {NOT_ALLOWED}"),  # a stored line is refused when it runs too
        (Status.SUCCESS, "slept 0 s"),
    ]
    assert Job.objects.filter(identifier="command-fail").exists()  # flush did not run


# Allowed commands and values that stay data ------------------------------------------------------------------------


def test_a_command_off_the_allow_list_does_not_run():
    ctx = FakeContext()
    with pytest.raises(ValueError) as info:
        management_command(ctx, "dumpdata", "auth.user")
    assert str(info.value) == NOT_ALLOWED and ctx.log.entries == []


@pytest.mark.django_db
def test_the_allow_list_is_a_setting(settings):
    settings.JOBS_MANAGEMENT_COMMANDS = ["dumpdata"]
    assert management_command(FakeContext(), "dumpdata", "auth.group").startswith("manage.py dumpdata auth.group")
    with pytest.raises(ValueError, match=r"^the management command 'check' is not allowed in jobs; the system "
                                         r"administrators allow dumpdata \(setting JOBS_MANAGEMENT_COMMANDS\)$"):
        management_command(FakeContext(), "check")
    settings.JOBS_MANAGEMENT_COMMANDS = ["flush"]  # refused whatever the setting says
    with pytest.raises(ValueError, match="'flush' cannot run in a job: it deletes every row"):
        management_command(FakeContext(), "flush", "--noinput")


@pytest.mark.django_db
@pytest.mark.parametrize(("parameters", "message"), [
    ({"command": "dumpdata", "arguments": "auth.user"}, f"command: {NOT_ALLOWED}"),
    ({"command": "flush"}, "command: the management command 'flush' cannot run in a job: "
                           "it deletes every row of the database"),
    ({"command": "${param.x}"}, "command: ${param.x} cannot be used here: this parameter runs exactly as its "
                                "author wrote it"),
    ({"command": "check ${param.x}"}, "command: ${param.x} cannot be used here: this parameter runs exactly as "
                                      "its author wrote it"),
    ({"command": "'check"}, "command: cannot be split into words: No closing quotation in \"'check\""),
    ({"command": " "}, "command: give the name of a management command, e.g. clearsessions"),
    ({"command": "check", "arguments": "--tag '${param.x}"},
     "arguments: cannot be split into words: No closing quotation in \"--tag '${param.x}\""),
])
def test_a_line_is_refused_when_saved(parameters, message):
    Action.objects.sync_with_registry()
    job = Job.objects.create(identifier="command-save", name="Command save", params=[{"name": "x", "type": "str"}])
    line = JobLine(job=job, line_no=10, action=Action.objects.get(name="core.management_command"),
                   parameters=parameters)
    assert line.validation_errors(["x"]) == {"parameters": [message]}


@pytest.mark.django_db
def test_variables_in_the_arguments_are_allowed_when_saved():
    Action.objects.sync_with_registry()
    job = Job.objects.create(identifier="command-ok", name="Command ok", params=[{"name": "x", "type": "str"}])
    line = JobLine(job=job, line_no=10, action=Action.objects.get(name="core.management_command"),
                   parameters={"command": "showmigrations", "arguments": "${param.x} --database=${param.x}"})
    assert line.validation_errors(["x"]) == {}
