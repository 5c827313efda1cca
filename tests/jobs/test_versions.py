"""Versions of a job (``jobs.versions``): every save stores one, the History window lists, diffs and restores them."""
from __future__ import annotations

import contextlib
import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.urls import reverse

from jobs import versions
from jobs.definitions import export_jobs, import_texts
from jobs.models import DomainMembership, FilterTemplate, Job, JobLine, JobVersion
from results.dispatch import start_run
from tests.helpers import make_job
from tests.jobs.test_admin_job_form import page_data

pytestmark = pytest.mark.django_db

SLEEP = (10, "core.sleep", {"seconds": 0})
SHELL = (20, "core.shell", {"command": "echo author"})


def history_url(job: Job) -> str:
    return reverse("admin:jobs_job_versions", args=[job.pk])


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def save_in_admin(client: Client, job: Job, **changes):
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = {**page_data(client.get(url)), **changes}
    return client.post(url, data)


# --- record ---------------------------------------------------------------------------------------------------


def test_record_stores_the_whole_definition_and_nothing_when_unchanged(admin_user):
    job = make_job("nightly", SLEEP, name="Nightly")
    first = versions.record(job, admin_user, "first")
    assert (first.number, first.job_identifier, first.created_by, first.comment) == (1, "nightly", admin_user, "first")
    assert first.definition == export_jobs(Job.objects.filter(pk=job.pk))
    assert versions.record(job, admin_user) is None  # unchanged: no new version
    job.name = "Nightly, renamed"
    job.save()
    second = versions.record(job)
    assert second.number == 2 and "Nightly, renamed" in second.definition and second.created_by is None
    assert [line.kind for line in versions.diff(first, second) if line.kind in ("added", "removed")] == [
        "removed", "added"]


def test_versions_survive_the_deletion_of_their_job_and_numbers_go_on():
    job = make_job("doomed", SLEEP)
    versions.record(job)
    job.delete()
    kept = JobVersion.objects.get(job_identifier="doomed")
    assert kept.job is None and kept.number == 1 and "doomed" in kept.definition
    reborn = make_job("doomed", SLEEP, name="Reborn")
    assert versions.record(reborn).number == 2  # the identifier's numbers stay unique
    assert list(reborn.versions.values_list("number", flat=True)) == [2]  # the old job's history is not its


# --- the write paths ------------------------------------------------------------------------------------------


def test_admin_save_stores_a_version_with_its_change_note_and_an_unchanged_save_none(admin_user):
    job = make_job("edited", SLEEP, name="Before")
    client = logged_in(admin_user)
    assert save_in_admin(client, job, name="After", change_note="renamed for the report").status_code == 302
    version = job.versions.get()
    assert (version.number, version.comment, version.created_by) == (1, "renamed for the report", admin_user)
    assert "name: After" in version.definition
    assert save_in_admin(client, job).status_code == 302
    assert job.versions.count() == 1
    assert save_in_admin(client, job, **{"lines-0-parameters": '{"seconds": 1}'}).status_code == 302
    assert job.versions.count() == 2 and "seconds: 1" in job.versions.first().definition  # inline lines count


def test_import_stores_a_version_of_each_changed_job(admin_user):
    job = make_job("imported", SLEEP, name="Old name")
    text = export_jobs(Job.objects.filter(pk=job.pk)).replace("name: Old name", "name: New name")
    import_texts([("the file", text)], user=admin_user)
    version = job.versions.get()
    assert (version.comment, version.created_by) == ("imported", admin_user) and "New name" in version.definition
    import_texts([("the file", text)])
    assert job.versions.count() == 1  # the same file again changes nothing
    import_texts([("the file", text.replace("New name", "Dry"))], dry_run=True)
    assert job.versions.count() == 1


def test_copy_records_version_1_saying_where_it_came_from():
    job = make_job("original", SLEEP)
    versions.record(job)
    versions.record(Job.objects.filter(pk=job.pk).update(name="Changed") and Job.objects.get(pk=job.pk))
    duplicate = job.copy("duplicate")
    assert list(duplicate.versions.values_list("number", "comment")) == [(1, "copied from original version 2")]


# --- results --------------------------------------------------------------------------------------------------


def test_a_result_records_its_version_and_its_page_says_which_and_the_current_one(admin_user):
    job = make_job("versioned", SLEEP)
    versions.record(job)
    result = start_run(job)
    assert result.job_version == 1
    Job.objects.filter(pk=job.pk).update(name="Changed")
    versions.record(Job.objects.get(pk=job.pk))
    page = logged_in(admin_user).get(reverse("admin:results_jobresult_change", args=[result.pk]))
    text = page.content.decode()
    assert "This run used" in text and ">version 1</a>; the job is now at" in text and ">version 2</a>." in text
    assert f"{history_url(job)}?a=1&amp;b=2" in text


# --- the History window ---------------------------------------------------------------------------------------


def test_history_is_404_outside_the_callers_domains(acme, globex, member):
    job = make_job("globex-job", SLEEP, domain=globex)
    versions.record(job)
    client = logged_in(member("ann", acme, DomainMembership.ADMIN))
    assert client.get(history_url(job)).status_code == 404
    assert client.post(history_url(job), {"restore": "1"}).status_code == 404


def test_a_viewer_sees_the_history_and_the_diff_but_may_not_restore(acme, member):
    job = make_job("acme-job", SLEEP, domain=acme, name="First name")
    versions.record(job)
    Job.objects.filter(pk=job.pk).update(name="Second name")
    versions.record(Job.objects.get(pk=job.pk))
    client = logged_in(member("vic", acme, DomainMembership.VIEWER))
    page = client.get(history_url(job) + "?a=1&b=2")
    text = page.content.decode()
    assert page.status_code == 200
    assert '<span class="diff-removed">-  name: First name</span>' in text
    assert '<span class="diff-added">+  name: Second name</span>' in text
    assert "Restore this version" not in text
    assert client.post(history_url(job), {"restore": "1"}).status_code == 403
    assert Job.objects.get(pk=job.pk).name == "Second name"


def test_a_domain_admin_restores_a_version_as_a_new_one(acme, member):
    job = make_job("acme-job", SLEEP, domain=acme, name="First name")
    versions.record(job)
    Job.objects.filter(pk=job.pk).update(name="Second name")
    versions.record(Job.objects.get(pk=job.pk))
    admin = member("ada", acme, DomainMembership.ADMIN)
    response = logged_in(admin).post(history_url(job), {"restore": "1"})
    assert response.status_code == 302
    assert Job.objects.get(pk=job.pk).name == "First name"
    newest = job.versions.first()
    assert (newest.number, newest.comment, newest.created_by) == (3, "restored version 1", admin)


def test_a_domain_admin_may_not_restore_a_job_with_a_system_administrators_line(acme, member):
    job = make_job("authored", SLEEP, SHELL, domain=acme, name="First name")
    versions.record(job)
    Job.objects.filter(pk=job.pk).update(name="Second name")
    versions.record(Job.objects.get(pk=job.pk))
    admin = member("ada", acme, DomainMembership.ADMIN)
    with pytest.raises(PermissionDenied, match="written by a system administrator"):
        versions.restore(job, job.versions.get(number=1), admin)
    assert Job.objects.get(pk=job.pk).name == "Second name" and job.versions.count() == 2  # rolled back
    logged_in(admin).post(history_url(job), {"restore": "1"})
    assert Job.objects.get(pk=job.pk).name == "Second name"


def test_a_domain_admin_may_not_restore_a_version_that_brings_back_an_authors_line(acme, member, admin_user):
    job = make_job("authored", SLEEP, SHELL, domain=acme)
    versions.record(job)
    job.lines.filter(line_no=20).delete()  # a system administrator removed their line
    versions.record(job)
    with pytest.raises(PermissionDenied, match="written by a system administrator"):
        versions.restore(job, job.versions.get(number=1), member("ada", acme, DomainMembership.ADMIN))
    assert list(job.lines.values_list("line_no", flat=True)) == [10]
    assert versions.restore(job, job.versions.get(number=1), admin_user).number == 3  # theirs to restore
    assert list(job.lines.values_list("line_no", flat=True)) == [10, 20]


def test_a_domain_admin_may_not_restore_a_global_job(acme, member):
    job = make_job("global-job", SLEEP)
    versions.record(job)
    assert not versions.may_restore(member("ada", acme, DomainMembership.ADMIN), job)


def test_a_domain_admin_may_not_restore_another_domains_filter_template(acme, globex, member, admin_user):
    theirs = FilterTemplate.objects.create(name="Globex users", model="auth.User", domain=globex,
                                           domain_path="memberships__domain")
    job = make_job("filtered", SLEEP, domain=acme)
    JobLine.objects.create(job=job, line_no=5, is_filter=True, filter_template=theirs, filter_definition={})
    versions.record(job, admin_user)
    job.lines.filter(line_no=5).delete()
    versions.record(job)
    with pytest.raises(PermissionDenied, match="filter template of another domain"):
        versions.restore(job, job.versions.get(number=1), member("ada", acme, DomainMembership.ADMIN))
    assert list(job.lines.values_list("line_no", flat=True)) == [10]


def test_a_domain_admin_may_not_restore_a_system_administrators_field(acme, member, admin_user):
    job = make_job("served", SLEEP, domain=acme)
    versions.record(job)
    Job.objects.filter(pk=job.pk).update(run_as=admin_user)  # a system administrator's call
    versions.record(Job.objects.get(pk=job.pk))
    with pytest.raises(PermissionDenied, match="would change run_as"):
        versions.restore(job, job.versions.get(number=1), member("ada", acme, DomainMembership.ADMIN))
    assert Job.objects.get(pk=job.pk).run_as == admin_user


@pytest.mark.django_db(transaction=True)
def test_saves_at_the_same_moment_store_one_version_numbered_once(monkeypatch):
    job = make_job("raced", SLEEP)
    versions.record(job)
    Job.objects.filter(pk=job.pk).update(name="Changed once")
    all_ready = threading.Barrier(4, timeout=20)
    all_read = threading.Barrier(4, timeout=2)  # unlocked, all four would read the latest version before any writes
    errors: list[BaseException] = []
    original_latest = versions.latest

    def latest_then_wait(job):
        found = original_latest(job)
        with contextlib.suppress(threading.BrokenBarrierError):  # the lock lets one in at a time: it times out
            all_read.wait()
        return found

    monkeypatch.setattr(versions, "latest", latest_then_wait)

    def save():
        try:
            all_ready.wait()
            versions.record(Job.objects.get(pk=job.pk))
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=save) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert list(JobVersion.objects.filter(job=job).values_list("number", flat=True)) == [2, 1]
