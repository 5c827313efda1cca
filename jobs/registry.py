"""The action registry: Python functions that job lines run.

An action is a function whose first argument is the run context and whose
other arguments are its parameters::

    from jobs.registry import action

    @action("billing.close_orders", label="Close old orders")
    def close_orders(ctx, older_than_days: int = 30, dry_run: bool = False) -> str:
        ...

Parameter types, defaults and required marks come from the signature. Every
installed app's ``actions.py`` and each module in ``JOBS_ACTION_MODULES`` is
imported at start-up; each registered action gets its ``jobs.models.Action`` row.
"""
from __future__ import annotations

import importlib
import inspect
import re
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import autodiscover_modules

from .code_params import KINDS
from .params import spec_from_annotation

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
PERMISSION_RE = re.compile(r"^[\w-]+\.[\w-]+$")  # app_label.codename, as user.has_perm takes it


@dataclass(frozen=True)
class ActionSpec:
    name: str
    func: Callable[..., Any]
    label: str
    description: str
    module: str
    parameters: list[dict] = field(default_factory=list)
    idempotent: bool = True
    destructive: bool = False
    external: bool = False
    dangerous: bool = False
    supports_cancel: bool = False
    schedule: dict | None = None
    check: Callable[..., str | None] | None = None
    permissions: tuple[str, ...] = ()
    code_params: dict[str, str] = field(default_factory=dict)
    validate: Callable[[dict[str, Any]], list[str]] | None = None

    def written_problems(self, parameters: dict[str, Any]) -> list[str]:
        """The action's own save-time check of a line's parameters as written ("name: problem" each)."""
        return self.validate(parameters) if self.validate is not None else []

    def preflight(self, arguments: dict[str, Any]) -> str | None:
        """The action's own pre-flight check: None when ready, else what is wrong (never raises)."""
        if self.check is None:
            return None
        try:
            return self.check(**arguments)
        except Exception as exc:
            return f"the check itself failed: {type(exc).__name__}: {exc}"

    def permission_refusal(self, user: AbstractBaseUser | None) -> str | None:
        """Why a line running this action as ``user`` (None: nobody) may not start, or None when it may."""
        if not self.permissions:
            return None
        if user is None:
            return f"{self.name} needs the permission {', '.join(self.permissions)} and the run has no user"
        missing = [permission for permission in self.permissions if not user.has_perm(permission)]
        if not missing:
            return None
        inactive = " (an inactive user has no permissions)" if not user.is_active else ""
        return f"{self.name} needs the permission {', '.join(missing)}, which {user.get_username()} lacks{inactive}"

    def parameter(self, name: str) -> dict | None:
        return next((spec for spec in self.parameters if spec["name"] == name), None)


_registry: dict[str, ActionSpec] = {}


def action(
    name: str,
    *,
    label: str | None = None,
    description: str | None = None,
    module: str | None = None,
    help: dict[str, str] | None = None,
    idempotent: bool = True,
    destructive: bool = False,
    external: bool = False,
    dangerous: bool = False,
    supports_cancel: bool = False,
    schedule: dict | None = None,
    check: Callable[..., str | None] | None = None,
    permissions: list[str] | tuple[str, ...] = (),
    code_params: dict[str, str] | None = None,
    validate: Callable[[dict[str, Any]], list[str]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the action ``name`` (dotted, e.g. ``core.shell``).

    ``schedule`` is the plan a job that uses it follows when its schedule is
    "automatic", e.g. ``{"type": "interval", "every": 3600}``. ``check`` is a
    pre-flight check called with the line's arguments before a person confirms
    a run: it returns None when ready, or what is wrong ("server unreachable").
    ``permissions`` (``app_label.codename``) are checked against the run's user
    (``ctx.user``) before a line runs the action; a line whose user lacks one fails.
    ``code_params`` names the parameters handed to another interpreter, with their kind
    (``jobs.code_params``: SHELL, ARGV, FIXED), so that a variable's value never becomes code.
    ``validate`` checks a line's parameters as written, when it is saved or imported: it returns
    "name: problem" messages (empty when fine).
    """
    if not NAME_RE.match(name):
        raise ValueError(f"action name {name!r} must be dotted lowercase words, e.g. 'billing.close_orders'")
    if isinstance(permissions, str) or not all(isinstance(p, str) and PERMISSION_RE.match(p) for p in permissions):
        raise ValueError(f"permissions of {name!r} must be a list of app_label.codename, e.g. ['billing.post_invoice']")

    if schedule is not None:
        _check_plan(name, schedule)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        parameters = _parameters_of(func, help or {})
        _check_code_params(name, code_params or {}, parameters)
        spec = ActionSpec(
            name=name,
            func=func,
            label=label or name.rsplit(".", 1)[-1].replace("_", " ").capitalize(),
            description=description if description is not None else inspect.cleandoc(func.__doc__ or ""),
            module=module or name.split(".", 1)[0],
            parameters=parameters,
            idempotent=idempotent,
            destructive=destructive,
            external=external,
            dangerous=dangerous,
            supports_cancel=supports_cancel,
            schedule=schedule,
            check=check,
            permissions=tuple(permissions),
            code_params=dict(code_params or {}),
            validate=validate,
        )
        existing = _registry.get(name)
        if existing and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"action {name!r} is registered twice ({existing.func.__module__} and {func.__module__})")
        _registry[name] = spec
        return func

    return decorator


def _check_code_params(name: str, code_params: dict[str, str], parameters: list[dict]) -> None:
    declared = {spec["name"] for spec in parameters}
    for param, kind in code_params.items():
        if param not in declared or kind not in KINDS:
            raise ValueError(f"action {name!r}: code_params {param}={kind!r} must name one of its parameters "
                             f"and a kind among {', '.join(KINDS)}")


def _parameters_of(func: Callable[..., Any], help: dict[str, str]) -> list[dict]:
    signature = inspect.signature(func)
    arguments = list(signature.parameters.values())
    if not arguments:
        raise TypeError(f"action {func.__qualname__} must take the run context as its first argument")
    hints = typing.get_type_hints(func)
    specs = []
    for argument in arguments[1:]:
        if argument.kind in (argument.VAR_POSITIONAL, argument.VAR_KEYWORD):
            continue
        spec = spec_from_annotation(argument.name, hints.get(argument.name, argument.annotation), argument.default)
        if argument.name in help:
            spec["help"] = help[argument.name]
        specs.append(spec)
    return specs


def get(name: str) -> ActionSpec | None:
    return _registry.get(name)


def all_actions() -> dict[str, ActionSpec]:
    return dict(_registry)


def autodiscover() -> None:
    """Import every installed app's ``actions`` module and ``JOBS_ACTION_MODULES``."""
    autodiscover_modules("actions")
    for dotted in settings.JOBS_ACTION_MODULES:
        importlib.import_module(dotted)


NOT_CHECKED_IN_TIME = "not checked in time"
TOO_MANY_CHECKS = "not checked: too many checks running"
PREFLIGHT_MAX_THREADS = 32  # pre-flight threads alive at once in one process, abandoned ones included
# A thread given up on after the budget (a server that never answers, a slow DNS) keeps its slot until it
# ends: Run pages opened in a loop cannot pile threads up without bound.
_preflight_slots = threading.BoundedSemaphore(PREFLIGHT_MAX_THREADS)


def run_checks(checks: list[Callable[[], str | None]], budget: float) -> list[str | None]:
    """Every check at once, each in a daemon thread, all within ``budget`` seconds together.

    A check not done by then answers NOT_CHECKED_IN_TIME; its thread is left to end by itself. A check
    for which no thread slot is free (``PREFLIGHT_MAX_THREADS``) answers TOO_MANY_CHECKS.
    """
    answers: list[str | None] = [NOT_CHECKED_IN_TIME] * len(checks)
    slots = _preflight_slots

    def run(index: int, check: Callable[[], str | None]) -> None:
        try:
            answers[index] = check()
        finally:
            slots.release()

    threads: dict[int, threading.Thread] = {}
    deadline = time.monotonic() + budget
    for index, check in enumerate(checks):
        if not slots.acquire(blocking=False):
            answers[index] = TOO_MANY_CHECKS
            continue
        threads[index] = threading.Thread(target=run, args=(index, check), name="preflight", daemon=True)
        threads[index].start()
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    return [NOT_CHECKED_IN_TIME if index in threads and threads[index].is_alive() else answer
            for index, answer in enumerate(answers)]


class Cancelled(Exception):
    """Raised inside an action by ``ctx.check_cancelled()`` once the run is being killed."""


def _check_plan(name: str, plan: dict) -> None:
    """A declared plan must be one a schedule can follow (``jobs.scheduling``), found at registration."""
    from .scheduling import PlanError, check

    try:
        check(plan)
    except PlanError as exc:
        raise ValueError(f"schedule of {name!r}: {exc}") from None


class LineFailed(Exception):
    """An expected failure an action reports in words ("command exited with status 7"): the line ends
    ``error`` with this message and no traceback. Any other exception is a bug and keeps its traceback."""
