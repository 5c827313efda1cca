"""What a run executes: a job and its active lines, loaded once per revision and kept per process.

A worker runs the same jobs again and again, and loading a job with its lines
costs more than claiming the run. Each process keeps the last plan of each job
and reloads it when the job's ``revision`` (a token changed by every change of
the job, its lines, their actions or filter templates: ``jobs.signals``) is no
longer the one it holds. A plan is shared by the runs of a process: nothing may
change its objects.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from .models import Job, JobLine, JobVersion

MAX_PLANS_KEPT = 500


@dataclass(frozen=True)
class JobPlan:
    job: Job
    lines: tuple[JobLine, ...]
    # The job's version number (``JobVersion``) at this revision: a version is recorded in the transaction of
    # the save that moves the revision, so a run's start reads it here rather than asking the database.
    version: int | None = None

    @property
    def revision(self) -> uuid.UUID:
        return self.job.revision


_plans: OrderedDict[int, JobPlan] = OrderedDict()
_lock = threading.Lock()


def plan_for(job_id: int, revision: uuid.UUID) -> JobPlan:
    """The job's plan at ``revision``, read from the database unless this process holds it already."""
    with _lock:
        plan = _plans.get(job_id)
        if plan is not None and plan.revision == revision:
            _plans.move_to_end(job_id)
            return plan
    plan = load(job_id)
    with _lock:
        _plans[job_id] = plan
        _plans.move_to_end(job_id)
        while len(_plans) > MAX_PLANS_KEPT:
            _plans.popitem(last=False)
    return plan


def load(job_id: int) -> JobPlan:
    """Raises ``Job.DoesNotExist`` if the job was deleted."""
    latest = JobVersion.objects.filter(job_id=OuterRef("pk")).order_by("-number").values("number")[:1]
    job = Job.objects.annotate(version_number=Subquery(latest)).get(id=job_id)
    return JobPlan(job=job, lines=tuple(job.active_lines()), version=job.version_number)


def forget() -> None:
    """Drop every kept plan (tests; a process that wants to start afresh)."""
    with _lock:
        _plans.clear()
