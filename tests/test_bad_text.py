"""Text no database stores (NUL, lone surrogates) in request input answers 400 naming where, never 500.

Before: on PostgreSQL a NUL in an admin list filter, a search or an autocomplete term answered 500
("A string literal cannot contain NUL (0x00) characters"), and so did a lone surrogate ("\\ud800", which
JSON writes as an escape) in the API's body or in JSON typed in an admin field.
"""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.models import Action, DomainMembership, Job
from jobs.text import NUL_RULE, SURROGATE_RULE
from results.models import JobResult
from tests.helpers import client_for, make_job
from tests.jobs.test_admin_job_form import line_errors, page_data

pytestmark = pytest.mark.django_db

ROLES = ["superuser", DomainMembership.ADMIN, DomainMembership.OPERATOR, DomainMembership.VIEWER]


@pytest.fixture
def job(acme):
    return make_job("nightly", (10, "testing.echo", {"text": "hi"}), domain=acme,
                    params=[{"name": "note", "type": "str"}, {"name": "payload", "type": "json"}])


@pytest.fixture(params=ROLES)
def user(request, admin_user, member, acme):
    if request.param == "superuser":
        return admin_user
    return member(f"ann-{request.param}", acme, request.param)


def refusal(response) -> str:
    assert response.status_code == 400, response.content[:500]
    return response.content.decode()


@pytest.mark.parametrize(("query", "named"), [
    ("/admin/jobs/job/?module=%00", "module"),
    ("/admin/jobs/job/?q=a%00b", "q"),
    ("/admin/jobs/job/?mod%00ule=x", "mod\\x00ule"),
    ("/admin/results/jobresult/?q=%00", "q"),
    ("/admin/results/jobresult/?status=%00", "status"),
    ("/admin/autocomplete/?term=%00&app_label=results&model_name=jobresult&field_name=job", "term"),
    ("/admin/autocomplete/?term=x&app_label=results%00&model_name=jobresult&field_name=job", "app_label"),
])
def test_nul_in_admin_filters_search_and_autocomplete_answers_400_naming_it(client, user, job, query, named):
    client.force_login(user)
    assert f"{named}: {NUL_RULE}" in refusal(client.get(query))


def test_nul_in_the_path_answers_400(client, admin_user, job):
    client.force_login(admin_user)
    assert f"path: {NUL_RULE}" in refusal(client.get("/admin/jobs/job/%00/change/"))


def test_bytes_that_are_not_utf8_in_a_query_are_read_as_replacement_characters(client, user, job):
    """A surrogate cannot come through a query string: Django decodes bad UTF-8 (%ED%A0%80) with U+FFFD."""
    client.force_login(user)
    for query in ("/admin/jobs/job/?q=%ED%A0%80", "/admin/jobs/job/?module=%ff",
                  "/admin/autocomplete/?term=%ED%A0%80&app_label=results&model_name=jobresult&field_name=job"):
        assert client.get(query).status_code == 200, query


def test_nul_in_a_posted_form_answers_400_naming_the_field(client, admin_user, job):
    client.force_login(admin_user)
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = page_data(client.get(url)) | {"description": "a\x00b"}
    assert f"description: {NUL_RULE}" in refusal(client.post(url, data))
    assert Job.objects.get(pk=job.pk).description == ""


@pytest.mark.parametrize(("typed", "rule"), [("\\u0000", NUL_RULE), ("\\ud800", SURROGATE_RULE)])
@pytest.mark.parametrize("role", ["superuser", DomainMembership.ADMIN])
def test_admin_json_fields_refuse_nul_and_lone_surrogates(client, admin_user, member, acme, job, typed, rule, role):
    """JSON typed in the job's params and a line's parameters: a field error naming where, the form shown again."""
    client.force_login(admin_user if role == "superuser" else member("ann", acme, role))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = page_data(client.get(url))
    data["params"] = '[{"name": "note", "type": "str", "help": "x' + typed + '"}]'
    data["lines-0-parameters"] = '{"text": "a' + typed + 'b"}'
    response = client.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["params"] == [f"[0].help: {rule}"]
    assert line_errors(response) == [f"text: {rule}"]
    assert typed in response.content.decode()  # shown again as typed
    assert Job.objects.get(pk=job.pk).params[0].get("help") is None


@pytest.mark.parametrize(("body", "errors"), [
    ('{"parameters": {"note": "a\\u0000b"}}', {"parameters.note": [NUL_RULE]}),
    ('{"parameters": {"note": "a\\ud800b"}}', {"parameters.note": [SURROGATE_RULE]}),
    ('{"parameters": {"payload": {"k\\udc80": 1}}}', {"parameters.payload": [SURROGATE_RULE]}),
    ('{"parameters": {"payload": [["\\udfff"]]}}', {"parameters.payload": [SURROGATE_RULE]}),
    ('{"parameters": {"no\\ud800te": "x"}}', {"parameters": [SURROGATE_RULE]}),
    ('{"confirm": "\\ud800"}', {"confirm": [SURROGATE_RULE]}),
    ('["\\u0000"]', {"non_field_errors": [NUL_RULE]}),
])
def test_api_json_bodies_with_nul_or_lone_surrogates_answer_400_naming_the_field(operator, job, body, errors):
    url = reverse("api:job-run", args=[job.identifier])
    response = client_for(operator).post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json() == {"errors": errors}
    assert not JobResult.objects.exists()


def test_api_query_parameters_with_nul_answer_400_as_json(operator, job):
    response = client_for(operator).get("/api/jobs/?identifier=%00")
    assert response.status_code == 400
    assert response.json() == {"errors": {"identifier": [NUL_RULE]}}


def test_run_dialog_json_parameter_with_a_lone_surrogate_is_a_field_error(client, admin_user, job):
    Action.objects.sync_with_registry()
    client.force_login(admin_user)
    url = reverse("admin:jobs_job_run", args=[job.pk])
    response = client.post(url, {"note": "ok", "payload": json.dumps({"k": "\ud800"})})
    assert response.status_code == 200
    assert f"k: {SURROGATE_RULE}" in response.content.decode()
    assert not JobResult.objects.exists()



@pytest.mark.parametrize(("content", "reason"), [
    (b'jobs:\n  - identifier: x\n    description: "a\\ud800b"\n', f"jobs[0].description: {SURROGATE_RULE}"),
    (b'jobs:\n  - identifier: x\n    name: "a\\0b"\n', f"jobs[0].name: {NUL_RULE}"),
    (b"jobs:\n  - identifier: a\x00b\n", "not valid YAML: unacceptable character #x0000"),
    (b"jobs:\n  - identifier: caf\xe9\n", "The file is not UTF-8 text."),
])
def test_the_admin_import_form_refuses_bad_text_naming_where(client, admin_user, content, reason):
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_job_import"), {"file": SimpleUploadedFile("x.yaml", content)})
    assert response.status_code == 200
    assert reason in response.content.decode()
    assert not Job.objects.exists()
