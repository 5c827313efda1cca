"""The access matrix: every URL of the project, every role, own, other-domain and global objects.

The rule (issue "Domains and least privilege"): a superuser (system administrator) sees and does
everything; a domain ``admin`` defines, edits, runs and kills the jobs of their domains; an
``operator`` sees them and may Run and Kill; a ``viewer`` only reads. Objects outside the caller's
domains (global jobs included) answer 404, never revealing that they exist; a visible object the
role may not act on answers 403 (in the admin: a read-only page, and a refused POST).

``test_every_url_pattern_is_in_the_matrix`` walks the URL resolver: a new URL fails it until a
probe for it is added to ``PROBES``. Every probe also checks that its URL resolves to the pattern
it claims to cover, and that the request changed exactly what the matrix expects (nothing else).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from jobs import versions
from jobs.maintenance import MaintenanceWindow, SchedulePause
from jobs.models import Action, Domain, DomainMembership, FilterTemplate, Job, Secret
from results.backfill import Backfill
from results.models import JobResult, Status
from results.runat import PlannedRun
from tests.helpers import make_job

pytestmark = pytest.mark.django_db
User = get_user_model()

ADMIN, OPERATOR, VIEWER = DomainMembership.ADMIN, DomainMembership.OPERATOR, DomainMembership.VIEWER

# --- roles -------------------------------------------------------------------------------------
# "own" is the domain Acme, "other" is Globex, "global" is no domain (a job "by installation").
ROLES = ("anonymous", "nomember", "viewer", "operator", "dadmin", "mixed", "otheradmin", "apiuser", "superuser")
MEMBERSHIPS: dict[str, dict[str, str]] = {
    "viewer": {"own": VIEWER},
    "operator": {"own": OPERATOR},
    "dadmin": {"own": ADMIN},
    "mixed": {"own": ADMIN, "other": VIEWER},  # admin of one domain, viewer of another
    "otheradmin": {"other": ADMIN},
    "apiuser": {"own": OPERATOR},  # not staff: the API only; the admin treats them as anonymous
}
SCOPES = ("own", "other", "global")
DOMAIN_SCOPES = ("own", "other")
NONE = "-"  # a probe that is not about one object


def role_in(role: str, scope: str) -> str | None:
    return MEMBERSHIPS.get(role, {}).get(scope)


def sees(role: str, scope: str) -> bool:
    return role == "superuser" or role_in(role, scope) is not None


def runs(role: str, scope: str) -> bool:
    return role == "superuser" or role_in(role, scope) in (ADMIN, OPERATOR)


def edits(role: str, scope: str) -> bool:
    return role == "superuser" or role_in(role, scope) == ADMIN


def is_member(role: str) -> bool:
    return role == "superuser" or bool(MEMBERSHIPS.get(role))


def superuser(role: str, scope: str = NONE) -> bool:
    return role == "superuser"


# --- expected answers ----------------------------------------------------------------------------
LOGIN = "302 to the login page"
VIEW = "200 read-only"
EDIT = "200 editable"
UNAUTH = "401 or 403"  # DRF: session authentication first, so 403 without a WWW-Authenticate challenge
TO_INDEX = "302 to /admin/"
TO_OPERATIONS = "302 to the operations page"
TO_CHANGE = "302 to the change page"

Expected = int | str
Rule = Callable[[str, str], Expected]


def on_object(ok: Expected, may: Callable[[str, str], bool] = sees, anonymous: Expected = LOGIN) -> Rule:
    """404 when the caller does not see the object, 403 when they see it but may not do this."""

    def rule(role: str, scope: str) -> Expected:
        if role == "anonymous":
            return anonymous
        if not sees(role, scope):
            return 404
        return ok if may(role, scope) else 403

    return rule


def for_members(ok: Expected, anonymous: Expected = LOGIN, outsider: Expected = 403) -> Rule:
    def rule(role: str, scope: str) -> Expected:
        if role == "anonymous":
            return anonymous
        return ok if is_member(role) else outsider

    return rule


def for_superuser(ok: Expected, anonymous: Expected = LOGIN, others: Expected = 403) -> Rule:
    def rule(role: str, scope: str) -> Expected:
        if role == "anonymous":
            return anonymous
        return ok if role == "superuser" else others

    return rule


def landing(role: str, scope: str) -> Expected:
    """``/``: members and system administrators land on the operations page, other staff on the app list."""
    if role == "anonymous":
        return LOGIN
    return TO_OPERATIONS if is_member(role) else TO_INDEX


def for_staff(ok: Expected, anonymous: Expected = LOGIN) -> Rule:
    return lambda role, scope: anonymous if role == "anonymous" else ok


def for_editors(ok: Expected) -> Rule:
    """Pages of a role that may define jobs somewhere (add): 403 for everyone else."""

    def rule(role: str, scope: str) -> Expected:
        if role == "anonymous":
            return LOGIN
        return ok if any(edits(role, s) for s in DOMAIN_SCOPES) else 403

    return rule


def change_page(role: str, scope: str) -> Expected:
    answer = on_object(VIEW)(role, scope)
    return EDIT if answer == VIEW and edits(role, scope) else answer


def domain_change_page(role: str, scope: str) -> Expected:
    answer = on_object(VIEW)(role, scope)
    return EDIT if answer == VIEW and role == "superuser" else answer


# --- the world every probe runs in ----------------------------------------------------------------
@dataclass
class World:
    users: dict[str, object]
    domains: dict[str, Domain | None]
    jobs: dict[str, Job]
    spares: dict[str, Job]  # jobs with no results (deleting them needs no permission on results)
    live: dict[str, JobResult]  # pending: can be killed
    done: dict[str, JobResult]  # finished: can be retried
    templates: dict[str, FilterTemplate]
    action: Action
    group: Group
    forms: dict = field(default_factory=dict)  # admin form bodies, built once
    secrets: dict[str, Secret] = field(default_factory=dict)
    windows: dict[str, MaintenanceWindow] = field(default_factory=dict)
    planned: dict[str, PlannedRun] = field(default_factory=dict)  # pending: can be cancelled
    backfills: dict[str, Backfill] = field(default_factory=dict)  # open: can be killed


def build_world() -> World:
    Action.objects.sync_with_registry()
    domains = {"own": Domain.objects.create(name="Acme Corp", slug="acme"),
               "other": Domain.objects.create(name="Globex Inc", slug="globex"), "global": None}
    slug = {"own": "acme", "other": "globex", "global": "global"}
    jobs, spares, live, done, templates = {}, {}, {}, {}, {}
    for scope in SCOPES:
        jobs[scope] = make_job(f"{slug[scope]}-job", (10, "core.sleep", {"seconds": 0}), domain=domains[scope],
                               concurrency=Job.PARALLEL, name=f"{slug[scope].title()} job")
        spares[scope] = make_job(f"{slug[scope]}-spare", domain=domains[scope], name=f"{slug[scope].title()} spare")
        live[scope] = JobResult.objects.create(job=jobs[scope], status=Status.PENDING)
        done[scope] = JobResult.objects.create(job=jobs[scope], status=Status.ERROR, message="it failed",
                                               started_at=timezone.now(), finished_at=timezone.now())
        templates[scope] = FilterTemplate.objects.create(name=f"{slug[scope]}-template", domain=domains[scope],
                                                         model="auth.User", definition={},
                                                         domain_path="memberships__domain")
    users = {"anonymous": None,
             "superuser": User.objects.create_superuser("superuser", "root@example.com", "pw")}
    for role in ROLES[1:-1]:
        users[role] = User.objects.create_user(role, f"{role}@example.com", "pw", is_staff=role != "apiuser")
        for scope, membership in MEMBERSHIPS.get(role, {}).items():
            DomainMembership.objects.create(user=users[role], domain=domains[scope], role=membership)
    Token.objects.create(user=users["viewer"])
    group = Group.objects.create(name="Auditors")
    world = World(users, domains, jobs, spares, live, done, templates, Action.objects.get(name="core.sleep"), group)
    for job in jobs.values():  # two versions: restoring version 1 renames the job (the History window's probe)
        Job.objects.filter(pk=job.pk).update(name=f"{job.name} (version 1)")
        versions.record(Job.objects.get(pk=job.pk))
        Job.objects.filter(pk=job.pk).update(name=job.name)
        versions.record(job)
    for scope in SCOPES:
        world.secrets[scope] = Secret(name=f"{slug[scope]}_token", domain=domains[scope])
        world.secrets[scope].set_value(f"{slug[scope]}-secret-value")
        world.secrets[scope].save()
        later = timezone.now() + timezone.timedelta(days=30)
        world.windows[scope] = MaintenanceWindow.objects.create(
            name=f"{slug[scope]}-window", domain=domains[scope], kind=MaintenanceWindow.ONE_OFF, starts_at=later,
            ends_at=later + timezone.timedelta(days=1))
        world.planned[scope] = PlannedRun.objects.create(job=jobs[scope], run_at=later)
        world.backfills[scope] = Backfill.objects.create(job=jobs[scope], parameter="day", first_day="2026-01-01",
                                                         last_day="2026-01-02")
    return world


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """Built once for the module inside a transaction rolled back at its end; each test's own
    transaction (a savepoint inside it) undoes what the test did."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            world = build_world()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield world
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def world(shared_world, db) -> World:
    return shared_world


def client_for(world: World, role: str) -> Client:
    client = Client()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    return client


def fingerprint(world: World) -> dict[tuple[str, str], object]:
    """Everything a probe could change, by (what, scope), in a few queries."""
    jobs = {row["pk"]: row for row in Job.objects.values("pk", "identifier", "name", "domain_id")}
    results = {row["pk"]: row for row in JobResult.objects.values("pk", "job_id", "status", "kill_requested_at",
                                                                  "acknowledged_at")}
    templates = dict(FilterTemplate.objects.values_list("pk", "name"))
    stored_secrets = {pk: (name, token) for pk, name, token in Secret.objects.values_list("pk", "name", "token")}
    domains = dict(Domain.objects.values_list("pk", "name"))
    state: dict[tuple[str, str], object] = {}
    for scope in SCOPES:
        job = jobs.get(world.jobs[scope].pk)
        state["job", scope] = job and (job["name"], job["domain_id"])
        state["results", scope] = sum(1 for row in results.values() if row["job_id"] == world.jobs[scope].pk)
        live = results.get(world.live[scope].pk)
        state["live", scope] = live and (live["status"], live["kill_requested_at"] is not None)
        state["done", scope] = world.done[scope].pk in results
        done = results.get(world.done[scope].pk)
        state["acknowledged", scope] = done is not None and done["acknowledged_at"] is not None
        state["spare", scope] = world.spares[scope].pk in jobs
        state["template", scope] = templates.get(world.templates[scope].pk)
        state["secret", scope] = stored_secrets.get(world.secrets[scope].pk)
    windows = dict(MaintenanceWindow.objects.values_list("pk", "name"))
    planned = dict(PlannedRun.objects.values_list("pk", "state"))
    backfills = {pk: killed is not None for pk, killed in Backfill.objects.values_list("pk", "killed_at")}
    for scope in SCOPES:
        state["window", scope] = windows.get(world.windows[scope].pk)
        state["planned", scope] = planned.get(world.planned[scope].pk)
        state["backfill", scope] = backfills.get(world.backfills[scope].pk)
    state["pause", NONE] = SchedulePause.objects.filter(is_open=True).exists()
    for scope in DOMAIN_SCOPES:
        state["domain", scope] = domains.get(world.domains[scope].pk)
    known = {job.pk for group in (world.jobs, world.spares) for job in group.values()}
    state["jobs", NONE] = sorted(row["identifier"] for pk, row in jobs.items() if pk not in known)
    state["memberships", NONE] = sorted(DomainMembership.objects.values_list("user_id", "domain_id", "role"))
    state["users", NONE] = sorted(User.objects.values_list("username", "is_active", "is_staff", "is_superuser",
                                                           "password"))
    return state


# --- POST bodies ------------------------------------------------------------------------------------
def form_values(form: forms.BaseForm) -> dict:
    """What a browser sends for ``form`` as rendered (checkboxes: "on" or absent)."""
    data = {}
    for bound in form:
        value = bound.value()
        if isinstance(bound.field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[bound.html_name] = ["" if item is None else item for item in value]
        else:
            data[bound.html_name] = "" if value is None else value
        if bound.field.show_hidden_initial:
            data[bound.html_initial_name] = data.get(bound.html_name, "")
    return data


def admin_form_data(world: World, path: str, **changes) -> dict:
    """The POST a superuser's browser would send for the admin form at ``path``, with ``changes``."""
    if path not in world.forms:
        world.forms[path] = rendered_form_data(world, path)
    return {**world.forms[path], **changes}


def rendered_form_data(world: World, path: str) -> dict:
    client = client_for(world, "superuser")
    response = client.get(path)
    assert response.status_code == 200, f"{path}: {response.status_code}"
    data = form_values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        data.update(form_values(inline.formset.management_form))
        for form in inline.formset.forms:
            data.update(form_values(form))
    return data


# --- probes -------------------------------------------------------------------------------------------
Path = Callable[[World, str], str]
Body = Callable[[World, str], dict | list | None]
Listed = Callable[[World, object], set[str]]


@dataclass(frozen=True)
class Probe:
    label: str
    key: str  # the URL pattern's namespaced name, or the route of an unnamed pattern
    method: str
    path: Path
    expect: Rule
    scopes: tuple[str, ...] = (NONE,)
    body: Body | None = None
    api: bool = False
    touches: str | None = None  # the fingerprint entry a successful request changes
    success: Expected | None = None  # the answer meaning "done"
    changes: Callable[[str, str, Expected], set[tuple[str, str]]] | None = None
    listed: Listed | None = None  # the scopes a list shows
    listed_scopes: tuple[str, ...] = SCOPES
    redirect: Path | None = None  # where TO_CHANGE points

    def expected_changes(self, role: str, scope: str, expected: Expected) -> set[tuple[str, str]]:
        if self.changes is not None:
            return self.changes(role, scope, expected)
        if self.touches is not None and expected == self.success:
            return {(self.touches, scope)}
        return set()


def admin_url(name: str, *args) -> Callable[[World, str], str]:
    return lambda world, scope: reverse(f"admin:{name}", args=args)


def job_url(name: str, spare: bool = False) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[(w.spares if spare else w.jobs)[s].pk])


def live_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.live[s].pk])


def done_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.done[s].pk])


def done_url_of(name: str) -> Path:
    return lambda w, s: reverse(name, args=[w.done[s].pk])


def operations_scopes(world: World, state: dict) -> set[str]:
    """The scopes of the jobs whose runs the operations page lists (running and to acknowledge)."""
    ids = dict(Job.objects.values_list("identifier", "pk"))
    return {scope_of_job(world, ids[row["job"]]) for row in state["running"] + state["attention"]}


def domain_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.domains[s].pk])


def template_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.templates[s].pk])


def secret_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.secrets[s].pk])


def scope_of_secret(world: World, secret: Secret) -> str:
    return next(scope for scope in SCOPES if world.secrets[scope].pk == secret.pk)


def user_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.users["viewer"].pk])


def group_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.group.pk])


def action_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.action.pk])


def scope_of_job(world: World, job_id: int) -> str:
    for scope in SCOPES:
        if job_id in (world.jobs[scope].pk, world.spares[scope].pk):
            return scope
    raise AssertionError(f"job {job_id} is not in the world")


def scope_of_domain(world: World, domain_id: int) -> str:
    return next(scope for scope in DOMAIN_SCOPES if world.domains[scope].pk == domain_id)


def changelist_scopes(of: Callable[[World, object], str]) -> Listed:
    return lambda world, response: {of(world, obj) for obj in response.context["cl"].result_list}


def autocomplete_scopes(of: Callable[[World, int], str]) -> Listed:
    return lambda world, response: {of(world, int(item["id"])) for item in response.json()["results"]}


def api_job_scopes(world: World, response) -> set[str]:
    ids = dict(Job.objects.values_list("identifier", "pk"))
    return {scope_of_job(world, ids[item["identifier"]]) for item in response.json()}


def autocomplete(app_label: str, model_name: str, field_name: str) -> Path:
    return lambda w, s: (f"{reverse('admin:autocomplete')}?app_label={app_label}&model_name={model_name}"
                         f"&field_name={field_name}")


def job_body(name: str = "Renamed by the matrix") -> Body:
    return lambda w, s: admin_form_data(w, reverse("admin:jobs_job_change", args=[w.jobs[s].pk]), name=name)


def move_body(w: World, s: str) -> dict:
    return admin_form_data(w, reverse("admin:jobs_job_change", args=[w.jobs["own"].pk]),
                           domain=w.domains["other"].pk)


def add_body(w: World, s: str) -> dict:
    domain = w.domains[s]
    return admin_form_data(w, reverse("admin:jobs_job_add"), identifier="added-by-matrix", name="Added",
                           domain=domain.pk if domain else "")


def add_answer(role: str, scope: str) -> Expected:
    if role == "anonymous":
        return LOGIN
    if not any(edits(role, s) for s in DOMAIN_SCOPES):
        return 403
    allowed = role == "superuser" if scope == "global" else edits(role, scope)
    return 302 if allowed else 200  # 200: the form again, with the domain refused


def move_answer(role: str, scope: str) -> Expected:
    answer = on_object(302, edits)(role, "own")
    if answer == 302 and not edits(role, "other"):
        return 200  # the form again: the target domain is not one the caller may define jobs in
    return answer


def selection(kind: str) -> Body:
    def body(w: World, s: str) -> dict:
        jobs = w.jobs if kind == "run_now" else w.spares
        return {"action": kind, "index": 0, "_selected_action": [jobs[scope].pk for scope in SCOPES],
                **({"post": "yes"} if kind == "delete_selected" else {})}

    return body


def bulk_run_changes(role: str, scope: str, expected: Expected) -> set[tuple[str, str]]:
    return {("results", s) for s in SCOPES if runs(role, s)} if expected == 302 else set()


def bulk_delete_answer(role: str, scope: str) -> Expected:
    answer = for_members(302)(role, scope)
    if answer != 302:
        return answer
    visible = [s for s in SCOPES if sees(role, s)]
    if not any(edits(role, s) for s in DOMAIN_SCOPES):
        return 302  # the action is not offered: "No action selected", nothing deleted
    return 302 if all(edits(role, s) for s in visible) else 403  # one undeletable job refuses the lot


def bulk_delete_changes(role: str, scope: str, expected: Expected) -> set[tuple[str, str]]:
    if expected != 302:
        return set()
    return {("spare", s) for s in SCOPES if sees(role, s) and edits(role, s)}


def result_selection(action: str, of: str) -> Body:
    """A confirmed bulk action on the result list over the world's results of every scope."""
    return lambda w, s: {"action": action, "index": 0, "post": "yes",
                         "_selected_action": [getattr(w, of)[scope].pk for scope in SCOPES]}


def bulk_result_answer(role: str, scope: str) -> Expected:
    """A member who may run nowhere has no action on the result list: the POST just shows the list again."""
    answer = for_members(302)(role, scope)
    return answer if answer != 302 or any(runs(role, s) for s in DOMAIN_SCOPES) else 200


def exported_scopes(world: World, response) -> set[str]:
    """The scopes of the results in a streamed CSV export (the first column is the result id)."""
    lines = b"".join(response.streaming_content).decode().splitlines()[1:]
    jobs = dict(JobResult.objects.filter(pk__in=[int(line.split(",")[0]) for line in lines])
                .values_list("pk", "job_id"))
    return {scope_of_job(world, job_id) for job_id in jobs.values()}
def sees_window(role: str, scope: str) -> bool:
    """Members read the global windows too (they apply to their jobs); a domain's windows are its members'."""
    return sees(role, scope) or (scope == "global" and is_member(role))


def on_window(ok: Expected, may: Callable[[str, str], bool] = sees_window) -> Rule:
    def rule(role: str, scope: str) -> Expected:
        if role == "anonymous":
            return LOGIN
        if not sees_window(role, scope):
            return 404
        return ok if may(role, scope) else 403

    return rule


def window_change_page(role: str, scope: str) -> Expected:
    answer = on_window(VIEW)(role, scope)
    return EDIT if answer == VIEW and edits(role, scope) else answer


def window_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.windows[s].pk])


def planned_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.planned[s].pk])


def backfill_url(name: str) -> Path:
    return lambda w, s: reverse(f"admin:{name}", args=[w.backfills[s].pk])


def window_body(w: World, s: str) -> dict:
    window = w.windows[s]
    return {"name": "Renamed window", "domain": window.domain_id or "", "active": "on", "kind": window.kind,
            "starts_at_0": f"{window.starts_at:%Y-%m-%d}", "starts_at_1": f"{window.starts_at:%H:%M:%S}",
            "ends_at_0": f"{window.ends_at:%Y-%m-%d}", "ends_at_1": f"{window.ends_at:%H:%M:%S}",
            "timezone": window.timezone, "note": "", "cron": "", "duration_minutes": ""}


def app_index(app_label: str) -> Path:
    return lambda w, s: reverse("admin:app_list", args=[app_label])


def _post_only(role: str, scope: str) -> Expected:
    return UNAUTH if role == "anonymous" else 405


def _api_list(role: str, scope: str) -> Expected:
    return UNAUTH if role == "anonymous" else 200


def _login_page(role: str, scope: str) -> Expected:
    return 200 if role == "anonymous" else TO_INDEX


def _logout_get(role: str, scope: str) -> Expected:
    return TO_INDEX if role == "anonymous" else 405


def _app_index(ok_for: Callable[[str], bool]) -> Rule:
    return lambda role, scope: LOGIN if role == "anonymous" else (200 if ok_for(role) else 404)


PROBES: list[Probe] = [
    # --- the JSON API ---------------------------------------------------------------------------------
    Probe("api-jobs", "api:jobs", "GET", lambda w, s: reverse("api:jobs"), _api_list, api=True,
          listed=api_job_scopes),
    Probe("api-run", "api:job-run", "POST", lambda w, s: reverse("api:job-run", args=[w.jobs[s].identifier]),
          on_object(202, runs, UNAUTH), SCOPES, body=lambda w, s: {"parameters": {}}, api=True,
          touches="results", success=202),
    Probe("api-run-get", "api:job-run", "GET", lambda w, s: reverse("api:job-run", args=[w.jobs[s].identifier]),
          _post_only, SCOPES, api=True),
    Probe("api-result", "api:result", "GET", lambda w, s: reverse("api:result", args=[w.live[s].pk]),
          on_object(200, anonymous=UNAUTH), SCOPES, api=True),
    Probe("api-kill", "api:result-kill", "POST", lambda w, s: reverse("api:result-kill", args=[w.live[s].pk]),
          on_object(202, runs, UNAUTH), SCOPES, body=lambda w, s: {}, api=True, touches="live", success=202),
    Probe("api-kill-get", "api:result-kill", "GET", lambda w, s: reverse("api:result-kill", args=[w.live[s].pk]),
          _post_only, SCOPES, api=True),
    Probe("api-planned-cancel", "api:planned-cancel", "POST",
          lambda w, s: reverse("api:planned-cancel", args=[w.planned[s].pk]), on_object(200, runs, UNAUTH), SCOPES,
          body=lambda w, s: {}, api=True, touches="planned", success=200),
    Probe("api-backfill", "api:job-backfill", "POST",
          lambda w, s: reverse("api:job-backfill", args=[w.jobs[s].identifier]), on_object(400, runs, UNAUTH), SCOPES,
          body=lambda w, s: {"parameter": "day", "first_day": "2026-01-01", "last_day": "2026-01-02"}, api=True),
    Probe("api-backfill-get", "api:backfill", "GET", lambda w, s: reverse("api:backfill", args=[w.backfills[s].pk]),
          on_object(200, anonymous=UNAUTH), SCOPES, api=True),
    Probe("api-backfill-kill", "api:backfill-kill", "POST",
          lambda w, s: reverse("api:backfill-kill", args=[w.backfills[s].pk]), on_object(202, runs, UNAUTH), SCOPES,
          body=lambda w, s: {}, api=True, touches="backfill", success=202),
    Probe("api-log", "api:result-log", "GET", lambda w, s: reverse("api:result-log", args=[w.done[s].pk]),
          on_object(200, anonymous=UNAUTH), SCOPES, api=True),
    Probe("api-windows", "api:windows", "GET", lambda w, s: reverse("api:windows"), _api_list, api=True),
    Probe("api-window", "api:window", "GET", lambda w, s: reverse("api:window", args=[w.windows[s].pk]),
          lambda role, scope: UNAUTH if role == "anonymous" else on_window(200)(role, scope), SCOPES, api=True),
    Probe("api-pause", "api:schedules-pause", "GET", lambda w, s: reverse("api:schedules-pause"),
          for_members(200, anonymous=UNAUTH), api=True),
    # --- the site root and the admin site's own pages ---------------------------------------------------
    Probe("root", "", "GET", lambda w, s: "/", landing),
    Probe("index", "admin:index", "GET", admin_url("index"), for_staff(200)),
    Probe("login", "admin:login", "GET", admin_url("login"), _login_page),
    Probe("logout-get", "admin:logout", "GET", admin_url("logout"), _logout_get),
    Probe("password-change", "admin:password_change", "GET", admin_url("password_change"), for_staff(200)),
    Probe("password-change-done", "admin:password_change_done", "GET", admin_url("password_change_done"),
          for_staff(200)),
    Probe("jsi18n", "admin:jsi18n", "GET", admin_url("jsi18n"), for_staff(200)),
    Probe("view-on-site-job", "admin:view_on_site", "GET",
          lambda w, s: reverse("admin:view_on_site", args=[ContentType.objects.get_for_model(Job).pk, w.jobs[s].pk]),
          for_staff(404), SCOPES),
    Probe("app-jobs", "admin:app_list", "GET", app_index("jobs"), _app_index(is_member)),
    Probe("app-results", "admin:app_list", "GET", app_index("results"), _app_index(is_member)),
    Probe("app-auth", "admin:app_list", "GET", app_index("auth"), _app_index(lambda role: role == "superuser")),
    Probe("app-authtoken", "admin:app_list", "GET", app_index("authtoken"),
          _app_index(lambda role: role == "superuser")),
    Probe("catch-all", "admin/(?P<url>.*)$", "GET", lambda w, s: "/admin/no-such-page/", for_staff(404)),
    # --- autocomplete: the declared one (memberships' user) and every FK whose target admin has a search ---
    Probe("autocomplete-membership-user", "admin:autocomplete", "GET",
          autocomplete("jobs", "domainmembership", "user"), for_superuser(200)),
    Probe("autocomplete-job-run_as", "admin:autocomplete", "GET", autocomplete("jobs", "job", "run_as"),
          for_superuser(200)),
    Probe("autocomplete-line-filter_template", "admin:autocomplete", "GET",
          autocomplete("jobs", "jobline", "filter_template"), for_superuser(200)),
    Probe("autocomplete-job-domain", "admin:autocomplete", "GET", autocomplete("jobs", "job", "domain"),
          for_members(200), listed=autocomplete_scopes(scope_of_domain), listed_scopes=DOMAIN_SCOPES),
    Probe("autocomplete-result-job", "admin:autocomplete", "GET", autocomplete("results", "jobresult", "job"),
          for_members(200), listed=autocomplete_scopes(scope_of_job)),
    # --- auth, groups, tokens: system administrators only ------------------------------------------------
    Probe("user-list", "admin:auth_user_changelist", "GET", admin_url("auth_user_changelist"), for_superuser(200)),
    Probe("user-add", "admin:auth_user_add", "GET", admin_url("auth_user_add"), for_superuser(200)),
    Probe("user-change", "admin:auth_user_change", "GET", user_url("auth_user_change"), for_superuser(EDIT)),
    Probe("user-history", "admin:auth_user_history", "GET", user_url("auth_user_history"), for_superuser(200)),
    Probe("user-delete", "admin:auth_user_delete", "GET", user_url("auth_user_delete"), for_superuser(200)),
    Probe("user-password", "admin:auth_user_password_change", "GET", user_url("auth_user_password_change"),
          for_superuser(200)),
    Probe("user-redirect", "admin/auth/user/<path:object_id>/", "GET",
          lambda w, s: f"/admin/auth/user/{w.users['viewer'].pk}/", for_staff(TO_CHANGE),
          redirect=user_url("auth_user_change")),
    Probe("group-list", "admin:auth_group_changelist", "GET", admin_url("auth_group_changelist"),
          for_superuser(200)),
    Probe("group-add", "admin:auth_group_add", "GET", admin_url("auth_group_add"), for_superuser(200)),
    Probe("group-change", "admin:auth_group_change", "GET", group_url("auth_group_change"), for_superuser(EDIT)),
    Probe("group-history", "admin:auth_group_history", "GET", group_url("auth_group_history"), for_superuser(200)),
    Probe("group-delete", "admin:auth_group_delete", "GET", group_url("auth_group_delete"), for_superuser(200)),
    Probe("group-redirect", "admin/auth/group/<path:object_id>/", "GET",
          lambda w, s: f"/admin/auth/group/{w.group.pk}/", for_staff(TO_CHANGE),
          redirect=group_url("auth_group_change")),
    Probe("token-list", "admin:authtoken_tokenproxy_changelist", "GET", admin_url("authtoken_tokenproxy_changelist"),
          for_superuser(200)),
    Probe("token-add", "admin:authtoken_tokenproxy_add", "GET", admin_url("authtoken_tokenproxy_add"),
          for_superuser(200)),
    Probe("token-change", "admin:authtoken_tokenproxy_change", "GET", user_url("authtoken_tokenproxy_change"),
          for_superuser(EDIT)),
    Probe("token-history", "admin:authtoken_tokenproxy_history", "GET", user_url("authtoken_tokenproxy_history"),
          for_superuser(200)),
    Probe("token-delete", "admin:authtoken_tokenproxy_delete", "GET", user_url("authtoken_tokenproxy_delete"),
          for_superuser(200)),
    Probe("token-redirect", "admin/authtoken/tokenproxy/<path:object_id>/", "GET",
          lambda w, s: f"/admin/authtoken/tokenproxy/{w.users['viewer'].pk}/", for_staff(TO_CHANGE),
          redirect=user_url("authtoken_tokenproxy_change")),
    # --- domains (memberships are edited inline on the domain page, by system administrators) --------------
    Probe("domain-list", "admin:jobs_domain_changelist", "GET", admin_url("jobs_domain_changelist"),
          for_members(200), listed=changelist_scopes(lambda w, d: scope_of_domain(w, d.pk)),
          listed_scopes=DOMAIN_SCOPES),
    Probe("domain-add", "admin:jobs_domain_add", "GET", admin_url("jobs_domain_add"), for_superuser(200)),
    Probe("domain-change", "admin:jobs_domain_change", "GET", domain_url("jobs_domain_change"), domain_change_page,
          DOMAIN_SCOPES),
    Probe("domain-change-post", "admin:jobs_domain_change", "POST", domain_url("jobs_domain_change"),
          on_object(302, superuser), DOMAIN_SCOPES,
          body=lambda w, s: admin_form_data(w, reverse("admin:jobs_domain_change", args=[w.domains[s].pk]),
                                            name="Renamed domain"),
          touches="domain", success=302),
    Probe("domain-delete", "admin:jobs_domain_delete", "GET", domain_url("jobs_domain_delete"),
          on_object(200, superuser), DOMAIN_SCOPES),
    Probe("domain-history", "admin:jobs_domain_history", "GET", domain_url("jobs_domain_history"), on_object(200),
          DOMAIN_SCOPES),
    Probe("domain-redirect", "admin/jobs/domain/<path:object_id>/", "GET",
          lambda w, s: f"/admin/jobs/domain/{w.domains[s].pk}/", for_staff(TO_CHANGE), DOMAIN_SCOPES,
          redirect=domain_url("jobs_domain_change")),
    # --- actions: read-only rows kept in sync with the code ------------------------------------------------
    Probe("action-list", "admin:jobs_action_changelist", "GET", admin_url("jobs_action_changelist"),
          for_members(200)),
    Probe("action-add", "admin:jobs_action_add", "GET", admin_url("jobs_action_add"), for_staff(403)),
    Probe("action-change", "admin:jobs_action_change", "GET", action_url("jobs_action_change"), for_members(VIEW)),
    Probe("action-change-post", "admin:jobs_action_change", "POST", action_url("jobs_action_change"),
          for_staff(403), body=lambda w, s: {"name": "core.renamed", "label": "Renamed"}),
    Probe("action-delete", "admin:jobs_action_delete", "GET", action_url("jobs_action_delete"), for_staff(403)),
    Probe("action-history", "admin:jobs_action_history", "GET", action_url("jobs_action_history"),
          for_members(200)),
    Probe("action-redirect", "admin/jobs/action/<path:object_id>/", "GET",
          lambda w, s: f"/admin/jobs/action/{w.action.pk}/", for_staff(TO_CHANGE),
          redirect=action_url("jobs_action_change")),
    # --- filter templates: system administrators only --------------------------------------------------------
    Probe("template-list", "admin:jobs_filtertemplate_changelist", "GET", admin_url("jobs_filtertemplate_changelist"),
          for_superuser(200)),
    Probe("template-add", "admin:jobs_filtertemplate_add", "GET", admin_url("jobs_filtertemplate_add"),
          for_superuser(200)),
    Probe("template-change", "admin:jobs_filtertemplate_change", "GET", template_url("jobs_filtertemplate_change"),
          for_superuser(EDIT), SCOPES),
    Probe("template-change-post", "admin:jobs_filtertemplate_change", "POST",
          template_url("jobs_filtertemplate_change"), for_superuser(302), SCOPES,
          body=lambda w, s: admin_form_data(w, reverse("admin:jobs_filtertemplate_change",
                                                       args=[w.templates[s].pk]), name=f"renamed-{s}"),
          touches="template", success=302),
    Probe("template-delete", "admin:jobs_filtertemplate_delete", "GET", template_url("jobs_filtertemplate_delete"),
          for_superuser(200), SCOPES),
    Probe("template-history", "admin:jobs_filtertemplate_history", "GET",
          template_url("jobs_filtertemplate_history"), for_superuser(200), SCOPES),
    Probe("template-redirect", "admin/jobs/filtertemplate/<path:object_id>/", "GET",
          lambda w, s: f"/admin/jobs/filtertemplate/{w.templates[s].pk}/", for_staff(TO_CHANGE), SCOPES,
          redirect=template_url("jobs_filtertemplate_change")),
    # --- secrets: members see the names of their domains' ones; domain administrators set them -----------------
    Probe("secret-list", "admin:jobs_secret_changelist", "GET", admin_url("jobs_secret_changelist"),
          for_members(200), listed=changelist_scopes(scope_of_secret)),
    Probe("secret-add", "admin:jobs_secret_add", "GET", admin_url("jobs_secret_add"), for_editors(200)),
    Probe("secret-change", "admin:jobs_secret_change", "GET", secret_url("jobs_secret_change"), change_page, SCOPES),
    Probe("secret-change-post", "admin:jobs_secret_change", "POST", secret_url("jobs_secret_change"),
          on_object(302, edits), SCOPES,
          body=lambda w, s: admin_form_data(w, reverse("admin:jobs_secret_change", args=[w.secrets[s].pk]),
                                            value="changed by the matrix"),
          touches="secret", success=302),
    Probe("secret-delete", "admin:jobs_secret_delete", "GET", secret_url("jobs_secret_delete"),
          on_object(200, edits), SCOPES),
    Probe("secret-history", "admin:jobs_secret_history", "GET", secret_url("jobs_secret_history"), on_object(200),
          SCOPES),
    Probe("secret-redirect", "admin/jobs/secret/<path:object_id>/", "GET",
          lambda w, s: f"/admin/jobs/secret/{w.secrets[s].pk}/", for_staff(TO_CHANGE), SCOPES,
          redirect=secret_url("jobs_secret_change")),
    # --- jobs --------------------------------------------------------------------------------------------------
    # --- maintenance windows (members read the global ones) and the pause switch (system administrators) -------
    Probe("window-list", "admin:jobs_maintenancewindow_changelist", "GET",
          admin_url("jobs_maintenancewindow_changelist"), for_members(200)),
    Probe("window-add", "admin:jobs_maintenancewindow_add", "GET", admin_url("jobs_maintenancewindow_add"),
          for_editors(200)),
    Probe("window-change", "admin:jobs_maintenancewindow_change", "GET", window_url("jobs_maintenancewindow_change"),
          window_change_page, SCOPES),
    Probe("window-change-post", "admin:jobs_maintenancewindow_change", "POST",
          window_url("jobs_maintenancewindow_change"), on_window(302, edits), SCOPES, body=window_body,
          touches="window", success=302),
    Probe("window-delete", "admin:jobs_maintenancewindow_delete", "GET", window_url("jobs_maintenancewindow_delete"),
          on_window(200, edits), SCOPES),
    Probe("window-history", "admin:jobs_maintenancewindow_history", "GET",
          window_url("jobs_maintenancewindow_history"), on_window(200), SCOPES),
    Probe("window-redirect", "admin/jobs/maintenancewindow/<path:object_id>/", "GET",
          lambda w, s: f"/admin/jobs/maintenancewindow/{w.windows[s].pk}/", for_staff(TO_CHANGE), SCOPES,
          redirect=window_url("jobs_maintenancewindow_change")),
    Probe("pause", "admin:jobs_maintenancewindow_pause", "GET", admin_url("jobs_maintenancewindow_pause"),
          for_superuser(200)),
    Probe("pause-post", "admin:jobs_maintenancewindow_pause", "POST", admin_url("jobs_maintenancewindow_pause"),
          for_superuser(302), body=lambda w, s: {"reason": "paused by the matrix"}, touches="pause", success=302),
    Probe("job-list", "admin:jobs_job_changelist", "GET", admin_url("jobs_job_changelist"), for_members(200),
          listed=changelist_scopes(lambda w, job: scope_of_job(w, job.pk))),
    Probe("job-import", "admin:jobs_job_import", "GET", lambda w, s: "/admin/jobs/job/import/", for_superuser(200)),
    Probe("job-import-post", "admin:jobs_job_import", "POST", lambda w, s: "/admin/jobs/job/import/",
          for_superuser(200), body=lambda w, s: {}),
    Probe("job-import-apply", "admin:jobs_job_import", "POST", lambda w, s: "/admin/jobs/job/import/",
          for_superuser(302), body=lambda w, s: {"apply": "Apply", "token": "not-the-previewed-one"}),
    Probe("job-bulk-run_now", "admin:jobs_job_changelist", "POST", admin_url("jobs_job_changelist"),
          for_members(302), body=selection("run_now"), changes=bulk_run_changes),
    Probe("job-bulk-delete", "admin:jobs_job_changelist", "POST", admin_url("jobs_job_changelist"),
          bulk_delete_answer, body=selection("delete_selected"), changes=bulk_delete_changes),
    Probe("job-add", "admin:jobs_job_add", "GET", admin_url("jobs_job_add"), for_editors(200)),
    Probe("job-add-post", "admin:jobs_job_add", "POST", admin_url("jobs_job_add"), add_answer, SCOPES,
          body=add_body, changes=lambda role, scope, answer: {("jobs", NONE)} if answer == 302 else set()),
    Probe("job-change", "admin:jobs_job_change", "GET", job_url("jobs_job_change"), change_page, SCOPES),
    Probe("job-change-post", "admin:jobs_job_change", "POST", job_url("jobs_job_change"), on_object(302, edits),
          SCOPES, body=job_body(), touches="job", success=302),
    Probe("job-move-to-other-domain", "admin:jobs_job_change", "POST", job_url("jobs_job_change"), move_answer,
          ("own",), body=move_body, touches="job", success=302),
    Probe("job-delete", "admin:jobs_job_delete", "GET", job_url("jobs_job_delete", spare=True),
          on_object(200, edits), SCOPES),
    Probe("job-delete-post", "admin:jobs_job_delete", "POST", job_url("jobs_job_delete", spare=True),
          on_object(302, edits), SCOPES, body=lambda w, s: {"post": "yes"}, touches="spare", success=302),
    Probe("job-history", "admin:jobs_job_history", "GET", job_url("jobs_job_history"), on_object(200), SCOPES),
    Probe("job-versions", "admin:jobs_job_versions", "GET", job_url("jobs_job_versions"), on_object(200), SCOPES),
    Probe("job-versions-restore", "admin:jobs_job_versions", "POST", job_url("jobs_job_versions"),
          on_object(302, edits), SCOPES, body=lambda w, s: {"restore": "1"}, touches="job", success=302),
    Probe("job-save-as-new", "admin:jobs_job_change", "POST", job_url("jobs_job_change"), on_object(400), SCOPES,
          body=lambda w, s: {"_saveasnew": "Save as new", "identifier": f"saved-as-new-{s}", "name": "Copy"}),
    Probe("job-copy", "admin:jobs_job_copy", "GET", job_url("jobs_job_copy"), on_object(200, edits), SCOPES),
    Probe("job-copy-post", "admin:jobs_job_copy", "POST", job_url("jobs_job_copy"), on_object(302, edits), SCOPES,
          body=lambda w, s: {"identifier": f"copied-{s}", "name": "Copied"},
          changes=lambda role, scope, answer: {("jobs", NONE)} if answer == 302 else set()),
    Probe("job-bulk-copy", "admin:jobs_job_changelist", "POST", admin_url("jobs_job_changelist"), for_members(302),
          SCOPES, body=lambda w, s: {"action": "copy_job", "index": 0, "_selected_action": [w.jobs[s].pk]}),
    Probe("job-run", "admin:jobs_job_run", "GET", job_url("jobs_job_run"), on_object(200, runs), SCOPES),
    Probe("job-run-post", "admin:jobs_job_run", "POST", job_url("jobs_job_run"), on_object(302, runs), SCOPES,
          body=lambda w, s: {}, touches="results", success=302),
    Probe("job-redirect", "admin/jobs/job/<path:object_id>/", "GET", lambda w, s: f"/admin/jobs/job/{w.jobs[s].pk}/",
          for_staff(TO_CHANGE), SCOPES, redirect=job_url("jobs_job_change")),
    Probe("job-list-live", "admin:jobs_job_live", "GET",
          lambda w, s: reverse("admin:jobs_job_live") + "?ids=" + ",".join(str(w.jobs[x].pk) for x in SCOPES),
          for_members(200), listed=lambda w, response: {scope_of_job(w, int(pk)) for pk in response.json()["jobs"]}),
    # --- results -------------------------------------------------------------------------------------------------
    Probe("result-list", "admin:results_jobresult_changelist", "GET", admin_url("results_jobresult_changelist"),
          for_members(200), listed=changelist_scopes(lambda w, result: scope_of_job(w, result.job_id))),
    Probe("result-add", "admin:results_jobresult_add", "GET", admin_url("results_jobresult_add"), for_staff(403)),
    Probe("result-change", "admin:results_jobresult_change", "GET", live_url("results_jobresult_change"),
          on_object(VIEW), SCOPES),
    Probe("result-change-post", "admin:results_jobresult_change", "POST", live_url("results_jobresult_change"),
          on_object(403), SCOPES, body=lambda w, s: {"message": "edited"}),
    Probe("result-delete", "admin:results_jobresult_delete", "GET", done_url("results_jobresult_delete"),
          on_object(200, superuser), SCOPES),
    Probe("result-delete-post", "admin:results_jobresult_delete", "POST", done_url("results_jobresult_delete"),
          on_object(302, superuser), SCOPES, body=lambda w, s: {"post": "yes"},
          changes=lambda role, scope, answer: {("done", scope), ("results", scope)} if answer == 302 else set()),
    Probe("result-history", "admin:results_jobresult_history", "GET", live_url("results_jobresult_history"),
          on_object(200), SCOPES),
    Probe("result-kill", "admin:results_jobresult_kill", "GET", live_url("results_jobresult_kill"),
          on_object(200, runs), SCOPES),
    Probe("result-kill-post", "admin:results_jobresult_kill", "POST", live_url("results_jobresult_kill"),
          on_object(302, runs), SCOPES, body=lambda w, s: {}, touches="live", success=302),
    Probe("result-retry-get", "admin:results_jobresult_retry", "GET", done_url("results_jobresult_retry"),
          on_object(TO_CHANGE, runs), SCOPES, redirect=done_url("results_jobresult_change")),
    Probe("result-retry-post", "admin:results_jobresult_retry", "POST", done_url("results_jobresult_retry"),
          on_object(302, runs), SCOPES, body=lambda w, s: {}, touches="results", success=302),
    Probe("result-log-download", "admin:results_jobresult_log", "GET", done_url("results_jobresult_log"),
          on_object(200), SCOPES),
    Probe("result-export", "admin:results_jobresult_export", "GET", admin_url("results_jobresult_export"),
          for_members(200), listed=exported_scopes),
    Probe("result-bulk-kill", "admin:results_jobresult_changelist", "POST", admin_url("results_jobresult_changelist"),
          bulk_result_answer, body=result_selection("kill_selected", "live"),
          changes=lambda role, scope, answer: {("live", s) for s in SCOPES if runs(role, s)} if answer == 302
          else set()),
    Probe("result-bulk-retry", "admin:results_jobresult_changelist", "POST", admin_url("results_jobresult_changelist"),
          bulk_result_answer, body=result_selection("retry_selected", "done"), changes=bulk_run_changes),
    # --- planned runs (run at), the calendar, backfills -------------------------------------------------------
    Probe("planned-list", "admin:results_plannedrun_changelist", "GET", admin_url("results_plannedrun_changelist"),
          for_members(200), listed=changelist_scopes(lambda w, planned: scope_of_job(w, planned.job_id))),
    Probe("planned-add", "admin:results_plannedrun_add", "GET", admin_url("results_plannedrun_add"), for_staff(403)),
    Probe("planned-change", "admin:results_plannedrun_change", "GET", planned_url("results_plannedrun_change"),
          on_object(VIEW), SCOPES),
    Probe("planned-delete", "admin:results_plannedrun_delete", "GET", planned_url("results_plannedrun_delete"),
          on_object(200, superuser), SCOPES),
    Probe("planned-history", "admin:results_plannedrun_history", "GET", planned_url("results_plannedrun_history"),
          on_object(200), SCOPES),
    Probe("planned-cancel", "admin:results_plannedrun_cancel", "GET", planned_url("results_plannedrun_cancel"),
          on_object(200, runs), SCOPES),
    Probe("planned-cancel-post", "admin:results_plannedrun_cancel", "POST", planned_url("results_plannedrun_cancel"),
          on_object(302, runs), SCOPES, body=lambda w, s: {}, touches="planned", success=302),
    Probe("planned-redirect", "admin/results/plannedrun/<path:object_id>/", "GET",
          lambda w, s: f"/admin/results/plannedrun/{w.planned[s].pk}/", for_staff(TO_CHANGE), SCOPES,
          redirect=planned_url("results_plannedrun_change")),
    Probe("calendar", "admin:results_plannedrun_calendar", "GET", admin_url("results_plannedrun_calendar"),
          for_members(200)),
    Probe("backfill-list", "admin:results_backfill_changelist", "GET", admin_url("results_backfill_changelist"),
          for_members(200), listed=changelist_scopes(lambda w, backfill: scope_of_job(w, backfill.job_id))),
    Probe("backfill-add", "admin:results_backfill_add", "GET", admin_url("results_backfill_add"), for_staff(403)),
    Probe("backfill-change", "admin:results_backfill_change", "GET", backfill_url("results_backfill_change"),
          on_object(VIEW), SCOPES),
    Probe("backfill-delete", "admin:results_backfill_delete", "GET", backfill_url("results_backfill_delete"),
          on_object(200, superuser), SCOPES),
    Probe("backfill-history", "admin:results_backfill_history", "GET", backfill_url("results_backfill_history"),
          on_object(200), SCOPES),
    Probe("backfill-kill-get", "admin:results_backfill_kill", "GET", backfill_url("results_backfill_kill"),
          on_object(TO_CHANGE, runs), SCOPES, redirect=backfill_url("results_backfill_change")),
    Probe("backfill-kill", "admin:results_backfill_kill", "POST", backfill_url("results_backfill_kill"),
          on_object(302, runs), SCOPES, body=lambda w, s: {}, touches="backfill", success=302),
    Probe("backfill-start", "admin:results_backfill_start", "GET", job_url("results_backfill_start"),
          on_object(200, runs), SCOPES),
    Probe("backfill-redirect", "admin/results/backfill/<path:object_id>/", "GET",
          lambda w, s: f"/admin/results/backfill/{w.backfills[s].pk}/", for_staff(TO_CHANGE), SCOPES,
          redirect=backfill_url("results_backfill_change")),
    Probe("result-redirect", "admin/results/jobresult/<path:object_id>/", "GET",
          lambda w, s: f"/admin/results/jobresult/{w.live[s].pk}/", for_staff(TO_CHANGE), SCOPES,
          redirect=live_url("results_jobresult_change")),
    # --- the operations page: members' runs; Acknowledge is an operator's action, like Kill -------------------
    Probe("operations", "operations:page", "GET", lambda w, s: reverse("operations:page"), for_members(200),
          listed=lambda w, response: operations_scopes(w, response.context["state"])),
    Probe("operations-state", "operations:state", "GET", lambda w, s: reverse("operations:state"), for_members(200),
          listed=lambda w, response: operations_scopes(w, response.json())),
    Probe("operations-acknowledge", "operations:acknowledge", "POST", done_url_of("operations:acknowledge"),
          on_object(302, runs), SCOPES, body=lambda w, s: {}, touches="acknowledged", success=302),
    Probe("operations-acknowledge-get", "operations:acknowledge", "GET", done_url_of("operations:acknowledge"),
          for_staff(405), SCOPES),
]

# Cases the application gets wrong today: (probe label, scope, role) -> the bug. "*" matches any.
BUGS: dict[tuple[str, str, str], str] = {}


def bug_for(label: str, scope: str, role: str) -> str | None:
    for key in ((label, scope, role), (label, "*", role), (label, scope, "*")):
        if key in BUGS:
            return BUGS[key]
    return None


def cases():
    for probe in PROBES:
        for scope in probe.scopes:
            for role in ROLES:
                marks = []
                reason = bug_for(probe.label, scope, role)
                if reason:
                    marks.append(pytest.mark.xfail(reason=f"BUG: {reason}", strict=True))
                case_id = f"{probe.label}-{role}" if scope == NONE else f"{probe.label}-{scope}-{role}"
                yield pytest.param(probe, scope, role, id=case_id, marks=marks)


# --- the coverage check ---------------------------------------------------------------------------------
def url_pattern_keys() -> set[str]:
    """Every URL pattern of the project: ``namespace:name``, or the full route of an unnamed one."""
    keys: set[str] = set()

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = ":".join(part for part in (namespace, pattern.namespace) if part)
                walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                if pattern.name:
                    keys.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)
                else:
                    keys.add(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns, "", "")
    return keys


def test_every_url_pattern_is_in_the_matrix():
    keys = url_pattern_keys()
    # the walk reaches into the admin site (its own views, each ModelAdmin's, their extra views) and the API
    assert {"admin:index", "admin:autocomplete", "admin:jobs_job_run", "admin:results_jobresult_kill",
            "admin/(?P<url>.*)$", "api:result-log", ""} <= keys, sorted(keys)
    covered = {probe.key for probe in PROBES}
    missing = sorted(keys - covered)
    assert not missing, f"URL patterns the access matrix does not cover (add a Probe for each): {missing}"
    assert not covered - keys, f"probes for URL patterns that no longer exist: {sorted(covered - keys)}"


def test_probe_labels_are_unique():
    labels = [probe.label for probe in PROBES]
    assert len(labels) == len(set(labels))


# --- the matrix ----------------------------------------------------------------------------------------------
def request(client: Client, probe: Probe, path: str, body):
    if probe.method == "GET":
        return client.get(path)
    if probe.api:
        return client.post(path, json.dumps(body or {}), content_type="application/json")
    return client.post(path, body or {})


def check_answer(response, expected: Expected, probe: Probe, world: World, scope: str) -> None:
    where = f"{probe.method} {response.request['PATH_INFO']}"
    status = response.status_code
    location = response.get("Location", "")
    if expected == LOGIN:
        assert status == 302 and location.startswith(reverse("admin:login") + "?next="), (where, status, location)
    elif expected == TO_INDEX:
        assert (status, location) == (302, reverse("admin:index")), where
    elif expected == TO_OPERATIONS:
        assert (status, location) == (302, reverse("operations:page")), where
    elif expected == TO_CHANGE:
        assert (status, location) == (302, probe.redirect(world, scope)), where
    elif expected == UNAUTH:
        assert status in (401, 403), (where, status)
    elif expected in (VIEW, EDIT):
        assert status == 200, (where, status)
        assert response.context["has_change_permission"] is (expected == EDIT), f"{where}: expected {expected}"
        assert ('name="_save"' in response.content.decode()) is (expected == EDIT), f"{where}: Save button"
    else:
        assert status == expected, (where, status, response.content.decode()[:500])


@pytest.mark.parametrize(("probe", "scope", "role"), list(cases()))
def test_access(world, probe: Probe, scope: str, role: str):
    path = probe.path(world, scope)
    match = resolve(path.split("?")[0])
    assert probe.key in (match.view_name, match.route), (path, match.view_name, match.route)
    body = probe.body(world, scope) if probe.body else None
    expected = probe.expect("anonymous" if role == "apiuser" and not probe.api else role, scope)
    client = client_for(world, role)
    before = fingerprint(world)
    response = request(client, probe, path, body)
    check_answer(response, expected, probe, world, scope)
    after = fingerprint(world)
    changed = {key for key in before if before[key] != after[key]}
    assert changed == probe.expected_changes(role, scope, expected), f"changed: {changed}"
    if probe.listed is not None and response.status_code == 200:
        visible = {s for s in probe.listed_scopes if sees(role, s)}
        assert probe.listed(world, response) == visible


# --- beyond status codes: what a visible page offers and leaks --------------------------------------------
BUTTON_ROLES = ("viewer", "operator", "dadmin", "superuser")


@pytest.mark.parametrize("role", BUTTON_ROLES)
def test_job_page_offers_run_only_to_roles_that_may_run(world, role):
    html = client_for(world, role).get(reverse("admin:jobs_job_change", args=[world.jobs["own"].pk])).content.decode()
    assert ('id="run-job"' in html) is runs(role, "own")


@pytest.mark.parametrize("role", BUTTON_ROLES)
def test_result_page_offers_kill_and_retry_only_to_roles_that_may_run(world, role):
    client = client_for(world, role)
    live = client.get(reverse("admin:results_jobresult_change", args=[world.live["own"].pk])).content.decode()
    done = client.get(reverse("admin:results_jobresult_change", args=[world.done["own"].pk])).content.decode()
    assert ('id="kill-result"' in live) is runs(role, "own")
    assert ('id="retry-result"' in done) is runs(role, "own")


@pytest.mark.parametrize("role", BUTTON_ROLES)
def test_operations_page_offers_kill_and_acknowledge_only_to_roles_that_may_run(world, role):
    state = client_for(world, role).get(reverse("operations:state")).json()
    running = {row["id"]: row for row in state["running"]}
    attention = {row["id"]: row for row in state["attention"]}
    assert bool(running[world.live["own"].pk]["kill_url"]) is runs(role, "own")
    assert bool(attention[world.done["own"].pk]["acknowledge_url"]) is runs(role, "own")


@pytest.mark.parametrize("role", ["dadmin", "mixed"])
def test_job_form_offers_only_the_domains_and_filter_templates_the_caller_may_use(world, role):
    response = client_for(world, role).get(reverse("admin:jobs_job_change", args=[world.jobs["own"].pk]))
    form = response.context["adminform"].form
    assert set(form.fields["domain"].queryset) == {world.domains["own"]}
    lines = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "lines")
    assert set(lines.forms[0].fields["filter_template"].queryset) == {world.templates["own"]}
    html = response.content.decode()
    assert "globex-template" not in html and "global-template" not in html


@pytest.mark.parametrize("role", ["viewer", "operator", "dadmin", "otheradmin"])
def test_pages_of_members_never_name_what_is_outside_their_domains(world, role):
    client = client_for(world, role)
    hidden = [s for s in SCOPES if not sees(role, s)]
    pages = [reverse("admin:index"), reverse("admin:jobs_job_changelist"),
             reverse("admin:results_jobresult_changelist"), reverse("admin:jobs_domain_changelist"),
             reverse("admin:app_list", args=["jobs"]), reverse("api:jobs"), reverse("operations:page"),
             reverse("operations:state")]
    visible = next(s for s in SCOPES if sees(role, s))
    pages += [reverse("admin:jobs_job_change", args=[world.jobs[visible].pk]),
              reverse("admin:results_jobresult_change", args=[world.live[visible].pk])]
    names = {"own": ["acme-job", "Acme Corp"], "other": ["globex-job", "Globex Inc"], "global": ["global-job"]}
    for page in pages:
        html = client.get(page).content.decode()
        for scope in hidden:
            for name in names[scope]:
                assert name not in html, f"{page} names {name!r} to {role}"


def test_membership_inline_is_shown_to_system_administrators_only(world):
    path = reverse("admin:jobs_domain_change", args=[world.domains["own"].pk])
    for role in ("viewer", "dadmin", "superuser"):
        response = client_for(world, role).get(path)
        prefixes = [inline.formset.prefix for inline in response.context["inline_admin_formsets"]]
        assert ("memberships" in prefixes) is (role == "superuser"), (role, prefixes)


def test_domain_admin_cannot_delete_a_job_that_has_results(world):
    """Deleting a job deletes its results, the run history, which only a system administrator may delete."""
    path = reverse("admin:jobs_job_delete", args=[world.jobs["own"].pk])
    response = client_for(world, "dadmin").post(path, {"post": "yes"})
    assert response.status_code == 403
    assert Job.objects.filter(pk=world.jobs["own"].pk).exists()
    response = client_for(world, "superuser").post(path, {"post": "yes"})
    assert response.status_code == 302
    assert not Job.objects.filter(pk=world.jobs["own"].pk).exists()


# --- what lists offer: buttons and actions only for what the role may do -------------------------------------
@pytest.mark.parametrize("role", [
    "viewer", "mixed", "operator", "superuser",
])
def test_result_list_offers_kill_only_where_the_role_may_kill(world, role):
    html = client_for(world, role).get(reverse("admin:results_jobresult_changelist")).content.decode()
    for scope in SCOPES:
        if sees(role, scope):
            link = f'href="{reverse("admin:results_jobresult_kill", args=[world.live[scope].pk])}"'
            assert (link in html) is runs(role, scope), f"Kill link of the {scope} result shown to {role}"


@pytest.mark.parametrize("role", [
    "viewer", "operator", "dadmin", "mixed", "superuser",
])
def test_job_list_offers_run_now_only_to_roles_that_may_run(world, role):
    response = client_for(world, role).get(reverse("admin:jobs_job_changelist"))
    action_form = response.context["action_form"]
    offered = {value for value, _ in action_form.fields["action"].choices} if action_form else set()
    assert ("run_now" in offered) is runs(role, "own")


@pytest.mark.parametrize("role", ["viewer", "operator", "dadmin", "mixed", "superuser"])
def test_result_list_offers_bulk_kill_and_retry_only_to_roles_that_may_run(world, role):
    response = client_for(world, role).get(reverse("admin:results_jobresult_changelist"))
    action_form = response.context["action_form"]
    offered = {value for value, _ in action_form.fields["action"].choices} if action_form else set()
    assert ("kill_selected" in offered) is ("retry_selected" in offered) is runs(role, "own")


@pytest.mark.parametrize("role", ["viewer", "mixed", "operator", "superuser"])
def test_job_list_rows_offer_run_and_kill_only_where_the_role_may(world, role):
    # Each spare job's last run is going (the world's jobs' last results are finished: no Kill on their rows).
    going = {scope: JobResult.objects.create(job=world.spares[scope], status=Status.RUNNING) for scope in SCOPES}
    html = client_for(world, role).get(reverse("admin:jobs_job_changelist")).content.decode()
    for scope in SCOPES:
        if sees(role, scope):
            run = f'href="{reverse("admin:jobs_job_run", args=[world.jobs[scope].pk])}"'
            assert (run in html) is runs(role, scope), f"Run of the {scope} job shown to {role}"
            for result, offered in ((world.live[scope], False), (going[scope], runs(role, scope))):
                kill = f'href="{reverse("admin:results_jobresult_kill", args=[result.pk])}"'
                assert (kill in html) is offered, f"Kill of #{result.pk} ({scope}) for {role}"


# --- "never revealing they exist": an other domain's object answers exactly like a missing one --------------
MISSING = 987654


HIDDEN_ENDPOINTS = [
    ("GET", "admin:jobs_job_change", "jobs"), ("GET", "admin:jobs_job_history", "jobs"),
    ("GET", "admin:jobs_job_delete", "jobs"), ("GET", "admin:jobs_job_run", "jobs"),
    ("POST", "admin:jobs_job_run", "jobs"), ("GET", "admin:results_jobresult_change", "live"),
    ("GET", "admin:results_jobresult_history", "live"), ("GET", "admin:results_jobresult_kill", "live"),
    ("POST", "admin:results_jobresult_kill", "live"), ("POST", "admin:results_jobresult_retry", "done"),
    ("GET", "admin:results_jobresult_log", "done"), ("GET", "admin:jobs_domain_change", "domains"),
    ("GET", "api:result", "live"), ("GET", "api:result-log", "live"),
    ("POST", "api:result-kill", "live"),
]


def hidden_cases():
    for method, name, of in HIDDEN_ENDPOINTS:
        for scope in ("other",) if of == "domains" else ("other", "global"):
            yield pytest.param(method, name, of, scope, id=f"{method}-{name}-{scope}")


@pytest.mark.parametrize(("method", "name", "of", "scope"), list(hidden_cases()))
def test_an_object_outside_the_domains_answers_like_a_missing_one(world, method, name, of, scope):
    objects = getattr(world, of)
    client = client_for(world, "dadmin")
    call = client.get if method == "GET" else client.post
    hidden = call(reverse(name, args=[objects[scope].pk]))
    missing = call(reverse(name, args=[MISSING]))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content.decode().replace(str(objects[scope].pk), "ID") == missing.content.decode().replace(
        str(MISSING), "ID")


def test_api_run_of_a_job_outside_the_domains_answers_like_a_missing_one(world):
    client = client_for(world, "dadmin")
    answers = [client.post(reverse("api:job-run", args=[identifier]), "{}", content_type="application/json")
               for identifier in ("globex-job", "global-job", "no-such-job")]
    assert {answer.status_code for answer in answers} == {404}
    assert len({answer.content for answer in answers}) == 1


# --- a global job run per domain: each run belongs to its domain ----------------------------------------------
@pytest.fixture
def per_domain_run(world):
    job = make_job("nightly-all-domains", (10, "core.sleep", {"seconds": 0}), execution=Job.PER_DOMAIN,
                   concurrency=Job.PARALLEL)
    return JobResult.objects.create(job=job, domain=world.domains["own"], status=Status.PENDING)


@pytest.mark.parametrize("role", ["nomember", "viewer", "operator", "dadmin", "otheradmin", "superuser"])
def test_a_per_domain_run_of_a_global_job_is_its_domains(world, per_domain_run, role):
    client = client_for(world, role)
    pk = per_domain_run.pk
    shown = {"nomember": 404, "otheradmin": 404}.get(role, 200)
    assert client.get(reverse("admin:results_jobresult_change", args=[pk])).status_code == shown
    assert client.get(reverse("api:result", args=[pk])).status_code == shown
    assert client.get(reverse("api:result-log", args=[pk])).status_code == shown
    kill = shown if shown == 404 else (200 if runs(role, "own") else 403)
    assert client.get(reverse("admin:results_jobresult_kill", args=[pk])).status_code == kill
    # the global job itself stays the system administrators'
    expected_job = 200 if role == "superuser" else 404
    assert client.get(reverse("admin:jobs_job_change", args=[per_domain_run.job_id])).status_code == expected_job
    answer = client.post(reverse("api:result-kill", args=[pk]), "{}", content_type="application/json")
    assert answer.status_code == {200: 202}.get(kill, kill)
    killed = JobResult.objects.get(pk=pk).status == Status.KILLED
    assert killed is (kill == 200)


# --- fields a domain administrator may not set ------------------------------------------------------------------
def test_domain_admin_cannot_make_a_job_run_as_another_user_or_per_domain(world):
    path = reverse("admin:jobs_job_change", args=[world.jobs["own"].pk])
    data = admin_form_data(world, path, run_as=world.users["superuser"].pk, execution=Job.PER_DOMAIN,
                           name="Escalated")
    response = client_for(world, "dadmin").post(path, data)
    assert response.status_code == 302
    job = Job.objects.get(pk=world.jobs["own"].pk)
    assert job.name == "Escalated"
    assert (job.run_as_id, job.execution) == (None, Job.BY_INSTALLATION)


def test_domain_admin_cannot_drop_a_permission_the_job_requires_and_they_lack(world):
    Job.objects.filter(pk=world.jobs["own"].pk).update(required_permission="auth.delete_user")
    path = reverse("admin:jobs_job_change", args=[world.jobs["own"].pk])
    data = admin_form_data(world, path, required_permission="")
    client = client_for(world, "dadmin")
    assert client.post(reverse("admin:jobs_job_run", args=[world.jobs["own"].pk]), {}).status_code == 403
    client.post(path, data)
    assert Job.objects.get(pk=world.jobs["own"].pk).required_permission == "auth.delete_user"
