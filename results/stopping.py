"""How a running line is stopped once a stop (kill, time limit, the run ended elsewhere) is known.

Each step is for the code the step before could not stop:

1. A cooperative action (``supports_cancel=True``) sees the stop through its context and ends at its
   next check; ``core.shell`` ends its own process group.
2. Any other line gets ``LineInterrupted`` raised in the thread that runs it, at once
   (``PyThreadState_SetAsyncExc``): pure-Python code that never checks stops at its next bytecode,
   and the pool process goes on serving runs. It derives from ``BaseException``, so an
   ``except Exception`` in the action does not swallow it.
3. A line still running after the grace period (blocked in C, or swallowing the interrupt) is
   forced: the watchdog kills the run's processes and ends the pool process
   (``watchdog.RunWatch._force_stop``).

Whatever the run started ends with a stopped line: the process groups it registered
(``ctx.register_process_group``) and, in a prefork pool process (which leads a session of its own,
``lead_own_session``), every process of that session and every descendant started since the run
began, registered or not, children and grandchildren. Only a process that left the session on
purpose (``setsid``) and was then reparented away (a daemon) is left alone, unless registered.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

from jobs.actions.shell import ProcessEntry, process_table

T = TypeVar("T")

# True once this process leads a session of its own (a prefork pool process, one run at a time):
# then every process of the session, and every descendant, was started by this process's runs.
OWNS_SESSION = False

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_SET_ASYNC_EXC = ctypes.pythonapi.PyThreadState_SetAsyncExc  # (unsigned long thread id, exception or NULL) -> int


class LineInterrupted(BaseException):
    """Raised asynchronously in a line's thread when its run is being stopped.

    A ``BaseException``, like ``KeyboardInterrupt``: ``except Exception`` in an action does not catch it.
    """


def lead_own_session() -> None:
    """Make this (pool) process lead a new session, so the processes its runs start can be found and ended.

    Celery already has the kernel SIGKILL a pool process when its worker dies (``PR_SET_PDEATHSIG``),
    so leaving the worker's process group loses nothing.
    """
    global OWNS_SESSION
    with contextlib.suppress(PermissionError):  # already a group leader: keep what it has
        os.setsid()
    OWNS_SESSION = os.getsid(0) == os.getpid()


def boot_ticks() -> int:
    """Now, in the clock ticks since boot that /proc gives a process's start in."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _TICKS_PER_SECOND)


def interrupt_thread(thread_id: int) -> bool:
    """Raise ``LineInterrupted`` in the thread ``thread_id`` at its next bytecode; False if there is no such thread."""
    changed = _SET_ASYNC_EXC(ctypes.c_ulong(thread_id), ctypes.py_object(LineInterrupted))
    if changed > 1:  # cannot happen with a valid id; undo rather than interrupt several threads
        withdraw_interrupt(thread_id)
        return False
    return changed == 1


def withdraw_interrupt(thread_id: int) -> None:
    """Clear the thread's pending asynchronous exception, if any (NULL, not None, clears it)."""
    _SET_ASYNC_EXC(ctypes.c_ulong(thread_id), ctypes.c_void_p(None))


class LineStopper:
    """Stops the running line of one run, and ends the processes the run started.

    The line's action runs through ``run_action``; ``stop`` (from the watchdog's thread) interrupts it
    if it does not cooperate. An interrupt can land only while the action runs: a pending one is
    withdrawn when the action returns, under the same lock that sends it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: int | None = None  # the thread running an action that does not cooperate
        self._sent = False
        self._stopping = False
        self.process_groups: set[int] = set()
        self.since = boot_ticks() - 1  # processes started since the run began (one tick of slack)

    # --- the line's thread -------------------------------------------------------------------------

    def run_action(self, call: Callable[[], T], *, cooperates: bool) -> T:
        """``call()`` in this thread; unless it ``cooperates``, a stop raises ``LineInterrupted`` in it."""
        try:  # armed inside the try: an interrupt landing right after the arming is withdrawn too
            with self._lock:
                if self._stopping and not cooperates:
                    raise LineInterrupted()
                self._target = None if cooperates else threading.get_ident()
                self._sent = False
            return call()
        finally:
            self._disarm()

    def _disarm(self) -> None:
        """No interrupt lands after this returns; one landing while it runs is dropped (the action ended)."""
        while True:
            try:
                with self._lock:
                    target, self._target = self._target, None
                    if target is not None and self._sent:
                        withdraw_interrupt(target)  # if still pending
                return
            except LineInterrupted:
                continue

    # --- the watchdog's thread -----------------------------------------------------------------------

    def stop(self) -> bool:
        """The run is being stopped: interrupt the running action unless it cooperates. True if interrupted."""
        with self._lock:
            self._stopping = True
            target = self._target
            if target is None or self._sent or target == threading.get_ident():
                return False
            self._sent = interrupt_thread(target)
            return self._sent

    # --- processes -------------------------------------------------------------------------------------

    def add_process_group(self, pgid: int) -> None:
        with self._lock:
            self.process_groups.add(pgid)

    def discard_process_group(self, pgid: int) -> None:
        with self._lock:
            self.process_groups.discard(pgid)

    def run_processes(self) -> list[ProcessEntry]:
        """The live processes this run started: its registered groups (and the sessions they lead), and (in a
        pool process that leads its own session) the session's processes and this process's descendants
        started since the run began."""
        me = os.getpid()
        live = [entry for entry in process_table() if entry.pid != me and not entry.zombie]
        with self._lock:
            groups = set(self.process_groups)
        # A registered group that leads a session (``core.shell``): the session's other groups too (job control).
        doomed = {entry.pid: entry for entry in live if entry.pgid in groups or entry.sid in groups}
        if OWNS_SESSION:
            recent = [entry for entry in live if entry.started >= self.since]
            doomed.update((entry.pid, entry) for entry in recent if entry.sid == me)
            children = defaultdict(list)
            for entry in recent:
                children[entry.ppid].append(entry)
            parents = [me]
            while parents:  # descendants that left the session but still hang below this process
                for child in children.pop(parents.pop(), []):
                    doomed[child.pid] = child
                    parents.append(child.pid)
        return list(doomed.values())

    def end_processes(self, grace: float) -> None:
        """SIGTERM to every process of the run, SIGKILL to what is left after ``grace`` seconds."""
        deadline = time.monotonic() + grace
        termed: set[int] = set()
        while True:
            processes = self.run_processes()
            if not processes:
                return
            if time.monotonic() >= deadline:
                self.kill_processes()
                return
            fresh = [entry for entry in processes if entry.pid not in termed]
            _signal_all(fresh, signal.SIGTERM)
            termed.update(entry.pid for entry in fresh)
            time.sleep(0.02)
            self._reap(processes)

    def kill_processes(self, attempts: int = 50) -> None:
        """SIGKILL every process of the run, again until none is left (one may fork meanwhile)."""
        for _ in range(attempts):
            processes = self.run_processes()
            if not processes:
                return
            _signal_all(processes, signal.SIGKILL)
            time.sleep(0.005)
            self._reap(processes)

    @staticmethod
    def _reap(processes: list[ProcessEntry]) -> None:
        """Collect this process's children that ended, so none lingers as a zombie (the line is over)."""
        me = os.getpid()
        for entry in processes:
            if entry.ppid == me:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(entry.pid, os.WNOHANG)


def _signal_all(processes: list[ProcessEntry], signum: int) -> None:
    for entry in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(entry.pid, signum)
