"""Validation of job lines: JobLine.clean and JobLine.validation_errors."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from jobs import registry
from jobs.models import Action, FilterTemplate, Job, JobLine

pytestmark = pytest.mark.django_db

PARAMS = [{"name": "days", "type": "int", "default": 7}, {"name": "region", "type": "str"}]


@pytest.fixture
def job():
    Action.objects.sync_with_registry()
    return Job.objects.create(identifier="validated", name="Validated", params=PARAMS)


def line_for(job: Job, action: str | None, parameters, **fields) -> JobLine:
    action_row = Action.objects.get(name=action) if action else None
    return JobLine(job=job, line_no=10, action=action_row, parameters=parameters, **fields)


def errors(job: Job, action: str | None, parameters, **fields) -> dict[str, list[str]]:
    return line_for(job, action, parameters, **fields).validation_errors(job.param_names())


def test_a_valid_line_has_no_errors(job):
    assert errors(job, "testing.typed", {"count": 3, "ratio": 1.5, "flag": True, "day": "x", "mode": "slow"}) == {}
    line_for(job, "testing.typed", {"count": 3}).full_clean()


def test_values_given_as_text_are_accepted_when_they_convert(job):
    assert errors(job, "testing.typed", {"count": "3", "ratio": "0.1", "flag": "yes"}) == {}


def test_unknown_action_parameter(job):
    assert errors(job, "testing.echo", {"text": "hi", "colour": "red", "another": 1}) == {
        "parameters": ["another: unknown parameter of testing.echo", "colour: unknown parameter of testing.echo"]}


def test_missing_required_parameter(job):
    assert errors(job, "testing.typed", {"ratio": 1}) == {"parameters": ["count: this parameter is required"]}
    assert errors(job, "core.shell", {"command": None}) == {"parameters": ["command: this parameter is required"]}


def test_optional_parameters_may_be_left_out(job):
    assert errors(job, "testing.echo", {}) == {}


@pytest.mark.parametrize(("parameters", "message"), [
    ({"count": "three"}, "count: must be a whole number"),
    ({"count": 2.5}, "count: must be a whole number"),
    ({"count": True}, "count: must be a whole number"),
    ({"count": 1, "ratio": "half"}, "ratio: must be a number"),
    ({"count": 1, "flag": "maybe"}, "flag: must be true or false"),
    ({"count": 1, "mode": "medium"}, "mode: must be one of: fast, slow"),
    ({"count": 1, "day": {"not": "text"}}, "day: must be text"),
])
def test_wrong_type(job, parameters, message):
    assert errors(job, "testing.typed", parameters) == {"parameters": [message]}


def test_every_problem_is_reported(job):
    assert errors(job, "testing.typed", {"ratio": "x", "mode": "medium", "extra": 1}) == {"parameters": [
        "extra: unknown parameter of testing.typed",
        "count: this parameter is required",
        "ratio: must be a number",
        "mode: must be one of: fast, slow",
    ]}


def test_unknown_variable(job):
    assert errors(job, "core.shell", {"command": "echo ${tomorrow} ${param.nope} ${today}"}) == {
        "parameters": ["command: unknown variable ${param.nope}, ${tomorrow}"]}


@pytest.mark.parametrize("command", [
    "echo ${today} ${yesterday} ${now}",
    "echo ${job.identifier} in ${domain}",
    "echo ${param.days} ${param.region}",
    "echo $${not_a_variable}",
])
def test_known_variables_are_allowed(job, command):
    assert errors(job, "testing.echo", {"text": command}) == {}


def test_a_param_variable_needs_the_job_to_declare_it(job):
    other = Job.objects.create(identifier="no-params", name="No params")
    assert errors(other, "core.shell", {"command": "echo ${param.days}"}) == {
        "parameters": ["command: unknown variable ${param.days}"]}


def test_a_whole_variable_is_not_type_checked_before_the_run(job):
    assert errors(job, "testing.typed", {"count": "${param.days}"}) == {}


def test_variables_are_found_in_nested_json_values():
    Action.objects.sync_with_registry()
    job = Job.objects.create(identifier="nested", name="Nested")
    line = JobLine(job=job, line_no=1, action=Action.objects.get(name="testing.echo"),
                   parameters={"text": "${today} ${oops}"})
    assert line.validation_errors([]) == {"parameters": ["text: unknown variable ${oops}"]}


def test_clean_uses_the_params_of_the_line_job(job):
    line_for(job, "testing.echo", {"text": "echo ${param.region}"}).clean()
    with pytest.raises(ValidationError) as info:
        line_for(job, "core.shell", {"command": "echo ${param.zone}"}).clean()
    assert info.value.message_dict == {"parameters": ["command: unknown variable ${param.zone}"]}


def test_full_clean_reports_parameter_errors(job):
    with pytest.raises(ValidationError) as info:
        line_for(job, "testing.typed", {"count": "many"}).full_clean()
    assert info.value.message_dict["parameters"] == ["count: must be a whole number"]


def test_clean_of_a_line_without_a_job_knows_no_params():
    Action.objects.sync_with_registry()
    line = JobLine(line_no=1, action=Action.objects.get(name="core.shell"), parameters={"command": "${param.x}"})
    with pytest.raises(ValidationError) as info:
        line.clean()
    assert info.value.message_dict == {"parameters": ["command: unknown variable ${param.x}"]}


def test_a_line_needs_an_action(job):
    assert errors(job, None, {}) == {"action": ["Choose the action this line runs."]}


def test_parameters_must_be_an_object(job):
    assert errors(job, "testing.echo", ["hi"]) == {"parameters": ["Must be a JSON object of parameter: value."]}


def test_an_unavailable_action_is_an_error(job):
    Action.objects.filter(name="testing.echo").update(available=False)
    assert errors(job, "testing.echo", {}) == {
        "action": ["The action testing.echo is not available in this installation."]}


def test_an_action_whose_code_is_gone_is_an_error(job, monkeypatch):
    monkeypatch.setattr(registry, "_registry", {k: v for k, v in registry._registry.items() if k != "testing.warn"})
    assert errors(job, "testing.warn", {}) == {
        "action": ["The action testing.warn is not available in this installation."]}


# --- filter lines -------------------------------------------------------------------------------------------------


@pytest.fixture
def users_template():
    return FilterTemplate.objects.create(name="Users", model="auth.User", definition={"is_active": True})


def test_a_filter_line_needs_a_template(job):
    assert errors(job, None, {}, is_filter=True) == {
        "filter_template": ["A filter line needs a filter template (it names the model)."]}


def test_a_valid_filter_line(job, users_template):
    definition = {"username__startswith": "${param.region}", "date_joined__lte": "${now}",
                  "groups__name__in": ["ops"], "is_staff": False}
    assert errors(job, None, {}, is_filter=True, filter_template=users_template, filter_definition=definition) == {}


@pytest.mark.parametrize("lookup", ["date_joined__date__lte", "date_joined__year", "last_login__date"])
def test_a_filter_line_may_use_transforms(job, users_template, lookup):
    definition = {lookup: 2026 if lookup.endswith("year") else "${today}"}
    assert errors(job, None, {}, is_filter=True, filter_template=users_template, filter_definition=definition) == {}


def test_a_filter_line_with_unknown_fields_and_variables(job, users_template):
    definition = {"shoe_size": 42, "username": "${param.zone}"}
    assert errors(job, None, {}, is_filter=True, filter_template=users_template, filter_definition=definition) == {
        "filter_definition": ["shoe_size: auth.User has no field 'shoe_size'",
                              "username: unknown variable ${param.zone}"]}


def test_a_filter_template_with_an_unknown_model(job):
    template = FilterTemplate.objects.create(name="Ghosts", model="nowhere.Ghost")
    assert errors(job, None, {}, is_filter=True, filter_template=template) == {
        "filter_template": ["unknown model 'nowhere.Ghost': use app_label.ModelName of an installed app"]}


def test_secret_fields_may_not_be_filtered_on():
    from django.contrib.auth import get_user_model

    from jobs.filters import definition_errors

    errors = definition_errors(get_user_model(), {"password__startswith": "pbkdf2"}, set())
    assert errors == ["password__startswith: 'password' may not be used in a filter"]


def test_following_relations_is_seen():
    from jobs.filters import relations_followed
    from results.models import JobResult

    assert relations_followed(JobResult, {"job__domain__slug": "x", "status": "error"}) == ["job__domain__slug"]


@pytest.mark.parametrize(("definition", "message"), [
    ({"id__id": 1}, "id__id: 'id' is not a lookup or transform of id"),
    ({"username__email": "a@example.com"}, "username__email: 'email' is not a lookup or transform of username"),
    ({"groups__user__groups__user__groups": 1}, "groups__user__groups__user__groups: follows more than 4 relations"),
    ({"id__iexact": 5}, "id__iexact: 'iexact' compares text and id is not text: use exact"),
    ({"last_login__week_day__contains": 1},
     "last_login__week_day__contains: 'contains' compares text and week_day is a number: use exact, in, gt or lt"),
    ({"username": "a\x00b"}, "username: must not contain NUL characters"),
    ({"id__gt": float("nan")}, "id__gt: must not hold NaN or Infinity (JSON has no such numbers)"),
])
def test_filter_keys_and_values_the_database_cannot_run_are_refused(definition, message):
    from django.contrib.auth import get_user_model

    from jobs.filters import definition_errors

    assert definition_errors(get_user_model(), definition, set()) == [message]


@pytest.mark.parametrize(("definition", "detail"), [
    ({"id": "abc"}, "expected a number but got 'abc'"),
    ({"is_active": "maybe"}, "must be either True or False"),
    ({"id__in": 5}, "'in' needs a list of values"),
    ({"id__range": [1]}, "'range' needs a list of two values: [low, high]"),
    ({"username__isnull": "x"}, "'isnull' needs true or false"),
    ({"date_joined__gte": "yesterday"}, "invalid format"),
    ({"last_login__iso_year": 0}, "out of range"),
    ({"username__regex": "("}, "regular expression"),
    ({"username__regex": []}, "a regular expression must be text"),
])
def test_filter_values_of_the_wrong_type_are_refused_when_saved(definition, detail):
    from django.contrib.auth import get_user_model

    from jobs.filters import definition_errors

    [message] = definition_errors(get_user_model(), definition, set())
    key = next(iter(definition))
    assert message.startswith(f"{key}: ") and detail in message


def test_filter_values_with_variables_are_checked_when_the_run_resolves_them():
    from django.contrib.auth import get_user_model

    from jobs.filters import definition_errors

    assert definition_errors(get_user_model(), {"id__regex": "${param.days}", "id": "${today}"}, {"param.days",
                                                                                                   "today"}) == []


def test_a_to_many_filter_hands_each_record_over_once():
    from django.contrib.auth.models import Group, User

    from jobs.filters import RecordSet, queryset_for

    ops, dev = Group.objects.create(name="ops"), Group.objects.create(name="dev")
    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
    alice.groups.add(ops, dev)
    bob.groups.add(ops)
    records = RecordSet(queryset_for("auth.User", {}, {"groups__name__in": ["ops", "dev"]}, {}))
    assert [user.pk for batch in records.batches(1) for user in batch] == [alice.pk, bob.pk]
    assert records.count() == 2


def test_a_regex_given_a_number_by_a_variable_runs_as_text():
    from django.contrib.auth.models import User

    from jobs.filters import queryset_for

    user = User.objects.create(username="u7")
    assert list(queryset_for("auth.User", {}, {"id__regex": "${param.days}"}, {"param.days": user.pk})) == [user]
