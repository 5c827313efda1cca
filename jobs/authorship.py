"""The author's part of a job: what only a system administrator may change.

A line that runs a dangerous action (``Action.dangerous``, e.g. ``core.shell``)
can only have been written by a system administrator. Everyone else (domain
admins included) may neither add, change, deactivate, reorder nor delete such a
line, nor change what decides how it runs: the job's ``stops_on_error``, ``queue``, ``domain``,
``idempotent`` and ``retries``, and
the declaration (type, choices, pattern, being required, existence) of every
run-time parameter the line uses as ``${param.NAME}``. Help, label and default
of those parameters stay editable (a default must still pass the rules).

A filter line on a template without domain path (``FilterTemplate.for_system_admins_only``)
selects every domain's records for the lines after it, up to the next active filter line: those
lines, and the filter line itself, are the system administrator's too (``feed_refusals``). Nobody
else may add, change, delete, (de)activate or move a line into or out of that range, nor change
which lines it covers (by moving, deactivating or deleting the filter line that ends it).

Every write path asks here: the admin's job form and line formset, ``Job.copy``.
Definition files (``import_jobs``) and Django's shell are system administrators'
tools; the API writes no definitions.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from . import access, code_params, context, registry, secrets
from .models import FilterTemplate, Job, JobLine, Secret

User = AbstractBaseUser | AnonymousUser
# The fields of a parameter declaration that decide which values reach an author's line.
GUARDED_SPEC_KEYS = ("type", "choices", "pattern")
# The job's fields that decide how an author's line runs: whether the job goes on after it fails, and
# which workers (hosts) run it.
GUARDED_JOB_FIELDS = {
    "stops_on_error": "whether it stops on error",
    "queue": "the queue (the workers) it runs on",
    "domain": "its domain (whose values, secrets and records its lines get)",
    "idempotent": "whether it is idempotent (a lost run of an idempotent job runs again)",
    "retries": "how often it runs again after a failure",
}
GUARDED_LINE_FIELDS = ("line_no", "active", "is_filter", "filter_template", "filter_definition", "action",
                       "parameters", "module")


def may_change_authored(user: User | None) -> bool:
    """Only system administrators touch what a system administrator wrote."""
    return user is None or access.is_system_admin(user)


def is_authored(line: JobLine) -> bool:
    """A line only a system administrator may have written: it runs a dangerous action, or it uses a secret
    kept for system administrators' lines (``Secret.system_only``)."""
    return bool(line.action_id and line.action.dangerous) or bool(system_secrets_used(line.job, line.parameters))


def system_secrets_used(job: Job, parameters: Any) -> list[str]:
    """The secrets kept for system administrators' lines that ``parameters`` name (``${secret.NAME}``)."""
    names = secrets.referenced_names(parameters or {})
    if not names:
        return []
    return sorted(Secret.objects.filter(domain_id=job.domain_id, name__in=names, system_only=True)
                  .values_list("name", flat=True))


def secret_refusal(user: User | None, job: Job, parameters: Any) -> str | None:
    """Why ``user`` may not write a line with ``parameters``: it would use a system administrators' secret."""
    if may_change_authored(user):
        return None
    used = system_secrets_used(job, parameters)
    if not used:
        return None
    return (f"the secret {', '.join(used)} is kept for system administrators' lines: only a system administrator "
            "may write a line that uses it.")


def describe(line: JobLine) -> str:
    return f"line {line.line_no} ({line.action.name}, written by a system administrator)"


def protected_lines(job: Job) -> list[JobLine]:
    """The job's saved lines written by a system administrator (as stored, not as edited on a page)."""
    if job.pk is None:
        return []
    return [line for line in job.lines.select_related("action").order_by("line_no") if is_authored(line)]


def protected_param_names(job: Job) -> dict[str, JobLine]:
    """Each run-time parameter a protected line uses, with the first such line.

    A line uses a parameter it names as ``${param.NAME}``; a line with a shell parameter uses them
    all, since every one reaches its command's environment (``$JOBS_PARAM_NAME``).
    """
    used: dict[str, JobLine] = {}
    for line in protected_lines(job):
        spec = registry.get(line.action.name)
        names = job.param_names() if spec is not None and code_params.SHELL in spec.code_params.values() else []
        names += [variable.removeprefix("param.") for variable in sorted(context.variables_in(line.parameters or {}))
                  if variable.startswith("param.")]
        for name in names:
            used.setdefault(name, line)
    return used


def line_change_refusal(user: User | None, saved: JobLine | None, changed_fields: list[str], *,
                        deleting: bool = False, new_action=None) -> str | None:
    """Why ``user`` may not make this change to a line (None: allowed).

    ``saved`` is the line as stored (None for a new line); ``new_action`` the action it is set to run.
    """
    if may_change_authored(user):
        return None
    if saved is not None and saved.pk and is_authored(saved):
        if deleting:
            return f"{describe(saved)}: only a system administrator may delete it."
        touched = [name for name in GUARDED_LINE_FIELDS if name in changed_fields]
        if touched:
            return (f"{describe(saved)}: only a system administrator may change, deactivate, move or delete it "
                    f"(changed: {', '.join(touched)}).")
        return None
    if deleting or new_action is None or not new_action.dangerous or (saved is not None and not changed_fields):
        return None
    return f"Only a system administrator may add or change a line that runs {new_action.name} (dangerous action)."


def job_change_refusals(user: User | None, saved: Job, edited: Job) -> dict[str, list[str]]:
    """Field errors for the changes of ``edited`` (the job as posted) that only a system administrator may make."""
    if may_change_authored(user) or saved.pk is None:
        return {}
    errors: dict[str, list[str]] = {}
    lines = protected_lines(saved)
    for name, what in GUARDED_JOB_FIELDS.items() if lines else ():
        if getattr(saved, name) != getattr(edited, name):
            errors[name] = [f"the job has {describe(lines[0])}: only a system administrator may change {what}."]
    problems = param_refusals(protected_param_names(saved), saved.params or [], edited.params or [])
    if problems:
        errors["params"] = problems
    return errors


def param_refusals(protected: dict[str, JobLine], old_specs: list[dict], new_specs: Any) -> list[str]:
    """How ``new_specs`` loosens the declaration of a parameter an author's line uses."""
    if not protected:
        return []
    old = {spec["name"]: spec for spec in old_specs if isinstance(spec, dict) and "name" in spec}
    new = {str(spec.get("name")): spec for spec in (new_specs if isinstance(new_specs, list) else [])
           if isinstance(spec, dict)}
    problems = []
    for name, line in protected.items():
        before, after = old.get(name), new.get(name)
        where = f"parameter '{name}' is used by {describe(line)}"
        if before is None:
            continue  # undeclared: the line cannot run, and nothing here loosens it
        if after is None:
            problems.append(f"{where}: only a system administrator may remove its declaration.")
        elif any(_spec_value(before, key) != _spec_value(after, key) for key in GUARDED_SPEC_KEYS):
            problems.append(f"{where}: only a system administrator may change its type, choices or pattern.")
        elif before.get("required") and not after.get("required"):
            problems.append(f"{where}: only a system administrator may make it optional.")
    return problems


def _spec_value(spec: dict, key: str) -> Any:
    value = spec.get(key)
    if key == "type":
        return value or "str"
    return value or None  # absent, empty and null mean the same: no choices, no pattern


# Lines fed by a filter without domain path ---------------------------------------------------------------------

@dataclass(frozen=True)
class LineLayout:
    """What decides which records a line gets: its place, whether it runs, whether (and how) it filters."""

    key: Hashable  # the saved line's pk, or a key of its own for a line being added
    line_no: int
    active: bool
    is_filter: bool
    template: FilterTemplate | None

    @classmethod
    def of(cls, line: JobLine) -> LineLayout:
        return cls(line.pk, line.line_no, line.active, line.is_filter,
                   line.filter_template if line.is_filter and line.filter_template_id else None)

    @property
    def domainless_filter(self) -> bool:
        return self.is_filter and self.template is not None and self.template.for_system_admins_only

    def describe(self) -> str:
        return (f"line {self.line_no} (a filter on {self.template}, which has no domain path: every domain's "
                "records)")


def stored_layout(job: Job) -> list[LineLayout]:
    """The job's lines as stored (not as edited on a page)."""
    if job.pk is None:
        return []
    return [LineLayout.of(line) for line in job.lines.select_related("filter_template")]


def fed_by_domainless_filters(lines: Iterable[LineLayout]) -> dict[Hashable, LineLayout]:
    """Each line a filter without domain path feeds, with that filter line (which maps to itself).

    As the runner does: in line order, an active filter line replaces the records of the ones before it;
    inactive lines run nothing but would get the records of the filter before them once activated.
    """
    fed: dict[Hashable, LineLayout] = {}
    source: LineLayout | None = None
    for line in sorted(lines, key=lambda line: line.line_no):
        if line.domainless_filter:
            fed[line.key] = line
        elif source is not None and not (line.is_filter and line.active):
            fed[line.key] = source
        if line.is_filter and line.active:
            source = line if line.domainless_filter else None
    return fed


def feed_refusals(user: User | None, stored: list[LineLayout], posted: list[LineLayout],
                  touched: set[Hashable]) -> list[str]:
    """Why ``user`` may not turn the job's lines from ``stored`` into ``posted`` (empty: allowed).

    ``touched`` are the keys of the lines added, changed or deleted. A line a filter without domain path
    feeds, before or after the change, may only be touched by a system administrator, and nobody else may
    make a line start or stop getting that filter's records by changing other lines.
    """
    if may_change_authored(user):
        return []
    before, after = fed_by_domainless_filters(stored), fed_by_domainless_filters(posted)
    numbers = {line.key: line.line_no for line in stored} | {line.key: line.line_no for line in posted}
    problems = []
    for key in sorted(set(before) | set(after), key=lambda key: numbers[key]):
        filter_line = after.get(key) or before[key]
        if key in touched:
            what = ("it is" if filter_line.key == key else "it gets the records of") + f" {filter_line.describe()}"
            problems.append(f"Line {numbers[key]}: {what}; only a system administrator may add, change, delete, "
                            "(de)activate or move the lines such a filter feeds.")
        elif (before[key].key if key in before else None) != (after[key].key if key in after else None):
            change = "start getting" if key in after else "stop getting"
            problems.append(f"Line {numbers[key]}: the changes on this page would make it {change} the records of "
                            f"{filter_line.describe()}; only a system administrator may change which lines such "
                            "a filter feeds.")
    return problems
