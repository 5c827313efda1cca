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
        # result_job_created (job, created) also serves the strip's probes, and earlier tests' statistics can make
        # the planner prefer it: without it (PostgreSQL's DDL is transactional: the test's rollback brings it
        # back), the question is only whether result_job_outcome can serve them.
        cursor.execute("DROP INDEX result_job_created")
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
