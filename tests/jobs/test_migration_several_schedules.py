"""The migration that gives a job several schedules keeps the schedules of every existing job."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def test_existing_schedules_are_kept_as_each_jobs_first_schedule():
    executor = MigrationExecutor(connection)
    [migration] = [key for key in executor.loader.graph.nodes
                   if key[0] == "jobs" and key[1].endswith("_several_schedules_per_job")]  # renumbered on merge
    [before] = [parent for parent in executor.loader.graph.node_map[migration].parents if parent.key[0] == "jobs"]
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([before.key])
    try:
        old = executor.loader.project_state([before.key]).apps
        job = old.get_model("jobs", "Job").objects.create(identifier="kept", name="Kept")
        old.get_model("jobs", "Schedule").objects.create(job=job, kind="calendar", cron="0 6 * * *", timezone="UTC")
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    from jobs.models import Job

    [schedule] = Job.objects.get(identifier="kept").schedules.all()
    assert (schedule.kind, schedule.cron, schedule.timezone, schedule.name, schedule.parameters) == (
        "calendar", "0 6 * * *", "UTC", "", {})
