"""``core.management_command``: a Django management command run in the worker."""
from __future__ import annotations

import contextlib
import io
import shlex
import sys
import threading
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.management import call_command, get_commands

from ..code_params import ARGV, FIXED, split_words
from ..registry import LineFailed, action

# core.management_command ----------------------------------------------------------------------------------------

REFUSED_COMMANDS = {
    "runserver": "it serves until stopped",
    "testserver": "it serves until stopped",
    "shell": "it waits for a person at a terminal",
    "dbshell": "it waits for a person at a terminal",
    "flush": "it deletes every row of the database",
}


def command_problems(parameters: dict) -> list[str]:
    """Save-time check of core.management_command: the command is one a job may run here."""
    command = parameters.get("command")
    if not isinstance(command, str):
        return []
    try:
        words = split_words(command)
    except ValueError as exc:
        return [f"command: {exc}"]
    if not words:
        return ["command: give the name of a management command, e.g. clearsessions"]
    problem = command_refusal(words[0])
    return [f"command: {problem}"] if problem else []


def command_refusal(name: str) -> str | None:
    """Why the management command ``name`` may not run in a job, or None when it may."""
    if name in REFUSED_COMMANDS:
        return f"the management command '{name}' cannot run in a job: {REFUSED_COMMANDS[name]}"
    allowed = settings.JOBS_MANAGEMENT_COMMANDS
    if name not in allowed:
        return (f"the management command '{name}' is not allowed in jobs; the system administrators allow "
                f"{', '.join(allowed) or 'none'} (setting JOBS_MANAGEMENT_COMMANDS)")
    return None


@action(
    "core.management_command",
    label="Management command",
    help={"command": "The name of a Django management command allowed by the setting JOBS_MANAGEMENT_COMMANDS, "
                     "e.g. clearsessions; it may not contain variables.",
          "arguments": "Its arguments and options, split into words like a shell does before variables are "
                       "filled in: each variable fills only its own word and its value can never start an "
                       "option; write options yourself, e.g. --database=${param.db}."},
    idempotent=False,
    dangerous=True,
    code_params={"command": FIXED, "arguments": ARGV},
    validate=command_problems,
)
def management_command(ctx, command: str, arguments: str = "") -> str:
    """Run a Django management command in the worker; its output goes to the log, an error fails the line."""
    words = _split(command, "command")  # "check --deploy" in command is allowed too
    if not words:
        raise ValueError("command is empty: give the name of a management command, e.g. clearsessions")
    name, args = words[0], words[1:] + _split(arguments, "arguments")
    _check_command(name)
    shown = shlex.join([name, *args])
    ctx.log.info(f"manage.py {shown}")
    stdout, stderr = LineWriter(ctx.log.info), LineWriter(ctx.log.warning)
    try:
        with _empty_stdin():
            call_command(name, *args, stdout=stdout, stderr=stderr)
    except SystemExit as exc:  # some commands sys.exit(); that must not end the worker
        if exc.code not in (0, None):
            raise LineFailed(f"manage.py {name} exited with status {exc.code}") from None
    except EOFError:
        raise LineFailed(f"manage.py {name} asked for input, which a job cannot give (try --noinput)") from None
    finally:
        stdout.finish()
        stderr.finish()
    return f"manage.py {shown} finished ({stdout.lines + stderr.lines} line(s) of output)"


def _split(text: str, what: str) -> list[str]:
    try:
        return shlex.split(text or "")
    except ValueError as exc:
        raise ValueError(f"{what} cannot be split into words: {exc} in {text!r}") from None


def _check_command(name: str) -> None:
    if name not in get_commands():
        raise ValueError(f"unknown management command '{name}'")
    problem = command_refusal(name)
    if problem:
        raise ValueError(problem)


class LineWriter(io.TextIOBase):
    """A text stream that hands each complete line to ``write_line`` as it comes."""

    encoding = "utf-8"

    def __init__(self, write_line: Callable[[str], None]) -> None:
        super().__init__()
        self._write_line = write_line
        self._pending = ""
        self._lock = threading.Lock()
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *complete, self._pending = (self._pending + text).split("\n")
            self.lines += len(complete)
        for line in complete:
            self._write_line(line.rstrip("\r"))
        return len(text)

    def finish(self) -> None:
        """Hand over the last line if it did not end with a newline."""
        with self._lock:
            last, self._pending = self._pending, ""
            self.lines += bool(last)
        if last:
            self._write_line(last.rstrip("\r"))


@contextlib.contextmanager
def _empty_stdin() -> Iterator[None]:
    """A prompt meets the end of its input (EOFError) instead of waiting for a person who is not there."""
    saved, sys.stdin = sys.stdin, io.StringIO()
    try:
        yield
    finally:
        sys.stdin = saved
