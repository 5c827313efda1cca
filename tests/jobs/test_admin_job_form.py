"""The Job add/change form in the admin: lines inline, parameter validation, read-only identifier, domains."""
from __future__ import annotations

import json

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse

from jobs.models import Action, DomainMembership, Job, JobLine
from tests.helpers import make_job

pytestmark = pytest.mark.django_db

ADD = "admin:jobs_job_add"


@pytest.fixture(autouse=True)
def actions():
    Action.objects.sync_with_registry()


def form_values(form: forms.BaseForm) -> dict:
    """What a browser would send for ``form`` as rendered (checkboxes: "on" or absent)."""
    data = {}
    for bound in form:
        value = bound.value()
        if isinstance(bound.field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(bound.field, forms.MultiValueField):  # one input per part: name_0, name_1, ...
            parts = value if isinstance(value, list) else bound.field.widget.decompress(value)
            for index, part in enumerate(parts):
                data[f"{bound.html_name}_{index}"] = "" if part is None else part
        elif isinstance(value, list):  # a multiple choice sends one value per ticked box, none when empty
            if value:
                data[bound.html_name] = value
        else:
            data[bound.html_name] = "" if value is None else value
        if bound.field.show_hidden_initial:  # fields with a callable default also send their initial value
            data[bound.html_initial_name] = data.get(bound.html_name, "")
    return data


def page_data(response) -> dict:
    """The POST data of an admin change form page as rendered: the form, management forms, every inline row."""
    data = form_values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        data.update(form_values(inline.formset.management_form))
        for form in inline.formset.forms:
            data.update(form_values(form))
    return data


def add_form_data(client, lines: list[dict], **job_fields) -> dict:
    """The add form as rendered, filled with ``job_fields`` and one inline row per item of ``lines``."""
    response = client.get(reverse(ADD))
    assert response.status_code == 200
    data = page_data(response)
    data.update({"identifier": "nightly", "name": "Nightly run", **job_fields})
    empty = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "lines").empty_form
    for index, line in enumerate(lines):
        row = {name.replace("__prefix__", str(index)): value for name, value in form_values(empty).items()}
        row.update({
            f"lines-{index}-line_no": line["line_no"],
            f"lines-{index}-action": Action.objects.get(name=line["action"]).pk,
            f"lines-{index}-parameters": json.dumps(line["parameters"]),
        })
        data.update(row)
    data["lines-TOTAL_FORMS"] = len(lines)
    return data


def post_add(client, user, lines: list[dict], **job_fields):
    client.force_login(user)
    return client.post(reverse(ADD), add_form_data(client, lines, **job_fields))


def line_errors(response) -> list[str]:
    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "lines")
    return [message for form in formset.forms for message in form.errors.get("parameters", [])]


SHELL = {"line_no": 10, "action": "core.shell", "parameters": {"command": "echo hi"}}
SLEEP = {"line_no": 20, "action": "core.sleep", "parameters": {"seconds": 0.2}}


def test_add_form_creates_the_job_with_its_two_lines(client, admin_user):
    response = post_add(client, admin_user, [SHELL, SLEEP], identifier="two-lines", name="Two lines")
    assert response.status_code == 302, response.content.decode()[-3000:]
    job = Job.objects.get(identifier="two-lines")
    assert job.name == "Two lines" and job.domain is None
    lines = [(line.line_no, line.action.name, line.parameters) for line in job.lines.order_by("line_no")]
    assert lines == [(10, "core.shell", {"command": "echo hi"}), (20, "core.sleep", {"seconds": 0.2})]


@pytest.mark.parametrize(("line", "message"), [
    ({"action": "core.shell", "parameters": {}}, "command: this parameter is required"),
    ({"action": "core.shell", "parameters": {"command": "ls", "colour": "red"}},
     "colour: unknown parameter of core.shell"),
    ({"action": "core.sleep", "parameters": {"seconds": "soon"}}, "seconds: must be a number"),
    ({"action": "core.shell", "parameters": {"command": "echo ${param.nope}"}},
     "command: unknown variable ${param.nope}"),
    ({"action": "core.shell", "parameters": {"command": "echo ${tomorrow}"}}, "command: unknown variable ${tomorrow}"),
], ids=["required", "unknown-parameter", "wrong-type", "unknown-param-variable", "unknown-builtin-variable"])
def test_invalid_line_parameters_are_named_and_nothing_is_saved(client, admin_user, line, message):
    response = post_add(client, admin_user, [SLEEP, {"line_no": 30, **line}])
    assert response.status_code == 200
    assert line_errors(response) == [message]
    assert message in response.content.decode()
    assert not Job.objects.exists()


def test_an_emptied_filter_definition_is_not_a_server_error(client, admin_user):
    client.force_login(admin_user)
    data = {**add_form_data(client, [SHELL]), "lines-0-filter_definition": ""}
    client.raise_request_exception = False
    response = client.post(reverse(ADD), data)
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert Job.objects.get(identifier="nightly").lines.get().filter_definition == {}


def test_json_nested_too_deeply_is_a_field_error_not_a_server_error(client, admin_user):
    client.force_login(admin_user)
    data = {**add_form_data(client, [SHELL]), "lines-0-parameters": "[" * 100_000 + "]" * 100_000}
    response = client.post(reverse(ADD), data)
    assert response.status_code == 200
    assert "Enter valid JSON (it is nested too deeply)." in line_errors(response)
    assert not Job.objects.exists()


def test_a_line_may_use_a_param_declared_on_the_same_page(client, admin_user):
    line = {"line_no": 10, "action": "testing.echo", "parameters": {"text": "echo ${param.days} ${today}"}}
    response = post_add(client, admin_user, [line], params=json.dumps([{"name": "days", "type": "int"}]))
    assert response.status_code == 302, line_errors(response)
    assert Job.objects.get(identifier="nightly").lines.get().parameters == line["parameters"]


def test_invalid_job_params_declaration_is_refused(client, admin_user):
    response = post_add(client, admin_user, [SHELL], params=json.dumps([{"name": "days", "type": "integer"}]))
    assert response.status_code == 200
    assert "type must be one of" in " ".join(response.context["adminform"].form.errors["params"])
    assert not Job.objects.exists()


def test_identifier_is_read_only_on_the_change_page(client, admin_user):
    job = make_job("fixed-id", name="Fixed")
    client.force_login(admin_user)
    response = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    assert "identifier" not in response.context["adminform"].form.fields
    assert 'name="identifier"' not in response.content.decode()
    assert "fixed-id" in response.content.decode()


def test_posting_another_identifier_on_change_does_not_rename_the_job(client, admin_user):
    job = make_job("fixed-id", (10, "core.sleep", {"seconds": 0}), name="Old name")
    client.force_login(admin_user)
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = {**page_data(client.get(url)), "identifier": "renamed", "name": "New name"}
    assert client.post(url, data).status_code == 302
    job.refresh_from_db()
    assert (job.identifier, job.name) == ("fixed-id", "New name")
    assert job.lines.count() == 1


def test_the_model_refuses_an_identifier_change(admin_user):
    job = make_job("fixed-id")
    job.identifier = "renamed"
    with pytest.raises(ValidationError, match="cannot change after creation"):
        job.full_clean()


def test_domain_admin_adds_a_job_to_their_domain(client, member, acme):
    response = post_add(client, member("ann", acme, DomainMembership.ADMIN), [SLEEP], domain=acme.pk)
    assert response.status_code == 302
    assert Job.objects.get(identifier="nightly").domain == acme


def test_only_a_system_administrator_may_put_a_dangerous_action_on_a_line(client, member, acme):
    response = post_add(client, member("ann", acme, DomainMembership.ADMIN), [SHELL], domain=acme.pk)
    assert response.status_code == 200
    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "lines")
    assert "Only a system administrator may add or change a line that runs core.shell" in str(formset.errors)
    assert not Job.objects.filter(identifier="nightly").exists()


def test_a_domain_admin_cannot_change_an_existing_dangerous_line(client, member, acme):
    job = make_job("with-shell", (10, "core.shell", {"command": "echo safe"}), domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = page_data(client.get(url))
    data["lines-0-parameters"] = json.dumps({"command": "rm -rf /tmp/x"})
    response = client.post(url, data)
    assert response.status_code == 200
    assert JobLine.objects.get(job=job).parameters == {"command": "echo safe"}


@pytest.mark.parametrize("target", ["other-domain", "global"])
def test_domain_admin_cannot_add_a_job_outside_their_domain(client, member, acme, globex, target):
    domain = globex.pk if target == "other-domain" else ""
    response = post_add(client, member("ann", acme, DomainMembership.ADMIN), [SHELL], domain=domain)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["domain"]
    assert not Job.objects.exists()


def test_operator_cannot_open_the_add_form(client, member, acme):
    client.force_login(member("otto", acme, DomainMembership.OPERATOR))
    assert client.get(reverse(ADD)).status_code == 403


def test_other_domains_job_change_page_is_404_for_a_domain_admin(client, member, acme, globex):
    job = make_job("globex-job", domain=globex)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    assert client.get(reverse("admin:jobs_job_change", args=[job.pk])).status_code == 404


def test_other_domains_job_is_neither_shown_nor_changed(client, member, acme, globex):
    job = make_job("globex-job", name="Globex secret", domain=globex)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    response = client.get(url, follow=True)
    assert "Globex secret" not in response.content.decode()
    client.post(url, {"name": "Hijacked", "lines-TOTAL_FORMS": 0, "lines-INITIAL_FORMS": 0})
    job.refresh_from_db()
    assert job.name == "Globex secret"


def test_domain_admin_changes_their_domains_job(client, member, acme):
    job = make_job("acme-job", (10, "core.sleep", {"seconds": 0}), name="Before", domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    assert client.post(url, {**page_data(client.get(url)), "name": "After"}).status_code == 302
    job.refresh_from_db()
    assert job.name == "After"


def test_operator_views_the_job_without_a_save_button(client, member, acme):
    job = make_job("acme-job", (10, "core.shell", {"command": "echo from-the-line"}), name="Acme job", domain=acme)
    client.force_login(member("otto", acme, DomainMembership.OPERATOR))
    response = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Acme job" in html and "from-the-line" in html
    assert 'name="_save"' not in html and 'name="name"' not in html
    assert reverse("admin:jobs_job_run", args=[job.pk]) in html


def test_operator_cannot_change_the_job(client, member, acme):
    job = make_job("acme-job", (10, "core.sleep", {"seconds": 0}), name="Before", domain=acme)
    client.force_login(member("otto", acme, DomainMembership.OPERATOR))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    data = {"name": "After", "identifier": "acme-job", "lines-TOTAL_FORMS": 0, "lines-INITIAL_FORMS": 0}
    assert client.post(url, data).status_code == 403
    job.refresh_from_db()
    assert job.name == "Before"


def test_viewer_sees_no_run_link(client, member, acme):
    job = make_job("acme-job", domain=acme)
    client.force_login(member("vic", acme, DomainMembership.VIEWER))
    response = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    assert response.status_code == 200
    assert reverse("admin:jobs_job_run", args=[job.pk]) not in response.content.decode()


def test_a_variable_in_a_shell_command_becomes_its_environment_variable(client, admin_user):
    line = {"line_no": 10, "action": "core.shell", "parameters": {"command": 'echo "Hello ${param.who}" ${today}'}}
    response = post_add(client, admin_user, [line], params=json.dumps([{"name": "who", "type": "str"}]))
    assert response.status_code == 302, line_errors(response)
    assert JobLine.objects.get().parameters == {"command": 'echo "Hello $JOBS_PARAM_WHO" "$JOBS_TODAY"'}


def test_a_variable_in_single_quotes_of_a_shell_command_is_refused_naming_the_safe_form(client, admin_user):
    line = {"line_no": 10, "action": "core.shell", "parameters": {"command": "echo 'Hello ${param.who}'"}}
    response = post_add(client, admin_user, [line], params=json.dumps([{"name": "who", "type": "str"}]))
    assert response.status_code == 200
    assert line_errors(response) == ['command: ${param.who} would be read by the shell as code; write '
                                     '"$JOBS_PARAM_WHO" instead (variables reach the command as environment '
                                     'variables)']
    assert not Job.objects.exists()
