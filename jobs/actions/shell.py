"""``core.shell``: a command run by /bin/sh in its own process group, killed with its whole tree."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings

from .. import context
from ..code_params import SHELL
from ..registry import Cancelled, LineFailed, action

T = TypeVar("T")


def command_environment(variables: dict[str, Any], result_id: int | None) -> dict[str, str]:
    """The worker's environment plus the run's variables (``JOBS_TODAY``, ``JOBS_PARAM_WHO``, ...).

    Values reach the command only this way, so the shell expands them as data and never reads them as code.
    """
    result = {"JOBS_RESULT_ID": "" if result_id is None else str(result_id)}
    return {**os.environ, **context.environment(variables), **result}


@action(
    "core.shell",
    label="Shell command",
    help={"command": "Run by /bin/sh in its own process group; each output line goes to the log. "
                     'The run\'s variables are environment variables, e.g. "$JOBS_TODAY", "$JOBS_PARAM_WHO"; '
                     "${...} is refused here (the shell would read the value as code).",
          "cwd": "Working directory; empty for the worker's. ${...} variables may be used."},
    idempotent=False,
    dangerous=True,
    supports_cancel=True,
    # No pre-flight check of cwd: the web process's disk says nothing about the worker's, and a check there
    # would tell members which folders exist on the web server. The worker reports a missing folder.
    code_params={"command": SHELL},
)
def shell(ctx, command: str, cwd: str = "") -> str:
    """Run a shell command; a non-zero exit status fails the line."""
    process = subprocess.Popen(
        ["/bin/sh", "-c", command],
        cwd=cwd or None,
        env=command_environment(ctx.variables, ctx.result_id) | _secret_environment(ctx),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so a kill reaches the whole tree
    )
    ctx.register_process_group(process.pid)
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, ctx.log.info), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, ctx.log.warning), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        while process.poll() is None:
            if ctx.wait_cancelled(0.05):
                raise Cancelled()  # the finally below ends the group
    finally:
        # Whatever the command left behind in its group ends with the line.
        terminate_group(process.pid, term_grace(), process)
        if not ctx.cancelled:
            for reader in readers:
                reader.join(timeout=2)
            ctx.unregister_process_group(process.pid)
        # else the group stays registered: the line's stop ends the rest of its session (other groups that
        # hold the output pipes open), and the readers with them, without waiting here.
    if process.returncode != 0:
        raise LineFailed(f"command exited with status {process.returncode}")
    return "command exited with status 0"


def term_grace() -> float:
    """How long processes get between SIGTERM and SIGKILL: half the kill grace
    (``JOBS_KILL_GRACE_SECONDS``), so a tree that traps SIGTERM is ended by its line
    before the watchdog would stop the line by force."""
    return settings.JOBS_KILL_GRACE_SECONDS / 2


def _secret_environment(ctx) -> dict[str, str]:
    """$JOBS_SECRET_NAME for each stored secret the command names."""
    secret_environment = getattr(ctx, "secret_environment", None)  # contexts of tests may have none
    return secret_environment() if secret_environment else {}


def _pump(stream, write) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            write(raw.decode("utf-8", errors="replace").rstrip("\r\n"))


def terminate_group(pgid: int, grace: float, process: subprocess.Popen | None = None) -> None:
    """SIGTERM to the process group, SIGKILL to what is left after ``grace`` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if process is not None:
            process.poll()  # reap our own child, so that it does not count as alive
        if not group_alive(pgid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if process is not None:
        process.wait()


def group_alive(pgid: int) -> bool:
    """True while a process of the group still runs (zombies waiting to be reaped do not count)."""
    return any(entry.pgid == pgid and not entry.zombie for entry in process_table())


@dataclass(frozen=True)
class ProcessEntry:
    """One process as /proc/PID/stat tells it."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    started: int  # clock ticks since boot
    zombie: bool


def process_table() -> list[ProcessEntry]:
    """Every process visible in /proc (one read per process; what ends meanwhile is skipped)."""
    table = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table.append(ProcessEntry(pid=int(entry.name), ppid=int(fields[1]), pgid=int(fields[2]),
                                  sid=int(fields[3]), started=int(fields[19]), zombie=fields[0] == b"Z"))
    return table

