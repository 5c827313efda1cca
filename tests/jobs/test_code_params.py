"""Code parameters (jobs.code_params): a variable's value reaches a shell or a command line as data, never as code."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from jobs import code_params, context, registry
from jobs.actions.shell import command_environment, shell
from jobs.code_params import ARGV, FIXED, SHELL, argv, quote_states, shell_env_form, written_problems
from jobs.models import Action, Job, JobLine
from jobs.registry import action
from tests.helpers import FakeContext, make_job

MIGRATION = "jobs.migrations.0010_inject_shell_env"
WHO = {"param.who": "x; id"}


# Environment variables of core.shell --------------------------------------------------------------------------

def test_every_variable_has_its_environment_variable():
    variables = context.build_variables(job_identifier="hello-world", domain_slug="acme",
                                        params={"who": "x", "days": 7, "flag": True, "off": False, "note": None,
                                                "items": [1, "ü"], "cfg": {"a": 1}})
    env = context.environment(variables)
    assert set(env) == {"JOBS_TODAY", "JOBS_YESTERDAY", "JOBS_NOW", "JOBS_JOB_IDENTIFIER", "JOBS_DOMAIN",
                        "JOBS_PARAM_WHO", "JOBS_PARAM_DAYS", "JOBS_PARAM_FLAG", "JOBS_PARAM_OFF", "JOBS_PARAM_NOTE",
                        "JOBS_PARAM_ITEMS", "JOBS_PARAM_CFG"}
    assert (env["JOBS_JOB_IDENTIFIER"], env["JOBS_DOMAIN"], env["JOBS_TODAY"]) == ("hello-world", "acme",
                                                                                  variables["today"])
    assert (env["JOBS_PARAM_DAYS"], env["JOBS_PARAM_FLAG"], env["JOBS_PARAM_OFF"], env["JOBS_PARAM_NOTE"]) == (
        "7", "true", "false", "")
    assert (env["JOBS_PARAM_ITEMS"], env["JOBS_PARAM_CFG"]) == ('[1, "ü"]', '{"a": 1}')


def test_the_command_gets_the_worker_environment_plus_the_variables(monkeypatch):
    monkeypatch.setenv("WORKER_THING", "kept")
    env = command_environment({"param.who": "x"}, 42)
    assert (env["WORKER_THING"], env["JOBS_PARAM_WHO"], env["JOBS_RESULT_ID"]) == ("kept", "x", "42")


def test_a_shell_command_reads_the_values_as_data(tmp_path):
    ctx = FakeContext(variables={"param.who": "x; touch pwned $(touch pwned2)", "today": "2026-12-03"}, result_id=7)
    shell(ctx, 'echo "Hello $JOBS_PARAM_WHO, today is $JOBS_TODAY (#$JOBS_RESULT_ID)"', cwd=str(tmp_path))
    assert ctx.log.messages("INFO") == ["Hello x; touch pwned $(touch pwned2), today is 2026-12-03 (#7)"]
    assert list(tmp_path.iterdir()) == []


def test_the_demo_countdown_counts_from_the_parameter(tmp_path):
    ctx = FakeContext(variables={"param.seconds": 2})
    shell(ctx, 'for i in $(seq "$JOBS_PARAM_SECONDS" -1 1); do echo $i; sleep 0.1; done', cwd=str(tmp_path))
    assert ctx.log.messages("INFO") == ["2", "1"]


# Save-time refusal --------------------------------------------------------------------------------------------

def test_a_variable_in_shell_code_is_refused_with_the_safe_form():
    assert written_problems(SHELL, "echo ${param.who} ${today} $${literal} $JOBS_TODAY") == [
        '${param.who} would be read by the shell as code; write "$JOBS_PARAM_WHO" instead '
        "(variables reach the command as environment variables)",
        '${today} would be read by the shell as code; write "$JOBS_TODAY" instead '
        "(variables reach the command as environment variables)",
    ]
    assert written_problems(SHELL, "echo $${today} \"$JOBS_PARAM_WHO\"") == []
    assert written_problems(None, "echo ${today}") == []


def test_a_variable_in_fixed_text_is_refused():
    assert written_problems(FIXED, "check ${param.x}") == [
        "${param.x} cannot be used here: this parameter runs exactly as its author wrote it"]


def test_a_command_line_that_cannot_be_split_is_refused():
    assert written_problems(ARGV, "--tag 'x") == ["cannot be split into words: No closing quotation in \"--tag 'x\""]
    assert written_problems(ARGV, "--tag=${param.x} '${param.y}'") == []


@pytest.mark.django_db
def test_line_validation_names_the_parameter_and_the_safe_form():
    job = Job.objects.create(identifier="greet", name="Greet", params=[{"name": "who", "type": "str"}])
    Action.objects.sync_with_registry()
    line = JobLine(job=job, line_no=10, action=Action.objects.get(name="core.shell"),
                   parameters={"command": "echo Hello ${param.who}", "cwd": "/tmp/${param.who}"})
    assert line.validation_errors(["who"]) == {"parameters": [
        'command: ${param.who} would be read by the shell as code; write "$JOBS_PARAM_WHO" instead '
        "(variables reach the command as environment variables)"]}  # cwd is data: variables are fine there


# Run-time refusal of lines stored before the rule -------------------------------------------------------------

@pytest.mark.django_db
def test_a_stored_shell_line_with_a_variable_fails_instead_of_running():
    job = make_job("old-line", (10, "core.shell", {"command": "echo '${param.who}'"}),
                   params=[{"name": "who", "type": "str"}])
    with pytest.raises(ValidationError) as info:
        job.lines.get().run_parameters(WHO)
    assert info.value.message_dict == {"command": [
        '${param.who} would be read by the shell as code; write "$JOBS_PARAM_WHO" instead '
        "(variables reach the command as environment variables)"]}


@pytest.mark.django_db
def test_run_parameters_resolve_data_parameters_and_literals():
    job = make_job("dirs", (10, "core.shell", {"command": "echo $${HOME}", "cwd": "/srv/${param.who}"}))
    assert job.lines.get().run_parameters({"param.who": "a b"}) == {"command": "echo ${HOME}", "cwd": "/srv/a b"}


# Command lines ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("template", "values", "words"), [
    ("${param.x}", {"param.x": "a b 'c' \"d\"\n--e"}, ["a b 'c' \"d\"\n--e"]),
    ("${param.x}", {"param.x": "auth.user authtoken.token"}, ["auth.user authtoken.token"]),
    ("--database=${param.x} --verbosity 2", {"param.x": "--other"}, ["--database=--other", "--verbosity", "2"]),
    ("'--tag=${param.x} y' ${param.n}", {"param.x": "a", "param.n": 3}, ["--tag=a y", "3"]),
    ("x${param.x}", {"param.x": "-v"}, ["x-v"]),
    ("${param.x} $${param.x}", {"param.x": None}, ["", "${param.x}"]),
    ("${param.b} ${param.l}", {"param.b": True, "param.l": [1]}, ["true", "[1]"]),
    ("", {}, []),
])
def test_each_variable_fills_its_own_word(template, values, words):
    assert argv(template, values) == words


@pytest.mark.parametrize(("template", "value", "message"), [
    ("${param.x}", "--output=/tmp/x",
     "the value of ${param.x} would start a new option (--output=/tmp/x); write the option yourself, "
     "e.g. --output=${param.x}"),
    ("${param.x}", "-v", "the value of ${param.x} would start a new option (-v); write the option yourself, "
                         "e.g. --option=${param.x}"),
    ("${param.x}tail", "-", "the value of ${param.x} would start a new option (-); write the option yourself, "
                            "e.g. --option=${param.x}"),
])
def test_a_value_never_starts_an_option(template, value, message):
    with pytest.raises(ValueError) as info:
        argv(template, {"param.x": value})
    assert str(info.value) == message


@pytest.mark.django_db
def test_a_stored_line_whose_value_would_start_an_option_fails_naming_the_parameter():
    job = make_job("dump", (10, "core.management_command", {"command": "check", "arguments": "${param.x}"}),
                   params=[{"name": "x", "type": "str"}])
    with pytest.raises(ValidationError) as info:
        job.lines.get().run_parameters({"param.x": "--deploy"})
    assert info.value.message_dict == {"arguments": [
        "the value of ${param.x} would start a new option (--deploy); write the option yourself, "
        "e.g. --option=${param.x}"]}
    assert job.lines.get().run_parameters({"param.x": "a b"}) == {"command": "check", "arguments": "'a b'"}


# Declaring code parameters ------------------------------------------------------------------------------------

def test_code_params_must_name_a_parameter_and_a_kind(monkeypatch):
    monkeypatch.setattr(registry, "_registry", {})

    def run(ctx, script: str) -> None:
        pass

    with pytest.raises(ValueError, match="code_params nope='shell' must name one of its parameters"):
        action("testing.bad_code", code_params={"nope": SHELL})(run)
    with pytest.raises(ValueError, match="code_params script='python' must name"):
        action("testing.bad_code", code_params={"script": "python"})(run)
    action("testing.good_code", code_params={"script": SHELL})(run)
    assert registry.get("testing.good_code").code_params == {"script": SHELL}


def test_the_built_in_actions_declare_their_code():
    assert registry.get("core.shell").code_params == {"command": SHELL}
    assert registry.get("core.management_command").code_params == {"command": FIXED, "arguments": ARGV}


# Shell commands stored before the rule ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "states"), [
    # ' inside "...", " inside '...', \" inside "..." and \' outside quotes quote nothing more.
    ("""a'b"c'd"e'f\\"g"h\\'i""", "nnssssnndddddddnnnn"),
    ("""echo "a $(x) '${b}'" '"${c}"' \\"${d}""", "nnnnnndddcccddddddddnnsssssssnnnnnnn"),
    ("", ""),
])
def test_quote_states(text, states):
    assert "".join(state[0] for state in quote_states(text)) == states


@pytest.mark.parametrize(("before", "after"), [
    ("echo Hello ${param.who}, today is ${today}", 'echo Hello "$JOBS_PARAM_WHO", today is "$JOBS_TODAY"'),
    ('echo "Hello ${param.who}!"', 'echo "Hello $JOBS_PARAM_WHO!"'),
    ('echo "${param.who}_x ${today}"', 'echo "$${JOBS_PARAM_WHO}_x $JOBS_TODAY"'),
    ("echo '${param.who}' ${domain}", "echo '${param.who}' \"$JOBS_DOMAIN\""),
    ("for i in $(seq ${param.seconds} -1 1); do echo $i; done",
     'for i in $(seq "$JOBS_PARAM_SECONDS" -1 1); do echo $i; done'),
    ("echo \\'${job.identifier} $${today}", "echo \\'\"$JOBS_JOB_IDENTIFIER\" $${today}"),
    ("echo plain", "echo plain"),
])
def test_shell_env_form(before, after):
    assert shell_env_form(before) == after
    left = {"param.who"} if "'${param.who}'" in before else set()  # only a variable in '...' stays
    assert context.variables_in(after) == left


@pytest.mark.django_db
def test_the_migration_converts_stored_shell_lines_and_bumps_their_jobs():
    job = make_job("greet", (10, "core.shell", {"command": "echo Hello ${param.who}, ${today}", "cwd": "${domain}"}),
                   (20, "core.shell", {"command": "echo '${param.who}'"}),
                   (30, "testing.echo", {"text": "${param.who}"}), params=[{"name": "who", "type": "str"}])
    untouched = make_job("plain", (10, "core.shell", {"command": "echo hi"}))
    revisions = (job.revision, untouched.revision)
    importlib.import_module(MIGRATION).to_environment_variables(apps, None)
    assert [line.parameters for line in job.lines.order_by("line_no")] == [
        {"command": 'echo Hello "$JOBS_PARAM_WHO", "$JOBS_TODAY"', "cwd": "${domain}"},
        {"command": "echo '${param.who}'"},  # refused when it runs
        {"text": "${param.who}"},
    ]
    job.refresh_from_db()
    untouched.refresh_from_db()
    assert job.revision != revisions[0] and untouched.revision == revisions[1]


def test_the_line_editor_hint_says_how_each_code_parameter_gets_the_variables():
    names = ["param.who", "today"]
    assert code_params.variables_hint({}, names) == "Values may use ${param.who}, ${today}."
    assert code_params.variables_hint(registry.get("core.shell").code_params, names) == (
        'Values may use ${param.who}, ${today}; command gets them as environment variables: "$JOBS_PARAM_WHO", '
        '"$JOBS_TODAY".')
    assert code_params.variables_hint(registry.get("core.management_command").code_params, names) == (
        "Values may use ${param.who}, ${today}; command takes none; in arguments each fills its own word and "
        "never starts an option.")


# Made safe when saved or imported ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_saving_a_line_rewrites_shell_variables_as_environment_variables():
    """What can be made safe is: the author's ${…} becomes one word of data; single quotes and typos stay refused."""
    job = Job.objects.create(identifier="greet2", name="Greet", params=[{"name": "who", "type": "str"}])
    Action.objects.sync_with_registry()
    shell_action = Action.objects.get(name="core.shell")
    line = JobLine(job=job, line_no=10, action=shell_action,
                   parameters={"command": 'echo ${param.who} "at ${now}" $${HOME}', "cwd": "/tmp/${param.who}"})
    line.full_clean()
    assert line.parameters == {"command": 'echo "$JOBS_PARAM_WHO" "at $JOBS_NOW" $${HOME}', "cwd": "/tmp/${param.who}"}
    for command, variable in (("echo '${param.who}'", "${param.who}"), ("echo ${param.typo}", "${param.typo}")):
        line = JobLine(job=job, line_no=20, action=shell_action, parameters={"command": command})
        with pytest.raises(ValidationError) as info:
            line.full_clean()
        assert variable in str(info.value)


@pytest.mark.django_db
def test_the_contract_example_imports_and_its_values_stay_data(tmp_path, acme):
    """The definition file of the public contract writes `echo ${param.days} ${today}`: it imports, made safe."""
    from jobs.definitions import import_jobs
    from tests.jobs.test_definitions_format import CONTRACT_EXAMPLE

    import_jobs(CONTRACT_EXAMPLE)
    line = Job.objects.get(identifier="weekly-report").lines.get()
    assert line.parameters == {"command": 'echo "$JOBS_PARAM_DAYS" "$JOBS_TODAY"'}
    ctx = FakeContext(variables={"param.days": "7; touch pwned", "today": "2026-12-03"})
    shell(ctx, line.parameters["command"], cwd=str(tmp_path))
    assert ctx.log.messages("INFO") == ["7; touch pwned 2026-12-03"]
    assert not (tmp_path / "pwned").exists()


# Command substitution (review 2) ------------------------------------------------------------------------------

def words_counted(command: str, value: str) -> str:
    import os
    import subprocess

    return subprocess.run(["/bin/sh", "-c", command], env={**os.environ, "JOBS_PARAM_F": value},
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("command", ['echo "$(set -- ${param.f}; echo $#)"', 'echo "`set -- ${param.f}; echo $#`"'])
def test_a_variable_in_a_command_substitution_inside_double_quotes_is_left_and_refused(command):
    """There the shell reads afresh, unquoted: a rewrite as $JOBS_F would split and glob the value (extra options)."""
    assert shell_env_form(command) == command
    assert set(quote_states(command)[command.index("${"):command.index("}")]) == {"command"}
    assert written_problems(SHELL, command) == [
        '${param.f} would be read by the shell as code; write "$JOBS_PARAM_F" instead '
        "(variables reach the command as environment variables)"]


def test_a_variable_in_a_command_substitution_outside_quotes_stays_one_word():
    safe = shell_env_form("echo $(set -- ${param.f}; echo $#) \"in $(echo ${param.f})\"")
    assert safe == 'echo $(set -- "$JOBS_PARAM_F"; echo $#) "in $(echo ${param.f})"'
    assert words_counted('echo $(set -- "$JOBS_PARAM_F"; echo $#)', "-rf / *") == "1"


# Here-documents -----------------------------------------------------------------------------------------------

def shell_output(command: str, value: str) -> str:
    import os
    import subprocess

    return subprocess.run(["/bin/sh", "-c", command], env={**os.environ, "JOBS_PARAM_WHO": value},
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize(("before", "after"), [
    # An expanding body keeps quotes as text: the reference is bare there, quoted again after the delimiter.
    ("cat <<EOF\nhello ${param.who}\nEOF\necho ${param.who}",
     'cat <<EOF\nhello $JOBS_PARAM_WHO\nEOF\necho "$JOBS_PARAM_WHO"'),
    ("cat <<-END\n\t${param.who}_x \"${param.who}\"\n\tEND\n",
     'cat <<-END\n\t$${JOBS_PARAM_WHO}_x "$JOBS_PARAM_WHO"\n\tEND\n'),
    ("cat <<A <<B\n${param.who}\nA\n${param.who}\nB\n", "cat <<A <<B\n$JOBS_PARAM_WHO\nA\n$JOBS_PARAM_WHO\nB\n"),
    # A quoted delimiter expands nothing, and a command substitution is read afresh: left, and refused.
    ("cat <<'EOF'\n${param.who}\nEOF\n", "cat <<'EOF'\n${param.who}\nEOF\n"),
    ("cat <<\\EOF\n${param.who}\nEOF\n", "cat <<\\EOF\n${param.who}\nEOF\n"),
    ("cat <<EOF\n$(echo ${param.who})\nEOF\n", "cat <<EOF\n$(echo ${param.who})\nEOF\n"),
    # A "(" opening a line inside a substitution nests (the scanner once looked at the end of the line for "$(").
    *[(nested, nested) for nested in ["cat <<EOF\n$(echo \\\n(echo x) ${param.who} $\n)\nEOF\n"]],
    # A here-string, or << inside quotes, announces no document.
    ("cat <<<${param.who}", 'cat <<<"$JOBS_PARAM_WHO"'),
    ("echo '<<EOF'\necho ${param.who}", "echo '<<EOF'\necho \"$JOBS_PARAM_WHO\""),
])
def test_shell_env_form_in_here_documents(before, after):
    assert len(quote_states(before)) == len(before)
    assert shell_env_form(before) == after


def test_a_value_in_a_here_document_comes_back_exactly_without_added_quotes(tmp_path):
    """On the old code the body read `hello "$JOBS_PARAM_WHO"`: the output gained two quotes the author never wrote."""
    value = 'x"; touch pwned $(touch pwned2) `id` \'q\''
    command = shell_env_form("cd " + str(tmp_path) + "\ncat <<EOF\nhello ${param.who}\nEOF\n")
    assert shell_output(command, value) == f"hello {value}\n"
    assert list(tmp_path.iterdir()) == []
