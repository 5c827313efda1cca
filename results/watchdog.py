"""The watchdog beside a running line: heartbeat, log flushing, kill, time limit.

Each worker process has one long-lived monitor thread (with its own database
connection, kept between runs) that ticks the run in progress a few times a
second: it beats the heartbeat, writes the buffered log, reads the kill
request from the database (so a kill works across hosts and survives broker
restarts), enforces the time limit, and stops by force a line that ignores
the stop for longer than the grace period. How a line is stopped (interrupt,
processes, force) is ``results.stopping``'s.
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
from .models import JobLineResult, JobResult, LogLevel, Status
from .stopping import LineStopper

logger = logging.getLogger(__name__)

# True inside a prefork pool child, where ending the process is how a line that
# ignores a kill is stopped (the pool starts a fresh child); set by results.signals.
FORCE_EXIT_ALLOWED = False


MAX_FAILURES_KEPT = 1000


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
        self.next_beat = now + settings.JOBS_HEARTBEAT_SECONDS
        self.next_flush = now + settings.JOBS_LOG_FLUSH_SECONDS
        self.progress_written: tuple | None = None

    def tick(self) -> None:
        now = time.monotonic()
        if not self.control.stop_requested.is_set():
            self._check_kill()
        over_time = self.deadline is not None and now >= self.deadline
        if over_time and self.control.stop(f"Time limit of {self.time_limit} s exceeded."):
            self.journal.write(LogLevel.ERROR, self.control.stop_message)
        if now >= self.next_flush:
            self.journal.flush()
            self._write_progress()
            self.next_flush = now + settings.JOBS_LOG_FLUSH_SECONDS
        if now >= self.next_beat:
            if not states.beat(self.result_id):
                self.control.stop("The run was ended elsewhere.")
            self.next_beat = now + settings.JOBS_HEARTBEAT_SECONDS
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

    def _check_kill(self) -> None:
        row = (
            JobResult.objects.filter(id=self.result_id, kill_requested_at__isnull=False)
            .select_related("kill_requested_by").only("kill_requested_at", "kill_requested_by__username").first()
        )
        if row is not None and self.control.stop(states.kill_message(row)):
            self.journal.write(LogLevel.WARNING, f"Kill requested: {self.control.stop_message}")

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
    """The one watchdog thread of this process."""

    _instance: Monitor | None = None
    _instance_pid: int | None = None
    _create_lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__(name="jobs-watchdog", daemon=True)
        self._watch: RunWatch | None = None
        self._wake = threading.Event()

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
        self._watch = run_watch
        self._wake.set()

    def unwatch(self, run_watch: RunWatch) -> None:
        if self._watch is run_watch:
            self._watch = None

    def run(self) -> None:
        while True:
            run_watch = self._watch
            if run_watch is None or run_watch.control.finished.is_set():
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            # The claim has just read the kill request, so the first look is one poll later:
            # a run shorter than that costs this thread no query at all.
            if run_watch.control.finished.wait(settings.JOBS_KILL_POLL_SECONDS):
                continue
            try:
                run_watch.tick()
            except Exception:
                # A database hiccup must not end the heartbeat for good: retry on a fresh connection.
                logger.exception("watchdog tick of result %s failed", run_watch.result_id)
                connection.close()
