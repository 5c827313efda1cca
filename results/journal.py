"""The run's journal: what a run writes while it goes, buffered and written a few times a second.

Log entries, line starts and ends and the run's variables wait here and are
written together, in one transaction, when the watchdog flushes (every
JOBS_LOG_FLUSH_SECONDS) or when the run ends. Writing each as it happens would
make a chatty command, or a job of many short lines, spend its time in the
database: a short one-line run now costs the claim and one commit. What the
result page shows is at most one flush interval behind.
"""
from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import statements
from .models import JobLineResult, JobLogEntry, JobResult, LogLevel, Status


def cut(message: str, limit: int) -> str:
    if len(message) <= limit:
        return message
    return f"{message[:limit]} … [cut {len(message) - limit} characters]"


class RunJournal:
    def __init__(self, result_id: int) -> None:
        self.result_id = result_id
        self._lock = threading.Lock()  # guards the buffers below
        # One writer at a time, taken before the database (see ``flushing``); reentrant so a flush can run inside.
        self._write_lock = threading.RLock()
        self._entries: list[JobLogEntry] = []
        self._seq = 0  # one runner per result (the claim), and a pending result has no log yet
        self._run_fields: dict[str, Any] = {}
        self._new_lines: list[JobLineResult] = []  # started, not yet written
        self._in_flight: set[int] = set()  # ids of the line objects a flush is writing right now
        self._line_ends: dict[int, tuple[JobLineResult, dict]] = {}  # ends of lines already written (or in flight)
        self._limit = settings.JOBS_LOG_LINE_MAX_CHARS
        self._batch = settings.JOBS_LOG_BATCH_SIZE

    # --- what the run records ------------------------------------------------------------------

    def write(self, level: str, message: Any, line_no: int | None = None) -> None:
        text = cut(str(message), self._limit)
        with self._lock:
            self._seq += 1
            self._entries.append(
                JobLogEntry(result_id=self.result_id, seq=self._seq, level=level, line_no=line_no,
                            message=text, at=timezone.now())
            )
            full = len(self._entries) >= self._batch
        # A full batch is written now, unless the watchdog is writing already (it takes these too):
        # waiting here, perhaps inside the action's own transaction, could deadlock with it on SQLite.
        if full and self._write_lock.acquire(blocking=False):
            try:
                self.flush()
            finally:
                self._write_lock.release()

    def set_run_fields(self, **fields: Any) -> None:
        with self._lock:
            self._run_fields.update(fields)

    def pop_run_fields(self) -> dict[str, Any]:
        """The run fields not yet written, for a caller that writes them itself (the run's end)."""
        with self._lock:
            fields, self._run_fields = self._run_fields, {}
        return fields

    def start_line(self, line: JobLineResult) -> None:
        """A line started: ``line`` (unsaved, status running) is written at the next flush."""
        with self._lock:
            self._new_lines.append(line)

    def end_line(self, line: JobLineResult, **fields: Any) -> None:
        """A line ended: a line not yet written is written once, already ended; else it is updated."""
        with self._lock:
            if line.pk is None and id(line) not in self._in_flight:
                for name, value in fields.items():
                    setattr(line, name, value)
            else:
                self._line_ends[id(line)] = (line, fields)

    # --- writing ---------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what is buffered, in one transaction; safe to call from any thread.

        If the write fails, everything is kept for the next try.
        """
        with self._write_lock:
            with self._lock:
                entries, self._entries = self._entries, []
                run_fields, self._run_fields = self._run_fields, {}
                new_lines, self._new_lines = self._new_lines, []
                line_ends, self._line_ends = self._line_ends, {}
                self._in_flight = {id(line) for line in new_lines}
            try:
                if entries or run_fields or new_lines or line_ends:
                    self._write(entries, run_fields, new_lines, line_ends)
            except BaseException:
                self._keep_for_next_try(entries, run_fields, new_lines, line_ends)
                raise
            finally:
                with self._lock:
                    self._in_flight = set()

    def _write(self, entries: list[JobLogEntry], run_fields: dict, new_lines: list[JobLineResult],
               line_ends: dict[int, tuple[JobLineResult, dict]]) -> None:
        with transaction.atomic(savepoint=False), statements.pipelined():
            if run_fields:
                statements.update(JobResult, run_fields, id=self.result_id)
            # A line still running gets its id back: its end updates it by id. An ended one needs none.
            statements.insert([line for line in new_lines if line.status == Status.RUNNING], set_ids=True)
            statements.insert([line for line in new_lines if line.status != Status.RUNNING])
            for line, fields in line_ends.values():
                statements.update(JobLineResult, fields, id=line.pk, status=Status.RUNNING)
            statements.insert(entries)

    def _keep_for_next_try(self, entries, run_fields, new_lines, line_ends) -> None:
        for line in new_lines:  # rolled back: they were not written after all
            line.pk = None
            line._state.adding = True
        with self._lock:
            self._entries = entries + self._entries
            self._run_fields = run_fields | self._run_fields
            self._new_lines = new_lines + self._new_lines
            self._line_ends = line_ends | self._line_ends  # ends recorded meanwhile are newer

    def flushing(self) -> threading.RLock:
        """Hold it around a transaction that flushes this journal.

        Always this lock first, then the database: on SQLite a transaction
        holds the whole database, so a runner that began one and then waited
        for this lock, while the watchdog held it waiting for the database,
        would deadlock both until the busy timeout.
        """
        return self._write_lock

    def for_line(self, line_no: int | None) -> LineLogger:
        return LineLogger(self, line_no)


class LineLogger:
    """What an action sees as ``ctx.log``."""

    def __init__(self, journal: RunJournal, line_no: int | None) -> None:
        self._journal = journal
        self.line_no = line_no

    def debug(self, message: Any) -> None:
        self._journal.write(LogLevel.DEBUG, message, self.line_no)

    def info(self, message: Any) -> None:
        self._journal.write(LogLevel.INFO, message, self.line_no)

    def warning(self, message: Any) -> None:
        self._journal.write(LogLevel.WARNING, message, self.line_no)

    def error(self, message: Any) -> None:
        self._journal.write(LogLevel.ERROR, message, self.line_no)
