"""Filter lines in the admin: a domain administrator filters on their own templates, without following relations."""
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


def test_a_domain_admin_filters_on_their_domains_template(client, member, acme):
    template = FilterTemplate.objects.create(name="Acme users", model="auth.User", domain=acme)
    job = make_job("acme-filter", domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    response = filter_line_post(client, job, template, {"is_active": True, "date_joined__year": 2026})
    assert response.status_code == 302
    assert JobLine.objects.get(job=job).filter_definition == {"is_active": True, "date_joined__year": 2026}


def test_a_domain_admin_may_not_follow_relations_or_use_another_domains_template(
    client, member, acme, globex,
):
    own = FilterTemplate.objects.create(name="Acme users", model="auth.User", domain=acme)
    foreign = FilterTemplate.objects.create(name="Globex users", model="auth.User", domain=globex)
    job = make_job("acme-filter", domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    followed = filter_line_post(client, job, own, {"groups__name": "admins"})
    assert followed.status_code == 200
    assert "following a relation into another model is for system administrators only" in followed.content.decode()
    other = filter_line_post(client, job, foreign, {"is_active": True})
    assert other.status_code == 200 and "Select a valid choice" in other.content.decode()
    assert not JobLine.objects.filter(job=job).exists()
