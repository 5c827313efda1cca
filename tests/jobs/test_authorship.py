"""Issue 13: the author's part of a job stays the author's.

A line running a dangerous action (core.shell) was written by a system administrator. A domain admin
may not delete, deactivate, move or change it, flip the job's stops_on_error, nor loosen the declaration
of a run-time parameter the line uses, through the admin's change form. A system administrator may.
"""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from jobs import authorship
from jobs.models import DomainMembership, Job, JobLine
from tests.helpers import make_job
from tests.jobs.test_admin_job_form import page_data

pytestmark = pytest.mark.django_db

WHO = {"name": "who", "type": "str", "required": True, "pattern": "[a-z]+", "help": "Whose files."}
MODE = {"name": "mode", "type": "choice", "choices": ["dry", "apply"], "default": "dry"}
FREE = {"name": "note", "type": "str"}  # not named by the shell line, yet in its environment


@pytest.fixture
def shell_job(acme):
    """A system administrator's job in Acme: a shell line using $JOBS_PARAM_WHO and $JOBS_PARAM_MODE, and a sleep."""
    return make_job("cleanup", (10, "core.shell", {"command": 'clean "$JOBS_PARAM_WHO" "$JOBS_PARAM_MODE"'}),
                    (20, "core.sleep", {"seconds": 0}), domain=acme, params=[WHO, MODE, FREE],
                    stops_on_error=True)


@pytest.fixture
def domain_admin(member, acme):
    return member("ann", acme, DomainMembership.ADMIN)


def change_url(job: Job) -> str:
    return reverse("admin:jobs_job_change", args=[job.pk])


def row(data: dict, line_no: int) -> str:
    """The form prefix ("lines-N") of the inline row of ``line_no``."""
    for key, value in data.items():
        if key.startswith("lines-") and key.endswith("-line_no") and str(value) == str(line_no):
            return key.removesuffix("-line_no")
    raise AssertionError(f"no row for line {line_no}")


def post_change(client, user, job: Job, edit) -> tuple:
    client.force_login(user)
    data = page_data(client.get(change_url(job)))
    edit(data)
    return client.post(change_url(job), data), data


def shell_line_state(job: Job) -> list[tuple]:
    return list(JobLine.objects.filter(job=job).order_by("line_no")
                .values_list("line_no", "active", "action__name", "parameters"))


def page_errors(response) -> str:
    """Every error the change page shows: the job form's, each line's and the lines formset's own."""
    assert response.status_code == 200, response.status_code
    form_errors = response.context["adminform"].form.errors
    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "lines")
    return " ".join([json.dumps(form_errors), json.dumps(formset.errors), " ".join(formset.non_form_errors())])


def delete_shell(data):
    data[f"{row(data, 10)}-DELETE"] = "on"


def deactivate_shell(data):
    data.pop(f"{row(data, 10)}-active", None)


def move_shell(data):
    data[f"{row(data, 10)}-line_no"] = 30


def delete_shell_disguised_as_sleep(data):
    """Delete the row, posting another action with it: the stored line decides, not the posted one."""
    prefix = row(data, 10)
    data[f"{prefix}-DELETE"] = "on"
    data[f"{prefix}-action"] = JobLine.objects.get(line_no=20).action_id


LINE_ATTACKS = {
    "delete": (delete_shell, "line 10 (core.shell, written by a system administrator): only a system administrator "
                             "may delete it."),
    "delete-disguised": (delete_shell_disguised_as_sleep, "only a system administrator may delete it"),
    "deactivate": (deactivate_shell, "only a system administrator may change, deactivate, move or delete it "
                                     "(changed: active)"),
    "reorder": (move_shell, "(changed: line_no)"),
}


@pytest.mark.parametrize("attack", LINE_ATTACKS, ids=list(LINE_ATTACKS))
def test_domain_admin_cannot_delete_deactivate_or_move_an_authors_line(client, shell_job, domain_admin, attack):
    edit, message = LINE_ATTACKS[attack]
    before = shell_line_state(shell_job)
    response, _ = post_change(client, domain_admin, shell_job, edit)
    assert message in page_errors(response)
    assert message.split(" (changed")[0].split(": ")[-1] in response.content.decode()
    assert shell_line_state(shell_job) == before


def set_params(params: list[dict]):
    def edit(data):
        data["params"] = json.dumps(params)

    return edit


def without(spec: dict, key: str) -> dict:
    return {k: v for k, v in spec.items() if k != key}


CHANGED_DECLARATION = "parameter 'who' is used by line 10 (core.shell, written by a system administrator): " \
                      "only a system administrator may change its type, choices or pattern."
PARAM_ATTACKS = {
    "drop-pattern": ([without(WHO, "pattern"), MODE, FREE], CHANGED_DECLARATION),
    "widen-pattern": ([{**WHO, "pattern": ".*"}, MODE, FREE], CHANGED_DECLARATION),
    "change-type": ([{**without(WHO, "pattern"), "type": "json"}, MODE, FREE], CHANGED_DECLARATION),
    "add-choice": ([WHO, {**MODE, "choices": ["dry", "apply", "; rm -rf /"]}, FREE],
                   "parameter 'mode' is used by line 10 (core.shell, written by a system administrator): only a "
                   "system administrator may change its type, choices or pattern."),
    "choice-to-str": ([WHO, {"name": "mode", "type": "str", "default": "dry"}, FREE], "parameter 'mode' is used"),
    "remove-declaration": ([MODE, FREE], "parameter 'who' is used by line 10 (core.shell, written by a system "
                                         "administrator): only a system administrator may remove its declaration."),
    "make-optional": ([{**WHO, "required": False}, MODE, FREE], "only a system administrator may make it optional"),
}


@pytest.mark.parametrize("attack", PARAM_ATTACKS, ids=list(PARAM_ATTACKS))
def test_domain_admin_cannot_loosen_a_param_an_authors_line_uses(client, shell_job, domain_admin, attack):
    params, message = PARAM_ATTACKS[attack]
    response, _ = post_change(client, domain_admin, shell_job, set_params(params))
    assert message in page_errors(response)
    assert message in response.content.decode().replace("&#x27;", "'")
    shell_job.refresh_from_db()
    assert shell_job.params == [WHO, MODE, FREE]


def test_domain_admin_cannot_flip_stops_on_error_of_a_job_with_an_authors_line(client, shell_job, domain_admin):
    response, _ = post_change(client, domain_admin, shell_job, lambda data: data.pop("stops_on_error"))
    assert "only a system administrator may change whether it stops on error" in page_errors(response)
    shell_job.refresh_from_db()
    assert shell_job.stops_on_error is True


def test_domain_admin_cannot_move_a_job_with_an_authors_line_to_another_queue(client, shell_job, domain_admin):
    """The queue picks the workers, so the hosts, that run the system administrator's shell command."""
    response, _ = post_change(client, domain_admin, shell_job, lambda data: data.update(queue="elsewhere"))
    assert "only a system administrator may change the queue (the workers) it runs on" in page_errors(response)
    shell_job.refresh_from_db()
    assert shell_job.queue == ""


def test_every_param_reaches_a_shell_line_so_none_may_be_loosened(client, shell_job, domain_admin):
    """The shell line does not name ``note``, but $JOBS_PARAM_NOTE is in its command's environment."""
    response, _ = post_change(client, domain_admin, shell_job, set_params([WHO, MODE, {**FREE, "type": "int"}]))
    assert "parameter 'note' is used by line 10" in page_errors(response)
    shell_job.refresh_from_db()
    assert shell_job.params == [WHO, MODE, FREE]


def test_domain_admin_may_still_edit_the_rest(client, shell_job, domain_admin):
    """Name, help/label/default of a guarded param, other params, the other lines: the domain's to edit."""
    def edit(data):
        data["name"] = "Renamed"
        data["params"] = json.dumps([{**WHO, "help": "Whose old files.", "label": "Who", "default": "bob"},
                                     {**MODE, "default": "apply"}, {**FREE, "help": "Anything."}])
        data[f"{row(data, 20)}-parameters"] = json.dumps({"seconds": 1})

    response, _ = post_change(client, domain_admin, shell_job, edit)
    assert response.status_code == 302, page_errors(response)
    shell_job.refresh_from_db()
    assert shell_job.name == "Renamed"
    assert shell_job.params[0]["default"] == "bob" and shell_job.params[2]["help"] == "Anything."
    assert JobLine.objects.get(job=shell_job, line_no=20).parameters == {"seconds": 1}


def test_a_new_default_of_a_guarded_param_must_still_match_its_pattern(client, shell_job, domain_admin):
    response, _ = post_change(client, domain_admin, shell_job, set_params([{**WHO, "default": "x; rm"}, MODE, FREE]))
    assert "parameter 'who': the default must match the pattern [a-z]+" in page_errors(response)


def test_domain_admin_may_delete_their_own_lines(client, shell_job, domain_admin):
    response, _ = post_change(client, domain_admin, shell_job, lambda data: data.update({
        f"{row(data, 20)}-DELETE": "on"}))
    assert response.status_code == 302, page_errors(response)
    assert [line.line_no for line in shell_job.lines.all()] == [10]


def test_a_system_administrator_may_do_all_of_it(client, shell_job, admin_user):
    def edit(data):
        deactivate_shell(data)
        move_shell(data)
        data.pop("stops_on_error")
        data["params"] = json.dumps([without(WHO, "pattern"), {**MODE, "choices": ["dry", "apply", "force"]}])

    response, _ = post_change(client, admin_user, shell_job, edit)
    assert response.status_code == 302, page_errors(response)
    shell_job.refresh_from_db()
    assert shell_job.stops_on_error is False and "pattern" not in shell_job.params[0]
    assert shell_line_state(shell_job)[-1][:3] == (30, False, "core.shell")
    response, _ = post_change(client, admin_user, shell_job, lambda data: data.update({
        f"{row(data, 30)}-DELETE": "on"}))
    assert response.status_code == 302
    assert not shell_job.lines.filter(action__name="core.shell").exists()


def test_stops_on_error_is_free_on_a_job_without_an_authors_line(client, acme, domain_admin):
    job = make_job("plain", (10, "core.sleep", {"seconds": 0}), domain=acme)
    response, _ = post_change(client, domain_admin, job, lambda data: data.pop("stops_on_error"))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.stops_on_error is False


def test_the_rule_in_one_place(shell_job):
    assert [line.line_no for line in authorship.protected_lines(shell_job)] == [10]
    assert sorted(authorship.protected_param_names(shell_job)) == ["mode", "note", "who"]  # a shell line gets them all


@pytest.fixture
def two_domain_admin(member, acme, globex):
    user = member("ann", acme, DomainMembership.ADMIN)
    DomainMembership.objects.create(user=user, domain=globex, role=DomainMembership.ADMIN)
    return user


@pytest.mark.parametrize("field, value, rule", [
    ("domain", "globex", "its domain (whose values, secrets and records its lines get)"),
    ("idempotent", "on", "whether it is idempotent"),
    ("retries", "5", "how often it runs again after a failure"),
])
def test_an_admin_of_two_domains_cannot_move_an_authors_job_nor_make_it_run_again(
        client, shell_job, two_domain_admin, globex, field, value, rule):
    """Moved, the author's shell line would get globex's secrets and records; run again, it repeats what it did."""
    before = {name: getattr(shell_job, name) for name in ("domain_id", "idempotent", "retries")}
    response, _ = post_change(client, two_domain_admin, shell_job,
                              lambda data: data.update({field: globex.pk if value == "globex" else value}))
    assert f"only a system administrator may change {rule}" in page_errors(response)
    shell_job.refresh_from_db()
    assert {name: getattr(shell_job, name) for name in before} == before


# Secrets kept for system administrators' lines (review 2) ------------------------------------------------------

@pytest.fixture
def kept_secret(acme):
    from jobs.models import Secret

    secret = Secret(name="db", domain=acme, system_only=True)
    secret.set_value("s3cr3t-db-password")
    secret.save()
    return secret


def add_line(data: dict, line_no: int, action: str, parameters: dict) -> None:
    from jobs.models import Action

    Action.objects.sync_with_registry()
    # The page's new row: no id (its number is offered already, after the saved lines).
    prefix = next(key.removesuffix("-line_no") for key in data
                  if key.startswith("lines-") and key.endswith("-line_no")
                  and data.get(key.replace("-line_no", "-id")) in ("", None))
    data.update({f"{prefix}-line_no": line_no, f"{prefix}-active": "on",
                 f"{prefix}-action": Action.objects.get(name=action).pk,
                 f"{prefix}-parameters": json.dumps(parameters)})


def test_a_domain_admin_cannot_send_a_system_administrators_secret_anywhere(client, shell_job, domain_admin,
                                                                            kept_secret):
    """Masking covers what a run stores, not what a line sends: a line of theirs could mail the value away."""
    mail = {"to": "ann@example.com", "subject": "hello", "body": "the password is ${secret.db}"}
    response, _ = post_change(client, domain_admin, shell_job, lambda data: add_line(data, 30, "core.send_email", mail))
    assert "the secret db is kept for system administrators' lines" in page_errors(response)
    assert not JobLine.objects.filter(job=shell_job, line_no=30).exists()

    kept_secret.system_only = False  # the domain's own secret: its admins may use it
    kept_secret.save()
    response, _ = post_change(client, domain_admin, shell_job, lambda data: add_line(data, 30, "core.send_email", mail))
    assert response.status_code == 302
    assert JobLine.objects.filter(job=shell_job, line_no=30).exists()


def test_a_system_administrators_line_using_such_a_secret_is_theirs(client, acme, domain_admin, kept_secret):
    job = make_job("call-api", (10, "core.http", {"url": "https://api.example.com/",
                                                  "headers": {"Authorization": "Bearer ${secret.db}"}}), domain=acme)
    assert [line.line_no for line in authorship.protected_lines(job)] == [10]
    response, _ = post_change(client, domain_admin, job, lambda data: data.update(
        {f"{row(data, 10)}-parameters": json.dumps({"url": "https://elsewhere.example.com/",
                                                    "headers": {"Authorization": "Bearer ${secret.db}"}})}))
    assert "only a system administrator may change, deactivate, move or delete it" in page_errors(response)
    assert job.lines.get().parameters["url"] == "https://api.example.com/"


def test_a_domain_admin_can_neither_change_nor_flag_a_kept_secret(client, acme, domain_admin, kept_secret):
    client.force_login(domain_admin)
    url = reverse("admin:jobs_secret_change", args=[kept_secret.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="value"' not in page.content.decode()
    assert 'name="system_only"' not in page.content.decode()
    assert client.post(url, {"name": "db", "domain": acme.pk, "value": "mine"}).status_code == 403
    assert client.post(reverse("admin:jobs_secret_delete", args=[kept_secret.pk]), {"post": "yes"}).status_code == 403
    kept_secret.refresh_from_db()
    assert kept_secret.reveal() == "s3cr3t-db-password"
