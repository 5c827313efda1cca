"""Starting runs: validate, create the pending result, publish after commit.

Every way of running a job (admin, API, ``runjob``, schedules, retries,
application code) comes through ``start_run``; application code may call it::

    from results.dispatch import start_run
    from results.models import Trigger
    start_run(Job.objects.get(identifier="import-bank-data"), parameters={"day": "2026-11-20"},
              trigger=Trigger.APPLICATION)
"""
from __future__ import annotations

import datetime as dt
import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from jobs import plans
from jobs.models import Domain, Job

from . import statements
from .models import JobResult, Status, Trigger

logger = logging.getLogger(__name__)


class RunRefused(Exception):
    """The job cannot run now; the message says why."""


def start_run(
    job: Job,
    *,
    parameters: dict | None = None,
    user: AbstractBaseUser | None = None,
    trigger: str = Trigger.MANUAL,
    retry_of: JobResult | None = None,
    countdown: float | None = None,
    note: str = "",
    scheduled_for: dt.datetime | None = None,
) -> JobResult:
    """Create the pending result of ``job`` and publish its task once committed.

    A global job that runs per domain gets one result for each domain; this
    returns the first (``start_runs`` returns them all). Raises ``RunRefused``
    (inactive job, or a run already going for a job that runs one at a time)
    and ``ValidationError`` (a dict naming each bad parameter); neither creates
    a result.
    """
    return start_runs(job, parameters=parameters, user=user, trigger=trigger, retry_of=retry_of,
                      countdown=countdown, note=note, scheduled_for=scheduled_for)[0]


def start_runs(
    job: Job,
    *,
    parameters: dict | None = None,
    user: AbstractBaseUser | None = None,
    trigger: str = Trigger.MANUAL,
    retry_of: JobResult | None = None,
    countdown: float | None = None,
    note: str = "",
    scheduled_for: dt.datetime | None = None,
) -> list[JobResult]:
    if not job.active:
        raise RunRefused(f"The job {job.identifier} is inactive.")
    values = job.clean_run_parameters(parameters)
    domains = run_domains(job, retry_of)
    requested_by = user if user is not None and user.is_authenticated else None
    plan = plans.plan_for(job.pk, job.revision)
    lines_total = len(plan.lines)  # known before it starts; set again at the claim
    job_version = plan.version  # which definition this run had (the History window shows it)

    def create_results() -> list[JobResult]:
        results = [
            JobResult(
                job=job, domain=domain, trigger=trigger, requested_by=requested_by,
                run_as=job.run_as if job.run_as_id else requested_by,
                parameters=values, queue=job.queue, lines_total=lines_total, retry_of=retry_of,
                attempt=retry_of.attempt + 1 if retry_of is not None else 1,
                published_at=timezone.now() + dt.timedelta(seconds=countdown or 0),
                message=note, scheduled_for=scheduled_for, job_version=job_version,
            )
            for domain in domains
        ]
        statements.insert(results, set_ids=True)  # what save() would do, without compiling it each time
        return results

    limited = job.domain_id is not None and job.domain.max_parallel_runs is not None
    if job.concurrency != Job.ONE_AT_A_TIME and len(domains) == 1 and not limited:
        results = create_results()  # one INSERT: no transaction needed around it
    else:
        with transaction.atomic():
            if limited:
                refuse_beyond_domain_quota(job)
            if job.concurrency == Job.ONE_AT_A_TIME:
                refuse_if_going(job)
            results = create_results()
    for result in results:
        # Published once the caller's transaction (if any) commits: a worker never gets an id it cannot read.
        transaction.on_commit(lambda result=result: publish_safely(result, countdown=countdown))
    return results


def refuse_if_going(job: Job) -> None:
    """Raise ``RunRefused`` if a run of this one-at-a-time job is pending or running.

    The row lock makes "is one already going?" and the insert that follows one
    step, so two Run clicks at the same moment cannot both start the job.
    """
    Job.objects.select_for_update().filter(pk=job.pk).first()
    going = job.results.filter(status__in=[Status.PENDING, Status.RUNNING]).order_by("id").first()
    if going is not None:
        raise RunRefused(f"The job {job.identifier} runs one at a time and result #{going.id} is {going.status}.")


def refuse_beyond_domain_quota(job: Job) -> None:
    """Raise ``RunRefused`` if the job's domain already has its most parallel runs pending or running.

    The domain's row lock (taken before the job's, always in this order) makes the count and the
    insert that follows one step for every job of the domain.
    """
    domain = Domain.objects.select_for_update().get(pk=job.domain_id)
    if domain.max_parallel_runs is None:
        return
    going = JobResult.objects.filter(status__in=[Status.PENDING, Status.RUNNING], job__domain_id=domain.pk).count()
    if going >= domain.max_parallel_runs:
        raise RunRefused(f"domain {domain.slug} allows at most {domain.max_parallel_runs} parallel runs "
                         f"({going} pending or running).")


def run_domains(job: Job, retry_of: JobResult | None = None) -> list[Domain | None]:
    """The domain of each run: the job's; for a per-domain global job, every domain (a retry: its own)."""
    if job.domain_id is not None or job.execution != Job.PER_DOMAIN:
        return [job.domain]
    if retry_of is not None:
        return [retry_of.domain]
    domains = list(Domain.objects.order_by("slug"))
    if not domains:
        raise RunRefused(f"The job {job.identifier} runs per domain and there is no domain yet.")
    return domains


def publish(result: JobResult, countdown: float | None = None) -> None:
    """Send the run's message to its queue (the job's, or the default one)."""
    from .tasks import run_result

    options: dict = {"queue": result.queue} if result.queue else {}
    if countdown:
        options["countdown"] = countdown
    run_result.apply_async(args=[result.id], **options)


def publish_safely(result: JobResult, countdown: float | None = None) -> bool:
    """``publish``, but a broker that is down fails neither the request nor beat: the run stays
    pending, and the reaper publishes it again once its message is overdue. False if not sent."""
    try:
        publish(result, countdown=countdown)
    except Exception:
        logger.exception("could not publish result %s; the reaper will publish it again", result.id)
        return False
    return True


def republish_lost_messages(older_than: dt.timedelta) -> list[int]:
    """Publish again the pending results whose message seems lost.

    Each one is first claimed by a conditional update of ``published_at``, so
    two reapers at once never publish the same result twice; a duplicate that
    still reaches a worker runs nothing (the pending -> running claim).
    """
    cutoff = timezone.now() - older_than
    republished = []
    stale = JobResult.objects.filter(status=Status.PENDING, published_at__lt=cutoff)
    for result in stale.only("id", "queue", "published_at"):
        claimed = JobResult.objects.filter(
            id=result.id, status=Status.PENDING, published_at=result.published_at
        ).update(published_at=timezone.now())
        if claimed and publish_safely(result):
            republished.append(result.id)
    return republished


def retry_if_due(result_id: int, *, worker_lost: bool = False) -> JobResult | None:
    """After a failure (or a worker loss) start the retry the job asks for, if any.

    A lost run is retried only for an idempotent job: running the rest of a
    non-idempotent job again could repeat what it already did.
    """
    result = JobResult.objects.select_related("job", "requested_by").get(id=result_id)
    job = result.job
    if result.status != Status.ERROR:
        return None
    if worker_lost and not job.idempotent:
        return None  # the reaper's message says why
    if result.attempt > job.retries:
        return None
    try:
        return start_run(job, parameters=result.parameters, user=result.requested_by, trigger=Trigger.RETRY,
                         retry_of=result, countdown=job.retry_delay)
    except RunRefused:
        return None
