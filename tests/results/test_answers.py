"""Seed 004's questions answered from what actions report: records, failures, data changed, external calls."""
from __future__ import annotations

import time

import pytest

from results.dispatch import start_run
from results.models import JobLineResult, Status
from tests.helpers import make_job, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]


def test_failed_records_make_the_line_a_warning_and_are_listed_with_their_errors():
    job = make_job("records", (10, "testing.records", {"count": 10, "fail_every": 4}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.WARNING
    line = result.line_results.get()
    assert (line.records_total, line.records_processed, line.records_failed) == (10, 8, 2)
    assert line.failures == [{"id": "rec-4", "error": "record 4 is locked"},
                             {"id": "rec-8", "error": "record 8 is locked"}]
    assert "2 record(s) failed of 10" in line.message
    answers = result.answers()
    assert answers["records_processed"] == 8 and answers["records_failed"] == 2
    assert answers["failures"][0] == {"id": "rec-4", "error": "record 4 is locked", "line_no": 10}
    assert answers["data_changed"] is True
    assert answers["external_called"] is None  # the echo action said nothing about it
    assert answers["started"] and answers["finished"] and answers["retry_possible"]


def test_progress_is_visible_while_the_line_runs():
    job = make_job("slow-records", (10, "testing.records", {"count": 40, "pause": 0.05}))
    result = start_run(job)

    def progress():
        line = JobLineResult.objects.filter(result_id=result.id).first()
        return line is not None and line.status == Status.RUNNING and 0 < line.records_processed < 40

    deadline = time.monotonic() + 15
    while not progress():
        assert time.monotonic() < deadline, "no progress seen while running"
        time.sleep(0.05)
    assert JobLineResult.objects.get(result_id=result.id).records_total == 40
    assert wait_for_status(result.id).status == Status.SUCCESS


def test_an_action_declared_external_answers_that_an_external_system_was_called(tmp_path):
    job = make_job("external", (10, "core.http", {"url": "http://127.0.0.1:9/nothing", "timeout": 2}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR  # nothing listens there
    assert result.answers()["external_called"] is True
