"""Filter lines in the admin: a domain administrator filters on their own templates, without following relations.

Only templates with a domain path (a run then sees its domain's records only) are for domain administrators;
a template without one reads every domain's records and is for system administrators' lines only.
"""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from jobs.models import DomainMembership, FilterTemplate, JobLine
from tests.helpers import make_job
from tests.jobs.test_admin_job_form import actions, page_data  # noqa: F401  (actions: a fixture)

pytestmark = pytest.mark.django_db


def filter_line_post(client, job, template, definition: dict):
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = page_data(client.get(url))
    data.update({"lines-TOTAL_FORMS": 1, "lines-0-line_no": 5, "lines-0-is_filter": "on",
                 "lines-0-filter_template": template.pk, "lines-0-filter_definition": json.dumps(definition),
                 "lines-0-parameters": "{}", "lines-0-active": "on"})
    return client.post(url, data)


def domain_users_template(name: str, domain) -> FilterTemplate:
    return FilterTemplate.objects.create(name=name, model="auth.User", domain=domain, domain_path="memberships__domain")


def test_a_domain_admin_filters_on_their_domains_template(client, member, acme):
    template = domain_users_template("Acme users", acme)
    job = make_job("acme-filter", domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    response = filter_line_post(client, job, template, {"is_active": True, "date_joined__year": 2026})
    assert response.status_code == 302
    assert JobLine.objects.get(job=job).filter_definition == {"is_active": True, "date_joined__year": 2026}


def test_a_domain_admin_may_not_follow_relations_or_use_another_domains_template(
    client, member, acme, globex,
):
    own = domain_users_template("Acme users", acme)
    foreign = domain_users_template("Globex users", globex)
    job = make_job("acme-filter", domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    followed = filter_line_post(client, job, own, {"groups__name": "admins"})
    assert followed.status_code == 200
    assert "following a relation into another model is for system administrators only" in followed.content.decode()
    other = filter_line_post(client, job, foreign, {"is_active": True})
    assert other.status_code == 200 and "Not a filter template you may use" in other.content.decode()
    assert not JobLine.objects.filter(job=job).exists()


def template_choices(client, job) -> set[str]:
    response = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    formset = next(f.formset for f in response.context["inline_admin_formsets"] if f.formset.prefix == "lines")
    return {str(template) for template in formset.forms[-1].fields["filter_template"].queryset}


def test_a_template_without_domain_path_is_neither_offered_to_nor_accepted_from_a_domain_admin(
    client, member, acme,
):
    every_user = FilterTemplate.objects.create(name="Every user", model="auth.User", domain=acme)
    scoped = domain_users_template("Acme users", acme)
    job = make_job("acme-filter", domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    assert template_choices(client, job) == {scoped.name}
    response = filter_line_post(client, job, every_user, {"is_active": True})
    assert response.status_code == 200
    assert "a domain administrator uses the templates of their domains that have a domain path" in (
        response.content.decode())
    assert not JobLine.objects.filter(job=job).exists()


def test_a_system_administrator_may_use_a_template_without_domain_path(client, admin_user, acme):
    every_user = FilterTemplate.objects.create(name="Every user", model="auth.User")
    job = make_job("acme-filter", domain=acme)
    client.force_login(admin_user)
    assert "Every user" in template_choices(client, job)
    assert filter_line_post(client, job, every_user, {"is_active": True}).status_code == 302
    assert JobLine.objects.get(job=job).filter_template == every_user


def test_a_domain_admin_may_keep_but_not_change_a_system_administrators_line_without_domain_path(
    client, member, acme,
):
    every_user = FilterTemplate.objects.create(name="Every user", model="auth.User")
    job = make_job("acme-filter", (10, "testing.echo", {}), domain=acme)
    JobLine.objects.create(job=job, line_no=5, is_filter=True, filter_template=every_user,
                           filter_definition={"is_active": True})
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = page_data(client.get(url))
    assert client.post(url, {**data, "name": "Renamed"}).status_code == 302  # the untouched line does not block
    filter_form = next(key for key, value in data.items() if key.endswith("-filter_template") and value)
    changed = client.post(url, {**data, filter_form.replace("filter_template", "filter_definition"): "{}"})
    assert changed.status_code == 200
    assert "Only a system administrator may add or change a filter line on Every user" in changed.content.decode()
    assert JobLine.objects.get(job=job, line_no=5).filter_definition == {"is_active": True}
