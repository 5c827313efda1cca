"""Context variables in line parameters: ``${today}``, ``${param.days}``, ...

Variables are resolved once when a run starts (see ``results.runner``); this
module knows which names exist, finds them in nested JSON and substitutes them.
``$${`` writes a literal ``${``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

VARIABLE_RE = re.compile(r"\$(\$?)\{([^{}]*)\}")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
BUILTIN_VARIABLES = ("today", "yesterday", "now", "job.identifier", "domain")


def known_variables(param_names: list[str], secret_names: list[str] | set[str] = ()) -> set[str]:
    """The variables a line may use; ``secret_names``: the stored secrets its job may use (``${secret.NAME}``)."""
    return set(BUILTIN_VARIABLES) | {f"param.{name}" for name in param_names} | {
        f"secret.{name}" for name in secret_names}


def variables_in(value: Any) -> set[str]:
    """Every ``${name}`` used anywhere in ``value`` (strings inside dicts and lists)."""
    found: set[str] = set()
    for text in strings_in(value):
        found.update(m.group(2) for m in VARIABLE_RE.finditer(text) if not m.group(1))
    return found


def unknown_variables(value: Any, known: set[str]) -> list[str]:
    return sorted(name for name in variables_in(value) if name not in known)


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (strings inside dicts and lists)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def build_variables(
    *, job_identifier: str, domain_slug: str | None, params: dict, tz_name: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The variables of one run, in the schedule's or the site's time zone."""
    tz = ZoneInfo(tz_name or settings.TIME_ZONE)
    local_now = (now or timezone.now()).astimezone(tz)
    today = local_now.date()
    variables: dict[str, Any] = {
        "today": today.isoformat(),
        "yesterday": (today - dt.timedelta(days=1)).isoformat(),
        "now": local_now.isoformat(timespec="seconds"),
        "job.identifier": job_identifier,
        "domain": domain_slug or "",
    }
    for name, value in params.items():
        variables[f"param.{name}"] = value
    return variables


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    """``value`` with every variable replaced.

    A string that is exactly one variable takes the variable's own value (so
    ``"${param.days}"`` stays a number); otherwise values are written as text.
    """
    if isinstance(value, dict):
        return {key: resolve(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, variables) for item in value]
    if not isinstance(value, str):
        return value
    whole = VARIABLE_RE.fullmatch(value)
    if whole and not whole.group(1):
        return variables[whole.group(2)]

    def substitute(match: re.Match) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        value = variables[match.group(2)]
        return "" if value is None else str(value)

    return VARIABLE_RE.sub(substitute, value)


def as_text(value: Any) -> str:
    """A variable's value as the text a command sees: None empty, booleans true/false, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def env_name(variable: str) -> str:
    """The environment variable that carries ``variable`` to a command: ``param.who`` -> ``JOBS_PARAM_WHO``."""
    return "JOBS_" + variable.replace(".", "_").upper()


def environment(variables: dict[str, Any]) -> dict[str, str]:
    """Every variable of a run as an environment variable (``JOBS_TODAY``, ``JOBS_PARAM_WHO``, ...)."""
    return {env_name(name): as_text(value) for name, value in variables.items()}
