"""The run's log writer: entries are buffered and written in batches.

Writing one row per output line would make a chatty command spend its time in
the database; here a batch is written when it is full or when the flusher
(the runner's watchdog) calls ``flush`` a few times a second.
"""
from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.utils import timezone

from .models import JobLogEntry, LogLevel


def cut(message: str, limit: int) -> str:
    if len(message) <= limit:
        return message
    return f"{message[:limit]} … [cut {len(message) - limit} characters]"


class RunLog:
    def __init__(self, result_id: int) -> None:
        self.result_id = result_id
        self._lock = threading.Lock()
        # Taken before the database (see ``flushing``); reentrant so a flush can run inside.
        self._write_lock = threading.RLock()
        self._pending: list[JobLogEntry] = []
        self._seq = 0  # one runner per result (the claim), and a pending result has no log yet
        self._limit = settings.JOBS_LOG_LINE_MAX_CHARS
        self._batch = settings.JOBS_LOG_BATCH_SIZE

    def write(self, level: str, message: Any, line_no: int | None = None) -> None:
        text = cut(str(message), self._limit)
        with self._lock:
            self._seq += 1
            self._pending.append(
                JobLogEntry(result_id=self.result_id, seq=self._seq, level=level, line_no=line_no,
                            message=text, at=timezone.now())
            )
            full = len(self._pending) >= self._batch
        # A full batch is written now, unless the watchdog is writing already (it takes these too):
        # waiting here, perhaps inside the action's own transaction, could deadlock with it on SQLite.
        if full and self._write_lock.acquire(blocking=False):
            try:
                self.flush()
            finally:
                self._write_lock.release()

    def flush(self) -> None:
        """Write what is buffered; safe to call from any thread."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                JobLogEntry.objects.bulk_create(batch, batch_size=self._batch)
            except Exception:
                with self._lock:  # keep the entries for the next try
                    self._pending = batch + self._pending
                raise

    def flushing(self) -> threading.RLock:
        """Hold it around a transaction that flushes this log.

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

    def __init__(self, run_log: RunLog, line_no: int | None) -> None:
        self._log = run_log
        self.line_no = line_no

    def debug(self, message: Any) -> None:
        self._log.write(LogLevel.DEBUG, message, self.line_no)

    def info(self, message: Any) -> None:
        self._log.write(LogLevel.INFO, message, self.line_no)

    def warning(self, message: Any) -> None:
        self._log.write(LogLevel.WARNING, message, self.line_no)

    def error(self, message: Any) -> None:
        self._log.write(LogLevel.ERROR, message, self.line_no)

