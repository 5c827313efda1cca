"""The Run dialog of a job in the admin: /admin/jobs/job/<id>/run/."""
from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import DomainMembership
from results.models import JobResult, Status, Trigger
from tests.helpers import make_job

pytestmark = pytest.mark.django_db

PARAMS = [
    {"name": "days", "type": "int", "default": 7, "required": True, "help": "How far back to look."},
    {"name": "region", "type": "choice", "choices": ["north", "south"], "required": True},
]


@pytest.fixture
def report_job(acme):
    return make_job(
        "weekly-report",
        (10, "core.shell", {"command": "echo report for $JOBS_PARAM_DAYS days"}),
        (20, "core.sleep", {"seconds": 0.5}),
        (30, "testing.echo", {"text": "switched off"}, False),
        name="Weekly report", domain=acme, params=PARAMS,
    )


def run_url(job) -> str:
    return reverse("admin:jobs_job_run", args=[job.pk])


def confirm(client, job, **values):
    """Submit the Run dialog's confirmation step as a browser does (the CSRF token is always part of the form)."""
    return client.post(run_url(job), {"csrfmiddlewaretoken": "from-the-page", "step": "confirm", **values})


def test_the_parameters_step_leads_to_a_confirmation_that_says_what_will_run(client, admin_user, report_job):
    client.force_login(admin_user)
    response = client.post(run_url(report_job), {"days": "3", "region": "south"})
    html = response.content.decode()
    assert response.status_code == 200 and not JobResult.objects.exists()
    assert "With these parameters" in html and "<code>south</code>" in html
    assert 'name="step" value="confirm"' in html and 'type="hidden" name="days" value="3"' in html


def test_run_page_lists_the_active_lines(client, admin_user, report_job):
    client.force_login(admin_user)
    html = client.get(run_url(report_job)).content.decode()
    assert "Weekly report" in html and "weekly-report" in html and "Acme Corp" in html
    assert "core.shell" in html and "echo report for $JOBS_PARAM_DAYS days" in html
    assert "core.sleep" in html
    assert "switched off" not in html


def test_run_page_builds_the_parameters_form_from_the_job_params(client, admin_user, report_job):
    client.force_login(admin_user)
    response = client.get(run_url(report_job))
    form = response.context["form"]
    assert list(form.fields) == ["days", "region"]
    html = response.content.decode()
    assert 'name="days"' in html and 'value="7"' in html and "How far back to look." in html
    assert '<select name="region"' in html and '<option value="north">' in html and '<option value="south">' in html


def test_a_job_without_params_shows_no_parameters_section(client, admin_user):
    job = make_job("plain", (10, "core.sleep", {"seconds": 0}))
    client.force_login(admin_user)
    response = client.get(run_url(job))
    assert response.status_code == 200
    assert "<h2>Parameters</h2>" not in response.content.decode()


def test_post_creates_a_pending_result_and_redirects_to_it(client, admin_user, report_job):
    client.force_login(admin_user)
    response = confirm(client, report_job, days="3", region="south")
    result = JobResult.objects.get(job=report_job)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:results_jobresult_change", args=[result.pk])
    assert (result.status, result.trigger, result.requested_by) == (Status.PENDING, Trigger.MANUAL, admin_user)
    assert result.parameters == {"days": 3, "region": "south"}
    assert result.lines_total == 2


def test_operator_may_run_their_domains_job(client, member, acme, report_job):
    operator = member("otto", acme, DomainMembership.OPERATOR)
    client.force_login(operator)
    response = client.get(confirm(client, report_job, days="1", region="north")["Location"])
    result = JobResult.objects.get(job=report_job)
    assert result.requested_by == operator
    assert f"queued as result #{result.pk}." in response.content.decode()


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"days": "many", "region": "north"}, "days", "Enter a whole number."),
    ({"days": "3", "region": "west"}, "region", "Select a valid choice."),
    ({"days": "3"}, "region", "This field is required."),
], ids=["wrong-type", "not-a-choice", "missing"])
def test_invalid_parameter_shows_a_field_error_and_creates_nothing(client, admin_user, report_job, data, field,
                                                                    message):
    client.force_login(admin_user)
    response = confirm(client, report_job, **data)
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    assert message in response.content.decode()
    assert not JobResult.objects.exists()


def test_inactive_job_is_refused_with_a_reason(client, admin_user):
    job = make_job("dormant", (10, "core.sleep", {"seconds": 0}), active=False)
    client.force_login(admin_user)
    response = confirm(client, job)
    assert response.status_code == 200
    assert "The job dormant is inactive." in response.content.decode()
    assert not JobResult.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_viewer_is_forbidden(client, member, acme, report_job, method):
    client.force_login(member("vic", acme, DomainMembership.VIEWER))
    response = getattr(client, method)(run_url(report_job), {"days": "3", "region": "north"})
    assert response.status_code == 403
    assert not JobResult.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_other_domains_job_is_not_found(client, member, globex, report_job, method):
    client.force_login(member("gus", globex, DomainMembership.ADMIN))
    response = getattr(client, method)(run_url(report_job), {"days": "3", "region": "north"})
    assert response.status_code == 404
    assert not JobResult.objects.exists()


def test_domain_member_cannot_run_a_global_job(client, member, acme):
    job = make_job("global-job", (10, "core.sleep", {"seconds": 0}))
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    assert confirm(client, job).status_code == 404
    assert not JobResult.objects.exists()


def test_anonymous_user_is_sent_to_the_login_page(client, report_job):
    response = client.post(run_url(report_job), {"days": "3", "region": "north"})
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    assert not JobResult.objects.exists()
