"""Worker database access survives a lost connection (a PostgreSQL restart): it retries on a fresh one."""
from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from results import db
from results.models import JobResult
from tests.conftest import database_url
from tests.helpers import make_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(db, "RECONNECT_DELAYS", (0, 0, None))


def test_work_that_lost_its_connection_is_done_again_on_a_fresh_one():
    calls = []

    def work():
        calls.append(connection.connection)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return JobResult.objects.count()

    assert db.reconnecting(work) == 0
    assert len(calls) == 2


def test_it_gives_up_after_its_last_try():
    def work():
        raise OperationalError("the database is down")

    with pytest.raises(OperationalError):
        db.reconnecting(work)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no server connection to lose")
def test_a_commit_after_the_server_dropped_the_connection_goes_through():
    job = make_job("survivor")
    backend_pid = connection.cursor().connection.info.backend_pid
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    def write():
        with transaction.atomic():
            return JobResult.objects.create(job=job).id

    result_id = db.reconnecting(write)
    assert JobResult.objects.filter(id=result_id).exists()
    assert connection.connection.info.backend_pid != backend_pid
