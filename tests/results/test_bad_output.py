"""Output no database stores, and values a column cannot hold, run by a real worker: the run ends with its log.

Before: on PostgreSQL a NUL in a log line (or a lone surrogate) made every flush fail, so the run stayed
``running`` until the reaper and its log was lost; on both databases a record count beyond its column did the
same to any run.
"""
from __future__ import annotations

import pytest

from results.dispatch import start_run
from results.models import JobLogEntry, JobResult, Status
from tests.helpers import make_job, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]


def log_of(result: JobResult) -> list[str]:
    return list(JobLogEntry.objects.filter(result=result).order_by("seq").values_list("message", flat=True))


def test_nul_and_bytes_that_are_not_utf8_are_stored_visibly_and_the_run_ends_with_its_whole_log():
    job = make_job("bad-output", (10, "testing.bad_output", {}),
                   (20, "core.shell", {"command": r"printf 'a\0b\n\377\nlast\n'"}))
    result = wait_for_status(start_run(job).id, timeout=20)
    assert result.status == Status.SUCCESS, result.message
    log = log_of(result)
    assert log[1:4] == ["a\\x00b", "bad byte: \ufffd, lone half: \ufffd", "Line 10: success: returned \\x00 and \ufffd"]
    assert log[4:7] == ["a\\x00b", "\ufffd", "last"]
    assert log[-1] == "Line 20: success: command exited with status 0"
    assert list(result.line_results.order_by("line_no").values_list("message", flat=True)) == [
        "returned \\x00 and \ufffd", "command exited with status 0"]


def test_a_failed_record_with_nul_is_listed_visibly():
    job = make_job("bad-record", (10, "testing.bad_output", {"failed_record": True}))
    result = wait_for_status(start_run(job).id, timeout=20)
    assert result.status == Status.WARNING, result.message
    line = result.line_results.get()
    assert line.failures == [{"id": "rec\\x00-1", "error": "error with \\x00 and \ufffd"}]
    assert "record rec\\x00-1 failed: error with \\x00 and \ufffd" in log_of(result)


def test_a_run_whose_counts_cannot_be_stored_ends_error_with_its_whole_log_saying_what_was_lost():
    """ctx.progress(1, 10**20): no integer column holds the total; a retry would fail alike, forever."""
    job = make_job("huge-count", (10, "testing.huge_progress", {}), (20, "testing.echo", {"text": "still ran"}))
    result = wait_for_status(start_run(job).id, timeout=20)
    assert result.status == Status.ERROR
    assert result.message.startswith("Part of the run's record could not be stored (the details of line 10 (")
    assert result.message.endswith("The lines ended: 2 line(s) done.")
    log = log_of(result)
    assert log[1:6] == ["before the huge count", "after the huge count", "Line 10: success: counted", "still ran",
                            "Line 20: success: echoed 1 time(s)"]
    assert log[-1].startswith("Part of the run's record could not be stored: the details of line 10 (")
    lines = list(result.line_results.order_by("line_no").values_list("status", "records_total", "message"))
    assert lines[0][:2] == ("success", None) and "its details could not be stored" in lines[0][2]
    assert lines[1] == ("success", None, "echoed 1 time(s)")


def test_an_exception_with_nul_fails_the_line_and_the_run_with_its_message_shown_visibly():
    job = make_job("bad-exception", (10, "testing.bad_output", {"fail": True}))
    result = wait_for_status(start_run(job).id, timeout=20)
    assert result.status == Status.ERROR
    assert result.message == "Line 10 failed: RuntimeError: broke at \\x00 and \ufffd"
    assert result.line_results.get().message == "RuntimeError: broke at \\x00 and \ufffd"
    assert any(message.startswith("Traceback") and message.endswith("RuntimeError: broke at \\x00 and \ufffd")
               for message in log_of(result))


def test_a_running_line_whose_progress_cannot_be_stored_keeps_the_heartbeat_going():
    """The watchdog writes the progress bar's counts each flush: one that fails must not stop the heartbeat."""
    job = make_job("huge-count-slow", (10, "testing.huge_progress", {"pause": 2.5}))
    result = wait_for_status(start_run(job).id, timeout=20)
    assert result.status == Status.ERROR
    assert (result.heartbeat_at - result.started_at).total_seconds() >= 1  # beaten while the line ran
    assert "after the huge count" in log_of(result)
