"""Properties of typed parameters (jobs/params.py): no input crashes, every invalid one states its rule.

``coerce`` returns a value of the parameter's Python type or raises ParameterError whose message is the
rule; ``clean_values`` raises nothing but a ValidationError keyed by parameter names;
``validate_param_specs`` raises nothing but ValidationError; ``to_json`` then ``coerce`` is the identity.
Text with NUL, which PostgreSQL cannot store, is refused with its own rule whatever the type.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from hypothesis import example, given
from hypothesis import strategies as st

from jobs.params import NUL_RULE, TYPES, ParameterError, clean_values, coerce, to_json, validate_param_specs
from tests.property_support import (
    json_values,
    nul_inside,
    prop_settings,
    strict_json_values,
    text,
)

RULES = {
    "str": "must be text",
    "int": "must be a whole number",
    "float": "must be a number",
    "bool": "must be true or false",
    "date": "must be a date as YYYY-MM-DD",
    "datetime": "must be a date and time as YYYY-MM-DDTHH:MM[:SS][+HH:MM]",
    "email": "must be a valid e-mail address",
    "json": "must be valid JSON",
    "secret": "must be text",
}
NAMES = ["days", "region", "day", "at", "dry_run", "ratio", "to", "payload", "note"]
SPEC_KEYS = ["name", "type", "default", "required", "choices", "help", "label"]

choices_lists = st.lists(st.one_of(text(), st.integers(-5, 5)), min_size=1, max_size=4)


@st.composite
def specs(draw, kind: str | None = None) -> dict:
    kind = kind or draw(st.sampled_from(TYPES))
    spec: dict[str, Any] = {"name": draw(st.sampled_from(NAMES)), "type": kind, "required": draw(st.booleans())}
    if kind == "choice":
        spec["choices"] = draw(choices_lists)
    return spec


def choice_rule(spec: dict) -> str:
    return f"must be one of: {', '.join(map(str, spec.get('choices', [])))}"


def rule_of(spec: dict) -> str:
    return choice_rule(spec) if spec["type"] == "choice" else RULES[spec["type"]]


def strictly_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def holds_nul(value: Any) -> bool:
    """NUL in the value, or in the JSON its text holds."""
    if nul_inside(value):
        return True
    try:
        return isinstance(value, str) and nul_inside(json.loads(value))
    except (ValueError, RecursionError):
        return False


def container_text(value: Any) -> bool:
    """Text a json parameter reads as JSON (an object or a list); any other text is a JSON string."""
    return isinstance(value, str) and value.strip().startswith(("{", "["))


def has_the_type(spec: dict, value: Any) -> bool:
    kind = spec["type"]
    if nul_inside(value):
        return False
    if kind in ("str", "choice", "email", "secret"):
        if type(value) is not str:
            return False
        if kind == "choice":
            return value in [str(c) for c in spec["choices"]]
        if kind == "email":
            validate_email(value)
            return value == value.strip()
        return True
    if kind == "int":
        return type(value) is int
    if kind == "float":
        return type(value) is float and math.isfinite(value)
    if kind == "bool":
        return type(value) is bool
    if kind == "date":
        return type(value) is dt.date
    if kind == "datetime":
        return isinstance(value, dt.datetime)
    return strictly_json(value)  # json: a value JSON can hold (no NaN, no Infinity)


def check_coerce(spec: dict, value: Any) -> None:
    """The property: the typed value, or ParameterError stating the rule; nothing else."""
    try:
        result = coerce(spec, value)
    except ParameterError as exc:
        message = str(exc)
        if value is None:
            assert spec["required"] and message == "this parameter is required"
        else:
            assert message == rule_of(spec) or (message == NUL_RULE and holds_nul(value)), (spec, value, message)
        return
    if value is None:
        assert result is None and not spec["required"]
    else:
        assert has_the_type(spec, result), (spec, value, result)


# --- coerce -------------------------------------------------------------------------------------------------------


@prop_settings(400)
@given(spec=specs(), value=json_values())
def test_coerce_returns_the_type_or_states_the_rule(spec, value):
    check_coerce(spec, value)


@prop_settings(150)
@given(spec=specs(), value=text())
def test_coerce_of_typed_text_returns_the_type_or_states_the_rule(spec, value):
    check_coerce(spec, value)


# BUG 1 (fixed): coerce(float) raised OverflowError for an int beyond the float range.
@prop_settings(10)
@given(spec=specs("float"), value=json_values())
@example(spec={"name": "ratio", "type": "float", "required": False}, value=10**400)
@example(spec={"name": "ratio", "type": "float", "required": True}, value=-(10**309))
def test_bug_coerce_float_overflow(spec, value):
    check_coerce(spec, value)


# BUG 2 (fixed): coerce(json) raised RecursionError for deeply nested JSON text.
@prop_settings(10)
@given(spec=specs("json"), depth=st.integers(1, 200_000))
@example(spec={"name": "payload", "type": "json", "required": False}, depth=100_000)
def test_bug_coerce_json_deep_nesting(spec, depth):
    check_coerce(spec, "[" * depth + "]" * depth)


# BUG 3 (fixed): coerce(json) accepted NaN/Infinity, which no JSON column can store.
@prop_settings(10)
@given(spec=specs("json"), value=json_values())
@example(spec={"name": "payload", "type": "json", "required": False}, value="NaN")
@example(spec={"name": "payload", "type": "json", "required": False}, value='{"a": Infinity}')
@example(spec={"name": "payload", "type": "json", "required": False}, value="1e400")
@example(spec={"name": "payload", "type": "json", "required": False}, value=[math.nan])
def test_bug_coerce_json_accepts_non_finite_numbers(spec, value):
    check_coerce(spec, value)



# --- round trip: to_json then coerce ------------------------------------------------------------------------------

# Whole minutes, as every real time zone (Python's fromisoformat drops the microseconds of an odder offset).
fixed_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
emails = st.sampled_from(["ops@example.com", "a.b+c@sub.example.org", "x@xn--bcher-kva.example", "z@[127.0.0.1]"])
CHOICES = ["north", "south", "7", "a b"]


def typed_values(kind: str) -> st.SearchStrategy:
    return {
        "str": text(nul=False),
        "secret": text(nul=False),
        "int": st.integers(),
        "float": st.floats(allow_nan=False, allow_infinity=False),
        "bool": st.booleans(),
        "date": st.dates(),
        "datetime": st.datetimes(timezones=st.none() | fixed_offsets),
        "choice": st.sampled_from(CHOICES),
        "email": emails | st.emails().filter(_django_accepts_email),
        # Text that opens an object or a list is read as one, so it is not a JSON string value.
        "json": strict_json_values(nul=False).filter(lambda v: v is not None and not container_text(v)),
    }[kind]


def _django_accepts_email(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


@st.composite
def typed(draw) -> tuple[dict, Any]:
    kind = draw(st.sampled_from(TYPES))
    spec = {"name": "p", "type": kind, "required": True}
    if kind == "choice":
        spec["choices"] = CHOICES
    return spec, draw(typed_values(kind))


def check_round_trip(spec: dict, value: Any) -> None:
    again = coerce(spec, to_json(value))
    assert again == value and type(again) is type(value), (spec, value, again)


@prop_settings(200)
@given(typed())
def test_to_json_then_coerce_gives_the_same_value(case):
    spec, value = case
    check_round_trip(spec, value)


@prop_settings(300)
@given(spec=specs(), value=json_values())
def test_coerce_is_idempotent_through_to_json(spec, value):
    """What a run stores (to_json of the typed value) cleans to the same value again, as a retry does."""
    try:
        result = coerce(spec, value)
    except ParameterError:
        return
    check_round_trip(spec, result)


# BUG 4 (fixed): a json parameter whose value is text did not survive to_json + coerce.
@prop_settings(10)
@given(value=strict_json_values(nul=False).filter(lambda v: v is not None and not container_text(v)))
@example(value="hello")
@example(value="123")
@example(value="")
def test_bug_json_text_value_round_trip(value):
    check_round_trip({"name": "payload", "type": "json", "required": True}, value)


# --- clean_values -------------------------------------------------------------------------------------------------


@st.composite
def declared(draw) -> list[dict]:
    """Valid declarations (as validate_param_specs returns them), with valid defaults or none."""
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    result = []
    for name in names:
        kind = draw(st.sampled_from(TYPES))
        spec = {"name": name, "type": kind, "required": draw(st.booleans())}
        if kind == "choice":
            spec["choices"] = CHOICES
        if kind != "secret" and draw(st.booleans()):  # a secret has no default (it would be stored in clear)
            spec["default"] = to_json(draw(typed_values(kind)))
        result.append(spec)
    return validate_param_specs(result)


raw_values = st.one_of(
    st.none(),
    st.dictionaries(st.one_of(st.sampled_from(NAMES), text()), json_values(), max_size=6),
)


def check_clean_values(declared_specs: list[dict], raw: dict | None) -> None:
    names = {spec["name"] for spec in declared_specs}
    try:
        values = clean_values(declared_specs, raw)
    except ValidationError as exc:
        errors = exc.message_dict
        assert errors and set(errors) <= names | set(raw or {})
        by_name = {spec["name"]: spec for spec in declared_specs}
        for name, messages in errors.items():
            assert messages and all(isinstance(m, str) and m for m in messages)
            if name not in by_name:
                assert messages == ["unknown parameter"]
            else:
                nul = {NUL_RULE} if holds_nul((raw or {}).get(name)) else set()
                assert messages[0] in {"this parameter is required", rule_of(by_name[name]), *nul}, (name, messages)
        return
    assert set(values) <= names
    assert not set(raw or {}) - names
    for spec in declared_specs:
        if spec["name"] in values:
            assert has_the_type(spec, values[spec["name"]]), (spec, values)
        else:
            assert not spec["required"]


@prop_settings(150)
@given(declared_specs=declared(), raw=raw_values)
def test_clean_values_raises_only_validation_errors_keyed_by_name(declared_specs, raw):
    check_clean_values(declared_specs, raw)


# BUG 1/2 (fixed): clean_values let OverflowError and RecursionError out of coerce.
@prop_settings(10)
@given(declared_specs=declared(), raw=raw_values)
@example(declared_specs=[{"name": "ratio", "type": "float", "required": False}], raw={"ratio": 10**400})
@example(declared_specs=[{"name": "payload", "type": "json", "required": False}], raw={"payload": "[{}" * 50_000})
def test_bug_clean_values_crashes(declared_specs, raw):
    check_clean_values(declared_specs, raw)


# --- validate_param_specs -----------------------------------------------------------------------------------------

spec_like = st.dictionaries(
    st.one_of(st.sampled_from(SPEC_KEYS), text()),
    st.one_of(st.sampled_from(NAMES + list(TYPES)), json_values(huge=False), choices_lists),
    max_size=6,
)
declarations = st.one_of(json_values(huge=False), st.lists(spec_like, max_size=4), st.lists(spec_like.map(
    lambda d: {"name": "p", **d}), max_size=3))


def check_validate_param_specs(raw: Any) -> None:
    try:
        cleaned = validate_param_specs(raw)
    except ValidationError as exc:
        assert exc.messages and all(isinstance(m, str) and m for m in exc.messages)
        return
    assert isinstance(cleaned, list)
    seen = set()
    for spec in cleaned:
        assert spec["name"].isidentifier() and spec["name"] not in seen
        seen.add(spec["name"])
        assert spec["type"] in TYPES and isinstance(spec["required"], bool)
        if "default" in spec:
            check_coerce(spec, spec["default"])


@prop_settings(150)
@given(raw=declarations)
def test_validate_param_specs_raises_only_validation_errors(raw):
    check_validate_param_specs(raw)


# BUG 5 (fixed): validate_param_specs raised TypeError for a key that is not text.
@prop_settings(10)
@given(raw=declarations)
@example(raw=[{"name": "days", 1: "x"}])
@example(raw=[{"name": "days", None: "x", "colour": "red"}])
def test_bug_validate_param_specs_non_text_keys(raw):
    check_validate_param_specs(raw)


# BUG 1 (fixed): validate_param_specs let coerce's OverflowError out for a float default.
@prop_settings(10)
@given(raw=declarations)
@example(raw=[{"name": "ratio", "type": "float", "default": 10**400}])
def test_bug_validate_param_specs_float_default_overflow(raw):
    check_validate_param_specs(raw)
