"""The statements every run executes: written as the ORM would write them, and prepared on PostgreSQL."""
from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from results import statements
from results.models import JobLineResult, JobLogEntry, JobResult, Status
from tests.helpers import make_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def result():
    return JobResult.objects.create(job=make_job("stated"))


def test_an_insert_writes_every_field_as_the_orm_reads_it_back(result):
    started = timezone.now().replace(microsecond=123456)
    line = JobLineResult(result_id=result.id, line_no=10, action="testing.echo", status=Status.SUCCESS,
                         started_at=started, parameters={"day": "2026-11-20", "n": [1, 2.5, None]},
                         failures=[{"id": "7", "error": "bad"}], records_total=3, data_changed=True)
    statements.insert([line], set_ids=True)
    assert line.pk is not None and not line._state.adding
    stored = JobLineResult.objects.get(pk=line.pk)
    assert (stored.started_at, stored.parameters, stored.failures, stored.records_total, stored.data_changed,
            stored.external_called, stored.records_processed) == (
        started, {"day": "2026-11-20", "n": [1, 2.5, None]}, [{"id": "7", "error": "bad"}], 3, True, None, 0)


def test_an_insert_of_many_rows_is_one_statement(result):
    entries = [JobLogEntry(result_id=result.id, seq=seq, message=f"entry {seq}", at=timezone.now())
               for seq in range(1, 6)]
    with CaptureQueriesContext(connection) as queries:
        statements.insert(entries)
    assert len(queries.captured_queries) == 1
    assert list(result.log_entries.order_by("seq").values_list("message", flat=True)) == [
        f"entry {seq}" for seq in range(1, 6)]


def test_a_failed_insert_raises_django_s_error_and_writes_nothing(result):
    entry = JobLogEntry(result_id=result.id, seq=1, message="first", at=timezone.now())
    statements.insert([entry])
    with pytest.raises(IntegrityError), transaction.atomic():
        statements.insert([JobLogEntry(result_id=result.id, seq=2, message="second", at=timezone.now()),
                           JobLogEntry(result_id=result.id, seq=1, message="again", at=timezone.now())])
    assert list(result.log_entries.values_list("message", flat=True)) == ["first"]


def test_an_update_changes_only_the_rows_that_match_every_condition(result):
    ended = timezone.now() - dt.timedelta(minutes=1)
    assert statements.update(JobResult, {"message": "no", "finished_at": ended}, id=result.id,
                             status=Status.RUNNING) == 0
    assert statements.update(JobResult, {"message": "yes", "variables": {"who": "me"}, "finished_at": ended},
                             id=result.id, status=Status.PENDING) == 1
    stored = JobResult.objects.get(pk=result.pk)
    assert (stored.message, stored.variables, stored.finished_at) == ("yes", {"who": "me"}, ended)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_on_postgresql_the_statements_are_prepared_once_per_connection(result):
    for message in ("one", "two", "three"):
        statements.update(JobResult, {"message": message}, id=result.id, status=Status.PENDING)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                       ['UPDATE "results_jobresult" SET "message"%'])
        assert len(cursor.fetchall()) == 1
    assert JobResult.objects.get(pk=result.pk).message == "three"


def test_statements_sent_together_fail_together_with_django_s_error(result):
    statements.insert([JobLogEntry(result_id=result.id, seq=1, message="first", at=timezone.now())])
    with pytest.raises(IntegrityError), transaction.atomic(), statements.pipelined():
        statements.insert([JobLogEntry(result_id=result.id, seq=2, message="second", at=timezone.now()),
                           JobLogEntry(result_id=result.id, seq=1, message="again", at=timezone.now())])
        statements.update(JobResult, {"message": "not written"}, id=result.id)
    assert list(result.log_entries.values_list("message", flat=True)) == ["first"]
    assert JobResult.objects.get(pk=result.pk).message == ""
    assert statements.update(JobResult, {"message": "the connection still works"}, id=result.id) == 1


def test_statements_sent_together_are_all_written_and_their_row_counts_known(result):
    with transaction.atomic(), statements.pipelined():
        statements.insert([JobLogEntry(result_id=result.id, seq=seq, message=f"entry {seq}", at=timezone.now())
                           for seq in (1, 2, 3)])
        missed = statements.update(JobResult, {"message": "no"}, id=result.id, status=Status.RUNNING)
        hit = statements.update(JobResult, {"message": "yes"}, id=result.id, status=Status.PENDING)
    assert (missed, hit) == (0, 1)
    assert result.log_entries.count() == 3 and JobResult.objects.get(pk=result.pk).message == "yes"


def test_without_pipeline_mode_the_statements_go_one_by_one(result, monkeypatch):
    monkeypatch.setattr(statements, "_pipeline_supported", lambda: False)  # libpq older than 14
    with transaction.atomic(), statements.pipelined():
        assert not statements._in_pipeline()
        statements.insert([JobLogEntry(result_id=result.id, seq=1, message="one", at=timezone.now())])
        assert statements.update(JobResult, {"message": "yes"}, id=result.id, status=Status.PENDING) == 1
    assert result.log_entries.count() == 1 and JobResult.objects.get(pk=result.pk).message == "yes"


def written_statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].split()[0] not in ("BEGIN", "COMMIT")]


def test_combined_writes_are_all_written_with_the_row_count_of_the_one_that_needs_it(result):
    """On PostgreSQL one statement; elsewhere one by one: the same rows and answers either way."""
    line = JobLineResult(result_id=result.id, line_no=10, action="testing.echo", status=Status.RUNNING,
                         started_at=timezone.now(), parameters={"n": [1, None]}, failures=[])
    with CaptureQueriesContext(connection) as queries, statements.combined():
        statements.insert([line], set_ids=True)
        statements.insert([JobLogEntry(result_id=result.id, seq=seq, message=f"entry {seq}", at=timezone.now())
                           for seq in (1, 2, 3)])
        statements.update_later(JobLineResult, {"status": Status.SUCCESS, "message": "done"}, id=line.pk,
                                status=Status.RUNNING)
        missed = statements.update(JobResult, {"message": "no"}, id=result.id, status=Status.RUNNING)
        statements.update_later(JobResult, {"lines_total": 1}, id=result.id)
        statements.insert([JobLogEntry(result_id=result.id, seq=4, message="entry 4", at=timezone.now())])
    if connection.vendor == "postgresql":  # the line's own (its id is needed), the rest with the count, the last
        assert len(written_statements(queries)) == 3, queries.captured_queries
    stored = JobResult.objects.get(pk=result.pk)
    assert (missed, stored.message, stored.lines_total) == (0, "", 1)
    assert list(result.line_results.values_list("pk", "status", "message", "parameters")) == [
        (line.pk, "success", "done", {"n": [1, None]})]
    assert list(result.log_entries.order_by("seq").values_list("message", flat=True)) == [
        f"entry {seq}" for seq in range(1, 5)]


def test_combined_inserts_give_each_object_its_own_id_in_order(result):
    lines = [JobLineResult(result_id=result.id, line_no=n, status=Status.RUNNING, started_at=timezone.now())
             for n in (30, 10, 20)]
    with statements.combined():
        statements.insert(lines, set_ids=True)
    assert {line.pk: line.line_no for line in lines} == dict(result.line_results.values_list("pk", "line_no"))


def test_a_combined_statement_that_fails_writes_none_of_its_parts(result):
    statements.insert([JobLogEntry(result_id=result.id, seq=1, message="first", at=timezone.now())])
    # On PostgreSQL one statement, atomic without a transaction; elsewhere the transaction makes it so.
    atomic = contextlib.nullcontext() if connection.vendor == "postgresql" else transaction.atomic()
    with pytest.raises(IntegrityError), atomic, statements.combined():
        statements.update_later(JobResult, {"message": "not written"}, id=result.id)
        statements.insert([JobLogEntry(result_id=result.id, seq=2, message="second", at=timezone.now()),
                           JobLogEntry(result_id=result.id, seq=1, message="again", at=timezone.now())])
    assert list(result.log_entries.values_list("message", flat=True)) == ["first"]
    assert JobResult.objects.get(pk=result.pk).message == ""
    assert statements.update(JobResult, {"message": "the connection still works"}, id=result.id) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite does not enforce a varchar's length")
def test_a_varchar_too_long_for_its_column_is_refused_as_by_the_orm(result):
    """The arrays are cast to varchar (no length): the column's own length still applies, never a cut."""
    line = JobLineResult(result_id=result.id, line_no=10, action="x" * 201, status=Status.SUCCESS)
    with pytest.raises(DataError, match="too long"), statements.combined():
        statements.insert([line])
    assert not result.line_results.exists()
