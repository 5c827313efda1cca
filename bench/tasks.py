"""Raw Celery tasks: the baseline every figure is compared with."""
import os
import time
from pathlib import Path

from jobs_project.celery import app


@app.task(name="bench.raw_start", ignore_result=True)
def raw_start(path: str) -> None:
    """Records when the task started (wall clock, same host as the sender)."""
    started = time.time()
    with open(path, "a") as handle:
        handle.write(f"{started}\n")


class PeerTask(app.Task):
    """The peer's task options: django-celery-results stores STARTED, then the outcome, in the database."""

    track_started = True
    ignore_result = False
    _database_backend = None

    @property
    def backend(self):
        # Made on first use: the backend imports django-celery-results' models, which need Django set up.
        if PeerTask._database_backend is None:
            from django_celery_results.backends import DatabaseBackend

            PeerTask._database_backend = DatabaseBackend(app=self.app, url="django-db")
        return PeerTask._database_backend

    @backend.setter
    def backend(self, value) -> None:  # Celery assigns the app's backend to new tasks; the peer keeps its own
        pass


@app.task(name="bench.peer_noop", base=PeerTask)
def peer_noop() -> str:
    """One do-nothing task whose state and result the peer stores, as a one-line job does nothing."""
    return "Done."


@app.task(name="bench.raw_sleep", ignore_result=True)
def raw_sleep(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


# --- The floor: raw Celery plus the durable writes a run needs, hand-written with psycopg -------------------
# Not part of Jobs: it shows how much of the gap to raw Celery is the persistence itself (the pending
# row, the claim, the end with its line and log, each committed), and how much is Jobs' own code.

PENDING_SQL = """
    INSERT INTO results_jobresult (job_id, status, message, created_at, trigger, parameters, variables, queue,
                                   worker, lines_total, attempt, published_at)
    VALUES (%s, 'pending', '', now(), 'manual', '{}', '{}', '', '', 1, 1, now()) RETURNING id
"""
CLAIM_SQL = """
    UPDATE results_jobresult SET status = 'running', started_at = now(), heartbeat_at = now(), worker = %s
    WHERE id = %s AND status = 'pending' AND kill_requested_at IS NULL RETURNING job_id, parameters
"""
LINE_SQL = """
    INSERT INTO results_joblineresult (result_id, line_no, action, status, message, parameters, started_at,
                                       finished_at, records_processed, records_failed, failures)
    VALUES (%s, 10, 'bench.noop', 'success', 'Done.', '{}', now(), now(), 0, 0, '[]')
"""
LOG_SQL = "INSERT INTO results_joblogentry (result_id, seq, level, message, at) VALUES (%s, %s, 'INFO', %s, now())"
END_SQL = """
    UPDATE results_jobresult SET status = 'success', message = '1 line(s) done.', finished_at = now()
    WHERE id = %s AND status = 'running'
"""
_connection = None


def durable_connection():
    """One autocommit connection per process, statements prepared at once."""
    global _connection
    if _connection is None or _connection.closed:
        import psycopg

        _connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=0)
    return _connection


def insert_pending(job_id: int) -> int:
    return durable_connection().execute(PENDING_SQL, [job_id]).fetchone()[0]


@app.task(name="bench.raw_durable", ignore_result=True)
def raw_durable(result_id: int) -> None:
    """Claim the pending row, run nothing, then write the line, two log entries and the end in one commit."""
    conn = durable_connection()
    if conn.execute(CLAIM_SQL, [f"floor:{os.getpid()}", result_id]).fetchone() is None:
        return
    with conn.pipeline(), conn.transaction():
        conn.execute(LINE_SQL, [result_id])
        conn.cursor().executemany(LOG_SQL, [[result_id, 1, "Started."], [result_id, 2, "Line 10: success: Done."]])
        conn.execute(END_SQL, [result_id])
