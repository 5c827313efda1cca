"""On PostgreSQL, each query of the operations page can be served by the index made for it (results.models).

The tables of a test are too small for the planner to prefer an index by itself, so sequential scans are
turned off: a query whose WHERE does not imply a partial index's predicate still could not use it.
"""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from results.models import JobResult, Status
from results.operations import Board
from tests.helpers import make_job

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans (run with DATABASE_URL)"),
]


def plans(user) -> str:
    with CaptureQueriesContext(connection) as queries:
        Board(user, timezone.now()).state()
    with connection.cursor() as cursor:
        # As on a fresh table: statistics that earlier tests left (autovacuum's ANALYZE of their rows) would
        # steer the planner by their data, not this test's. Both catalogs are transactional: the test's
        # rollback puts them back.
        for table in ("results_jobresult", "jobs_job", "jobs_schedule"):
            cursor.execute("DELETE FROM pg_statistic WHERE starelid = %s::regclass", [table])
            cursor.execute("UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = %s::regclass", [table])
        cursor.execute("SET LOCAL enable_seqscan = off")
        text = []
        for query in queries.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            text += [row[0] for row in cursor.fetchall()]
    return "\n".join(text)


def test_every_section_reads_through_its_index(admin_user):
    job = make_job("nightly")
    JobResult.objects.create(job=job, status=Status.ERROR, finished_at=timezone.now())
    plan = plans(admin_user)
    for index in ("result_active_heartbeat", "result_attention", "result_acknowledged", "result_job_outcome",
                  "schedule_due"):
        assert f" {index} " in plan, f"{index} is not used:\n{plan}"
