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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.secrets import Masker

from . import statements
from .models import JobLineResult, JobLogEntry, JobResult, LogLevel, Status

T = TypeVar("T")


def cut(message: str, limit: int) -> str:
    if len(message) <= limit:
        return message
    return f"{message[:limit]} … [cut {len(message) - limit} characters]"


@dataclass
class _Batch:
    """What one flush takes: kept whole until its transaction commits."""

    entries: list[JobLogEntry]
    run_fields: dict[str, Any]
    new_lines: list[JobLineResult]  # started, not yet written
    line_ends: dict[int, tuple[JobLineResult, dict]]  # ends of lines already written

    @property
    def empty(self) -> bool:
        return not (self.entries or self.run_fields or self.new_lines or self.line_ends)


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
        self.masker = Masker()  # the run's secret values, replaced by a mask in every entry (none: no cost)
        self._batch = settings.JOBS_LOG_BATCH_SIZE

    # --- what the run records ------------------------------------------------------------------

    def write(self, level: str, message: Any, line_no: int | None = None) -> None:
        text = cut(self.masker.text(str(message)), self._limit)
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

    def flush(self, then: Callable[[dict[str, Any]], T] | None = None) -> T | None:
        """Write what is buffered, in one transaction; safe to call from any thread.

        ``then(run_fields)``, if given, runs last in that transaction and writes the run's fields
        itself (the run's end writes them with its UPDATE); its value is returned. If anything
        fails, even a later statement of the pipeline or the commit, everything is kept for the
        next try.
        """
        with self._write_lock:
            batch = self._take()
            try:
                if batch.empty and then is None:
                    return None
                with transaction.atomic(savepoint=False), statements.pipelined():
                    self._write(batch, run_fields=then is None)
                    return then(batch.run_fields) if then is not None else None
            except BaseException:
                self._put_back(batch)
                raise
            finally:
                with self._lock:
                    self._in_flight = set()

    def _take(self) -> _Batch:
        with self._lock:
            batch = _Batch(self._entries, self._run_fields, self._new_lines, self._line_ends)
            self._entries, self._run_fields, self._new_lines, self._line_ends = [], {}, [], {}
            self._in_flight = {id(line) for line in batch.new_lines}
        return batch

    def _write(self, batch: _Batch, *, run_fields: bool) -> None:
        if run_fields and batch.run_fields:
            statements.update(JobResult, batch.run_fields, id=self.result_id)
        # A line still running gets its id back: its end updates it by id. An ended one needs none.
        statements.insert([line for line in batch.new_lines if line.status == Status.RUNNING], set_ids=True)
        statements.insert([line for line in batch.new_lines if line.status != Status.RUNNING])
        for line, fields in batch.line_ends.values():
            statements.update(JobLineResult, fields, id=line.pk, status=Status.RUNNING)
        statements.insert(batch.entries)

    def _put_back(self, batch: _Batch) -> None:
        """The batch's transaction rolled back: keep all of it, ahead of what came meanwhile."""
        for line in batch.new_lines:  # rolled back: they were not written after all
            line.pk = None
            line._state.adding = True
        with self._lock:
            self._entries = batch.entries + self._entries
            self._run_fields = batch.run_fields | self._run_fields
            self._new_lines = batch.new_lines + self._new_lines
            self._line_ends = batch.line_ends | self._line_ends  # ends recorded meanwhile are newer

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
