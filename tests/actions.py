"""Actions used by the tests only (registered through JOBS_ACTION_MODULES)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Literal

from jobs.registry import action
from jobs.secrets import Secret


@action("testing.echo", label="Echo")
def echo(ctx, text: str = "hello", repeat: int = 1) -> str:
    for _ in range(repeat):
        ctx.log.info(text)
    return f"echoed {repeat} time(s)"


@action("testing.gc_frozen")
def gc_frozen(ctx) -> str:
    """How many objects the collector leaves alone in the process that runs the line (``gc.freeze``)."""
    import gc

    return f"{gc.get_freeze_count()} objects frozen"


@action("testing.fail")
def fail(ctx, message: str = "it went wrong") -> None:
    raise RuntimeError(message)


@action("testing.warn")
def warn(ctx, message: str = "careful") -> str:
    ctx.warn(message)
    return "done with a warning"


@action("testing.touch")
def touch(ctx, path: str) -> str:
    """Appends one line to ``path``: lets tests count how often a line really ran."""
    with open(path, "a") as handle:
        handle.write(f"{ctx.result_id}:{ctx.line_no}:{os.getpid()}\n")
    return f"touched {path}"


@action("testing.busy_loop", supports_cancel=False)
def busy_loop(ctx, seconds: float = 60.0, pid_file: str = "") -> str:
    """Pure Python that never checks for cancellation, and swallows every ``Exception`` it meets."""
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    counter = 0
    while time.monotonic() < deadline:
        try:
            counter += 1
        except Exception:  # noqa: S112  (careless code: a kill must still stop it)
            continue
    return f"looped {counter} times"


@action("testing.sleep_in_c", supports_cancel=False)
def sleep_in_c(ctx, seconds: float = 600.0, pid_file: str = "") -> str:
    """Blocked in C (``time.sleep``): no interrupt reaches it, only the forced stop."""
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "slept"


@action("testing.spawn_and_loop", supports_cancel=False)
def spawn_and_loop(ctx, pids: str, c_sleep: bool = False) -> str:
    """Starts processes it never registers, then loops (or sleeps in C) without checking.

    Writes to ``pids`` one pid per line: a child ``sleep 300``; a ``sh`` child and its ``sleep 300``
    grandchild; a ``sleep 300`` whose parent ``sh`` has exited (an orphan still in the session)."""
    child = subprocess.Popen(["sleep", "300"])
    shell = subprocess.Popen(["sh", "-c", f"sleep 300 & echo $! >> {pids}; wait"])
    subprocess.run(["sh", "-c", f"sleep 300 > /dev/null 2>&1 & echo $! >> {pids}"], check=True)
    with open(pids, "a") as handle:
        handle.write(f"{child.pid}\n{shell.pid}\n")
    if c_sleep:
        time.sleep(600)
    while True:
        pass


@action("testing.register_daemon_then_block", supports_cancel=False)
def register_daemon_then_block(ctx, pids: str) -> str:
    """Starts a daemon (a new session, its parent gone: only its registration ties it to the line),
    registers its process group, then blocks in C, so only the forced stop can end the line."""
    leader = subprocess.Popen(["sh", "-c", f"sleep 300 > /dev/null 2>&1 & echo $! >> {pids}"],
                              start_new_session=True)
    leader.wait()
    ctx.register_process_group(leader.pid)
    with open(pids, "a") as handle:
        handle.write(f"{os.getpid()}\n")  # the pool process, last
    time.sleep(600)
    return "slept"


@action("testing.fail_when_file_appears", supports_cancel=True)
def fail_when_file_appears(ctx, path: str) -> None:
    """Waits (cooperatively) until ``path`` exists, then fails: the test decides when the line ends."""
    while not os.path.exists(path):
        ctx.sleep(0.02)
    raise RuntimeError("failed after the file appeared")


@action("testing.typed")
def typed(ctx, count: int, ratio: float = 0.5, flag: bool = False, day: str = "",
          mode: Literal["fast", "slow"] = "fast") -> str:
    return f"{count} {ratio} {flag} {day} {mode}"


@action("testing.break_runner")
def break_runner(ctx) -> str:
    """Makes the runner itself fail once, after this line (a bug in the runner)."""
    from results import runner

    original = runner.Run.summarize

    def broken(self, *args, **kwargs):
        runner.Run.summarize = original
        raise RuntimeError("simulated failure inside the runner")

    runner.Run.summarize = broken
    return "the runner will fail next"


@action("testing.records", supports_cancel=True)
def records(ctx, count: int = 10, fail_every: int = 0, pause: float = 0.0) -> str:
    """Processes ``count`` fake records, failing every ``fail_every``-th; reports progress."""
    ctx.progress(0, count)
    done = 0
    for number in range(1, count + 1):
        ctx.check_cancelled()
        if fail_every and number % fail_every == 0:
            ctx.failed(f"rec-{number}", f"record {number} is locked")
        else:
            done += 1
            ctx.progress(done, count)
        if pause:
            ctx.sleep(pause)
    ctx.changed_data()
    return f"{done} records processed"


@action("testing.deactivate_users", supports_cancel=True)
def deactivate_users(ctx, batch: int = 250, trace: str = "") -> str:
    """Deactivates the filtered users batch by batch: each batch stops matching the filter it came from."""
    from django.contrib.auth import get_user_model

    seen = []
    for records in ctx.records.batches(batch):
        ctx.check_cancelled()
        ids = [user.pk for user in records]
        seen.extend(ids)
        get_user_model().objects.filter(pk__in=ids).update(is_active=False)
        ctx.processed(len(ids))
    ctx.changed_data()
    if trace:
        with open(trace, "w") as handle:
            handle.write("\n".join(map(str, seen)))
    return f"{len(seen)} users deactivated"


@action("testing.list_records")
def list_records(ctx) -> str:
    """Names the records the filter line before selected (primary keys, in order)."""
    return "records: " + " ".join(str(record.pk) for record in ctx.records)


@action("testing.whoami")
def whoami(ctx) -> str:
    return f"runs as {ctx.user.get_username() if ctx.user is not None else 'nobody'}"


@action("testing.guarded", permissions=["jobs.view_job"])
def guarded(ctx) -> str:
    return "the guarded action ran"


@action("testing.slow_check", check=lambda seconds=10.0, **_: time.sleep(seconds))
def slow_check(ctx, seconds: float = 10.0) -> str:
    """Its pre-flight check takes ``seconds``: the Run page must not wait for it."""
    return "checked slowly"


@action("testing.login")
def login(ctx, user: str, password: Secret, token: str = "") -> str:
    """Logs and returns the secrets it gets (as careless code would): the run must mask them."""
    ctx.log.info(f"logging in as {user} with password {password} and token {token}")
    ctx.log.info(f"password sha256 {hashlib.sha256(password.encode()).hexdigest()}")  # proves it got the value
    if token:
        ctx.log.info(f"ctx.secret says {ctx.secret('api_token')}")
    return f"logged in as {user}:{password}"


@action("testing.bad_output")
def bad_output(ctx, failed_record: bool = False, fail: bool = False) -> str:
    """Writes text a database may refuse: NUL and lone surrogates (what surrogateescape makes of a byte
    that is not UTF-8) in the log, the returned message and, with ``failed_record``, a failed record;
    with ``fail``, in the exception that fails the line."""
    ctx.log.info("a\x00b")
    ctx.log.warning("bad byte: \udcff, lone half: \ud800")
    if failed_record:
        ctx.failed("rec\x00-1", "error with \x00 and \udc80")
    if fail:
        raise RuntimeError("broke at \x00 and \udcff")
    return "returned \x00 and \udcff"


@action("testing.huge_progress")
def huge_progress(ctx, total: int = 10**20, pause: float = 0.0) -> str:
    """Reports a record count no integer column can hold: its line's counts cannot be stored.

    With ``pause``, waits that long after it, while the watchdog ticks."""
    ctx.log.info("before the huge count")
    ctx.progress(1, total)
    ctx.sleep(pause)
    ctx.log.info("after the huge count")
    return "counted"
