"""Job definition files (YAML): export and import, per the contract; format version 1.

A file holds ``version: 1``, the ``filter_templates`` its lines use and its
``jobs``, each with every field (``JOB_FIELDS``), its schedules, report, params
and lines, so that export, then import into a database that has none of them,
gives the same jobs back. The JSON Schema docs/job-definitions.schema.json
describes the format (``jobs.definition_schema``); files without ``version``
are version 1 (written before it was added) and missing keys take the field's
default.

An import is one transaction: every job and line is validated first, and a
single error (named by job and line) leaves the database as it was. Importing
the same file twice changes nothing: rows are only written when they differ.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction

from . import registry
from .definition_schema import validation_problem
from .models import Action, Domain, FilterTemplate, Job, JobLine, Schedule
from .params import MAX_JSON_DEPTH, json_problem
from .scheduling import DAY_NAMES, UNITS, WEEKDAYS, PlanError, zone
from .secrets import without_literal_credentials
from .text import storable, text_problem

FORMAT_VERSION = 1
# Every field of a job under its own name, in file order (``run_as`` as a username, ``domain`` as a slug).
# Not in the file: the bookkeeping below, and the relations with their own keys (``schedule(s)``, ``lines``).
JOB_FIELDS = ["identifier", "name", "description", "domain", "active", "stops_on_error", "module", "queue",
              "job_type", "execution", "run_as", "required_permission", "destructive", "external", "concurrency",
              "time_limit", "idempotent", "retries", "retry_delay", "owner", "expected_runtime", "expected_result",
              "troubleshooting", "params", "report"]
JOB_BOOKKEEPING = ("id", "created_at", "updated_at", "revision")
JOB_KEYS = {*JOB_FIELDS, "schedule", "schedules", "lines"}
LINE_FIELDS = ["line_no", "action", "active", "parameters", "module", "is_filter", "filter_template",
               "filter_definition"]
LINE_BOOKKEEPING = ("id", "job")
LINE_KEYS = set(LINE_FIELDS)
TEMPLATE_FIELDS = ["name", "model", "domain", "domain_path", "definition", "module"]
TEMPLATE_BOOKKEEPING = ("id",)
# A schedule's fields by their file key; when the interval's grid was laid and the next and last runs are the
# installation's bookkeeping (an interval without ``start`` counts its slots from when it was imported).
SCHEDULE_KEYS_BY_FIELD = {"name": "name", "kind": "type", "every": "every", "every_unit": "every_unit",
                          "weekdays": "weekdays", "times": "times", "cron": "cron", "timezone": "timezone",
                          "starts_at": "start", "ends_at": "end", "catch_up": "catch_up", "parameters": "parameters"}
SCHEDULE_BOOKKEEPING = ("id", "job", "anchor_at", "next_run_at", "last_run_at")
SCHEDULE_FIELDS = list(SCHEDULE_KEYS_BY_FIELD)
SCHEDULE_KEYS = set(SCHEDULE_KEYS_BY_FIELD.values())
# A loaded file is walked recursively later on: deeper or larger ones (YAML aliases multiply) are refused first.
MAX_DOCUMENT_DEPTH = MAX_JSON_DEPTH + 10
MAX_DOCUMENT_NODES = 100_000


class DefinitionError(Exception):
    """A definition file that cannot be imported; the message names the job and line."""


# --- export -------------------------------------------------------------------------------------------------------


def export_jobs(jobs) -> str:
    """The jobs (a queryset) as one definition file, with the filter templates their lines use."""
    return dump_document(export_document(jobs))


def export_document(jobs) -> dict[str, Any]:
    jobs = list(jobs.select_related("domain", "run_as").prefetch_related(
        "lines__action", "lines__filter_template__domain", "schedules"))
    templates = {line.filter_template.name: line.filter_template
                 for job in jobs for line in job.lines.all() if line.filter_template_id}
    return {"version": FORMAT_VERSION,
            "filter_templates": [template_document(templates[name]) for name in sorted(templates)],
            "jobs": [job_document(job) for job in jobs]}


def dump_document(document: dict[str, Any]) -> str:
    """Stable text: keys in the format's order, no timestamps, so that a folder of files diffs cleanly."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def job_document(job: Job) -> dict[str, Any]:
    document: dict[str, Any] = {name: _exported_job_field(job, name) for name in JOB_FIELDS}
    report = document.pop("report")
    document.update(_schedules_entry(list(job.schedules.all())))
    document["report"] = report
    hidden = job.secret_variables()  # once per job: the lines' parameters are checked against it
    document["lines"] = [_line_document(line, hidden) for line in sorted(job.lines.all(), key=lambda li: li.line_no)]
    return document


def _exported_job_field(job: Job, name: str) -> Any:
    if name == "domain":
        return job.domain.slug if job.domain_id else None
    if name == "run_as":
        return job.run_as.get_username() if job.run_as_id else None
    if name == "params":
        return job.params or []
    return getattr(job, name)


def _line_document(line: JobLine, secret_variables: set[str]) -> dict[str, Any]:
    return {"line_no": line.line_no, "action": line.action.name if line.action_id else None,
            "active": line.active, "parameters": _line_parameters(line, secret_variables), "module": line.module,
            "is_filter": line.is_filter,
            "filter_template": line.filter_template.name if line.filter_template_id else None,
            "filter_definition": line.filter_definition or {}}


def _line_parameters(line: JobLine, secret_variables: set[str]) -> dict[str, Any]:
    """A line's parameters as a file holds them: ``${secret.NAME}`` references as written; a credential saved in
    clear before references were required is masked, never written."""
    parameters = line.parameters or {}
    spec = registry.get(line.action.name) if line.action_id else None
    if spec is not None and isinstance(parameters, dict):
        parameters = without_literal_credentials(spec.parameters, parameters, secret_variables)
    return parameters


def template_document(template: FilterTemplate) -> dict[str, Any]:
    return {"name": template.name, "model": template.model,
            "domain": template.domain.slug if template.domain_id else None, "domain_path": template.domain_path,
            "definition": template.definition or {}, "module": template.module}


# --- import -------------------------------------------------------------------------------------------------------


def load(text: str) -> dict[str, Any]:
    """The file's document, checked as far as walking it is safe (not yet against the schema)."""
    data = _parse(text)
    problem = structure_problem(data)
    if problem:
        raise DefinitionError(problem)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise DefinitionError("the file must hold a mapping with a 'jobs' list")
    unknown = set(data) - {"version", "filter_templates", "jobs"}
    if unknown:
        raise DefinitionError(f"unknown top-level keys {_names(unknown)}")
    version = data.get("version", FORMAT_VERSION)  # files written before the format had a version are version 1
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise DefinitionError(f"version: {version!r} is not a format this installation reads (it reads "
                              f"{FORMAT_VERSION})")
    return data


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


class Importer:
    """Imports one or more files in the caller's transaction; every job and filter template at most once."""

    def __init__(self, *, update_existing: bool = True, user: Any = None, comment: str = "imported") -> None:
        self.update_existing = update_existing
        self.user, self.comment = user, comment  # who imports, and why: kept with each job's new version
        self.report: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": [], "skipped": []}
        self.job_sources: dict[str, str] = {}  # identifier: the file it came from
        self.templates: dict[str, tuple[dict, str]] = {}  # name: (its document, the file it came from)

    def import_text(self, text: str, source: str = "the file") -> None:
        data = load(text)
        templates = data.get("filter_templates") or []
        if not isinstance(templates, list):
            raise DefinitionError("filter_templates must be a list")
        for index, raw in enumerate(templates, start=1):
            self._import_template(raw, index, source)
        for index, raw in enumerate(data["jobs"], start=1):
            self._import_job(raw, index, source)
        schema_problem = validation_problem(data)  # what the checks above let through (e.g. a number as a name)
        if schema_problem:
            raise DefinitionError(schema_problem)

    def _import_job(self, raw: Any, index: int, source: str) -> None:
        identifier = _entry_name(raw, f"job {index}", "identifier")
        where = f"job {identifier}"
        if identifier in self.job_sources:
            elsewhere = "" if self.job_sources[identifier] == source else f" (and in {self.job_sources[identifier]})"
            raise DefinitionError(f"{where}: appears twice in the file{elsewhere}")
        self.job_sources[identifier] = source
        existing = Job.objects.filter(identifier=identifier).first()
        if existing and not self.update_existing:
            self.report["skipped"].append(identifier)
            return
        self.report[_import_job(raw, existing, where)].append(identifier)
        from .versions import record  # versions builds on this module

        record(Job.objects.get(identifier=identifier), self.user, self.comment)

    def _import_template(self, raw: Any, index: int, source: str) -> None:
        name = _entry_name(raw, f"filter template {index}", "name")
        where = f"filter template {name}"
        if name in self.templates:
            document, elsewhere = self.templates[name]
            if not same(document, raw):
                raise DefinitionError(f"{where}: appears twice ({elsewhere}, {source}) with different fields")
            return
        self.templates[name] = (raw, source)
        if not self.update_existing and FilterTemplate.objects.filter(name=name).exists():
            return  # left as it is, like the jobs that exist
        outcome = _import_template(raw, where)
        if outcome != "unchanged":  # only what changed: the templates come with every job that uses them
            self.report[outcome].append(where)


def _entry_name(raw: Any, where: str, key: str) -> str:
    """The name (``key``) of a file's entry, which must be a mapping; DefinitionError says which rule it breaks."""
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: must be a mapping")
    name = raw.get(key)
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"{where}: {key} is required and must be text")
    return name


def import_jobs(text: str, *, update_existing: bool = True, dry_run: bool = False) -> dict[str, list[str]]:
    """Create or update the file's filter templates and jobs; returns their names by what happened to them
    (filter templates as "filter template NAME"). One transaction; ``dry_run`` changes nothing."""
    return import_texts([("the file", text)], update_existing=update_existing, dry_run=dry_run)


def import_texts(texts: list[tuple[str, str]], *, update_existing: bool = True, dry_run: bool = False,
                 user: Any = None, comment: str = "imported") -> dict[str, list[str]]:
    """``import_jobs`` of several files ((source name, text), e.g. a folder of ``export_jobs --split``) at once.
    Each job that changed gets a new version (``jobs.versions``) by ``user`` with ``comment``."""
    importer = Importer(update_existing=update_existing, user=user, comment=comment)
    with transaction.atomic():
        for source, text in texts:
            try:
                importer.import_text(text, source)
            except DefinitionError as exc:
                if len(texts) > 1:
                    raise DefinitionError(f"{source}: {exc}") from exc
                raise
        if dry_run:
            transaction.set_rollback(True)
    return importer.report


# --- dry run: what an import would change ---------------------------------------------------------------------


ABSENT = "(none)"


@dataclass
class Change:
    """What importing would do to one job or filter template; ``fields`` are (field, old, new) when changed."""

    kind: str  # "job" or "filter template"
    name: str
    outcome: str  # created, changed, unchanged or skipped
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def shown_fields(self) -> list[tuple[str, str, str]]:
        """The changed fields with their values as JSON text, for people."""
        return [(name, _shown(old), _shown(new)) for name, old, new in self.fields]


def _shown(value: Any) -> str:
    return value if value is ABSENT else json.dumps(value, ensure_ascii=False, default=str)


def preview_texts(texts: list[tuple[str, str]], *, update_existing: bool = True) -> list[Change]:
    """What ``import_texts`` would do, field by field; the database is left as it was (DefinitionError as there)."""
    names = _names_in(texts)
    with transaction.atomic():
        before = _documents(names)
        report = import_texts(texts, update_existing=update_existing)
        after = _documents(names)
        transaction.set_rollback(True)
    outcomes = {name: outcome for outcome, entries in report.items() for name in entries}
    changes = []
    for kind, name in names:
        key = f"filter template {name}" if kind == "filter template" else name
        outcome = outcomes.get(key, "unchanged")
        outcome = "changed" if outcome == "updated" else outcome
        fields = _differences(before.get((kind, name), {}), after.get((kind, name), {})) if outcome == "changed" \
            else []
        changes.append(Change(kind, name, outcome, fields))
    return changes


def _names_in(texts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """("filter template", name) and ("job", identifier) of the files, in order, once each."""
    names: dict[tuple[str, str], None] = {}
    for _, text in texts:
        data = load(text)
        for kind, entries, key in (("filter template", data.get("filter_templates"), "name"),
                                   ("job", data["jobs"], "identifier")):
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get(key), str):
                    names[(kind, entry[key])] = None
    return list(names)


def _documents(names: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    identifiers = [name for kind, name in names if kind == "job"]
    templates = [name for kind, name in names if kind == "filter template"]
    documents = {("job", doc["identifier"]): doc
                 for doc in export_document(Job.objects.filter(identifier__in=identifiers))["jobs"]}
    documents.update({("filter template", template.name): template_document(template)
                      for template in FilterTemplate.objects.filter(name__in=templates).select_related("domain")})
    return documents


def _differences(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    old, new = _flatten(old), _flatten(new)
    return [(key, old.get(key, ABSENT), new.get(key, ABSENT))
            for key in list(dict.fromkeys([*old, *new])) if not same(old.get(key, ABSENT), new.get(key, ABSENT))]


def _flatten(document: dict, prefix: str = "") -> dict[str, Any]:
    """Leaves by dotted path; lines by their number (``line 10.parameters.command``)."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if key == "lines" and not prefix and isinstance(value, list):
            for line in value:
                flat.update(_flatten(line, f"line {line['line_no']}."))
        elif isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _import_template(raw: dict, where: str) -> str:
    unknown = set(raw) - set(TEMPLATE_FIELDS)
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {_names(unknown)}")
    existing = FilterTemplate.objects.filter(name=raw["name"]).first()
    template = existing or FilterTemplate(name=raw["name"])
    before = template_document(existing) if existing else None
    template.model = raw.get("model") or ""
    template.domain_id = _domain_id(raw.get("domain"), where)
    template.domain_path = raw.get("domain_path") or ""
    template.definition = raw.get("definition") or {}
    template.module = raw.get("module") or ""
    _full_clean(template, where)
    if existing and same(before, template_document(template)):
        return "unchanged"
    template.save()
    return "updated" if existing else "created"


def _import_job(raw: dict, existing: Job | None, where: str) -> str:
    unknown = set(raw) - JOB_KEYS
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {_names(unknown)}")
    job = existing or Job(identifier=raw["identifier"])
    stored = [model_field.attname for model_field in Job._meta.concrete_fields if model_field.name in JOB_FIELDS]
    before = {name: getattr(job, name) for name in stored} if existing else None
    for name in JOB_FIELDS[1:]:
        _set_job_field(job, name, raw, where)
    _full_clean(job, where)
    changed = not same(before, {name: getattr(job, name) for name in stored})
    if changed:
        job.save()
    lines_changed = _import_lines(job, raw.get("lines") or [], where)
    schedule_changed = _import_schedules(job, raw, where)
    if existing is None:
        return "created"
    return "updated" if changed or lines_changed or schedule_changed else "unchanged"


def _set_job_field(job: Job, name: str, raw: dict, where: str) -> None:
    """The file's value, or the field's default when the key is missing (files from before the field existed)."""
    model_field = Job._meta.get_field(name)
    if name == "name":
        job.name = raw.get("name") or raw["identifier"]
    elif name == "domain":
        job.domain_id = _domain_id(raw.get("domain"), where)
    elif name == "run_as":
        job.run_as_id = _user_id(raw.get("run_as"), where)
    elif name == "report":
        job.report = validate_report(raw.get("report"), where)
    elif isinstance(model_field, models.BooleanField):
        setattr(job, name, _flag(raw, name, model_field.get_default(), where))
    else:
        value = raw.get(name)
        setattr(job, name, model_field.get_default() if value is None else value)


def _schedules_entry(schedules: list[Schedule]) -> dict[str, Any]:
    """The contract's ``schedule:`` for no schedule or a single plain one (no name, no values of its own);
    otherwise ``schedules:``, every schedule with every field (a disabled one too when it has a name or values;
    without them it means by hand only, and a job without schedules is written ``schedule: null``)."""
    schedules = [s for s in schedules if s.kind != Schedule.DISABLED or not _plain(s)]
    if not schedules:
        return {"schedule": None}
    if len(schedules) == 1 and _plain(schedules[0]):
        return {"schedule": schedule_document(schedules[0])}
    return {"schedules": [schedule_entry(schedule) for schedule in schedules]}


def schedule_entry(schedule: Schedule) -> dict[str, Any]:
    """One schedule of a ``schedules:`` list: its name, its plan (``schedule_document``) and its values."""
    return {"name": schedule.name, **schedule_document(schedule), "parameters": schedule.parameters}


def _plain(schedule: Schedule) -> bool:
    return not schedule.name and not schedule.parameters


def schedule_document(schedule: Schedule) -> dict[str, Any]:
    """The fields that define the plan of the schedule's kind (an interval in seconds, with the unit it is shown in)."""
    document: dict[str, Any] = {"type": schedule.kind}
    if schedule.kind == Schedule.INTERVAL:
        document["every"] = schedule.every * UNITS[schedule.every_unit]
        document["every_unit"] = schedule.every_unit
    elif schedule.kind == Schedule.CALENDAR:
        if schedule.cron:
            document["cron"] = schedule.cron
        else:
            document["weekdays"] = [WEEKDAYS[d] for d in sorted(schedule.weekdays)]
            document["times"] = sorted(schedule.times)
    document["timezone"] = schedule.timezone
    for key, value in (("start", schedule.starts_at), ("end", schedule.ends_at)):
        document[key] = value.astimezone(zone(schedule.timezone)).isoformat() if value is not None else None
    document["catch_up"] = schedule.catch_up
    return document


def _import_schedules(job: Job, raw: dict, where: str) -> bool:
    """Make the job's schedules what the file says (``schedules:``, or the contract's single ``schedule:``);
    True if that changed anything. A schedule keeps its row (and its interval's grid) when the file names it
    the same, or, unnamed, when it comes at the same place among the unnamed ones."""
    wanted = _wanted_schedules(raw, where)
    existing = list(Schedule.objects.filter(job=job).order_by("id"))
    by_name = {schedule.name: schedule for schedule in existing if schedule.name}
    unnamed = [schedule for schedule in existing if not schedule.name]
    changed = False
    kept = set()
    for label, fields in wanted:
        schedule = by_name.get(fields["name"]) if fields["name"] else (unnamed.pop(0) if unnamed else None)
        if schedule is not None:
            kept.add(schedule.pk)
        changed |= _import_schedule(job, schedule, fields, f"{where}: {label}")
    for schedule in existing:
        if schedule.pk not in kept:
            schedule.delete()
            changed = True
    return changed


def _wanted_schedules(raw: dict, where: str) -> list[tuple[str, dict[str, Any]]]:
    """(how errors name it, its fields) for each schedule of the file's job, in file order."""
    if raw.get("schedule") and raw.get("schedules"):
        raise DefinitionError(f"{where}: give schedule (one) or schedules (a list), not both")
    if not raw.get("schedules"):
        entries = [("schedule", raw["schedule"])] if raw.get("schedule") else []
    elif not isinstance(raw["schedules"], list):
        raise DefinitionError(f"{where}: schedules must be a list")
    else:
        entries = [(f"schedules[{index}]", entry) for index, entry in enumerate(raw["schedules"])]
    wanted, names = [], set()
    for label, entry in entries:
        fields = _schedule_fields(entry, f"{where}: {label}")
        if fields["name"] in names:
            raise DefinitionError(f"{where}: {label}: name {fields['name']!r} is given to two schedules")
        if fields["name"]:
            names.add(fields["name"])
        # Disabled, without a name or values: by hand only, as a job without schedules is exported.
        if fields["kind"] != Schedule.DISABLED or fields["name"] or fields["parameters"]:
            wanted.append((label, fields))
    return wanted


def _import_schedule(job: Job, existing: Schedule | None, fields: dict[str, Any], where: str) -> bool:
    schedule = existing or Schedule(job=job)
    before = {name: getattr(schedule, name) for name in SCHEDULE_FIELDS} if existing else None
    for name, value in fields.items():
        setattr(schedule, name, value)
    schedule.job = job
    try:
        schedule.full_clean(exclude=["job"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        file_keys = {"starts_at": "start", "ends_at": "end", "kind": "type"}  # say it as the file does
        problems = "; ".join(f"{file_keys.get(field, field)}: {' '.join(messages)}"
                             for field, messages in exc.message_dict.items())
        raise DefinitionError(f"{where}: {problems}") from exc
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
    name, parameters = raw.get("name") or "", raw.get("parameters") or {}
    if not isinstance(name, str) or len(name) > Schedule._meta.get_field("name").max_length:
        raise DefinitionError(f"{where}: name must be text of at most 100 characters")
    if text_problem(name):
        raise DefinitionError(f"{where}: name: {text_problem(name)}")
    if not isinstance(parameters, dict):
        raise DefinitionError(f"{where}: parameters must be a mapping of name: value")
    fields: dict[str, Any] = {"name": name, "parameters": parameters,
                              "kind": kind, "timezone": str(tz_name), "cron": "", "weekdays": [], "times": [],
                              "every": None, "every_unit": "minutes",
                              "catch_up": raw.get("catch_up", Schedule.CATCH_UP_ONCE),
                              "starts_at": _instant(raw.get("start"), tz, f"{where}: start"),
                              "ends_at": _instant(raw.get("end"), tz, f"{where}: end")}
    if kind == Schedule.INTERVAL:
        every = raw.get("every")
        if not isinstance(every, int) or isinstance(every, bool) or every <= 0:
            raise DefinitionError(f"{where}: every must be a whole number of seconds above 0")
        unit = raw.get("every_unit") or next(u for u, seconds in reversed(UNITS.items()) if every % seconds == 0)
        if not isinstance(unit, str) or unit not in UNITS:
            raise DefinitionError(f"{where}: every_unit must be one of {', '.join(UNITS)}")
        if every % UNITS[unit]:
            raise DefinitionError(f"{where}: every: {every} seconds is not a whole number of {unit}")
        fields.update(every=every // UNITS[unit], every_unit=unit)
    elif kind == Schedule.CALENDAR:
        if raw.get("cron"):
            fields["cron"] = str(raw["cron"])
        else:
            # Stored in order, as exported: the order means nothing, and a file then gives back the same row.
            fields["weekdays"] = sorted(_weekday(day, where) for day in raw.get("weekdays") or [])
            fields["times"] = sorted(str(t) for t in raw.get("times") or [])
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


def _user_id(username: Any, where: str) -> int | None:
    if username in (None, ""):
        return None
    user_model = get_user_model()
    user_id = user_model.objects.filter(**{user_model.USERNAME_FIELD: str(username)}).values_list(
        "id", flat=True).first()
    if user_id is None:
        raise DefinitionError(f"{where}: run_as: unknown user {username!r}")
    return user_id


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
