"""The run's journal: what a run writes while it goes, buffered and written a few times a second.

Log entries, line starts and ends and the run's variables wait here and are
written together, in one transaction, when the watchdog flushes (every
JOBS_LOG_FLUSH_SECONDS) or when the run ends. Writing each as it happens would
make a chatty command, or a job of many short lines, spend its time in the
database: a short one-line run now costs the claim and one commit. What the
result page shows is at most one flush interval behind.

A chatty run keeps up: an entry is buffered as a plain tuple (a model instance
costs more than the line itself), a large batch goes in by PostgreSQL's COPY
(several times faster than INSERTs), and the buffer is bounded: a writer that
falls behind makes the run wait (``write`` blocks; a command's output waits in
its pipe) instead of the worker's memory growing with the log.

Everything is written as the database can store it (``jobs.text.storable``:
NUL shown as ``\x00``, lone surrogates as U+FFFD). A flush that fails for a
reason a retry would only repeat (``db.UNSTORABLE``) writes the batch piece by
piece instead, each piece that still fails replaced by a note or left out, and
the run then ends ``error`` saying that part of its record was lost: neither
an endless retry that stops the heartbeat nor a lost log.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from jobs.secrets import Masker
from jobs.text import storable, storable_json

from . import statements
from .db import UNSTORABLE
from .models import JobLineResult, JobLogEntry, JobResult, LogLevel, Status

T = TypeVar("T")
# A buffered log entry: (seq, level, line_no, message, at).
Entry = tuple[int, str, int | None, str, dt.datetime]
ENTRY_COLUMNS = ("result_id", "seq", "level", "line_no", "message", "at")
# Their PostgreSQL types, for COPY's binary format (a quarter of the worker's time of the text format's).
ENTRY_TYPES = ("int8", "int8", "varchar", "int4", "text", "timestamptz")
# A batch of at least this many entries goes in by COPY (PostgreSQL); a smaller one rides the pipeline as INSERTs.
COPY_AT_LEAST = 100
# A run's writes wait once this many batches (or this much text) wait to be written: memory, and how far
# the live log may fall behind the output, stay bounded when the database cannot keep up.
BUFFERED_BATCHES = 2
BUFFERED_CHARS = 16_000_000
logger = logging.getLogger(__name__)
# A line's own fields; and its details, with what it keeps when they cannot be stored (the column defaults).
LINE_WRITTEN = ("status", "message", "action", "started_at", "finished_at")
LINE_DETAILS = {"records_total": None, "records_processed": 0, "records_failed": 0, "failures": [],
                "data_changed": None, "external_called": None, "parameters": {}}


def cut(message: str, limit: int) -> str:
    if len(message) <= limit:
        return message
    return f"{message[:limit]} … [cut {len(message) - limit} characters]"


@dataclass
class _Batch:
    """What one flush takes: kept whole until its transaction commits."""

    entries: list[Entry]
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
        self._entries: list[Entry] = []
        self._chars = 0  # of the buffered entries' messages
        self._room = threading.Condition(self._lock)  # notified when the writer took the buffer
        # Set by the watchdog: wakes the process's writer (a full batch is written at once, from there).
        self.wake_writer: Callable[[], None] | None = None
        self.writer: threading.Thread | None = None
        self._seq = 0  # one runner per result (the claim), and a pending result has no log yet
        self._run_fields: dict[str, Any] = {}
        self._new_lines: list[JobLineResult] = []  # started, not yet written
        self._in_flight: set[int] = set()  # ids of the line objects a flush is writing right now
        self._line_ends: dict[int, tuple[JobLineResult, dict]] = {}  # ends of lines already written (or in flight)
        self._limit = settings.JOBS_LOG_LINE_MAX_CHARS
        self.masker = Masker()  # the run's secret values, replaced by a mask in every entry (none: no cost)
        self._batch = settings.JOBS_LOG_BATCH_SIZE
        self.losses: list[str] = []  # what could not be stored, said in the run's end

    # --- what the run records ------------------------------------------------------------------

    def write(self, level: str, message: Any, line_no: int | None = None) -> None:
        text = storable(cut(self.masker.text(str(message)), self._limit))
        with self._lock:
            self._seq += 1
            self._entries.append((self._seq, level, line_no, text, dt.datetime.now(dt.UTC)))
            self._chars += len(text)
            full = len(self._entries) >= self._batch
            if full and self.wake_writer is not None:
                self.wake_writer()
                # Too far behind: wait for the writer.
                while self._over_bound() and self._may_wait():
                    self._room.wait(0.5)
                return
        # No writer (a journal used on its own): a full batch is written now, unless a flush is going on
        # already (it takes these too): waiting here, perhaps inside the action's own transaction, could
        # deadlock with it on SQLite.
        if full and self._write_lock.acquire(blocking=False):
            try:
                self.flush()
            finally:
                self._write_lock.release()

    def _may_wait(self) -> bool:
        """Not the writer itself (the watchdog's own notes), nor once it is gone, nor inside the action's own
        transaction (on SQLite the writer may be waiting for it)."""
        return (self.wake_writer is not None and threading.current_thread() is not self.writer
                and not connection.in_atomic_block)

    def _over_bound(self) -> bool:
        return len(self._entries) >= BUFFERED_BATCHES * self._batch or self._chars >= BUFFERED_CHARS

    @property
    def batch_full(self) -> bool:
        return len(self._entries) >= self._batch

    @property
    def empty(self) -> bool:
        """Nothing waits to be written."""
        with self._lock:
            return not (self._entries or self._run_fields or self._new_lines or self._line_ends)

    def set_run_fields(self, **fields: Any) -> None:
        fields = _storable_fields(fields)
        with self._lock:
            self._run_fields.update(fields)

    def start_line(self, line: JobLineResult) -> None:
        """A line started: ``line`` (unsaved, status running) is written at the next flush."""
        line.parameters = storable_json(line.parameters)
        with self._lock:
            self._new_lines.append(line)

    def end_line(self, line: JobLineResult, **fields: Any) -> None:
        """A line ended: a line not yet written is written once, already ended; else it is updated."""
        fields = _storable_fields(fields)
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
        next try; unless it failed for a reason a retry would only repeat: then what can be
        stored is, piece by piece (``_salvage``), and ``then`` gets the fields written already.
        """
        with self._write_lock:
            batch = self._take()
            try:
                if batch.empty and then is None:
                    return None
                try:
                    if self._fits_one_statement(batch):
                        with statements.combined():
                            self._write(batch, run_fields=then is None)
                            return then(batch.run_fields) if then is not None else None
                    with transaction.atomic(savepoint=False):
                        copied = self._copy(batch.entries)
                        with statements.pipelined():
                            self._write(batch, run_fields=then is None, entries=not copied)
                            return then(batch.run_fields) if then is not None else None
                except UNSTORABLE as exc:
                    if connection.in_atomic_block:  # inside the action's own transaction, which this spoilt
                        raise
                    logger.warning("result %s: a flush failed for good (%s); writing it piece by piece",
                                   self.result_id, _describe(exc))
                    self._salvage(batch)
                if then is None:
                    return None
                with transaction.atomic(savepoint=False):
                    return then({})  # the run's fields are written already, those that could be
            except BaseException:
                self._put_back(batch)
                raise
            finally:
                with self._lock:
                    self._in_flight = set()

    def _fits_one_statement(self, batch: _Batch) -> bool:
        """PostgreSQL writes the batch, and the run's end, as one statement (``statements.combined``): not
        a batch for COPY, nor once part of the record was lost (the end then also ends the lines left
        running, in the same transaction)."""
        return connection.vendor == "postgresql" and len(batch.entries) < COPY_AT_LEAST and not self.losses

    def _take(self) -> _Batch:
        with self._lock:
            batch = _Batch(self._entries, self._run_fields, self._new_lines, self._line_ends)
            self._entries, self._run_fields, self._new_lines, self._line_ends = [], {}, [], {}
            self._chars = 0
            self._in_flight = {id(line) for line in batch.new_lines}
            self._room.notify_all()
        return batch

    def _copy(self, entries: list[Entry]) -> bool:
        """A large batch of entries by COPY (PostgreSQL only; it cannot ride a pipeline); True if done."""
        if len(entries) < COPY_AT_LEAST or connection.vendor != "postgresql":
            return False
        result_id = self.result_id
        qn = connection.ops.quote_name
        sql = f"COPY {qn(JobLogEntry._meta.db_table)} ({', '.join(map(qn, ENTRY_COLUMNS))}) FROM STDIN (FORMAT BINARY)"
        with connection.wrap_database_errors, connection.cursor() as cursor, cursor.copy(sql) as copy:
            copy.set_types(ENTRY_TYPES)
            for entry in entries:
                copy.write_row((result_id, *entry))
        return True

    def _entry(self, entry: Entry) -> JobLogEntry:
        seq, level, line_no, message, at = entry
        return JobLogEntry(result_id=self.result_id, seq=seq, level=level, line_no=line_no, message=message, at=at)

    def _write(self, batch: _Batch, *, run_fields: bool, entries: bool = True) -> None:
        if run_fields and batch.run_fields:
            statements.update_later(JobResult, batch.run_fields, id=self.result_id)
        for line, fields in batch.line_ends.values():
            if line.pk is None:  # its start was put back (a flush failed) after its end came: written ended
                for name, value in fields.items():
                    setattr(line, name, value)
        statements.insert([line for line in batch.new_lines if line.status != Status.RUNNING])
        for line, fields in batch.line_ends.values():
            if line.pk is not None:
                statements.update_later(JobLineResult, fields, id=line.pk, status=Status.RUNNING)
        if entries:
            statements.insert([self._entry(entry) for entry in batch.entries])
        # A line still running gets its id back (its end updates it by id): last, so the writes before it
        # go with it (``statements.combined``). An ended one needs none.
        statements.insert([line for line in batch.new_lines if line.status == Status.RUNNING], set_ids=True)

    def _salvage(self, batch: _Batch) -> None:
        """Write the batch piece by piece, each in its own transaction; a piece that fails is replaced or left out.

        Each piece leaves the batch once written, so a lost connection meanwhile puts back only the rest.
        """
        for line in batch.new_lines:  # rolled back with the failed transaction
            line.pk = None
            line._state.adding = True
        lost: list[str] = []
        for name, value in list(batch.run_fields.items()):
            problem = _alone(statements.update, JobResult, {name: value}, id=self.result_id)
            del batch.run_fields[name]
            if problem:
                lost.append(f"the run's {name} ({_describe(problem)})")
        while batch.new_lines:
            lost += _salvage_new_line(batch.new_lines[0])
            batch.new_lines.pop(0)
        for key, (line, fields) in list(batch.line_ends.items()):
            lost += _salvage_line_end(line, fields)
            del batch.line_ends[key]
        entries = [self._entry(entry) for entry in batch.entries]
        if entries and _alone(statements.insert, entries):  # most entries are fine: one by one now
            buffered = batch.entries
            for index, entry in enumerate(entries):
                lost += _salvage_entry(entry)
                batch.entries = buffered[index + 1:]
        batch.entries = []
        if lost:  # else every piece went in alone (rows a lost answer had hidden were met again)
            self._note_losses(lost)

    def _note_losses(self, lost: list[str]) -> None:
        """Say in the log, at once (the run may be ending), what could not be stored; remembered for the end."""
        self.losses += lost
        with self._lock:
            self._seq += 1
            seq = self._seq
        shown = "; ".join(lost[:5]) + (f"; and {len(lost) - 5} more" if len(lost) > 5 else "")
        note = JobLogEntry(result_id=self.result_id, seq=seq, level=LogLevel.ERROR, line_no=None, at=timezone.now(),
                           message=storable(cut(f"Part of the run's record could not be stored: {shown}", self._limit)))
        _alone(statements.insert, [note])

    def honest_end(self, status: str, message: str) -> tuple[str, str]:
        """The run's end, saying so when part of its record was lost: a run that lost it did not succeed."""
        if not self.losses:
            return status, message
        note = f"Part of the run's record could not be stored ({self.losses[0]}); see the log."
        if status in (Status.SUCCESS, Status.WARNING, Status.INFO):
            return Status.ERROR, f"{note} The lines ended: {message}"
        return status, f"{message} {note}"

    def _put_back(self, batch: _Batch) -> None:
        """The batch's transaction rolled back: keep all of it, ahead of what came meanwhile."""
        for line in batch.new_lines:  # rolled back: they were not written after all
            line.pk = None
            line._state.adding = True
        with self._lock:
            self._entries = batch.entries + self._entries
            self._chars += sum(len(entry[3]) for entry in batch.entries)
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


def _storable_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: storable(value) if isinstance(value, str) else storable_json(value) if isinstance(value, dict | list)
            else value for name, value in fields.items()}


def _alone(work: Callable[..., Any], *args: Any, **kwargs: Any) -> Exception | None:
    """``work(*args, **kwargs)`` in its own transaction: None once committed, else the error no retry would fix."""
    try:
        with transaction.atomic(savepoint=False):
            work(*args, **kwargs)
    except UNSTORABLE as exc:
        return exc
    return None


def _salvage_new_line(line: JobLineResult) -> list[str]:
    """Write a started line; without its counts and details if they cannot be stored. What was lost."""
    running = line.status == Status.RUNNING
    problem = _alone(statements.insert, [line], set_ids=running)
    if problem is None or _already_written(line, problem):
        return []
    for name, value in {**LINE_DETAILS, "message": _not_stored(line.message, problem)}.items():
        setattr(line, name, value)
    if _alone(statements.insert, [line], set_ids=running):
        return [f"line {line.line_no} ({_describe(problem)})"]
    return [f"the details of line {line.line_no} ({_describe(problem)})"]


def _salvage_line_end(line: JobLineResult, fields: dict) -> list[str]:
    """End a written line; with its status and time only if the rest cannot be stored. What was lost."""
    problem = _alone(statements.update, JobLineResult, fields, id=line.pk, status=Status.RUNNING)
    if problem is None:
        return []
    reduced = {"status": fields.get("status", Status.ERROR), "finished_at": timezone.now(),
               "message": _not_stored(fields.get("message", ""), problem)}
    _alone(statements.update, JobLineResult, reduced, id=line.pk, status=Status.RUNNING)
    return [f"the end of line {line.line_no} ({_describe(problem)})"]


def _already_written(line: JobLineResult, problem: Exception) -> bool:
    """The line is there already (a commit whose answer was lost wrote it): brought up to date, it is kept."""
    if not isinstance(problem, IntegrityError):
        return False
    pk = JobLineResult.objects.filter(result_id=line.result_id, line_no=line.line_no).values_list("pk", flat=True)
    line.pk = pk.first()
    if line.pk is None:
        return False
    line._state.adding = False
    values = {name: getattr(line, name) for name in (*LINE_WRITTEN, *LINE_DETAILS)}
    return _alone(statements.update, JobLineResult, values, id=line.pk) is None


def _salvage_entry(entry: JobLogEntry) -> list[str]:
    """Write a log entry; a note in its place if it cannot be stored. What was lost."""
    problem = _alone(statements.insert, [entry])
    if problem is None or (isinstance(problem, IntegrityError) and JobLogEntry.objects.filter(
            result_id=entry.result_id, seq=entry.seq, message=entry.message).exists()):
        return []  # written by a commit whose answer was lost: the batch came back, and is here again
    entry.message = f"[log entry could not be stored: {_describe(problem)}]"
    _alone(statements.insert, [entry])
    return [f"log entry {entry.seq} ({_describe(problem)})"]


def _describe(error: Exception) -> str:
    return storable(cut(f"{type(error).__name__}: {str(error).strip()}", 200))


def _not_stored(message: str, problem: Exception) -> str:
    return f"{message} [its details could not be stored: {_describe(problem)}]".lstrip()


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
