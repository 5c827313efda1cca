"""The run's journal: log entries, line starts and ends and run fields, written together at each flush."""
from __future__ import annotations

import re
import threading
import time

import pytest
from django.db import OperationalError
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from jobs import plans
from jobs.text import storable
from results import runner, states
from results import statements as hot_statements
from results.journal import BUFFERED_BATCHES, COPY_AT_LEAST, RunJournal
from results.models import JobLineResult, JobResult, Status
from tests.helpers import make_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def result():
    result = JobResult.objects.create(job=make_job("journaled"))
    assert states.claim(result.id, "here:1")
    return result


def new_line(result: JobResult, line_no: int = 10) -> JobLineResult:
    return JobLineResult(result_id=result.id, line_no=line_no, status=Status.RUNNING, started_at=timezone.now(),
                         action="testing.echo", parameters={})


def test_nothing_is_written_before_a_flush_and_everything_at_once_after(result):
    journal = RunJournal(result.id)
    journal.set_run_fields(lines_total=1)
    line = new_line(result)
    journal.start_line(line)
    journal.write("INFO", "hello", 10)
    assert not result.line_results.exists() and not result.log_entries.exists()
    journal.flush()
    assert list(result.line_results.values_list("line_no", "status")) == [(10, "running")]
    assert list(result.log_entries.values_list("seq", "message")) == [(1, "hello")]
    assert JobResult.objects.get(id=result.id).lines_total == 1


def sent(queries: CaptureQueriesContext) -> list[str]:
    """The statements sent, without transaction control."""
    texts = [re.sub(r"^\d+ times: ", "", query["sql"]).replace('"', "") for query in queries.captured_queries]
    return [text for text in texts if text.split()[0] not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")]


def statements(queries: CaptureQueriesContext) -> list[str]:
    """Each write as "<verb> <table>", consecutive repeats once: the ``WITH`` parts of a combined statement
    (``results.statements.combined``) each on their own, then its main statement.

    The log entries go as one ``executemany`` (shown as "<n> times: <statement>") or one ``unnest``.
    """
    shown = []
    for text in sent(queries):
        writes = re.findall(r"(?:^\s*|AS \(|\) )(INSERT|UPDATE|DELETE)\s+(\S+)\s+(\S+)", text) or [("SELECT", "", "")]
        for verb, first, second in writes:
            statement = f"{verb} {second if verb == 'INSERT' else first}"
            if not shown or shown[-1] != statement:
                shown.append(statement)
    return shown


def commits(queries: CaptureQueriesContext) -> int:
    return sum(query["sql"] == "COMMIT" for query in queries.captured_queries)


def test_a_line_that_ended_before_any_flush_is_written_once_already_ended(result):
    from django.db import connection

    journal = RunJournal(result.id)
    line = new_line(result)
    journal.start_line(line)
    journal.end_line(line, status=Status.SUCCESS, message="done", finished_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        journal.flush()
    assert statements(queries) == ["INSERT results_joblineresult"]
    assert list(result.line_results.values_list("status", "message")) == [("success", "done")]


def test_a_line_written_while_running_is_updated_when_it_ends(result):
    journal = RunJournal(result.id)
    line = new_line(result)
    journal.start_line(line)
    journal.flush()
    journal.end_line(line, status=Status.ERROR, message="broke", finished_at=timezone.now())
    journal.flush()
    assert list(result.line_results.values_list("status", "message")) == [("error", "broke")]


def test_an_end_that_comes_while_its_line_is_being_written_is_kept_for_the_next_flush(result):
    journal = RunJournal(result.id)
    line = new_line(result)
    journal.start_line(line)
    journal._in_flight = {id(line)}  # the watchdog is writing it at this very moment
    journal.end_line(line, status=Status.SUCCESS, message="done", finished_at=timezone.now())
    journal._in_flight = set()
    journal.flush()
    assert list(result.line_results.values_list("status", flat=True)) == ["success"]


def test_a_failed_write_keeps_everything_for_the_next_try(result, monkeypatch):
    journal = RunJournal(result.id)
    line = new_line(result)
    journal.start_line(line)
    journal.write("INFO", "kept")
    original = hot_statements.insert
    calls = []

    def failing_once(objs, **kwargs):
        calls.append(1)
        original(objs, **kwargs)
        if len(calls) == 1:  # written, then the transaction is rolled back
            raise OperationalError("connection lost")

    monkeypatch.setattr(hot_statements, "insert", failing_once)
    with pytest.raises(OperationalError):
        journal.flush()
    assert line.pk is None and not result.line_results.exists()
    journal.end_line(line, status=Status.SUCCESS, message="done", finished_at=timezone.now())
    journal.flush()
    assert list(result.line_results.values_list("status", flat=True)) == ["success"]
    assert list(result.log_entries.values_list("message", flat=True)) == ["kept"]


def test_a_short_one_line_run_costs_the_claim_and_one_commit_of_three_statements():
    job = make_job("short", (10, "testing.echo", {"text": "hi"}))
    pending = JobResult.objects.create(job=job)
    plans.plan_for(job.pk, job.revision)  # a worker that ran this job before holds its plan
    from django.db import connection

    with CaptureQueriesContext(connection) as queries:
        runner.execute(pending.id)
    # the claim; then the line (written once, ended), the log, the end of the run with its fields: on PostgreSQL
    # one statement (atomic on its own, no transaction control), elsewhere one transaction
    assert statements(queries) == ["UPDATE results_jobresult", "INSERT results_joblineresult",
                                   "INSERT results_joblogentry", "UPDATE results_jobresult"], queries.captured_queries
    if connection.vendor == "postgresql":
        assert len(sent(queries)) == 2 and commits(queries) == 0, queries.captured_queries
    else:
        assert commits(queries) == 1, queries.captured_queries
    done = JobResult.objects.get(id=pending.id)
    assert (done.status, done.lines_total, done.variables["job.identifier"]) == (Status.SUCCESS, 1, "short")
    assert list(done.line_results.values_list("status", flat=True)) == ["success"]


def test_a_run_with_a_user_reads_the_user_only_when_a_line_asks_for_it(django_user_model):
    from django.db import connection

    ann = django_user_model.objects.create_user("ann")
    quiet = make_job("quiet", (10, "testing.echo", {"text": "hi"}))
    asking = make_job("asking", (10, "testing.whoami", {}))
    for job in (quiet, asking):
        plans.plan_for(job.pk, job.revision)
    pending = [JobResult.objects.create(job=job, run_as=ann, requested_by=ann) for job in (quiet, asking)]

    def user_reads(queries: CaptureQueriesContext) -> int:
        return sum("FROM auth_user" in query["sql"].replace('"', "") for query in queries.captured_queries)

    with CaptureQueriesContext(connection) as queries:
        runner.execute(pending[0].id)
    assert user_reads(queries) == 0  # the claim reads the user's id; nothing reads the user
    with CaptureQueriesContext(connection) as queries:
        runner.execute(pending[1].id)
    assert user_reads(queries) == 1
    assert JobResult.objects.get(id=pending[1].id).line_results.get().message == "runs as ann"


def test_an_end_that_fails_after_the_journal_was_sent_writes_everything_on_the_next_try(monkeypatch):
    """The line and log are sent before the end's UPDATE (elsewhere than PostgreSQL), or with it (one statement
    on PostgreSQL); if the end (or the commit) fails, none of it stays, and the retry must write it again."""
    from django.db import connection

    from results import db

    monkeypatch.setattr(db, "RECONNECT_DELAYS", (0, 0, None))
    job = make_job("unlucky-end", (10, "testing.echo", {"text": "hi"}))
    pending = JobResult.objects.create(job=job)
    original, calls = states.finish, []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            if connection.vendor == "postgresql":  # the line and log go with the end, as one statement: the
                with connection.cursor() as cursor:  # connection dies before it
                    cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            hot_statements.update(JobResult, {"message": "rolled back"}, id=pending.id)  # waits for what was sent
            raise OperationalError("server closed the connection unexpectedly")
        return original(*args, **kwargs)

    monkeypatch.setattr(states, "finish", failing_once)
    runner.execute(pending.id)
    done = JobResult.objects.get(id=pending.id)
    assert (done.status, done.lines_total, len(calls)) == (Status.SUCCESS, 1, 2)
    assert list(done.line_results.values_list("line_no", "status")) == [(10, "success")]
    messages = list(done.log_entries.order_by("seq").values_list("message", flat=True))
    assert messages[0].startswith("Started on ") and messages[-1].startswith("Line 10: success")
    assert len(messages) == len(set(messages))  # each once


ODD = ["tab\there", "back\\slash \\N", "nul \x00 inside", "lone \ud800 half", "bad byte \udcff", "emoji 🎉",
       "carriage\rreturn", "bell \x07 and escape \x1b[31m", "", "\\.", "new\nline"]


def test_a_large_batch_is_copied_with_odd_text_stored_as_the_database_can(result):
    """Enough entries for COPY (PostgreSQL): its format's special characters and text no database stores."""
    journal = RunJournal(result.id)
    for n in range(COPY_AT_LEAST * 2):
        journal.write("INFO", f"{n}: {ODD[n % len(ODD)]}", 10 if n % 2 else None)
    journal.flush()
    stored = list(result.log_entries.order_by("seq").values_list("seq", "line_no", "message"))
    assert stored == [(n + 1, 10 if n % 2 else None, storable(f"{n}: {ODD[n % len(ODD)]}"))
                      for n in range(COPY_AT_LEAST * 2)]
    assert stored[3][2] == "3: lone \ufffd half" and stored[2][2] == "2: nul \\x00 inside"


@override_settings(JOBS_LOG_BATCH_SIZE=10)
def test_a_run_writing_faster_than_its_writer_waits_instead_of_buffering_without_bound(result):
    journal = RunJournal(result.id)
    woken = threading.Event()
    journal.wake_writer = woken.set  # a writer that has not come round yet
    written = []

    def chatty() -> None:
        for n in range(100):
            journal.write("INFO", f"line {n}")
            written.append(n)

    thread = threading.Thread(target=chatty, daemon=True)
    thread.start()
    assert woken.wait(5)
    time.sleep(0.3)
    bound = BUFFERED_BATCHES * 10
    assert len(written) == bound - 1  # the write that reached the bound waits for the writer
    while thread.is_alive() or not journal.empty:
        journal.flush()  # the writer: each flush makes room
        time.sleep(0.01)
    assert list(result.log_entries.order_by("seq").values_list("message", flat=True)) == [
        f"line {n}" for n in range(100)]


@override_settings(JOBS_LOG_BATCH_SIZE=10)
def test_the_writers_own_notes_never_wait_for_the_writer(result):
    """The watchdog writes notes (a kill, the time limit) into a journal it is the writer of: waiting would hang it."""
    journal = RunJournal(result.id)
    journal.wake_writer = lambda: None

    def watchdog() -> None:
        for n in range(BUFFERED_BATCHES * 10 * 3):
            journal.write("WARNING", f"note {n}")

    thread = threading.Thread(target=watchdog, daemon=True)
    journal.writer = thread
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    journal.flush()
    assert result.log_entries.count() == BUFFERED_BATCHES * 10 * 3
