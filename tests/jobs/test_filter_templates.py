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
