"""FilterTemplate.domain_path: the lookup from the template's model to its domain, checked when saved."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from jobs.models import FilterTemplate

pytestmark = pytest.mark.django_db


def domain_path_errors(model: str, domain_path: str) -> list[str]:
    try:
        FilterTemplate(name="t", model=model, domain_path=domain_path).full_clean()
    except ValidationError as exc:
        return exc.message_dict.get("domain_path", [])
    return []


@pytest.mark.parametrize(("model", "path"), [
    ("jobs.Job", "domain"),                          # a foreign key to the domain
    ("results.JobResult", "job__domain"),            # through another model
    ("auth.User", "memberships__domain"),            # through a to-many relation: users of the domain
])
def test_a_path_through_relations_to_the_domain_is_accepted(model, path):
    assert domain_path_errors(model, path) == []


@pytest.mark.parametrize(("model", "path", "error"), [
    ("jobs.Job", "owner", "jobs.Job.owner is not a relation: the path must follow relations to a domain"),
    ("jobs.Job", "run_as", "run_as leads to auth.User, not to jobs.Domain"),
    ("jobs.Job", "nowhere__domain", "jobs.Job has no field 'nowhere'"),
    ("jobs.Job", "domain__", "not a lookup of at most 4 relations, e.g. customer__domain"),
    ("auth.User", "memberships__domain__jobs__domain__jobs", "not a lookup of at most 4 relations"),
])
def test_a_path_that_does_not_end_at_the_domain_is_refused_naming_the_rule(model, path, error):
    assert any(message.startswith(error) for message in domain_path_errors(model, path)), \
        domain_path_errors(model, path)


def test_a_template_without_domain_path_is_for_system_administrators_only():
    assert FilterTemplate(model="auth.User").for_system_admins_only
    assert not FilterTemplate(model="jobs.Job", domain_path="domain").for_system_admins_only


# Review 1, finding 5: a template in use by domain jobs cannot silently widen their lines ------------------------

@pytest.fixture
def used_template(acme):
    from jobs.models import JobLine
    from tests.helpers import make_job

    template = FilterTemplate.objects.create(name="Acme jobs", model="jobs.Job", domain=acme, domain_path="domain")
    for identifier in ("acme-reader", "acme-audit"):
        job = make_job(identifier, (10, "testing.list_records", {}), domain=acme)
        JobLine.objects.create(job=job, line_no=5, is_filter=True, filter_template=template, filter_definition={})
    return template


def clean_errors(template: FilterTemplate) -> dict[str, list[str]]:
    try:
        template.full_clean()
    except ValidationError as exc:
        return exc.message_dict
    return {}


def test_its_domain_path_cannot_be_emptied_while_lines_of_domain_jobs_use_it(used_template):
    used_template.domain_path = ""
    assert clean_errors(used_template) == {"domain_path": [
        "cannot be emptied (their lines would read every domain's records) while filter lines of domain jobs "
        "use this template: acme-audit, acme-reader; change or delete those lines first."]}


def test_its_model_cannot_change_while_lines_of_domain_jobs_use_it(used_template):
    used_template.model = "results.JobResult"
    used_template.domain_path = "job__domain"
    assert clean_errors(used_template)["model"][0].startswith(
        "cannot be changed (their lines would read another model's records) while filter lines of domain jobs "
        "use this template: acme-audit, acme-reader")


def test_unused_by_domain_jobs_it_may_change(used_template, admin_user, client):
    from django.urls import reverse

    from jobs.models import JobLine

    used_template.domain_path = "domain__jobs__domain"  # another path to the domain: still bound to it
    assert clean_errors(used_template) == {}
    JobLine.objects.filter(filter_template=used_template).delete()
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_filtertemplate_change", args=[used_template.pk]),
                           {"name": "Acme jobs", "model": "jobs.Job", "domain_path": "", "definition": "{}"})
    assert response.status_code == 302 and FilterTemplate.objects.get(pk=used_template.pk).domain_path == ""
