"""Every state-changing request is refused without a CSRF token, and changes nothing.

Each case is sent twice by a client that enforces CSRF checks, as a browser would be: without the
token (403, nothing changed), then with it (the change happens), which shows that the refusal was
the CSRF check and not a permission. The JSON API checks CSRF for session authentication only:
with token authentication (no cookie a third-party page could ride on) it needs none.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from results.models import JobResult, Status
from tests.test_access_matrix import SCOPES, World, admin_form_data, build_world, fingerprint

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


@dataclass(frozen=True)
class Case:
    label: str
    role: str
    path: Callable[[World], str]
    body: Callable[[World], dict]
    changes: set[tuple[str, str]]  # what the request changes once it is let through
    api: bool = False


def job_form(w: World) -> dict:
    return admin_form_data(w, reverse("admin:jobs_job_change", args=[w.jobs["own"].pk]), name="Renamed")


def add_form(w: World) -> dict:
    return admin_form_data(w, reverse("admin:jobs_job_add"), identifier="added", name="Added",
                           domain=w.domains["own"].pk)


def password_form(w: World) -> dict:
    return {"old_password": "pw", "new_password1": "An0ther-Secret!", "new_password2": "An0ther-Secret!"}


CASES = [
    Case("admin-job-change", "dadmin", lambda w: reverse("admin:jobs_job_change", args=[w.jobs["own"].pk]),
         job_form, {("job", "own")}),
    Case("admin-job-add", "dadmin", lambda w: reverse("admin:jobs_job_add"), add_form, {("jobs", "-")}),
    Case("admin-job-delete", "dadmin", lambda w: reverse("admin:jobs_job_delete", args=[w.spares["own"].pk]),
         lambda w: {"post": "yes"}, {("spare", "own")}),
    Case("admin-job-run", "operator", lambda w: reverse("admin:jobs_job_run", args=[w.jobs["own"].pk]),
         lambda w: {}, {("results", "own")}),
    Case("admin-bulk-run_now", "superuser", lambda w: reverse("admin:jobs_job_changelist"),
         lambda w: {"action": "run_now", "index": 0, "_selected_action": [w.jobs[s].pk for s in SCOPES]},
         {("results", s) for s in SCOPES}),
    Case("admin-bulk-delete", "dadmin", lambda w: reverse("admin:jobs_job_changelist"),
         lambda w: {"action": "delete_selected", "index": 0, "post": "yes", "_selected_action": [w.spares["own"].pk]},
         {("spare", "own")}),
    Case("admin-result-kill", "operator", lambda w: reverse("admin:results_jobresult_kill", args=[w.live["own"].pk]),
         lambda w: {}, {("live", "own")}),
    Case("admin-result-retry", "operator",
         lambda w: reverse("admin:results_jobresult_retry", args=[w.done["own"].pk]), lambda w: {},
         {("results", "own")}),
    Case("admin-result-delete", "superuser",
         lambda w: reverse("admin:results_jobresult_delete", args=[w.done["own"].pk]), lambda w: {"post": "yes"},
         {("done", "own"), ("results", "own")}),
    Case("admin-domain-change", "superuser", lambda w: reverse("admin:jobs_domain_change", args=[w.domains["own"].pk]),
         lambda w: admin_form_data(w, reverse("admin:jobs_domain_change", args=[w.domains["own"].pk]),
                                   name="Renamed"), {("domain", "own")}),
    Case("admin-template-change", "superuser",
         lambda w: reverse("admin:jobs_filtertemplate_change", args=[w.templates["own"].pk]),
         lambda w: admin_form_data(w, reverse("admin:jobs_filtertemplate_change", args=[w.templates["own"].pk]),
                                   name="renamed"), {("template", "own")}),
    Case("admin-password-change", "dadmin", lambda w: reverse("admin:password_change"), password_form,
         {("users", "-")}),
    Case("admin-user-add", "superuser", lambda w: reverse("admin:auth_user_add"),
         lambda w: {"username": "mallory", "password1": "An0ther-Secret!", "password2": "An0ther-Secret!",
                    "usable_password": "true"}, {("users", "-")}),
    Case("api-run", "operator", lambda w: reverse("api:job-run", args=[w.jobs["own"].identifier]),
         lambda w: {"parameters": {}}, {("results", "own")}, api=True),
    Case("api-kill", "operator", lambda w: reverse("api:result-kill", args=[w.live["own"].pk]), lambda w: {},
         {("live", "own")}, api=True),
]


def csrf_client(world: World, role: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users[role])
    return client


def changes(before: dict, after: dict) -> set:
    return {key for key in before if before[key] != after[key]}


def send(client: Client, case: Case, world: World, token: str | None):
    path, body = case.path(world), case.body(world)
    if case.api:
        headers = {"HTTP_X_CSRFTOKEN": token} if token else {}
        return client.post(path, json.dumps(body), content_type="application/json", **headers)
    if token:
        body = {**body, "csrfmiddlewaretoken": token}
    return client.post(path, body)


@pytest.mark.parametrize("case", CASES, ids=[case.label for case in CASES])
def test_post_without_csrf_token_is_refused_and_changes_nothing(world, case):
    client = csrf_client(world, case.role)
    before = fingerprint(world)
    response = send(client, case, world, token=None)
    assert response.status_code == 403
    assert "CSRF" in response.content.decode()
    assert changes(before, fingerprint(world)) == set()


@pytest.mark.parametrize("case", CASES, ids=[case.label for case in CASES])
def test_the_same_post_with_the_token_goes_through(world, case):
    client = csrf_client(world, case.role)
    client.get(reverse("admin:index"))  # the page sets the CSRF cookie, as a browser visit would
    token = client.cookies["csrftoken"].value
    before = fingerprint(world)
    response = send(client, case, world, token=token)
    assert response.status_code in (200, 202, 302), response.content.decode()[:1000]
    assert changes(before, fingerprint(world)) == case.changes


def test_csrf_token_of_another_session_is_refused(world):
    """A token from the attacker's own session does not unlock the victim's."""
    attacker = Client(enforce_csrf_checks=True)
    attacker.get(reverse("admin:login"))
    foreign = attacker.cookies["csrftoken"].value
    client = csrf_client(world, "operator")
    client.get(reverse("admin:index"))
    response = client.post(reverse("admin:results_jobresult_kill", args=[world.live["own"].pk]),
                           {"csrfmiddlewaretoken": foreign})
    assert response.status_code == 403
    assert JobResult.objects.get(pk=world.live["own"].pk).status == Status.PENDING


def test_logout_without_csrf_token_keeps_the_session(world):
    client = csrf_client(world, "operator")
    assert client.post(reverse("admin:logout")).status_code == 403
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize("endpoint", ["run", "kill"])
def test_api_with_token_authentication_needs_no_csrf_token(world, endpoint):
    token = Token.objects.create(user=world.users["operator"])
    client = Client(enforce_csrf_checks=True)
    if endpoint == "run":
        path, body = reverse("api:job-run", args=[world.jobs["own"].identifier]), {"parameters": {}}
    else:
        path, body = reverse("api:result-kill", args=[world.live["own"].pk]), {}
    before = fingerprint(world)
    response = client.post(path, json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 202, response.content
    expected = {("results", "own")} if endpoint == "run" else {("live", "own")}
    assert changes(before, fingerprint(world)) == expected
