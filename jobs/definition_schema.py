"""The JSON Schema of job definition files (docs/job-definitions.schema.json) and its error messages.

The schema is the format's documentation that a machine can check: editors and CI may validate files
with it; ``import_jobs`` validates every file against it too, and says where a rule is broken as a path
(``jobs[2].lines[1].parameters.seconds``) with the rule.
"""
from __future__ import annotations

import datetime
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import relevance

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "job-definitions.schema.json"
MAX_MESSAGES = 3


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def schema_errors(document: Any) -> list[str]:
    """Each broken rule as "path: rule", the most relevant first within each place; empty when valid."""
    errors = sorted(validator().iter_errors(_as_json(document)), key=lambda e: (_path_key(e), relevance(e)))
    return [f"{format_path(error.absolute_path)}: {_rule(error)}" for error in errors]


def validation_problem(document: Any) -> str | None:
    """The first few broken rules of ``document`` in one message, or None when it follows the schema."""
    messages = schema_errors(document)
    if not messages:
        return None
    more = f" (and {len(messages) - MAX_MESSAGES} more)" if len(messages) > MAX_MESSAGES else ""
    return "; ".join(messages[:MAX_MESSAGES]) + more


def format_path(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the file"


def _path_key(error: SchemaError) -> list[tuple[int, Any]]:
    return [(0, part) if isinstance(part, int) else (1, str(part)) for part in error.absolute_path]


def _rule(error: SchemaError) -> str:
    """The deepest reason of a oneOf (e.g. a schedule that is neither null nor a valid schedule)."""
    if error.validator == "oneOf" and error.context:
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        if deepest.absolute_path != error.absolute_path:
            return f"{format_path(list(deepest.absolute_path)[len(error.absolute_path):])}: {deepest.message}"
        return deepest.message
    return error.message


def _as_json(value: Any) -> Any:
    """What the schema sees: YAML's dates and times as ISO text, mapping keys as text."""
    if isinstance(value, dict):
        return {str(key): _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value
