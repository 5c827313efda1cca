"""The job form's editors checked on the server (issue 15, item 5): what a page posts is validated whatever
its script did; each error names the row and the field (never a 500).

The parameter table, the report (Send report + recipients), line numbers given and reordered, and the
actions offered to domain administrators.
"""
from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils.html import escape

from jobs.forms import ParamSpecFormSet, ParamTableWidget, ReportField, fits_the_table
from jobs.models import Action, DomainMembership, Job, JobLine
from tests.helpers import make_job
from tests.jobs.test_admin_job_form import actions, page_data  # noqa: F401  (actions: a fixture)

pytestmark = pytest.mark.django_db


def change_url(job: Job) -> str:
    return reverse("admin:jobs_job_change", args=[job.pk])


def table_rows(*rows: dict) -> dict:
    """The parameter table as a page posts it (mode "table", one formset row per item)."""
    data = {"params-mode": "table", "params-TOTAL_FORMS": str(len(rows)), "params-INITIAL_FORMS": "0",
            "params-MIN_NUM_FORMS": "0", "params-MAX_NUM_FORMS": "1000", "params": "[]"}
    for index, row in enumerate(rows):
        for key, value in {"type": "str", **row}.items():
            if key == "required":
                if value:
                    data[f"params-{index}-required"] = "on"
            else:
                data[f"params-{index}-{key}"] = value
    return data


def post_change(client, user, job: Job, **changes):
    client.force_login(user)
    data = page_data(client.get(change_url(job)))
    if "params-mode" in changes:
        data.pop("params", None)
    data.update(changes)
    return client.post(change_url(job), data)


def job_form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


# --- The parameter table -----------------------------------------------------------------------------------

def test_the_table_stores_typed_declarations(client, admin_user):
    job = make_job("typed", (10, "testing.echo", {}))
    response = post_change(client, admin_user, job, **table_rows(
        {"name": "days", "type": "int", "default": "7", "required": True, "help": "How far back."},
        {"name": "rate", "type": "float", "default": "0.5"},
        {"name": "dry", "type": "bool", "default": "true"},
        {"name": "mode", "type": "choice", "choices": "dry, apply , ", "default": "apply"},
        {"name": "payload", "type": "json", "default": '{"a": [1, 2]}'},
        {"name": "who", "type": "email", "pattern": ".+@example[.]com", "label": "Who"},
        {"name": "", "type": "str"},  # a row left blank: no parameter
    ))
    assert response.status_code == 302, job_form_errors(response)
    job.refresh_from_db()
    assert job.params == [
        {"name": "days", "type": "int", "required": True, "help": "How far back.", "default": 7},
        {"name": "rate", "type": "float", "required": False, "default": 0.5},
        {"name": "dry", "type": "bool", "required": False, "default": True},
        {"name": "mode", "type": "choice", "required": False, "choices": ["dry", "apply"], "default": "apply"},
        {"name": "payload", "type": "json", "required": False, "default": {"a": [1, 2]}},
        {"name": "who", "type": "email", "required": False, "pattern": ".+@example[.]com", "label": "Who"},
    ]


@pytest.mark.parametrize(("rows", "message"), [
    ([{"name": "days", "type": "int", "default": "seven"}], "Row 1 (days), default: must be a whole number"),
    ([{"name": "ok"}, {"name": "2days"}], "Row 2 (2days), name: letters, digits and _ only"),
    ([{"name": "days"}, {"name": "days"}], "Row 2 (days), name: declared twice"),
    ([{"name": "days"}, {"name": "DAYS"}], "Row 2 (DAYS), name: differs from 'days' only in case"),
    ([{"name": "mode", "type": "choice"}], "Row 1 (mode), choices: a choice parameter needs its values"),
    ([{"name": "mode", "type": "choice", "choices": "a, b", "default": "c"}],
     "Row 1 (mode), default: must be one of: a, b"),
    ([{"name": "days", "type": "int", "choices": "1, 2"}], "Row 1 (days), choices: only a choice parameter"),
    ([{"name": "who", "pattern": "[a-z"}], "Row 1 (who), pattern: pattern is not a valid regular expression"),
    ([{"name": "who", "type": "int", "pattern": "[0-9]+"}], "Row 1 (who), pattern: a pattern applies to str"),
    ([{"name": "who", "pattern": "[a-z]+", "default": "Bob"}], "Row 1 (who), default: must match the pattern"),
    ([{"name": "token", "type": "secret", "default": "hunter2"}],
     "Row 1 (token), default: a secret parameter has no default"),
    ([{"name": "when", "type": "date", "default": "tomorrow"}], "Row 1 (when), default: must be a date"),
    ([{"name": "x", "type": "colour"}], "Row 1 (x), type: Select a valid choice"),
    ([{"name": "", "default": "7"}], "Row 1, name: This field is required."),
], ids=["default-type", "name", "twice", "case-twin", "no-choices", "default-choice", "choices-not-choice",
        "bad-pattern", "pattern-type", "default-pattern", "secret-default", "date", "type", "no-name"])
def test_a_bad_row_is_named_by_row_and_field_and_nothing_is_saved(client, admin_user, rows, message):
    job = make_job("bad-params", (10, "testing.echo", {}), params=[{"name": "keep", "type": "str", "required": False}])
    response = post_change(client, admin_user, job, **table_rows(*rows))
    errors = " ".join(job_form_errors(response)["params"])
    assert message in errors
    assert escape(message.split(": ", 1)[-1]) in response.content.decode()  # shown in the row's cell too
    job.refresh_from_db()
    assert job.params == [{"name": "keep", "type": "str", "required": False}]


def test_json_posted_as_advanced_still_works_and_is_checked(client, admin_user):
    job = make_job("advanced", (10, "testing.echo", {}))
    response = post_change(client, admin_user, job, **{"params-mode": "json",
                                                        "params": '[{"name": "n", "type": "int", "default": "x"}]'})
    assert "parameter 'n': the default must be a whole number" in " ".join(job_form_errors(response)["params"])
    response = post_change(client, admin_user, job, **{"params-mode": "json", "params": "[{"})
    assert job_form_errors(response)["params"] == ["Enter a valid JSON."]
    response = post_change(client, admin_user, job, **{"params-mode": "json",
                                                        "params": '[{"name": "n", "type": "int", "default": 3}]'})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.params == [{"name": "n", "type": "int", "required": False, "default": 3}]


def test_a_table_post_without_its_management_form_is_an_error_not_a_500(client, admin_user):
    job = make_job("no-management", (10, "testing.echo", {}))
    response = post_change(client, admin_user, job, **{"params-mode": "table", "params-0-name": "x"})
    assert job_form_errors(response)["params"]


@pytest.mark.parametrize(("spec", "fits"), [
    ({"name": "n", "type": "int", "default": 7}, True),
    ({"name": "n", "type": "choice", "choices": ["a", "b"], "default": "a", "help": "h", "label": "N"}, True),
    ({"name": "n", "type": "json", "default": {"a": 1}}, True),
    ({"name": "n", "type": "choice", "choices": [1, 2]}, False),  # numbers would come back as text
    ({"name": "n", "type": "choice", "choices": ["a,b", "c"]}, False),
    ({"name": "n", "type": "str", "default": 7}, False),
    ({"name": "n", "type": "float", "default": 1}, False),
    ({"name": "n", "type": "json", "default": 5}, False),
    ({"name": "n", "type": "str", "colour": "red"}, False),
])
def test_a_declaration_the_table_cannot_keep_as_it_is_opens_as_json(client, admin_user, spec, fits):
    assert fits_the_table(spec) is fits
    job = make_job("opens", (10, "testing.echo", {}))
    Job.objects.filter(pk=job.pk).update(params=[spec])  # as a definition file may store it
    client.force_login(admin_user)
    page = client.get(change_url(job)).content.decode()
    mode = "table" if fits else "json"
    assert f'name="params-mode" value="{mode}"' in page
    if fits:  # posted back untouched from the table: the same declaration
        formset = ParamSpecFormSet(table_rows(*ParamTableWidget._rows([spec])), prefix="params")
        assert formset.is_valid(), formset.problems()
        assert formset.specs() == [{"required": False, **spec}]


# --- The e-mail report -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("when", "recipients", "stored"), [
    ("never", "", None),
    ("failure", "ops@example.com", {"when": "failure", "recipients": ["ops@example.com"]}),
    ("always", " ops@example.com,\nteam@example.com\n\n", {"when": "always",
                                                           "recipients": ["ops@example.com", "team@example.com"]}),
    ("never", "ops@example.com", {"when": "never", "recipients": ["ops@example.com"]}),  # kept for later
])
def test_the_report_is_stored_as_results_reports_reads_it(client, admin_user, when, recipients, stored):
    job = make_job("report", (10, "testing.echo", {}), report={"when": "warning", "recipients": ["x@example.com"]})
    response = post_change(client, admin_user, job, report_0=when, report_1=recipients)
    assert response.status_code == 302, job_form_errors(response)
    job.refresh_from_db()
    assert job.report == stored


@pytest.mark.parametrize(("when", "recipients", "message"), [
    ("always", "", "Recipients: give at least one e-mail address, or choose Never."),
    ("failure", "ops@example.com\nnot-an-address", "Recipients: 'not-an-address' is not a valid e-mail address"),
    ("sometimes", "ops@example.com", "Select a valid choice. sometimes is not one of the available choices."),
])
def test_a_bad_report_is_named_and_nothing_is_saved(client, admin_user, when, recipients, message):
    job = make_job("bad-report", (10, "testing.echo", {}))
    response = post_change(client, admin_user, job, report_0=when, report_1=recipients)
    assert job_form_errors(response)["report"] == [message]
    job.refresh_from_db()
    assert job.report is None


@pytest.mark.parametrize(("stored", "shown"), [
    (None, ["never", ""]),
    ({"recipients": ["a@example.com"]}, ["failure", "a@example.com"]),  # results.reports' default "when"
    ({"when": "always", "recipients": []}, ["never", ""]),  # nobody to send to: no mail goes out
    ({"when": "warning", "recipients": ["a@example.com", "b@example.com"]},
     ["warning", "a@example.com\nb@example.com"]),
])
def test_a_stored_report_is_shown_as_send_report_and_recipients(stored, shown):
    assert ReportField().widget.decompress(stored) == shown


# --- Line numbers and order --------------------------------------------------------------------------------

def line_rows(data: dict) -> dict[str, str]:
    """Each line row's prefix by the text its echo line prints."""
    return {json.loads(data[key]).get("text"): key.removesuffix("-parameters") for key in data
            if key.startswith("lines-") and key.endswith("-parameters") and data[key] not in ("", "{}")}


def test_swapping_two_line_numbers_saves_them(client, admin_user):
    """The database checks (job, line_no) row by row: saved one after the other, a swap used to collide (500)."""
    job = make_job("swap", (10, "testing.echo", {"text": "a"}), (20, "testing.echo", {"text": "b"}),
                   (30, "testing.echo", {"text": "c"}))
    client.force_login(admin_user)
    data = page_data(client.get(change_url(job)))
    rows = line_rows(data)
    data.update({f"{rows['a']}-line_no": "30", f"{rows['b']}-line_no": "10", f"{rows['c']}-line_no": "20"})
    response = client.post(change_url(job), data)
    assert response.status_code == 302
    assert dict(job.lines.values_list("parameters__text", "line_no")) == {"a": 30, "b": 10, "c": 20}


def test_a_line_number_taken_by_a_deleted_line_is_free(client, admin_user):
    job = make_job("reuse", (10, "testing.echo", {"text": "a"}), (20, "testing.echo", {"text": "b"}))
    client.force_login(admin_user)
    data = page_data(client.get(change_url(job)))
    rows = line_rows(data)
    data.update({f"{rows['a']}-line_no": "20", f"{rows['b']}-DELETE": "on"})  # a is saved before b goes
    assert client.post(change_url(job), data).status_code == 302
    assert list(job.lines.values_list("parameters__text", "line_no")) == [("a", 20)]


def test_two_lines_with_one_number_are_refused_by_name(client, admin_user):
    job = make_job("same", (10, "testing.echo", {"text": "a"}), (20, "testing.echo", {"text": "b"}))
    client.force_login(admin_user)
    data = page_data(client.get(change_url(job)))
    data[f"{line_rows(data)['b']}-line_no"] = "10"
    response = client.post(change_url(job), data)
    assert response.status_code == 200
    assert "Please correct the duplicate data for line_no" in response.content.decode()
    assert dict(job.lines.values_list("parameters__text", "line_no")) == {"a": 10, "b": 20}


def test_a_new_line_is_offered_the_next_number_and_one_left_empty_goes_last(client, admin_user):
    job = make_job("numbers", (10, "testing.echo", {"text": "a"}), (25, "testing.echo", {"text": "b"}))
    client.force_login(admin_user)
    response = client.get(change_url(job))
    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "lines")
    assert [form["line_no"].value() for form in formset.extra_forms] == [30]
    data = page_data(response)
    data.update({"lines-2-line_no": "", "lines-2-action": str(Action.objects.get(name="testing.echo").pk),
                 "lines-2-parameters": '{"text": "c"}'})
    assert client.post(change_url(job), data).status_code == 302
    assert dict(job.lines.values_list("parameters__text", "line_no")) == {"a": 10, "b": 25, "c": 30}


def test_an_emptied_line_number_of_a_saved_line_is_named(client, admin_user):
    job = make_job("emptied", (10, "testing.echo", {"text": "a"}))
    client.force_login(admin_user)
    data = page_data(client.get(change_url(job)))
    data[f"{line_rows(data)['a']}-line_no"] = ""
    response = client.post(change_url(job), data)
    assert response.status_code == 200
    assert "A line needs its number" in response.content.decode()
    assert list(job.lines.values_list("line_no", flat=True)) == [10]


# --- Actions offered to domain administrators -------------------------------------------------------------

def action_choices(response) -> set[str]:
    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "lines")
    return {str(choice[1]) for choice in formset.empty_form.fields["action"].choices if choice[0]}


def test_a_domain_admin_is_offered_no_dangerous_action_and_posting_one_is_refused(client, member, acme):
    job = make_job("acme-job", (10, "testing.echo", {"text": "a"}), domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    response = client.get(change_url(job))
    offered = action_choices(response)
    dangerous = set(Action.objects.filter(dangerous=True).values_list("name", flat=True))
    assert dangerous and "core.shell" in dangerous
    assert "testing.echo" in offered and not offered & dangerous

    data = page_data(response)
    data.update({"lines-1-action": str(Action.objects.get(name="core.shell").pk),
                 "lines-1-parameters": '{"command": "id"}'})
    response = client.post(change_url(job), data)
    assert response.status_code == 200
    assert "Only a system administrator may add or change a line that runs core.shell" in response.content.decode()
    assert list(job.lines.values_list("action__name", flat=True)) == ["testing.echo"]


def test_a_system_admin_is_offered_every_available_action(client, admin_user):
    job = make_job("root-job", (10, "testing.echo", {"text": "a"}))
    client.force_login(admin_user)
    offered = action_choices(client.get(change_url(job)))
    assert set(Action.objects.available().values_list("name", flat=True)) <= offered


def test_a_domain_admin_saves_a_job_with_a_system_admins_shell_line_untouched(client, member, acme):
    """The shell line's own action stays a choice on its row: the unchanged line does not block the page."""
    job = make_job("acme-shell", (10, "core.shell", {"command": "echo hi"}), (20, "testing.echo", {"text": "a"}),
                   domain=acme)
    client.force_login(member("ann", acme, DomainMembership.ADMIN))
    response = client.get(change_url(job))
    shell = Action.objects.get(name="core.shell").pk
    assert response.content.decode().count(f'<option value="{shell}" selected>') == 1  # its own row only
    data = page_data(response)
    data["name"] = "Renamed by the domain admin"
    data[f"{line_rows(data)['a']}-parameters"] = '{"text": "b"}'
    response = client.post(change_url(job), data)
    assert response.status_code == 302
    assert list(JobLine.objects.filter(job=job).order_by("line_no").values_list("action__name", "parameters")) == [
        ("core.shell", {"command": "echo hi"}), ("testing.echo", {"text": "b"})]


def test_a_domain_admin_edits_help_in_the_table_without_touching_a_guarded_declaration(client, member, acme):
    """A parameter a system administrator's shell line uses keeps its type, choices and pattern through the table
    (jobs.authorship compares them); changing one there is refused with authorship's reason."""
    declared = [{"name": "who", "type": "str", "required": True, "pattern": "[a-z]+"},
                {"name": "mode", "type": "choice", "required": False, "choices": ["dry", "apply"], "default": "dry"}]
    job = make_job("acme-guarded", (10, "core.shell", {"command": 'clean "$JOBS_PARAM_WHO"'}), domain=acme,
                   params=declared)
    ann = member("ann", acme, DomainMembership.ADMIN)
    rows = ParamTableWidget._rows(declared)
    rows[1]["help"] = "Dry run first."
    response = post_change(client, ann, job, **table_rows(*rows))
    assert response.status_code == 302, job_form_errors(response)
    job.refresh_from_db()
    assert job.params == [declared[0], {**declared[1], "help": "Dry run first."}]

    rows[1]["choices"] = "dry, apply, force"
    response = post_change(client, ann, job, **table_rows(*rows))
    assert "only a system administrator may change its type, choices or pattern" in " ".join(
        job_form_errors(response)["params"])
