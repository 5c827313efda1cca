"""Typed parameters: coerce, clean_values and validate_param_specs (jobs/params.py)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError

from jobs.params import ParameterError, clean_values, coerce, to_json, validate_param_specs


def spec(kind: str, **extra) -> dict:
    return {"name": "p", "type": kind, "required": False, **extra}


# --- coerce -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("7", 7), (" 42 ", 42), (3, 3), (4.0, 4), ("-5", -5)])
def test_coerce_int_accepts_whole_numbers(raw, expected):
    assert coerce(spec("int"), raw) == expected
    assert type(coerce(spec("int"), raw)) is int


@pytest.mark.parametrize("raw", ["1.5", 2.5, "seven", True, False, [], {}])
def test_coerce_int_rejects_anything_but_a_whole_number(raw):
    with pytest.raises(ParameterError, match="must be a whole number"):
        coerce(spec("int"), raw)


@pytest.mark.parametrize(("raw", "expected"), [("0.25", 0.25), (" 3 ", 3.0), (2, 2.0), (1.5, 1.5), ("1e3", 1000.0)])
def test_coerce_float_accepts_numbers(raw, expected):
    assert coerce(spec("float"), raw) == expected


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "-inf", float("nan"), True, ""])
def test_coerce_float_rejects_non_finite_and_non_numbers(raw):
    with pytest.raises(ParameterError, match="must be a number"):
        coerce(spec("float"), raw)


@pytest.mark.parametrize("raw", ["true", "TRUE", "yes", "on", "1", "y", "t", True, 1])
def test_coerce_bool_true_spellings(raw):
    assert coerce(spec("bool"), raw) is True


@pytest.mark.parametrize("raw", ["false", "No", "off", "0", "n", "f", "", False, 0])
def test_coerce_bool_false_spellings(raw):
    assert coerce(spec("bool"), raw) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "yess"])
def test_coerce_bool_rejects_other_text(raw):
    with pytest.raises(ParameterError, match="must be true or false"):
        coerce(spec("bool"), raw)


def test_coerce_str_keeps_text_and_stringifies_scalars():
    assert coerce(spec("str"), "hello ") == "hello "
    assert coerce(spec("str"), 12) == "12"


@pytest.mark.parametrize("raw", [{"a": 1}, [1, 2]])
def test_coerce_str_rejects_objects_and_lists(raw):
    with pytest.raises(ParameterError, match="must be text"):
        coerce(spec("str"), raw)


def test_coerce_date_from_text_date_and_datetime():
    assert coerce(spec("date"), "2026-11-20") == dt.date(2026, 11, 20)
    assert coerce(spec("date"), dt.date(2026, 1, 2)) == dt.date(2026, 1, 2)
    assert coerce(spec("date"), dt.datetime(2026, 1, 2, 13, 45)) == dt.date(2026, 1, 2)


@pytest.mark.parametrize("raw", ["2026-13-01", "20th of May", "2026-02-30", 5])
def test_coerce_date_rejects_non_dates(raw):
    with pytest.raises(ParameterError, match="YYYY-MM-DD"):
        coerce(spec("date"), raw)


def test_coerce_datetime_keeps_the_offset():
    value = coerce(spec("datetime"), "2026-11-20T18:30:00+01:00")
    assert value == dt.datetime(2026, 11, 20, 17, 30, tzinfo=dt.UTC)
    assert value.utcoffset() == dt.timedelta(hours=1)


def test_coerce_datetime_rejects_garbage():
    with pytest.raises(ParameterError, match="date and time"):
        coerce(spec("datetime"), "tomorrow at noon")


def test_coerce_choice_accepts_a_listed_choice():
    assert coerce(spec("choice", choices=["north", "south"]), "south") == "south"


def test_coerce_choice_rejects_others_and_lists_the_choices():
    with pytest.raises(ParameterError, match="must be one of: north, south"):
        coerce(spec("choice", choices=["north", "south"]), "east")


def test_coerce_email():
    assert coerce(spec("email"), " ops@example.com ") == "ops@example.com"
    with pytest.raises(ParameterError, match="valid e-mail"):
        coerce(spec("email"), "not-an-address")


def test_coerce_json_parses_text_and_keeps_structures():
    assert coerce(spec("json"), '{"a": [1, 2]}') == {"a": [1, 2]}
    assert coerce(spec("json"), [1, "x"]) == [1, "x"]
    with pytest.raises(ParameterError, match="must be valid JSON"):
        coerce(spec("json"), "{not json")


def test_coerce_json_keeps_other_text_as_a_json_string():
    # What a run stores (to_json) is the text itself, so it must clean to the same text on a retry.
    for text in ("hello", "123", "", "true", '"quoted"'):
        assert coerce(spec("json"), text) == text


@pytest.mark.parametrize("raw", ["[NaN]", '{"a": Infinity}', "[1e400]", [float("inf")], {"a": [float("nan")]},
                                 "[" * 5000 + "]" * 5000, "[" * 101 + "]" * 101, {1: "not a text key"}])
def test_coerce_json_refuses_what_no_json_column_stores(raw):
    with pytest.raises(ParameterError) as info:
        coerce(spec("json"), raw)
    assert str(info.value) == "must be valid JSON"


def test_coerce_json_accepts_nesting_up_to_the_limit():
    assert coerce(spec("json"), "[" * 100 + "]" * 100) == json.loads("[" * 100 + "]" * 100)


@pytest.mark.parametrize("raw", [10**400, -(10**309)])
def test_coerce_float_refuses_an_int_beyond_the_float_range(raw):
    with pytest.raises(ParameterError) as info:
        coerce(spec("float"), raw)
    assert str(info.value) == "must be a number"


@pytest.mark.parametrize(("kind", "raw"), [("str", "a\x00b"), ("json", {"k\x00": 1}), ("json", '["\\u0000"]'),
                                           ("choice", "\x00")])
def test_coerce_refuses_nul_characters_postgresql_cannot_store(kind, raw):
    with pytest.raises(ParameterError) as info:
        coerce(spec(kind, choices=["\x00"]), raw)
    assert str(info.value) == "must not contain NUL characters"


def test_clean_values_reports_overflow_and_deep_nesting_by_name():
    specs = [{"name": "ratio", "type": "float", "required": False},
             {"name": "payload", "type": "json", "required": False}]
    with pytest.raises(ValidationError) as info:
        clean_values(specs, {"ratio": 10**400, "payload": "[{}" * 50_000})
    assert info.value.message_dict == {"ratio": ["must be a number"], "payload": ["must be valid JSON"]}


def test_coerce_none_is_none_unless_required():
    assert coerce(spec("int"), None) is None
    with pytest.raises(ParameterError, match="required"):
        coerce(spec("int", required=True), None)


def test_parameter_error_is_a_value_error():
    assert issubclass(ParameterError, ValueError)


# --- clean_values -------------------------------------------------------------------------------------------------

SPECS = [
    {"name": "days", "type": "int", "required": False, "default": 7},
    {"name": "region", "type": "choice", "choices": ["north", "south"], "required": True},
    {"name": "note", "type": "str", "required": False},
]


def test_clean_values_types_values_and_applies_defaults():
    assert clean_values(SPECS, {"region": "north"}) == {"days": 7, "region": "north"}
    assert clean_values(SPECS, {"region": "south", "days": "30", "note": "hi"}) == {
        "days": 30, "region": "south", "note": "hi"}


def test_clean_values_missing_required_is_an_error_naming_it():
    with pytest.raises(ValidationError) as info:
        clean_values(SPECS, {})
    assert info.value.message_dict == {"region": ["this parameter is required"]}


def test_clean_values_blank_required_non_text_counts_as_missing():
    with pytest.raises(ValidationError) as info:
        clean_values(SPECS, {"region": ""})
    assert info.value.message_dict == {"region": ["this parameter is required"]}


def test_clean_values_blank_optional_without_default_is_left_out():
    specs = [{"name": "limit", "type": "int", "required": False}]
    assert clean_values(specs, {"limit": ""}) == {}


def test_clean_values_blank_non_text_takes_the_default_like_a_missing_value():
    # `runjob --param days=` or the API's {"days": ""}: blank counts as missing, and missing takes the default.
    assert clean_values(SPECS, {"region": "north"}) == {"days": 7, "region": "north"}
    assert clean_values(SPECS, {"region": "north", "days": ""}) == {"days": 7, "region": "north"}


def test_clean_values_blank_text_is_kept():
    assert clean_values(SPECS, {"region": "north", "note": ""})["note"] == ""


def test_clean_values_reports_every_bad_parameter_at_once():
    with pytest.raises(ValidationError) as info:
        clean_values(SPECS, {"days": "a week", "region": "east", "colour": "red"})
    assert info.value.message_dict == {
        "days": ["must be a whole number"],
        "region": ["must be one of: north, south"],
        "colour": ["unknown parameter"],
    }


def test_clean_values_may_ignore_unknown_names():
    assert clean_values(SPECS, {"region": "north", "colour": "red"}, allow_unknown=True) == {
        "days": 7, "region": "north"}


def test_clean_values_with_no_specs_and_no_values():
    assert clean_values([], None) == {}
    assert clean_values([], {}) == {}


def test_to_json_writes_dates_as_iso_text():
    assert to_json(dt.date(2026, 1, 2)) == "2026-01-02"
    assert to_json(dt.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert to_json(5) == 5


# --- validate_param_specs -----------------------------------------------------------------------------------------


def test_validate_param_specs_normalizes_entries():
    cleaned = validate_param_specs([
        {"name": "days", "type": "int", "default": 7},
        {"name": "region", "type": "choice", "choices": ["north", "south"], "required": True, "help": "Where"},
        {"name": "note"},
    ])
    assert cleaned == [
        {"name": "days", "type": "int", "required": False, "default": 7},
        {"name": "region", "type": "choice", "required": True, "choices": ["north", "south"], "help": "Where"},
        {"name": "note", "type": "str", "required": False},
    ]


@pytest.mark.parametrize("empty", [None, "", []])
def test_validate_param_specs_empty_is_no_params(empty):
    assert validate_param_specs(empty) == []


@pytest.mark.parametrize(("specs", "message"), [
    ({"name": "days"}, "must be a list"),
    ("days", "must be a list"),
    ([{"type": "int"}], "parameter 1: needs a name"),
    ([{"name": "ok"}, "days"], "parameter 2: needs a name"),
    ([{"name": "two words"}], "parameter 'two words': the name must be letters, digits and _"),
    ([{"name": "days"}, {"name": "days", "type": "int"}], "parameter 'days': declared twice"),
    ([{"name": "who"}, {"name": "WHO"}], "parameter 'WHO': differs from 'who' only in case; both would reach shell "
                                         "commands as $JOBS_PARAM_WHO"),
    ([{"name": "día"}], "parameter 'día': the name must be ASCII letters, digits and _ (shell commands read it as "
                        "$JOBS_PARAM_DÍA)"),
    ([{"name": "days", "typo": "int"}], "parameter 'days': unknown keys typo"),
    ([{"name": "days", "type": "integer"}], "parameter 'days': type must be one of"),
    ([{"name": "region", "type": "choice"}], "parameter 'region': a choice needs a non-empty list of choices"),
    ([{"name": "region", "type": "choice", "choices": []}], "a choice needs a non-empty list"),
    ([{"name": "region", "type": "choice", "choices": "north"}], "a choice needs a non-empty list"),
    ([{"name": "days", "type": "int", "default": "a week"}], "parameter 'days': the default must be a whole number"),
    ([{"name": "region", "type": "choice", "choices": ["n"], "default": "s"}], "the default must be one of: n"),
    ([{"name": "when", "type": "date", "default": "yesterday"}], "parameter 'when': the default must be a date"),
    ([{"name": "days", 1: "x", None: "y"}], "parameter 'days': unknown keys 1, None"),
    ([{"name": "ratio", "type": "float", "default": 10**400}], "parameter 'ratio': the default must be a number"),
    ([{"name": "note", "help": "a\x00b"}], "parameter 'note': must not contain NUL characters"),
    ([{"name": "region", "type": "choice", "choices": [float("nan")]}], "parameter 'region': must not hold NaN"),
])
def test_validate_param_specs_errors_name_the_entry_and_the_rule(specs, message):
    with pytest.raises(ValidationError) as info:
        validate_param_specs(specs)
    assert message in info.value.messages[0]


@pytest.mark.parametrize("kind", ["str", "int", "float", "bool", "date", "datetime", "email", "json"])
def test_validate_param_specs_accepts_every_type(kind):
    assert validate_param_specs([{"name": "x", "type": kind}])[0]["type"] == kind


def test_the_run_form_refuses_json_nested_too_deeply_as_a_field_error():
    from jobs.forms import RunParametersForm

    form = RunParametersForm([{"name": "payload", "type": "json"}], {"payload": "[" * 100_000 + "]" * 100_000})
    assert not form.is_valid()
    assert form.errors["payload"] == ["Enter valid JSON (it is nested too deeply)."]
