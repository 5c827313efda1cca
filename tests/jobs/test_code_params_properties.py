"""Properties of code parameters (jobs/code_params.py): whatever a person types as a run-time value, the shell runs
exactly the author's command and the command line is exactly the author's words with the value in its place."""
from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

import pytest
from django.core.management import CommandError
from hypothesis import assume, example, given
from hypothesis import strategies as st

from jobs.actions import management_command, shell
from jobs.code_params import argv
from jobs.models import Action, JobLine
from tests.helpers import FakeContext
from tests.property_support import prop_settings

METACHARACTERS = ";&|$`\"'\\()<>*?[]{}~!#\n\t -="
ATTACKS = [
    "x; touch pwned", "$(touch pwned)", "`touch pwned`", "x && touch pwned", "x\ntouch pwned", '"; touch pwned; "',
    "'; touch pwned; '", "${IFS}touch${IFS}pwned", "x | touch pwned", "$(touch pwned)\"$(touch pwned2)\"",
    "--output=/tmp/pwned", "-v", "auth.user authtoken.token", "é ü ✓ 日本", "",
]
# NUL cannot be in an argv item or an environment variable; "\r" would be taken off a logged line's end.
values = st.one_of(
    st.text(st.sampled_from(METACHARACTERS), max_size=20),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00\r"), max_size=20),
    st.sampled_from(ATTACKS),
    st.builds(lambda a, b, c: a + b + c, st.text(st.sampled_from(METACHARACTERS + "aé"), max_size=5),
              st.sampled_from(ATTACKS), st.text(st.sampled_from(METACHARACTERS + "aé"), max_size=5)),
)

# The author's command: writes the value and the shell's own argv (from /proc) to files in the working directory.
SHELL_COMMAND = "printf '%s' \"$JOBS_PARAM_WHO\" > value.out; cat /proc/$$/cmdline > argv.out"


def line(action: str, parameters: dict) -> JobLine:
    return JobLine(line_no=10, action=Action(name=action), parameters=parameters)


@prop_settings(60)
@given(value=values)
@example(value="x; touch pwned")
def test_the_shell_runs_the_authors_command_and_reads_the_value_as_data(value):
    variables = {"param.who": value}
    with tempfile.TemporaryDirectory() as folder:
        arguments = line("core.shell", {"command": SHELL_COMMAND, "cwd": folder}).run_parameters(variables)
        assert arguments == {"command": SHELL_COMMAND, "cwd": folder}  # the author's text, unchanged
        shell(FakeContext(variables=variables), **arguments)
        written = {name: (Path(folder) / name).read_bytes() for name in os.listdir(folder)}
    assert set(written) == {"value.out", "argv.out"}  # nothing else ran: no "pwned" file
    assert written["value.out"].decode() == value
    assert written["argv.out"] == b"\0".join([b"/bin/sh", b"-c", SHELL_COMMAND.encode(), b""])


# Words of the author: text around at most one variable; "$" stays out so that no other variable appears.
word_parts = st.text(st.sampled_from(METACHARACTERS.replace("$", "") + "aZé"), max_size=4)
author_words = st.lists(st.tuples(word_parts, st.booleans(), word_parts), min_size=1, max_size=4)


@prop_settings(150)
@given(words=author_words, value=values)
@example(words=[("", True, "")], value="--output=/tmp/pwned")
@example(words=[("", True, "")], value="auth.user authtoken.token")
@example(words=[("--database=", True, "")], value="-v")
def test_each_variable_fills_exactly_its_own_word(words, value):
    written = ["".join((before, "${param.x}" if has_variable else "", after)) for before, has_variable, after in words]
    template = " ".join(shlex.quote(word) for word in written)
    expected = [word.replace("${param.x}", value) for word in written]
    new_option = any(filled.startswith("-") and not word.startswith("-") for word, filled in zip(
        written, expected, strict=True))
    run_line = line("core.management_command", {"command": "check", "arguments": template})
    if new_option:
        with pytest.raises(ValueError, match=r"^the value of \$\{param\.x\} would start a new option"):
            argv(template, {"param.x": value})
        return
    assert argv(template, {"param.x": value}) == expected
    arguments = run_line.run_parameters({"param.x": value})["arguments"]
    assert shlex.split(arguments) == expected  # what the action hands to call_command


@prop_settings(25)
@given(value=values)
@example(value="models --deploy")
@example(value="--deploy")
def test_a_real_command_gets_the_value_as_one_argument(value):
    assume(value not in ("models", "database", "security", "templates", "urls", "staticfiles", "caches",
                         "compatibility", "signals", "async_support", "admin", "translation", "files", "sites",
                         "commands", "url_config"))
    run_line = line("core.management_command", {"command": "check", "arguments": "--tag ${param.x}"})
    if value.startswith("-"):
        with pytest.raises(Exception, match="would start a new option"):
            run_line.run_parameters({"param.x": value})
        return
    with pytest.raises(CommandError) as info:
        management_command(FakeContext(), **run_line.run_parameters({"param.x": value}))
    assert str(info.value) == f'There is no system check with the "{value}" tag.'
