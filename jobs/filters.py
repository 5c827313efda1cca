"""Filter lines: a template names a model; definitions are Django field lookups.

Only field paths and lookups that Django knows are accepted (no raw SQL), and
the records go to the following lines in primary-key pages (keyset), so a line
that changes whether records still match never makes the run skip one.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, FieldError, FullResultSet
from django.db import connections, models, transaction
from django.db.models.sql import Query

from . import context
from .params import json_problem

MAX_LOOKUP_DEPTH = 4  # relations a lookup may follow
TEXT_LOOKUPS = {"iexact", "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith", "regex",
                "iregex"}
# Never filtered on: a filter's answers (what matched) would leak them one character at a time.
SECRET_FIELDS = {"password", "session_data", "key", "token", "secret"}


def model_for(label: str) -> type[models.Model]:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise LookupError(f"unknown model {label!r}: use app_label.ModelName of an installed app") from exc


def definition_errors(model: type[models.Model], definition: Any, known_variables: set[str]) -> list[str]:
    """Every problem of ``definition``, each starting with its key; never raises."""
    if definition in (None, ""):
        return []
    if not isinstance(definition, dict):
        return ["must be a JSON object of field lookups, e.g. {\"is_active\": true}"]
    errors = []
    for key, value in definition.items():
        shape = json_problem(value)
        problem = _lookup_problem(model, key) or shape
        unknown = [] if shape else context.unknown_variables(value, known_variables)
        if not problem and not context.variables_in(value):  # values with variables are known at run time
            problem = _value_problem(model, key, context.resolve(value, {}))
        if problem:
            errors.append(f"{key}: {problem}")
        if unknown:
            errors.append(f"{key}: unknown variable {', '.join('${' + u + '}' for u in unknown)}")
    return errors


def _lookup_problem(model: type[models.Model], key: Any) -> str | None:
    parts = str(key).split("__")
    if not isinstance(key, str) or len(parts) > MAX_LOOKUP_DEPTH + 1 or not all(parts):
        return "not a valid field lookup"
    secret = next((part for part in parts if part in SECRET_FIELDS), None)
    if secret:
        return f"{secret!r} may not be used in a filter"
    current = model
    for index, part in enumerate(parts):
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return f"{current._meta.label} has no field {part!r}"
        if not (field.is_relation and field.related_model is not None):
            # After a plain field only its transforms and lookups may follow, never another field.
            return _transform_problem(field, parts[index + 1:])
        if index + 1 > MAX_LOOKUP_DEPTH:  # index + 1 relations followed so far
            return f"follows more than {MAX_LOOKUP_DEPTH} relations"
        current = field.related_model
    return None


def _transform_problem(field, rest: list[str]) -> str | None:
    """``rest`` are transforms (``date``, ``year``) ending, maybe, in a lookup (``lte``)."""
    if not hasattr(field, "get_transform"):
        return f"{field.name} cannot be filtered on"
    output, previous = field, field.name
    for index, part in enumerate(rest):
        transform = output.get_transform(part)
        if transform is not None:
            output = transform(output.cached_col if hasattr(output, "cached_col") else output).output_field
            previous = part
            continue
        if index == len(rest) - 1 and output.get_lookup(part):
            return _text_lookup_problem(output, previous, part)
        return f"{part!r} is not a lookup or transform of {field.name}"
    return None


def _text_lookup_problem(output, previous: str, lookup: str) -> str | None:
    """Text lookups PostgreSQL cannot run whatever the value (refused on every database, alike)."""
    if lookup == "iexact" and not isinstance(output, models.CharField | models.TextField):
        return f"'iexact' compares text and {previous} is not text: use exact"
    if lookup in TEXT_LOOKUPS and previous == "week_day":  # Django writes EXTRACT(...) + 1::text
        return f"{lookup!r} compares text and week_day is a number: use exact, in, gt or lt"
    return None


def _value_problem(model: type[models.Model], key: str, value: Any) -> str | None:
    """Why the database cannot run ``key`` with ``value`` (a wrong type, a bad pattern), or None.

    The query is built and planned (EXPLAIN, nothing is read), so validation and execution agree.
    """
    lookup = _final_lookup(model, key)
    value = _lookup_value(lookup, value)
    problem = _shape_problem(lookup, value)
    if problem:
        return problem
    queryset = model._default_manager.all()
    if lookup in ("regex", "iregex") and connections[queryset.db].vendor == "sqlite":
        problem = _python_regex_problem(value, lookup)  # SQLite's REGEXP is Python's re, run per row
        if problem:
            return problem
    try:
        with transaction.atomic(using=queryset.db):
            queryset.filter(**{key: value}).explain()
    except (EmptyResultSet, FullResultSet):
        return None
    except Exception as exc:  # whatever stops the query is what the value breaks
        return f"the value {_short(value)} does not fit this lookup ({_first_line(exc)})"
    return None


def _shape_problem(lookup: str, value: Any) -> str | None:
    """The value a lookup needs whatever the field, said plainly (the database's own words are less clear)."""
    if lookup in ("regex", "iregex") and not isinstance(value, str):
        return "a regular expression must be text"
    if lookup == "in" and not isinstance(value, list):
        return "'in' needs a list of values"
    if lookup == "range" and not (isinstance(value, list) and len(value) == 2):
        return "'range' needs a list of two values: [low, high]"
    if lookup == "isnull" and not isinstance(value, bool):
        return "'isnull' needs true or false"
    return None


def _final_lookup(model: type[models.Model], key: str) -> str:
    """The lookup ``key`` ends in, as Django reads it: ``exact`` after a field or a transform."""
    try:
        lookups = Query(model).solve_lookup_type(key)[0]
    except FieldError:
        return "exact"
    return lookups[-1] if lookups else "exact"


def _lookup_value(lookup: str, value: Any) -> Any:
    """A regular expression is text, also when a variable such as ${param.days} gives a number."""
    if lookup in ("regex", "iregex") and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _python_regex_problem(pattern: str, lookup: str) -> str | None:
    try:
        re.compile(("(?i)" if lookup == "iregex" else "") + pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"not a valid regular expression ({exc})"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(exc: Exception) -> str:
    messages = getattr(exc, "messages", None)
    text = " ".join(messages) if messages else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def domain_path_problem(model: type[models.Model], path: str) -> str | None:
    """Why ``path`` is not a lookup from ``model`` to its domain (relations ending at ``jobs.Domain``), or None."""
    domain = apps.get_model("jobs", "Domain")
    parts = path.split("__")
    if len(parts) > MAX_LOOKUP_DEPTH or not all(parts):
        return f"not a lookup of at most {MAX_LOOKUP_DEPTH} relations, e.g. customer__domain"
    current = model
    for part in parts:
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return f"{current._meta.label} has no field {part!r}"
        if not (field.is_relation and field.related_model is not None):
            return f"{current._meta.label}.{part} is not a relation: the path must follow relations to a domain"
        current = field.related_model
    if current is not domain:
        return f"{path} leads to {current._meta.label}, not to {domain._meta.label}"
    return None


def within_domains(queryset: models.QuerySet, domain_path: str, domain_ids: Any) -> models.QuerySet:
    """Only the records whose domain (reached by ``domain_path``) is in ``domain_ids`` (a list or a subquery).

    A separate filter, so nothing in a line's definition can widen it; through a to-many
    relation (a user's memberships) a record is kept once, if any of its domains is allowed.
    """
    model = queryset.model
    lookup = {f"{domain_path}__in": domain_ids}
    if _follows_to_many(model, lookup):
        return queryset.filter(pk__in=model._default_manager.filter(**lookup).values("pk"))
    return queryset.filter(**lookup)


def relations_followed(model: type[models.Model], definition: Any) -> list[str]:
    """The lookups of ``definition`` that follow a relation into another model."""
    followed = []
    for key in definition or {}:
        current = model
        for part in str(key).split("__")[:-1]:
            try:
                field = current._meta.get_field(part)
            except FieldDoesNotExist:
                break
            if field.is_relation:
                followed.append(key)
                break
    return followed


def queryset_for(template_model: str, base: dict, definition: dict, variables: dict) -> models.QuerySet:
    model = model_for(template_model)
    lookups = {**context.resolve(base or {}, variables), **context.resolve(definition or {}, variables)}
    lookups = {key: _lookup_value(_final_lookup(model, key), value) for key, value in lookups.items()}
    queryset = model._default_manager.filter(**lookups)
    if _follows_to_many(model, lookups):
        # A join across a to-many relation repeats a record once per match: select each record once.
        queryset = model._default_manager.filter(pk__in=queryset.values("pk"))
    return queryset


def _follows_to_many(model: type[models.Model], lookups: dict) -> bool:
    for key in lookups:
        current = model
        for part in key.split("__"):
            try:
                field = current._meta.get_field(part)
            except FieldDoesNotExist:
                break
            if field.many_to_many or field.one_to_many:
                return True
            if not (field.is_relation and field.related_model is not None):
                break
            current = field.related_model
    return False


class RecordSet:
    """The records a filter line selected, handed to the following lines in pk pages."""

    def __init__(self, queryset: models.QuerySet, batch_size: int = 500) -> None:
        self.queryset = queryset
        self.batch_size = batch_size

    def exists(self) -> bool:
        return self.queryset.exists()

    def count(self) -> int:
        return self.queryset.count()

    def batches(self, size: int | None = None) -> Iterator[list[models.Model]]:
        size = size or self.batch_size
        last_pk = None
        while True:
            page = self.queryset.order_by("pk")
            if last_pk is not None:
                page = page.filter(pk__gt=last_pk)
            batch = list(page[:size])
            if not batch:
                return
            yield batch
            last_pk = batch[-1].pk

    def __iter__(self) -> Iterator[models.Model]:
        for batch in self.batches():
            yield from batch
