"""start_run when the broker is down: the run is kept pending and published again later."""
from __future__ import annotations

import datetime as dt

import pytest
from kombu.exceptions import OperationalError

from results import dispatch, tasks
from results.dispatch import start_run
from results.models import JobResult, Status
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


def test_a_broker_that_is_down_does_not_fail_the_request_and_the_run_is_published_later(
        monkeypatch, caplog, django_capture_on_commit_callbacks):
    sent = []

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.run_result, "apply_async", broker_down)
    job = make_job("no-broker", (10, "testing.echo", {}))
    with django_capture_on_commit_callbacks(execute=True):
        result = start_run(job)
    assert JobResult.objects.get(id=result.id).status == Status.PENDING
    assert f"could not publish result {result.id}" in caplog.text

    monkeypatch.setattr(tasks.run_result, "apply_async", lambda args, **options: sent.append(args))
    JobResult.objects.filter(id=result.id).update(published_at=result.published_at - dt.timedelta(minutes=5))
    assert dispatch.republish_lost_messages(dt.timedelta(seconds=60)) == [result.id]
    assert sent == [[result.id]]


def test_inside_a_transaction_the_message_waits_for_the_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(tasks.run_result, "apply_async", lambda args, **options: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        result = start_run(make_job("in-transaction", (10, "testing.echo", {})))
        assert sent == []
    assert sent == [[result.id]]


def test_a_run_of_a_job_whose_plan_the_process_holds_starts_with_one_statement(django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs import plans, versions
    from jobs.models import Job

    job = make_job("quick", (10, "testing.echo", {"text": "hi"}), concurrency=Job.PARALLEL)  # nothing to lock
    versions.record(job)
    plans.plan_for(job.pk, job.revision)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
        result = start_run(job)
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["INSERT"], queries.captured_queries
    assert (result.job_version, result.lines_total) == (1, 1)
