"""On PostgreSQL, each query of the operations page is served by the index made for it (results.models).

The plans are taken over a realistic table, analysed inside the test's transaction (the rollback takes the
statistics away again): 30 jobs, 20,000 runs over 30 days, mostly successes. Fewer rows than ANALYZE samples,
so its statistics are exact and the plans do not change from one run to the next. Sequential scans are turned
off because the small tables (schedules, users) would otherwise be read whole, which says nothing about indexes.
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from results.models import FAILED, SUCCEEDED, JobResult, Status
from results.operations import STRIP_DAYS, Board
from tests.helpers import make_job

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans (run with DATABASE_URL)"),
]

JOBS = 30
RUNS = 20_000
DAYS = 30


def fill_history(now: dt.datetime) -> None:
    """One run in 50 failed, one in 50 warned, one in 997 was killed, the rest succeeded; four are going.
    Twenty failures still wait for someone to acknowledge them."""
    jobs = [make_job(f"job{n}") for n in range(JOBS)]

    def ended(n: int) -> str:
        return Status.KILLED if n % 997 == 0 else {0: Status.ERROR, 1: Status.WARNING}.get(n % 50, Status.SUCCESS)

    runs = [JobResult(job=jobs[n % JOBS], status=ended(n)) for n in range(RUNS)]
    JobResult.objects.bulk_create(runs, batch_size=2000)
    with connection.cursor() as cursor:
        # created_at is set by Django on insert (auto_now_add): spread the history over the days it covers.
        cursor.execute(
            "UPDATE results_jobresult SET created_at = %s - (SELECT max(id) FROM results_jobresult) * %s + id * %s,"
            " finished_at = %s - (SELECT max(id) FROM results_jobresult) * %s + id * %s",
            [now, dt.timedelta(days=DAYS) / RUNS, dt.timedelta(days=DAYS) / RUNS] * 2,
        )
        cursor.execute("UPDATE results_jobresult SET acknowledged_at = finished_at + interval '1 hour'"
                       " WHERE status IN ('error', 'warning')")
    waiting = JobResult.objects.filter(status=Status.ERROR).order_by("-id").values_list("id", flat=True)[:20]
    JobResult.objects.filter(id__in=list(waiting)).update(acknowledged_at=None)
    JobResult.objects.bulk_create(
        JobResult(job=jobs[n], status=Status.RUNNING, heartbeat_at=now) for n in range(4)
    )


def plans(user) -> str:
    with CaptureQueriesContext(connection) as queries:
        Board(user, timezone.now()).state()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE results_jobresult")
        cursor.execute("SET LOCAL enable_seqscan = off")
        text = []
        for query in queries.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            text += [row[0] for row in cursor.fetchall()]
    return "\n".join(text)


def test_every_section_reads_through_its_index(admin_user):
    fill_history(timezone.now())
    plan = plans(admin_user)
    for index in ("result_active_heartbeat", "result_attention", "result_acknowledged", "result_job_outcome",
                  "schedule_due"):
        assert f" {index} " in plan, f"{index} is not used:\n{plan}"


@pytest.mark.django_db(transaction=True)
def test_a_day_without_a_status_is_found_out_in_the_index_not_by_reading_the_day(admin_user):
    """One busy job makes "a job's successes of a day" look plentiful to the planner: a probe of a quiet job
    with none that day read the whole table (or the day through result_created) hoping to meet one soon,
    5.4 s at 1,000,000 results. Its probes must stay in result_job_outcome. Vacuumed and analysed, as
    autovacuum leaves a table (which a test's transaction could not)."""
    now = timezone.now()
    busy, *quiet = [make_job(f"job{n}") for n in range(JOBS)]
    runs = [JobResult(job=busy if n % 40 else quiet[n // 40 % len(quiet)], status=Status.SUCCESS)
            for n in range(RUNS)]
    JobResult.objects.bulk_create(runs, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE results_jobresult SET created_at = %s - (SELECT max(id) FROM results_jobresult) * %s + id * %s,"
            " finished_at = created_at", [now, dt.timedelta(days=DAYS) / RUNS, dt.timedelta(days=DAYS) / RUNS])
        cursor.execute("VACUUM ANALYZE results_jobresult")
    with CaptureQueriesContext(connection) as queries:
        Board(admin_user, now).strips()
    strip = next(query["sql"] for query in queries.captured_queries if query["sql"].startswith('SELECT "jobs_job"'))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + strip)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on results_jobresult" not in plan, plan
    assert plan.count("using result_job_outcome") == STRIP_DAYS * len(FAILED + SUCCEEDED + (Status.WARNING,)), plan
