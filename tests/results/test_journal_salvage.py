"""A flush the database refuses for good (not a lost connection): what can be stored is, and the run says so.

The refusal is real: a trigger in the test database refuses log entries holding "poison", as a constraint
would (IntegrityError on both databases). Before, every flush failed alike and was retried for ever: the
watchdog never reached the heartbeat, the run's end could not be written, the run stayed ``running`` until
the reaper and its whole log was lost.
"""
from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from results import states
from results.dispatch import start_run
from results.journal import COPY_AT_LEAST, RunJournal
from results.models import JobLineResult, JobLogEntry, JobResult, Status
from tests.helpers import make_job, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)

SQLITE_TRIGGER = """
    CREATE TRIGGER test_refusal BEFORE INSERT ON results_joblogentry WHEN NEW.message LIKE '%poison%'
    BEGIN SELECT RAISE(ABORT, 'refused log entry'); END
"""
POSTGRES_TRIGGER = ["""
    CREATE FUNCTION test_refusal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.message LIKE '%poison%' THEN
            RAISE EXCEPTION 'refused log entry' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$
""", """
    CREATE TRIGGER test_refusal BEFORE INSERT ON results_joblogentry FOR EACH ROW EXECUTE FUNCTION test_refusal()
"""]


@pytest.fixture
def poison_refused():
    """Log entries holding "poison" are refused by the database itself, until the test ends."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        for sql in POSTGRES_TRIGGER if postgres else [SQLITE_TRIGGER]:
            cursor.execute(sql)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_refusal" + (" ON results_joblogentry" if postgres else ""))
        if postgres:
            cursor.execute("DROP FUNCTION test_refusal()")


@pytest.fixture
def result():
    result = JobResult.objects.create(job=make_job("journaled"))
    assert states.claim(result.id, "here:1")
    return result


def log_of(result: JobResult) -> list[tuple[str, str]]:
    return list(JobLogEntry.objects.filter(result=result).order_by("seq").values_list("level", "message"))


def test_a_refused_entry_is_replaced_by_a_note_and_the_rest_of_the_batch_is_written(result, poison_refused):
    journal = RunJournal(result.id)
    journal.set_run_fields(lines_total=1)
    journal.start_line(JobLineResult(result_id=result.id, line_no=10, status=Status.RUNNING,
                                     started_at=timezone.now(), action="testing.echo", parameters={}))
    for message in ("one", "poison two", "three"):
        journal.write("INFO", message, 10)
    journal.flush()  # no error: nothing is put back to fail again at the next flush
    log = log_of(result)
    assert log[0] == ("INFO", "one")
    assert log[1][1].startswith("[log entry could not be stored: IntegrityError: ") and "refused log entry" in log[1][1]
    assert log[2] == ("INFO", "three")
    assert log[3][0] == "ERROR" and log[3][1].startswith("Part of the run's record could not be stored: log entry 2 (")
    assert list(result.line_results.values_list("line_no", "status")) == [(10, "running")]
    assert JobResult.objects.get(id=result.id).lines_total == 1
    assert journal.honest_end(Status.SUCCESS, "1 line(s) done.") == (
        Status.ERROR, f"Part of the run's record could not be stored ({journal.losses[0]}); see the log. "
                      "The lines ended: 1 line(s) done.")
    journal.write("INFO", "four")
    journal.flush()
    assert log_of(result)[-1] == ("INFO", "four")


@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_a_run_whose_log_the_database_refuses_ends_error_with_the_rest_of_its_log(poison_refused):
    job = make_job("poisoned", (10, "testing.echo", {"text": "poison"}), (20, "testing.echo", {"text": "fine"}))
    result = wait_for_status(start_run(job).id, timeout=20)
    assert result.status == Status.ERROR
    assert result.message.startswith("Part of the run's record could not be stored (log entry 2 (IntegrityError: ")
    assert result.message.endswith("The lines ended: 2 line(s) done.")
    messages = [message for _, message in log_of(result)]
    assert messages[1].startswith("[log entry could not be stored: IntegrityError: ")
    assert messages[2:5] == ["Line 10: success: echoed 1 time(s)", "fine", "Line 20: success: echoed 1 time(s)"]
    assert messages[-1].startswith("Part of the run's record could not be stored: log entry 2 (")
    assert list(result.line_results.order_by("line_no").values_list("status", flat=True)) == ["success", "success"]


def test_a_batch_written_by_a_commit_whose_answer_was_lost_is_not_counted_lost_when_it_comes_back(result):
    """The commit went through but its answer did not: the batch was put back, and the retry meets its own rows."""
    first = RunJournal(result.id)
    line = JobLineResult(result_id=result.id, line_no=10, status=Status.RUNNING, started_at=timezone.now(),
                         action="testing.echo", parameters={})
    first.start_line(line)
    first.write("INFO", "one", 10)
    first.flush()
    again = RunJournal(result.id)  # what the put-back batch holds: the same line (ended since) and entry, and more
    line.pk = None
    line._state.adding = True
    again.start_line(line)
    again.end_line(line, status=Status.SUCCESS, message="done", finished_at=timezone.now())
    again.write("INFO", "one", 10)
    again.write("INFO", "two", 10)
    again.flush()
    assert again.losses == []
    assert [message for _, message in log_of(result)] == ["one", "two"]
    assert list(result.line_results.values_list("line_no", "status", "message")) == [(10, "success", "done")]


def test_a_refused_entry_in_a_batch_large_enough_for_copy_is_replaced_and_the_rest_written(result, poison_refused):
    journal = RunJournal(result.id)
    messages = [f"poison {n}" if n == 57 else f"line {n}" for n in range(COPY_AT_LEAST * 2)]
    for message in messages:
        journal.write("INFO", message, 10)
    journal.flush()
    log = log_of(result)
    assert len(log) == len(messages) + 1
    assert [message for _, message in log[:57]] == messages[:57]
    assert log[57][1].startswith("[log entry could not be stored: IntegrityError: ")
    assert [message for _, message in log[58:-1]] == messages[58:]
    assert log[-1][1].startswith("Part of the run's record could not be stored: log entry 58 (")
