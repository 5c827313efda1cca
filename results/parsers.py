"""The API's JSON parser: DRF's, answering 400 (not 500) to a body nested too deeply to parse or holding text
no database stores (NUL, lone surrogates: ``"\\u0000"``, ``"\\ud800"``)."""
from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from jobs.text import Path, storable, value_problem

FIELD_DEPTH = 2  # errors name the field the API knows: "parameters.NAME", not the inside of its JSON value


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # Python's json recurses once per nested list or object
            raise ParseError("JSON parse error - nested too deeply") from None
        problem = value_problem(data)
        if problem is not None:
            where, rule = problem
            raise ValidationError({field_name(where): [rule]})
        return data


def field_name(where: Path) -> str:
    """The body's field holding a value: its keys up to ``FIELD_DEPTH``, stopping at a list."""
    keys = []
    for step in where[:FIELD_DEPTH]:
        if not isinstance(step, str):
            break
        keys.append(storable(step))
    return ".".join(keys) or "non_field_errors"
