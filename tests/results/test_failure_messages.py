"""What a person reads when a line fails, from a real worker: a shell line's exit status in words, no
traceback; a Python exception in action code keeps its traceback in the log (it is a bug to fix)."""
from __future__ import annotations

import pytest

from results.dispatch import start_run
from results.models import Status
from tests.helpers import make_job, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]


def error_log(result) -> list[str]:
    return list(result.log_entries.filter(level="ERROR").order_by("seq").values_list("message", flat=True))


def test_a_shell_line_that_exits_non_zero_says_its_status_without_a_traceback():
    job = make_job("exits-seven", (10, "core.shell", {"command": "echo working; exit 7"}))
    result = wait_for_status(start_run(job).id)

    assert result.status == Status.ERROR
    assert result.message == "Line 10 failed: command exited with status 7"
    line = result.line_results.get()
    assert (line.status, line.message) == (Status.ERROR, "command exited with status 7")
    assert error_log(result) == ["command exited with status 7", "Line 10: error: command exited with status 7",
                                 "Line 10 failed; the job stops on error."]
    assert not any("Traceback" in text or "RuntimeError" in text for text in error_log(result))


def test_a_python_exception_in_action_code_keeps_its_traceback():
    job = make_job("raises", (10, "testing.fail", {"message": "bad arithmetic"}))
    result = wait_for_status(start_run(job).id)

    assert result.status == Status.ERROR
    assert result.message == "Line 10 failed: RuntimeError: bad arithmetic"
    traceback = error_log(result)[0]
    assert traceback.startswith("Traceback (most recent call last):")
    assert 'tests/actions.py", line' in traceback and traceback.endswith("RuntimeError: bad arithmetic")
