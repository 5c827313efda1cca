"""Helpers for tests: building jobs and waiting for results."""
from __future__ import annotations

import time

from jobs.models import Action, Job, JobLine
from results.models import TERMINAL, JobResult


def wait_for_status(result_id: int, statuses=TERMINAL, timeout: float = 30.0) -> JobResult:
    """Poll the database until the result reaches one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        result = JobResult.objects.get(id=result_id)
        if result.status in statuses:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"result {result_id} still {result.status!r} after {timeout} s: {result.message}")
        time.sleep(0.05)


def make_job(identifier: str = "job", *lines: tuple, **fields) -> Job:
    """``make_job("x", (10, "core.sleep", {"seconds": 0}), ...)``; a 4th item False makes the line inactive."""
    Action.objects.sync_with_registry()
    job = Job.objects.create(identifier=identifier, name=fields.pop("name", identifier.title()), **fields)
    for line in lines:
        line_no, action, parameters = line[:3]
        active = line[3] if len(line) > 3 else True
        JobLine.objects.create(job=job, line_no=line_no, action=Action.objects.get(name=action),
                               parameters=parameters, active=active)
    return job
