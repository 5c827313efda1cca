"""Context variables in line parameters (jobs/context.py)."""
from __future__ import annotations

import datetime as dt

import pytest

from jobs.context import (
    BUILTIN_VARIABLES,
    build_variables,
    known_variables,
    resolve,
    unknown_variables,
    variables_in,
)
from jobs.models import Job, JobLine
from tests.helpers import make_job

UTC = dt.UTC


def test_known_variables_are_the_builtins_and_the_job_params():
    assert known_variables([]) == {"today", "yesterday", "now", "job.identifier", "domain"}
    assert known_variables(["days", "region"]) == set(BUILTIN_VARIABLES) | {"param.days", "param.region"}


def test_variables_in_finds_names_in_nested_strings():
    value = {"a": "echo ${today} ${param.days}", "b": ["${job.identifier}", {"c": "x${domain}y"}], "d": 5}
    assert variables_in(value) == {"today", "param.days", "job.identifier", "domain"}


def test_variables_in_ignores_escaped_and_non_strings():
    assert variables_in("price: $${today} and $5") == set()
    assert variables_in(None) == set()
    assert variables_in(12) == set()


def test_variables_in_does_not_look_at_dict_keys():
    assert variables_in({"${today}": "plain"}) == set()


def test_unknown_variables_are_sorted_and_exclude_known_ones():
    value = ["${zeta} ${today}", "${alpha}", "${param.days}"]
    assert unknown_variables(value, known_variables(["days"])) == ["alpha", "zeta"]
    assert unknown_variables(value, known_variables([])) == ["alpha", "param.days", "zeta"]


def test_a_variable_with_spaces_is_not_the_same_name():
    assert unknown_variables("${ today }", known_variables([])) == [" today "]


def test_build_variables_in_the_given_time_zone():
    now = dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    variables = build_variables(job_identifier="report", domain_slug="acme", params={"days": 7},
                                tz_name="Europe/Madrid", now=now)
    assert variables == {
        "today": "2026-03-02",
        "yesterday": "2026-03-01",
        "now": "2026-03-02T00:30:00+01:00",
        "job.identifier": "report",
        "domain": "acme",
        "param.days": 7,
    }


def test_build_variables_default_to_the_site_time_zone(settings):
    settings.TIME_ZONE = "America/New_York"
    now = dt.datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    variables = build_variables(job_identifier="j", domain_slug=None, params={}, now=now)
    assert variables["today"] == "2025-12-31"
    assert variables["yesterday"] == "2025-12-30"
    assert variables["now"] == "2025-12-31T22:00:00-05:00"
    assert variables["domain"] == ""


def test_build_variables_without_now_uses_the_current_time():
    before = dt.datetime.now(UTC)
    variables = build_variables(job_identifier="j", domain_slug=None, params={}, tz_name="UTC")
    after = dt.datetime.now(UTC)
    assert variables["today"] in {before.date().isoformat(), after.date().isoformat()}
    assert before.replace(microsecond=0) <= dt.datetime.fromisoformat(variables["now"]) <= after


def test_resolve_substitutes_inside_text_and_nested_structures():
    variables = {"today": "2026-11-20", "param.days": 7, "job.identifier": "weekly"}
    value = {"command": "echo ${param.days} ${today}", "args": ["--job=${job.identifier}", 3, None]}
    assert resolve(value, variables) == {"command": "echo 7 2026-11-20", "args": ["--job=weekly", 3, None]}


def test_resolve_a_whole_variable_keeps_its_type():
    variables = {"param.days": 7, "param.flag": False, "param.items": [1, 2]}
    assert resolve("${param.days}", variables) == 7
    assert resolve("${param.flag}", variables) is False
    assert resolve(["${param.items}"], variables) == [[1, 2]]


def test_resolve_writes_a_literal_for_the_escape():
    assert resolve("$${today} is ${today}", {"today": "2026-11-20"}) == "${today} is 2026-11-20"
    assert resolve("$${today}", {}) == "${today}"


def test_resolve_leaves_lone_dollars_and_braces_alone():
    assert resolve("costs $5 {x} $x", {}) == "costs $5 {x} $x"


def test_resolve_an_unknown_variable_raises_key_error():
    with pytest.raises(KeyError):
        resolve("${nope}", {})


def test_resolve_does_not_change_its_input():
    value = {"a": ["${today}"]}
    resolve(value, {"today": "x"})
    assert value == {"a": ["${today}"]}


@pytest.mark.django_db
def test_line_run_parameters_resolve_variables_and_type_them():
    job = make_job("ctx", (10, "testing.typed", {"count": "${param.days}", "day": "${today}", "mode": "slow"}),
                   params=[{"name": "days", "type": "int", "required": True}])
    variables = build_variables(job_identifier=job.identifier, domain_slug=None,
                                params=job.clean_run_parameters({"days": "3"}), tz_name="UTC",
                                now=dt.datetime(2026, 5, 4, 12, tzinfo=UTC))
    line = job.lines.get()
    assert line.run_parameters(variables) == {"count": 3, "ratio": 0.5, "flag": False, "day": "2026-05-04",
                                              "mode": "slow"}


@pytest.mark.django_db
def test_an_optional_param_left_out_still_resolves():
    job = make_job("optional-param", (10, "testing.echo", {"text": "note: ${param.note}"}),
                   params=[{"name": "note", "type": "str"}])
    line: JobLine = job.lines.get()
    line.full_clean()  # the line is valid: ${param.note} is a declared parameter
    values = Job.objects.get(pk=job.pk).clean_run_parameters({})
    variables = build_variables(job_identifier=job.identifier, domain_slug=None, params=values)
    assert line.run_parameters(variables)["text"] == "note: "
