"""The watchdog beside a running line: heartbeat, log flushing, kill, time limit.

Each worker process has one long-lived monitor thread (with its own database
connection, kept between runs) that looks at its runs a few times a second: it
writes their buffered log, enforces the time limit, and stops by force a line
that ignores the stop for longer than the grace period. How a kill is heard
(PostgreSQL's LISTEN/NOTIFY, with the heartbeat as the safety-net poll) and how
the heartbeats of all the process's runs go in one statement is
``results.kill_watch``: a run that only runs costs one transaction per
heartbeat interval, however many runs there are. How a line is stopped
(interrupt, processes, force) is ``results.stopping``'s.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.utils import timezone

from . import aftermath, states
from .db import UNSTORABLE
from .journal import RunJournal
from .kill_watch import KillWatch
from .models import JobLineResult, JobResult, LogLevel, Status
from .stopping import LineStopper

logger = logging.getLogger(__name__)

# True inside a prefork pool child, where ending the process is how a line that
# ignores a kill is stopped (the pool starts a fresh child); set by results.signals.
FORCE_EXIT_ALLOWED = False


MAX_FAILURES_KEPT = 1000
# How often the watchdog looks at its runs' time limits, grace periods and log (in memory: no query).
WATCH_TICK_SECONDS = 0.1


@dataclass
class LineTally:
    """What an action reports about its records while it runs (shared with the watchdog)."""

    total: int | None = None
    processed: int = 0
    failed: int = 0
    failures: list[dict] = field(default_factory=list)
    data_changed: bool | None = None
    external_called: bool | None = None

    def progress_fields(self) -> dict:
        return {"records_total": self.total, "records_processed": self.processed, "records_failed": self.failed}

    def fields(self) -> dict:
        return {**self.progress_fields(), "failures": self.failures, "data_changed": self.data_changed,
                "external_called": self.external_called}


class RunControl:
    """What the run's threads share: the stop request, and how the line is stopped (``stopping``)."""

    def __init__(self) -> None:
        self.tally: LineTally | None = None  # the current line's
        self.stop_requested = threading.Event()
        self.stop_message = ""
        self.stopped_at: float | None = None
        self.finished = threading.Event()
        self.current_line: int | None = None
        self.stopper = LineStopper()
        self._lock = threading.Lock()

    def stop(self, message: str) -> bool:
        """Ask the run to stop (a line that does not cooperate is interrupted); False if it was asked already."""
        with self._lock:
            if self.stop_requested.is_set():
                return False
            self.stop_message = message
            self.stopped_at = time.monotonic()
            self.stop_requested.set()
        self.stopper.stop()
        return True

    def add_process_group(self, pgid: int) -> None:
        self.stopper.add_process_group(pgid)

    def discard_process_group(self, pgid: int) -> None:
        self.stopper.discard_process_group(pgid)


class RunWatch:
    """The watchdog's view of one run."""

    def __init__(self, result_id: int, journal: RunJournal, control: RunControl, time_limit: int | None) -> None:
        now = time.monotonic()
        self.result_id = result_id
        self.journal = journal
        self.control = control
        self.time_limit = time_limit
        self.deadline = now + time_limit if time_limit else None
        self.next_flush = now + settings.JOBS_LOG_FLUSH_SECONDS
        self.progress_written: tuple | None = None

    def tick(self) -> None:
        now = time.monotonic()
        over_time = self.deadline is not None and now >= self.deadline
        if over_time and self.control.stop(f"Time limit of {self.time_limit} s exceeded."):
            self.journal.write(LogLevel.ERROR, self.control.stop_message)
        if now >= self.next_flush or self.journal.batch_full:
            self.journal.flush()
            self._write_progress()
            self.next_flush = now + settings.JOBS_LOG_FLUSH_SECONDS
        stopped_at = self.control.stopped_at
        if stopped_at is not None and now - stopped_at > settings.JOBS_KILL_GRACE_SECONDS:
            self._force_stop()

    def _write_progress(self) -> None:
        """The running line's record counts, for the progress bar (only when they changed)."""
        tally, line_no = self.control.tally, self.control.current_line
        if tally is None or line_no is None:
            return
        progress = tally.progress_fields()
        if (line_no, progress) != self.progress_written:
            try:
                JobLineResult.objects.filter(result_id=self.result_id, line_no=line_no, status=Status.RUNNING).update(
                    **progress)
            except UNSTORABLE:  # a count beyond its column: not tried again each tick, the line's end says it
                logger.warning("progress of result %s line %s not stored", self.result_id, line_no, exc_info=True)
            self.progress_written = (line_no, progress)

    def kill_requested(self, request: JobResult) -> None:
        """Someone asked for the kill (``request``: the result's kill fields, read by ``kill_watch``)."""
        if self.control.stop(states.kill_message(request)):
            self.journal.write(LogLevel.WARNING, f"Kill requested: {self.control.stop_message}")

    def ended_elsewhere(self) -> None:
        """The heartbeat found the run no longer running (reaped as lost, or ended by force)."""
        self.control.stop("The run was ended elsewhere.")

    def _force_stop(self) -> None:
        """The line ignored the stop (and its interrupt) for the whole grace period: end it from here,
        with every process the run started."""
        if self.control.finished.is_set():
            return
        self.control.stopper.kill_processes()
        line_no = self.control.current_line
        grace = settings.JOBS_KILL_GRACE_SECONDS
        self.journal.write(LogLevel.ERROR, f"Line {line_no} did not stop within {grace:g} s; stopped by force.",
                           line_no)
        self.journal.flush()
        JobLineResult.objects.filter(result_id=self.result_id, line_no=line_no, status=Status.RUNNING).update(
            status=Status.KILLED, message="Stopped by force.", finished_at=timezone.now()
        )
        if states.finish(self.result_id, Status.KILLED, self.control.stop_message, cut_short=True):
            aftermath.run_ended(self.result_id, Status.KILLED)  # no transaction here: published before the exit
        self.control.finished.set()
        if FORCE_EXIT_ALLOWED:
            # The only way to stop Python code that never checks: end this pool
            # process; Celery's pool starts a fresh one.
            os._exit(1)


class Monitor(threading.Thread):
    """The one watchdog thread of this process, for every run the process has going.

    A prefork pool process has one run at a time; a threads pool process has several,
    each with its own watch, beaten together (``kill_watch``: one UPDATE for all).
    """

    _instance: Monitor | None = None
    _instance_pid: int | None = None
    _create_lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__(name="jobs-watchdog", daemon=True)
        self._watches: dict[int, RunWatch] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.kills = KillWatch(wake=self._wake.set)

    @classmethod
    def get(cls) -> Monitor:
        with cls._create_lock:
            # A forked pool process inherits the object but not the thread.
            if cls._instance is None or cls._instance_pid != os.getpid() or not cls._instance.is_alive():
                cls._instance = cls()
                cls._instance_pid = os.getpid()
                cls._instance.start()
            return cls._instance

    def watch(self, run_watch: RunWatch) -> None:
        run_watch.journal.writer = self
        run_watch.journal.wake_writer = self._wake.set  # a full batch is written at once
        with self._lock:
            self._watches[run_watch.result_id] = run_watch
        self._wake.set()

    def unwatch(self, run_watch: RunWatch) -> None:
        with self._lock:
            if self._watches.get(run_watch.result_id) is run_watch:
                del self._watches[run_watch.result_id]
        run_watch.journal.wake_writer = None

    def _going(self) -> dict[int, RunWatch]:
        with self._lock:
            return {result_id: w for result_id, w in self._watches.items() if not w.control.finished.is_set()}

    def run(self) -> None:
        while True:
            # In-memory checks (time limits, the grace, the log's flush interval) a few times a second;
            # the database only when kill_watch says so, or when there is log to write.
            self._wake.wait(WATCH_TICK_SECONDS if self._watches else None)
            self._wake.clear()
            watches = self._going()
            try:
                requests, ended = self.kills.check(watches.keys())
            except Exception:
                # A database hiccup must not end the watch for good: retry on a fresh connection.
                logger.exception("kill watch of results %s failed", sorted(watches))
                connection.close()
                requests, ended = [], set()
            for request in requests:
                watches[request.id].kill_requested(request)
            for result_id in ended:
                watches[result_id].ended_elsewhere()
            for run_watch in watches.values():
                try:
                    run_watch.tick()
                except Exception:
                    logger.exception("watchdog tick of result %s failed", run_watch.result_id)
                    connection.close()
