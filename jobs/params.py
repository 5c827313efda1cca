"""Typed parameters: the specs of action arguments and of a job's run-time params.

A spec is a plain dict (it is stored as JSON on Action and Job rows):
``{"name", "type", "required", "default", "choices", "help"}``, and for a job's
``str`` or ``email`` parameter an optional ``pattern``: a regular expression the
whole value must match (RE2 syntax, linear time: no pattern can hang a run). ``coerce`` turns a
raw value (from JSON, a form or the command line) into the typed value, or raises
``ParameterError`` with a message that states the rule.

A ``json`` value given as text is read as JSON when it is an object or a list
(``{...}`` or ``[...]``); any other text is the value itself, a JSON string, so
that what a run stores (``to_json``) cleans to the same value again.
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import math
import types
import typing
from decimal import Decimal
from typing import Any

import re2
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from .secrets import Secret
from .text import NUL_RULE, SURROGATE_RULE, text_problem

TYPES = ("str", "int", "float", "bool", "date", "datetime", "choice", "email", "json", "secret")
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}
# Deeper JSON is refused: Python's parser and encoder recurse, and no job needs it.
MAX_JSON_DEPTH = 100
# A pattern is matched by RE2 (linear in the value's length, no backtracking); the limits keep it cheap anyway.
PATTERN_TYPES = ("str", "email")
MAX_PATTERN_LENGTH = 500
MAX_PATTERN_VALUE_LENGTH = 10_000


class ParameterError(ValueError):
    """A value that breaks its parameter's rule; the message states the rule."""


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def spec_from_annotation(name: str, annotation: Any, default: Any) -> dict:
    """The spec of one argument of an action function."""
    annotation, optional = _strip_optional(annotation)
    spec: dict[str, Any] = {"name": name, "type": "str", "required": default is inspect.Parameter.empty}
    if typing.get_origin(annotation) is typing.Literal:
        spec["type"] = "choice"
        spec["choices"] = [str(c) for c in typing.get_args(annotation)]
    elif annotation is Secret:
        spec["type"] = "secret"
    else:
        spec["type"] = {
            str: "str", int: "int", float: "float", Decimal: "float", bool: "bool",
            dt.date: "date", dt.datetime: "datetime", dict: "json", list: "json",
        }.get(annotation if annotation is not inspect.Parameter.empty else str, "json")
        if typing.get_origin(annotation) in (dict, list):
            spec["type"] = "json"
    if default is not inspect.Parameter.empty:
        spec["default"] = _jsonable(default)
    if optional:
        spec["required"] = False
    return spec


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def coerce(spec: dict, value: Any) -> Any:
    """Return ``value`` converted to the spec's type, or raise ParameterError."""
    kind = spec.get("type", "str")
    if value is None:
        if spec.get("required"):
            raise ParameterError("this parameter is required")
        return None
    try:
        converted = _CONVERTERS[kind](value)
    except (TypeError, ValueError, OverflowError, ValidationError) as exc:
        raise ParameterError(_rule(spec)) from exc
    _refuse_unstorable(spec, converted)
    if spec.get("pattern") and kind in PATTERN_TYPES:
        check_pattern(spec["pattern"], converted)
    if kind == "choice" and str(converted) not in [str(c) for c in spec.get("choices", [])]:
        raise ParameterError(f"must be one of: {', '.join(map(str, spec.get('choices', [])))}")
    return converted


def compiled_pattern(pattern: str):
    """The RE2 program of ``pattern``; ParameterError (with RE2's reason) when it is not a valid expression."""
    if not isinstance(pattern, str) or not pattern:
        raise ParameterError("pattern must be a non-empty regular expression")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ParameterError(f"pattern must be at most {MAX_PATTERN_LENGTH} characters")
    try:
        return _program(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ParameterError(f"pattern is not a valid regular expression ({reason})") from None


@functools.lru_cache(maxsize=256)
def _program(pattern: str):
    options = re2.Options()
    options.log_errors = False  # the reason goes into the error message, not to stderr
    return re2.compile(pattern, options=options)


def check_pattern(pattern: str, value: Any) -> None:
    """Raise ParameterError unless the whole of ``value`` matches ``pattern``."""
    text = str(value)
    if len(text) > MAX_PATTERN_VALUE_LENGTH:
        raise ParameterError(f"must be at most {MAX_PATTERN_VALUE_LENGTH} characters")
    if compiled_pattern(pattern).fullmatch(text) is None:
        raise ParameterError(f"must match the pattern {pattern}")


def _refuse_unstorable(spec: dict, converted: Any) -> None:
    """Text and JSON a JSON column cannot store (NUL, NaN, ...) break the rule at once, not at save."""
    if spec.get("type", "str") not in ("str", "choice", "email", "json", "secret"):
        return
    problem = json_problem(converted)
    if problem in (NUL_RULE, SURROGATE_RULE):
        raise ParameterError(problem)
    if problem:
        raise ParameterError(_rule(spec))


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as JSON on every supported database, or None.

    Iterative, so neither deep nesting nor a cycle (YAML aliases) can exhaust the stack.
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"must not be nested more than {MAX_JSON_DEPTH} levels deep"
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "must not hold NaN or Infinity (JSON has no such numbers)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"keys must be text, not {key!r}"
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif item is not None and not isinstance(item, int):
            return f"{type(item).__name__} is not a JSON value"
    return None


def _rule(spec: dict) -> str:
    kind = spec.get("type", "str")
    return {
        "int": "must be a whole number",
        "float": "must be a number",
        "bool": "must be true or false",
        "date": "must be a date as YYYY-MM-DD",
        "datetime": "must be a date and time as YYYY-MM-DDTHH:MM[:SS][+HH:MM]",
        "email": "must be a valid e-mail address",
        "json": "must be valid JSON",
        "choice": f"must be one of: {', '.join(map(str, spec.get('choices', [])))}",
    }.get(kind, "must be text")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        return int(value)
    return int(str(value).strip())


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    result = float(str(value).strip()) if isinstance(value, str) else float(value)
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError
    return result


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError


def _to_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError
    return str(value)


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip())


def _to_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).strip())


def _to_email(value: Any) -> str:
    text = str(value).strip()
    validate_email(text)
    return text


def _to_json(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip().startswith(("{", "[")):
        return value
    try:
        return json.loads(value, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_CONVERTERS = {
    "str": _to_str, "int": _to_int, "float": _to_float, "bool": _to_bool,
    "date": _to_date, "datetime": _to_datetime, "choice": _to_str,
    "email": _to_email, "json": _to_json, "secret": _to_str,
}


def _check_environment_name(name: str, seen: set[str], where: str) -> None:
    """A parameter reaches shell commands as $JOBS_PARAM_<NAME>: that name must be a shell name, and its own."""
    env = f"JOBS_PARAM_{name.upper()}"
    if not name.isascii():
        raise ValidationError(f"{where}: the name must be ASCII letters, digits and _ (shell commands read it as "
                              f"${env})")
    twin = next((other for other in seen if other.upper() == name.upper()), None)
    if twin is not None:
        raise ValidationError(f"{where}: differs from '{twin}' only in case; both would reach shell commands "
                              f"as ${env}")


def validate_param_specs(specs: Any) -> list[dict]:
    """Check a job's ``params`` declaration; raise ValidationError naming the entry."""
    if specs in (None, ""):
        return []
    if not isinstance(specs, list):
        raise ValidationError("must be a list of parameters, each with a name and a type")
    seen: set[str] = set()
    cleaned = []
    for index, raw in enumerate(specs, start=1):
        where = f"parameter {index}"
        if not isinstance(raw, dict) or not raw.get("name"):
            raise ValidationError(f"{where}: needs a name")
        name = str(raw["name"])
        where = f"parameter '{name}'"
        if not name.isidentifier():
            raise ValidationError(f"{where}: the name must be letters, digits and _")
        if name in seen:
            raise ValidationError(f"{where}: declared twice")
        _check_environment_name(name, seen, where)
        seen.add(name)
        unknown = set(raw) - {"name", "type", "default", "required", "choices", "help", "label", "pattern"}
        if unknown:
            raise ValidationError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
        problem = json_problem(raw)
        if problem:
            raise ValidationError(f"{where}: {problem}")
        required = raw.get("required", False)
        if not isinstance(required, bool):
            raise ValidationError(f"{where}: required must be true or false")
        spec = {"name": name, "type": raw.get("type", "str"), "required": required}
        if spec["type"] not in TYPES:
            raise ValidationError(f"{where}: type must be one of {', '.join(TYPES)}")
        if spec["type"] == "choice":
            choices = raw.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ValidationError(f"{where}: a choice needs a non-empty list of choices")
            spec["choices"] = choices
        if raw.get("pattern") not in (None, ""):
            spec["pattern"] = _valid_pattern(raw["pattern"], spec["type"], where)
        for key in ("help", "label"):
            if raw.get(key):
                spec[key] = str(raw[key])
        if spec["type"] == "secret" and raw.get("default") not in (None, ""):
            raise ValidationError(f"{where}: a secret parameter has no default (it would be stored in clear)")
        if raw.get("default") is not None:
            try:
                coerce(spec, raw["default"])
            except ParameterError as exc:
                raise ValidationError(f"{where}: the default {exc}") from exc
            spec["default"] = raw["default"]
        cleaned.append(spec)
    return cleaned


def _valid_pattern(pattern: Any, kind: str, where: str) -> str:
    if kind not in PATTERN_TYPES:
        raise ValidationError(f"{where}: a pattern applies to {' and '.join(PATTERN_TYPES)} parameters only")
    try:
        compiled_pattern(pattern)
    except ParameterError as exc:
        raise ValidationError(f"{where}: {exc}") from exc
    return pattern


def clean_values(specs: list[dict], raw: dict | None, *, allow_unknown: bool = False) -> dict:
    """Typed values for ``specs`` from ``raw``; ValidationError maps each bad name to its rule.

    Missing values take the spec's default; a required one without a default is an error.
    """
    raw = dict(raw or {})
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    names = {spec["name"] for spec in specs}
    if not allow_unknown:
        for name in sorted(set(raw) - names):
            errors[name] = ["unknown parameter"]
    for spec in specs:
        name = spec["name"]
        value = raw.get(name)
        if value is None or (value == "" and spec.get("type") != "str"):
            value = spec.get("default")  # an empty field means "use the default"
        if value is None:
            if spec.get("required"):
                errors[name] = ["this parameter is required"]
            continue
        try:
            values[name] = coerce(spec, value)
        except ParameterError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return values


def to_json(value: Any) -> Any:
    """A typed value as stored in JSON (dates as ISO text)."""
    return _jsonable(value)
