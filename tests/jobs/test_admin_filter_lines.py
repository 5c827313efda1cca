"""Filter lines in the admin: a domain administrator filters on their own templates, without following relations.

Only templates with a domain path (a run then sees its domain's records only) are for domain administrators;
a template without one reads every domain's records and is for system administrators' lines only.
"""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from jobs.models import Action, DomainMembership, FilterTemplate, JobLine
from tests.helpers import make_job
from tests.jobs.test_admin_job_form import actions, page_data  # noqa: F401  (actions: a fixture)
from tests.jobs.test_authorship import page_errors, post_change, row

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


# Lines fed by a system administrator's filter without domain path (review 1, finding 1) ------------------------

@pytest.fixture
def fed_job(acme):
    """Line 5 (system administrator): every domain's jobs, for line 10. Line 15 (Acme's filter) feeds line 20."""
    every_job = FilterTemplate.objects.create(name="Every job", model="jobs.Job")
    acme_jobs = FilterTemplate.objects.create(name="Acme jobs", model="jobs.Job", domain=acme, domain_path="domain")
    job = make_job("fed", (10, "testing.echo", {}), (20, "testing.list_records", {}), domain=acme)
    JobLine.objects.create(job=job, line_no=5, is_filter=True, filter_template=every_job,
                           filter_definition={"active": True})
    JobLine.objects.create(job=job, line_no=15, is_filter=True, filter_template=acme_jobs, filter_definition={})
    return job


def lines_state(job) -> list[tuple]:
    return list(JobLine.objects.filter(job=job).order_by("line_no")
                .values_list("line_no", "active", "is_filter", "filter_template__name", "action__name", "parameters"))


def add_row(line_no: int, **fields):
    def edit(data: dict) -> None:
        new = f"lines-{int(data['lines-TOTAL_FORMS']) - 1}"  # the empty extra row
        data.update({f"{new}-line_no": line_no, f"{new}-active": "on", f"{new}-parameters": "{}",
                     f"{new}-filter_definition": "{}", **{f"{new}-{name}": value for name, value in fields.items()}})
    return edit


def add_line(line_no: int):
    def edit(data: dict) -> None:
        add_row(line_no, action=Action.objects.get(name="testing.list_records").pk)(data)
    return edit


def add_acme_filter(line_no: int):
    def edit(data: dict) -> None:
        add_row(line_no, is_filter="on", filter_template=FilterTemplate.objects.get(name="Acme jobs").pk)(data)
    return edit


def set_field(line_no: int, field: str, value):
    def edit(data: dict) -> None:
        data[f"{row(data, line_no)}-{field}"] = value
    return edit


def deactivate(line_no: int):
    def edit(data: dict) -> None:
        data.pop(f"{row(data, line_no)}-active")
    return edit


ATTACKS = {
    "add a line it feeds": (add_line(12), 12, "it gets the records of line 5"),
    "change a line it feeds": (set_field(10, "parameters", '{"text": "mine"}'), 10, "it gets the records of line 5"),
    "deactivate a line it feeds": (deactivate(10), 10, "it gets the records of line 5"),
    "move a line out of its range": (set_field(10, "line_no", 30), 30, "it gets the records of line 5"),
    "delete a line it feeds": (set_field(10, "DELETE", "on"), 10, "it gets the records of line 5"),
    "delete the filter itself": (set_field(5, "DELETE", "on"), 5, "it is line 5"),
    "move one's own line into its range": (set_field(20, "line_no", 12), 12, "it gets the records of line 5"),
    "deactivate the filter that ends its range": (deactivate(15), 20, "would make it start getting the records"),
    "delete the filter that ends its range": (set_field(15, "DELETE", "on"), 20, "would make it start getting"),
    "move the filter that ends its range": (set_field(15, "line_no", 25), 20, "would make it start getting"),
    "cut its range with a filter of one's own": (add_acme_filter(7), 10, "would make it stop getting"),
}


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_domain_admin_cannot_touch_the_lines_a_filter_without_domain_path_feeds(
    attack, client, member, acme, fed_job,
):
    """Review 1: a domain admin's line after a system administrator's path-less filter read every domain's
    records (their new line 20 listed Globex's jobs)."""
    edit, line_no, reason = attack
    before = lines_state(fed_job)
    response, _ = post_change(client, member("ann", acme, DomainMembership.ADMIN), fed_job, edit)
    errors = page_errors(response)
    assert f"Line {line_no}: " in errors and reason in errors, errors
    assert "line 5 (a filter on Every job, which has no domain path: every domain's records)" in errors
    assert lines_state(fed_job) == before


ALLOWED = {
    "change one's own line after the range": set_field(20, "parameters", "{}"),
    "change one's own filter's definition": set_field(15, "filter_definition", '{"active": true}'),
    "add a line after one's own filter": add_line(30),
    "rename the job": lambda data: data.update(name="Renamed"),
}


@pytest.mark.parametrize("edit", ALLOWED.values(), ids=ALLOWED.keys())
def test_a_domain_admin_still_edits_the_lines_outside_that_range(edit, client, member, acme, fed_job):
    response, _ = post_change(client, member("ann", acme, DomainMembership.ADMIN), fed_job, edit)
    assert response.status_code == 302, page_errors(response)


def test_a_system_administrator_adds_lines_to_that_range(client, admin_user, fed_job):
    response, _ = post_change(client, admin_user, fed_job, add_line(12))
    assert response.status_code == 302
    assert JobLine.objects.filter(job=fed_job, line_no=12).exists()
