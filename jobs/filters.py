"""Filter lines: a template names a model; definitions are Django field lookups.

Only field paths and lookups that Django knows are accepted (no raw SQL), and
the records go to the following lines in primary-key pages (keyset), so a line
that changes whether records still match never makes the run skip one.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from . import context

MAX_LOOKUP_DEPTH = 4
# Never filtered on: a filter's answers (what matched) would leak them one character at a time.
SECRET_FIELDS = {"password", "session_data", "key", "token", "secret"}


def model_for(label: str) -> type[models.Model]:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise LookupError(f"unknown model {label!r}: use app_label.ModelName of an installed app") from exc


def definition_errors(model: type[models.Model], definition: Any, known_variables: set[str]) -> list[str]:
    if definition in (None, ""):
        return []
    if not isinstance(definition, dict):
        return ["must be a JSON object of field lookups, e.g. {\"is_active\": true}"]
    errors = []
    for key, value in definition.items():
        problem = _lookup_problem(model, key)
        if problem:
            errors.append(f"{key}: {problem}")
        unknown = context.unknown_variables(value, known_variables)
        if unknown:
            errors.append(f"{key}: unknown variable {', '.join('${' + u + '}' for u in unknown)}")
    return errors


def _lookup_problem(model: type[models.Model], key: str) -> str | None:
    parts = str(key).split("__")
    if len(parts) > MAX_LOOKUP_DEPTH + 1 or not all(parts):
        return "not a valid field lookup"
    current = model
    field = None
    for index, part in enumerate(parts):
        if part in SECRET_FIELDS:
            return f"{part!r} may not be used in a filter"
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            if field is None or (field.is_relation and field.related_model is current):
                return f"{current._meta.label} has no field {part!r}"
            return _transform_problem(field, parts[index:])
        if field.is_relation and field.related_model is not None:
            current = field.related_model
    return None


def _transform_problem(field, rest: list[str]) -> str | None:
    """``rest`` are transforms (``date``, ``year``) ending, maybe, in a lookup (``lte``)."""
    output = field
    for index, part in enumerate(rest):
        last = index == len(rest) - 1
        transform = output.get_transform(part)
        if transform is not None:
            output = transform(output.cached_col if hasattr(output, "cached_col") else output).output_field
            continue
        if last and output.get_lookup(part):
            return None
        return f"{part!r} is not a lookup or transform of {field.name}"
    return None


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
    return model._default_manager.filter(**lookups)


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
