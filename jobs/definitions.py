"""Job definition files (YAML): export and import, per the contract.

An import is one transaction: every job and line is validated first, and a
single error (named by job and line) leaves the database as it was. Importing
the same file twice changes nothing: rows are only written when they differ.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from . import registry
from .models import Action, Domain, FilterTemplate, Job, JobLine, Schedule
from .params import MAX_JSON_DEPTH, json_problem
from .scheduling import DAY_NAMES, UNITS, WEEKDAYS, PlanError, zone
from .secrets import without_literal_credentials
from .text import storable, text_problem

JOB_KEYS = {"identifier", "name", "description", "domain", "active", "stops_on_error", "module", "queue",
            "params", "schedule", "report", "lines"}
LINE_KEYS = {"line_no", "action", "active", "parameters", "module", "is_filter", "filter_template",
             "filter_definition"}
JOB_FIELDS = ["name", "description", "domain_id", "active", "stops_on_error", "module", "queue", "params",
              "report"]
SCHEDULE_FIELDS = ["kind", "every", "every_unit", "weekdays", "times", "cron", "timezone", "starts_at", "ends_at",
                   "catch_up"]
SCHEDULE_KEYS = {"type", "every", "cron", "weekdays", "times", "timezone", "start", "end", "catch_up"}
LINE_FIELDS = ["active", "is_filter", "filter_template_id", "filter_definition", "action_id", "module",
               "parameters"]
# A loaded file is walked recursively later on: deeper or larger ones (YAML aliases multiply) are refused first.
MAX_DOCUMENT_DEPTH = MAX_JSON_DEPTH + 10
MAX_DOCUMENT_NODES = 100_000


class DefinitionError(Exception):
    """A definition file that cannot be imported; the message names the job and line."""


def export_jobs(jobs) -> str:
    documents = [_job_document(job) for job in jobs.select_related("domain", "schedule").prefetch_related(
        "lines__action", "lines__filter_template")]
    return yaml.safe_dump({"jobs": documents}, sort_keys=False, allow_unicode=True)


def _job_document(job: Job) -> dict[str, Any]:
    document: dict[str, Any] = {
        "identifier": job.identifier, "name": job.name, "description": job.description,
        "domain": job.domain.slug if job.domain_id else None, "active": job.active,
        "stops_on_error": job.stops_on_error, "module": job.module, "queue": job.queue,
        "params": job.params or [],
    }
    schedule = getattr(job, "schedule", None)  # the reverse one-to-one raises an AttributeError when absent
    if schedule is not None and schedule.kind != Schedule.DISABLED:
        document["schedule"] = _schedule_document(schedule)
    if job.report:
        document["report"] = job.report
    hidden = job.secret_variables()
    document["lines"] = [_line_document(line, hidden) for line in sorted(job.lines.all(), key=lambda li: li.line_no)]
    return document


def _line_document(line: JobLine, secret_variables: set[str]) -> dict[str, Any]:
    spec = registry.get(line.action.name) if line.action_id else None
    parameters = line.parameters or {}
    if spec is not None and isinstance(parameters, dict):  # a credential saved before references were required
        parameters = without_literal_credentials(spec.parameters, parameters, secret_variables)
    document: dict[str, Any] = {"line_no": line.line_no, "action": line.action.name if line.action_id else None,
                                "active": line.active, "parameters": parameters}
    if line.module:
        document["module"] = line.module
    if line.is_filter:
        document.update(is_filter=True, filter_template=line.filter_template.name if line.filter_template_id
                        else None, filter_definition=line.filter_definition or {})
    return document


def load(text: str) -> list[dict]:
    data = _parse(text)
    problem = structure_problem(data)
    if problem:
        raise DefinitionError(problem)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise DefinitionError("the file must hold a mapping with a 'jobs' list")
    return data["jobs"]


def _parse(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"not valid YAML: {exc}") from exc
    except RecursionError:
        raise DefinitionError("not valid YAML: nested too deeply") from None
    except Exception as exc:  # safe_load's own constructors fail so on values such as 2026-02-30 or !!bool maybe
        raise DefinitionError(f"not valid YAML: {type(exc).__name__}: {exc}") from exc


def structure_problem(document: Any) -> str | None:
    """What makes a loaded file unsafe to walk or store: an alias cycle, depth, size, NUL; or None.

    Iterative, with the path so far, so that the message says where.
    """
    stack: list[tuple[Any, str, int, bool]] = [(document, "", 0, False)]
    on_path: set[int] = set()  # the mappings and lists being walked: meeting one again is a cycle
    nodes = 0
    while stack:
        item, path, depth, leaving = stack.pop()
        if leaving:
            on_path.discard(id(item))
            continue
        problem = text_problem(item) if isinstance(item, str) else None
        if problem:
            return f"{path or 'the file'}: {problem}"
        if not isinstance(item, dict | list):
            continue
        nodes += 1
        if id(item) in on_path:
            return f"{path or 'the file'}: a YAML alias refers to a mapping or list that contains it"
        if nodes > MAX_DOCUMENT_NODES:
            return f"the file holds more than {MAX_DOCUMENT_NODES} mappings and lists (YAML aliases count each time)"
        if depth >= MAX_DOCUMENT_DEPTH:
            return f"{path}: nested more than {MAX_DOCUMENT_DEPTH} levels deep"
        on_path.add(id(item))
        stack.append((item, path, depth, True))
        stack.extend((child, where, depth + 1, False) for child, where in _children(item, path))
    return None


def _children(item: dict | list, path: str) -> list[tuple[Any, str]]:
    if isinstance(item, list):
        return [(child, f"{path}[{index}]") for index, child in enumerate(item)]
    children = []
    for key, child in item.items():
        name = storable(str(key))  # the message says where NUL is without holding one
        where = f"{path}.{name}" if path else name
        children += [(key, where), (child, where)]
    return children


@transaction.atomic
def import_jobs(text: str, *, update_existing: bool = True) -> dict[str, list[str]]:
    """Create or update the file's jobs; returns identifiers by what happened to them."""
    report: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": [], "skipped": []}
    seen = set()
    for index, raw in enumerate(load(text), start=1):
        where = f"job {index}"
        if not isinstance(raw, dict):
            raise DefinitionError(f"{where}: must be a mapping")
        identifier = raw.get("identifier")
        if not isinstance(identifier, str) or not identifier:
            raise DefinitionError(f"{where}: identifier is required and must be text")
        where = f"job {identifier}"
        if identifier in seen:
            raise DefinitionError(f"{where}: appears twice in the file")
        seen.add(identifier)
        existing = Job.objects.filter(identifier=identifier).first()
        if existing and not update_existing:
            report["skipped"].append(identifier)
            continue
        outcome = _import_job(raw, existing, where)
        report[outcome].append(identifier)
    return report


def _import_job(raw: dict, existing: Job | None, where: str) -> str:
    unknown = set(raw) - JOB_KEYS
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {_names(unknown)}")
    job = existing or Job(identifier=raw["identifier"])
    before = {name: getattr(job, name) for name in JOB_FIELDS} if existing else None
    job.name = raw.get("name") or raw["identifier"]
    job.description = raw.get("description") or ""
    job.domain_id = _domain_id(raw.get("domain"), where)
    job.active = _flag(raw, "active", True, where)
    job.stops_on_error = _flag(raw, "stops_on_error", True, where)
    job.module = raw.get("module") or ""
    job.queue = raw.get("queue") or ""
    job.params = raw.get("params") or []
    job.report = validate_report(raw.get("report"), where)
    _full_clean(job, where)
    changed = not same(before, {name: getattr(job, name) for name in JOB_FIELDS})
    if changed:
        job.save()
    lines_changed = _import_lines(job, raw.get("lines") or [], where)
    schedule_changed = _import_schedule(job, raw.get("schedule"), where)
    if existing is None:
        return "created"
    return "updated" if changed or lines_changed or schedule_changed else "unchanged"


def _schedule_document(schedule: Schedule) -> dict[str, Any]:
    document: dict[str, Any] = {"type": schedule.kind}
    if schedule.kind == Schedule.INTERVAL:
        document["every"] = schedule.every * UNITS[schedule.every_unit]
    elif schedule.kind == Schedule.CALENDAR:
        if schedule.cron:
            document["cron"] = schedule.cron
        else:
            document["weekdays"] = [WEEKDAYS[d] for d in sorted(schedule.weekdays)]
            document["times"] = sorted(schedule.times)
    document["timezone"] = schedule.timezone
    for key, value in (("start", schedule.starts_at), ("end", schedule.ends_at)):
        if value is not None:
            document[key] = value.astimezone(zone(schedule.timezone)).isoformat()
    if schedule.catch_up != Schedule.CATCH_UP_ONCE:
        document["catch_up"] = schedule.catch_up
    return document


def _import_schedule(job: Job, raw: Any, where: str) -> bool:
    """Make the job's schedule what the file says; True if that changed anything."""
    existing = Schedule.objects.filter(job=job).first()
    if not raw:
        if existing is None:
            return False
        existing.delete()
        return True
    fields = _schedule_fields(raw, f"{where}: schedule")
    schedule = existing or Schedule(job=job)
    before = {name: getattr(schedule, name) for name in SCHEDULE_FIELDS} if existing else None
    for name, value in fields.items():
        setattr(schedule, name, value)
    schedule.job = job
    try:
        schedule.full_clean(exclude=["job"], validate_unique=False)
    except ValidationError as exc:
        file_keys = {"starts_at": "start", "ends_at": "end", "kind": "type"}  # say it as the file does
        problems = "; ".join(f"{file_keys.get(field, field)}: {' '.join(messages)}"
                             for field, messages in exc.message_dict.items())
        raise DefinitionError(f"{where}: schedule: {problems}") from exc
    if same(before, {name: getattr(schedule, name) for name in SCHEDULE_FIELDS}):
        return False
    schedule.save()
    return True


def _schedule_fields(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: must be a mapping")
    unknown = set(raw) - SCHEDULE_KEYS
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {_names(unknown)}")
    kind = raw.get("type")
    if kind not in (Schedule.INTERVAL, Schedule.CALENDAR, Schedule.AUTOMATIC, Schedule.DISABLED):
        raise DefinitionError(f"{where}: type must be interval, calendar, automatic or disabled")
    tz_name = raw.get("timezone") or settings.TIME_ZONE
    try:
        tz = zone(str(tz_name))
    except PlanError as exc:
        raise DefinitionError(f"{where}: {exc}") from None
    fields: dict[str, Any] = {"kind": kind, "timezone": str(tz_name), "cron": "", "weekdays": [], "times": [],
                              "every": None, "every_unit": "minutes",
                              "catch_up": raw.get("catch_up", Schedule.CATCH_UP_ONCE),
                              "starts_at": _instant(raw.get("start"), tz, f"{where}: start"),
                              "ends_at": _instant(raw.get("end"), tz, f"{where}: end")}
    if kind == Schedule.INTERVAL:
        every = raw.get("every")
        if not isinstance(every, int) or isinstance(every, bool) or every <= 0:
            raise DefinitionError(f"{where}: every must be a whole number of seconds above 0")
        unit = next(u for u, seconds in reversed(UNITS.items()) if every % seconds == 0)
        fields.update(every=every // UNITS[unit], every_unit=unit)
    elif kind == Schedule.CALENDAR:
        if raw.get("cron"):
            fields["cron"] = str(raw["cron"])
        else:
            fields["weekdays"] = [_weekday(day, where) for day in raw.get("weekdays") or []]
            fields["times"] = [str(t) for t in raw.get("times") or []]
    return fields


def _weekday(day: Any, where: str) -> int:
    if isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6:
        return day
    names = [name.lower() for name in DAY_NAMES]
    if isinstance(day, str) and day.lower() in WEEKDAYS + names:
        return (WEEKDAYS + names).index(day.lower()) % 7
    raise DefinitionError(f"{where}: weekdays: {day!r} is not a day of the week (mon … sun)")


def _instant(value: Any, tz, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise DefinitionError(f"{where}: must be a date and time, e.g. 2026-01-31T08:00") from None
    if not isinstance(value, datetime):
        raise DefinitionError(f"{where}: must be a date and time, e.g. 2026-01-31T08:00")
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _import_lines(job: Job, raw_lines: Any, where: str) -> bool:
    if not isinstance(raw_lines, list):
        raise DefinitionError(f"{where}: lines must be a list")
    current = {line.line_no: line for line in job.lines.all()}
    wanted = set()
    changed = False
    for index, raw in enumerate(raw_lines, start=1):
        if not isinstance(raw, dict) or "line_no" not in raw:
            raise DefinitionError(f"{where}, line {index}: needs a line_no")
        line_where = f"{where}, line {raw['line_no']}"
        unknown = set(raw) - LINE_KEYS
        if unknown:
            raise DefinitionError(f"{line_where}: unknown keys {_names(unknown)}")
        line_no = raw["line_no"]
        if isinstance(line_no, bool) or not isinstance(line_no, int) or line_no < 0:
            raise DefinitionError(f"{line_where}: line_no must be a whole number, 0 or more")
        if line_no in wanted:
            raise DefinitionError(f"{line_where}: line_no appears twice")
        wanted.add(line_no)
        line = current.get(line_no) or JobLine(job=job, line_no=line_no)
        before = {name: getattr(line, name) for name in LINE_FIELDS} if line.pk else None
        line.job = job
        line.active = _flag(raw, "active", True, line_where)
        line.is_filter = _flag(raw, "is_filter", False, line_where)
        line.module = raw.get("module") or ""
        line.parameters = raw.get("parameters") or {}
        line.filter_definition = raw.get("filter_definition") or {}
        line.action_id = _action_id(raw.get("action"), line_where) if raw.get("action") else None
        line.filter_template_id = _template_id(raw.get("filter_template"), line_where)
        _full_clean(line, line_where, exclude=["job"])
        if not same(before, {name: getattr(line, name) for name in LINE_FIELDS}):
            line.save()
            changed = True
    stale = [no for no in current if no not in wanted]
    if stale:
        job.lines.filter(line_no__in=stale).delete()
        changed = True
    return changed


def _names(keys: set) -> str:
    """Keys for a message; YAML keys may be numbers or null, which do not sort with text."""
    return ", ".join(sorted(map(str, keys)))


def same(stored: Any, wanted: Any) -> bool:
    """Equal as the database keeps values: PostgreSQL's jsonb writes a float such as 7.2e16 back as the
    integer it equals, which must not make a re-import report the job updated. true is not 1."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return stored is wanted
    if isinstance(stored, int | float) and isinstance(wanted, int | float):
        try:
            return float(stored) == float(wanted) if float in (type(stored), type(wanted)) else stored == wanted
        except OverflowError:
            return False
    if isinstance(stored, dict) and isinstance(wanted, dict):
        return stored.keys() == wanted.keys() and all(same(stored[key], wanted[key]) for key in stored)
    if isinstance(stored, list) and isinstance(wanted, list):
        return len(stored) == len(wanted) and all(map(same, stored, wanted))
    return stored == wanted


def _flag(raw: dict, key: str, default: bool, where: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise DefinitionError(f"{where}: {key} must be true or false")
    return value


def _full_clean(obj, where: str, exclude: list[str] | None = None) -> None:
    try:
        obj.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
        raise DefinitionError(f"{where}: {problems}") from exc


def _domain_id(slug: Any, where: str) -> int | None:
    if slug in (None, ""):
        return None
    domain_id = Domain.objects.filter(slug=slug).values_list("id", flat=True).first()
    if domain_id is None:
        raise DefinitionError(f"{where}: unknown domain {slug!r}")
    return domain_id


def _action_id(name: str, where: str) -> int:
    action_id = Action.objects.filter(name=name, available=True).values_list("id", flat=True).first()
    if action_id is None:
        raise DefinitionError(f"{where}: unknown action {name!r}")
    return action_id


def _template_id(name: Any, where: str) -> int | None:
    if not name:
        return None
    template_id = FilterTemplate.objects.filter(name=name).values_list("id", flat=True).first()
    if template_id is None:
        raise DefinitionError(f"{where}: unknown filter template {name!r}")
    return template_id


def validate_report(report: Any, where: str = "report") -> dict | None:
    if not report:
        return None
    if not isinstance(report, dict):
        raise DefinitionError(f"{where}: report must be a mapping")
    problem = json_problem(report)
    if problem:
        raise DefinitionError(f"{where}: report {problem}")
    if report.get("when", "failure") not in ("always", "failure", "warning", "never"):
        raise DefinitionError(f"{where}: report.when must be always, failure, warning or never")
    recipients = report.get("recipients") or []
    if not isinstance(recipients, list):
        raise DefinitionError(f"{where}: report.recipients must be a list of e-mail addresses")
    for address in recipients:
        if not isinstance(address, str):
            raise DefinitionError(f"{where}: report recipient {address!r} is not a valid e-mail address")
        try:
            validate_email(address)
        except ValidationError:
            raise DefinitionError(f"{where}: report recipient {address!r} is not a valid e-mail address") from None
    return report
