"""A job's plan is kept per process and reloaded whenever the job, its lines or their filters change."""
from __future__ import annotations

import pytest

from jobs import plans
from jobs.models import Action, FilterTemplate, Job, JobLine
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_kept_plans():
    plans.forget()
    yield
    plans.forget()


def revision(job: Job):
    return Job.objects.values_list("revision", flat=True).get(pk=job.pk)


def test_saving_the_job_changes_its_revision_and_the_object_sees_it():
    job = make_job("edited")
    before = revision(job)
    job.name = "Edited again"
    job.save()
    assert revision(job) != before
    assert job.revision == revision(job)


@pytest.mark.parametrize("change", ["save", "delete"])
def test_adding_changing_or_deleting_a_line_changes_the_revision(change):
    job = make_job("lines", (10, "testing.echo", {"text": "one"}))
    before = revision(job)
    line = JobLine.objects.get(job=job)
    if change == "save":
        line.parameters = {"text": "two"}
        line.save()
    else:
        line.delete()
    assert revision(job) != before


def test_changing_a_filter_template_changes_the_revision_of_the_jobs_using_it_only():
    template = FilterTemplate.objects.create(name="users", model="auth.User", definition={})
    using = make_job("using")
    JobLine.objects.create(job=using, line_no=10, is_filter=True, filter_template=template)
    other = make_job("other", (10, "testing.echo", {}))
    before_using, before_other = revision(using), revision(other)
    template.definition = {"is_active": True}
    template.save()
    assert revision(using) != before_using
    assert revision(other) == before_other


def test_changing_an_action_changes_the_revision_of_the_jobs_using_it():
    job = make_job("echoes", (10, "testing.echo", {}))
    before = revision(job)
    Action.objects.get(name="testing.echo").save()
    assert revision(job) != before


def test_a_plan_is_read_once_per_revision(django_assert_num_queries):
    job = make_job("kept", (10, "testing.echo", {"text": "one"}), (20, "testing.echo", {}, False))
    current = revision(job)
    with django_assert_num_queries(2):  # the job, its active lines
        plan = plans.plan_for(job.pk, current)
    assert [line.line_no for line in plan.lines] == [10]
    with django_assert_num_queries(0):
        assert plans.plan_for(job.pk, plan.revision) is plan


def test_a_changed_job_is_read_again():
    job = make_job("changing", (10, "testing.echo", {"text": "one"}))
    first = plans.plan_for(job.pk, revision(job))
    JobLine.objects.filter(job=job).get().delete()
    JobLine.objects.create(job=job, line_no=20, action=Action.objects.get(name="testing.echo"),
                           parameters={"text": "two"})
    second = plans.plan_for(job.pk, revision(job))
    assert second is not first
    assert [(line.line_no, line.parameters) for line in second.lines] == [(20, {"text": "two"})]


def test_a_job_created_again_under_the_same_id_never_matches_a_kept_plan():
    job = make_job("reborn", (10, "testing.echo", {"text": "old"}))
    job_id, old = job.pk, plans.plan_for(job.pk, revision(job))
    Job.objects.filter(pk=job_id).delete()
    reborn = Job.objects.create(pk=job_id, identifier="reborn", name="Reborn")
    assert plans.plan_for(job_id, revision(reborn)) is not old


def test_only_the_most_recently_used_plans_are_kept(monkeypatch):
    monkeypatch.setattr(plans, "MAX_PLANS_KEPT", 2)
    jobs = [make_job(f"job-{n}") for n in range(3)]
    kept = [plans.plan_for(job.pk, revision(job)) for job in jobs]
    assert plans.plan_for(jobs[2].pk, revision(jobs[2])) is kept[2]
    assert plans.plan_for(jobs[0].pk, revision(jobs[0])) is not kept[0]  # dropped when the third came


def test_a_plan_holds_the_job_s_version_and_a_new_version_comes_with_a_new_revision():
    from django.db import transaction

    from jobs import versions

    job = make_job("versioned", (10, "testing.echo", {"text": "one"}))
    assert plans.plan_for(job.pk, job.revision).version is None  # no version recorded yet
    with transaction.atomic():  # as the admin saves: the job (a new revision), then its version
        job.save()
        versions.record(job)
    assert plans.plan_for(job.pk, job.revision).version == 1
    with transaction.atomic():
        job.name = "Renamed"
        job.save()
        versions.record(job)
    assert plans.plan_for(job.pk, job.revision).version == 2
