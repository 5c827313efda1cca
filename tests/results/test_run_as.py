"""Run-as is real: actions get ``ctx.user``, filter lines see only what the run may see, actions' permissions hold.

Real worker: the run's user and domain travel through the claim into the worker process.
"""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from jobs.models import DomainMembership, FilterTemplate, Job, JobLine
from results.dispatch import start_run, start_runs
from results.models import JobResult, Status
from tests.helpers import make_job, make_member, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]

EVERY_JOB = {"identifier__startswith": ""}


@pytest.fixture
def jobs_template(acme):
    """Acme's template over jobs, kept to a run's domain by ``Job.domain``."""
    return FilterTemplate.objects.create(name="Jobs", model="jobs.Job", domain=acme, domain_path="domain")


def reader(identifier: str, template: FilterTemplate, definition: dict = EVERY_JOB, **fields) -> Job:
    """A job whose filter line (5) selects jobs and whose line 10 names the records it got."""
    job = make_job(identifier, (10, "testing.list_records", {}), **fields)
    JobLine.objects.create(job=job, line_no=5, is_filter=True, filter_template=template, filter_definition=definition)
    return job


def selected(result: JobResult) -> set[int]:
    assert result.status == Status.SUCCESS, result.message
    return {int(pk) for pk in result.line_results.get(line_no=10).message.removeprefix("records:").split()}


def line_message(result: JobResult, line_no: int = 10) -> str:
    return result.line_results.get(line_no=line_no).message


def test_a_domain_jobs_filter_line_never_reads_another_domains_records(jobs_template, acme, globex, operator):
    globex_job = make_job("globex-payroll", domain=globex)
    make_job("global-cleanup")
    acme_reader = reader("acme-reader", jobs_template, domain=acme)
    assert selected(wait_for_status(start_run(acme_reader, user=operator).id)) == {acme_reader.pk}
    # Naming another domain's record in the definition finds nothing: the domain is added to any definition.
    aimed = reader("acme-aimed", jobs_template, {"identifier": globex_job.identifier}, domain=acme)
    result = wait_for_status(start_run(aimed, user=operator).id)
    assert result.status == Status.INFO and "matched no records" in result.message


def test_each_run_of_a_per_domain_global_job_reads_its_own_domains_records(jobs_template, acme, globex, admin_user):
    acme_job, globex_job = make_job("acme-billing", domain=acme), make_job("globex-payroll", domain=globex)
    everywhere = reader("everywhere", jobs_template, execution=Job.PER_DOMAIN)
    results = start_runs(everywhere, user=admin_user)
    seen = {result.domain.slug: selected(wait_for_status(result.id)) for result in results}
    assert seen == {"acme": {acme_job.pk}, "globex": {globex_job.pk}}


def test_a_run_as_user_who_is_no_system_administrator_sees_only_their_domains_records(
    jobs_template, acme, globex, admin_user,
):
    acme_job, globex_job = make_job("acme-billing", domain=acme), make_job("globex-payroll", domain=globex)
    service = make_member("svc-globex", (globex, DomainMembership.VIEWER))
    as_service = reader("as-service", jobs_template, run_as=service)
    assert selected(wait_for_status(start_run(as_service, user=admin_user).id)) == {globex_job.pk}
    as_root = reader("as-root", jobs_template)
    assert selected(wait_for_status(start_run(as_root, user=admin_user).id)) == {
        acme_job.pk, globex_job.pk, as_service.pk, as_root.pk}


def test_a_system_administrators_line_on_a_template_without_domain_path_reads_every_record(acme, globex, admin_user):
    every_job = FilterTemplate.objects.create(name="Every job", model="jobs.Job")
    globex_job = make_job("globex-payroll", domain=globex)
    acme_reader = reader("acme-reader", every_job, domain=acme)
    result = wait_for_status(start_run(acme_reader, user=admin_user).id)
    assert selected(result) == {acme_reader.pk, globex_job.pk}  # the system administrator's choice...
    assert result.log_entries.filter(message__contains="has no domain path").exists()  # ...said in the log


def test_the_action_gets_the_service_user_else_the_requester_else_nobody(acme, operator):
    service = make_member("svc-acme", (acme, DomainMembership.OPERATOR))
    as_service = make_job("as-service", (10, "testing.whoami", {}), domain=acme, run_as=service)
    as_requester = make_job("as-requester", (10, "testing.whoami", {}), domain=acme)
    assert line_message(wait_for_status(start_run(as_service, user=operator).id)) == "runs as svc-acme"
    assert line_message(wait_for_status(start_run(as_requester, user=operator).id)) == "runs as operator"
    assert line_message(wait_for_status(start_run(as_requester).id)) == "runs as nobody"  # a schedule's run


def test_an_action_needing_a_permission_runs_only_for_a_user_who_has_it(acme, operator, admin_user):
    job = make_job("guarded", (10, "testing.guarded", {}), domain=acme)
    refused = wait_for_status(start_run(job, user=operator).id)
    assert refused.status == Status.ERROR
    assert line_message(refused) == ("Not allowed: testing.guarded needs the permission jobs.view_job, "
                                     "which operator lacks.")
    nobody = wait_for_status(start_run(job).id)
    assert line_message(nobody) == ("Not allowed: testing.guarded needs the permission jobs.view_job "
                                    "and the run has no user.")
    operator.user_permissions.add(Permission.objects.get(content_type__app_label="jobs", codename="view_job"))
    assert line_message(wait_for_status(start_run(job, user=operator).id)) == "the guarded action ran"
    assert line_message(wait_for_status(start_run(job, user=admin_user).id)) == "the guarded action ran"


def test_a_result_without_its_own_domain_is_kept_to_its_jobs_domain(jobs_template, acme, globex):
    from results import runner

    make_job("globex-payroll", domain=globex)
    acme_reader = reader("acme-reader", jobs_template, domain=acme)
    bare = JobResult.objects.create(job=acme_reader)  # written by other code than start_run: no domain on it
    runner.execute(bare.id)
    assert selected(JobResult.objects.get(id=bare.id)) == {acme_reader.pk}
