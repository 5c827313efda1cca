"""Definitions: domains, actions, jobs and their lines.

This module never imports ``results``: executions depend on definitions, not
the other way round.
"""
from __future__ import annotations

import datetime
import uuid
from copy import deepcopy
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.utils import timezone
from pytimeparse import parse as parse_duration

from . import code_params, context, outbound, params, registry, secrets


class Domain(models.Model):
    """An organization; jobs belong to one domain or are global ("by installation")."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    http_allowed_hosts = models.TextField(
        blank=True, validators=[outbound.validate_allowed_hosts_text],
        help_text="Where core.http may connect for this domain's jobs, besides JOBS_HTTP_ALLOWED_HOSTS: one a line, "
                  "a host name, *.example.com, an IP address or a CIDR network, with an optional :port. Loopback and "
                  "private addresses must be listed here (by IP, network or exact host name) to be called. "
                  "Only system administrators change it.",
    )
    # Quotas, set by system administrators (the Domain window is theirs): empty = no limit.
    max_parallel_runs = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="At most this many runs of the domain's jobs pending or running at once; empty: no limit.",
    )
    min_schedule_interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Schedules of the domain's jobs may not fire more often than this; empty: no limit.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def schedule_gap_refusal(self, plan: dict[str, Any] | None, anchor: datetime.datetime | None = None,
                             siblings: list[tuple[dict[str, Any], datetime.datetime | None]] = ()) -> str | None:
        """Why a schedule with ``plan`` fires too often for this domain's quota (None: it does not), alone or
        beside ``siblings``, the ``(plan, anchor)`` of the job's other schedules: they all start its runs."""
        from .scheduling import shortest_combined_gap, shortest_gap

        if not self.min_schedule_interval_seconds or plan is None:
            return None
        limit = f"domain {self.slug} allows schedules at most every {self.min_schedule_interval_seconds} seconds"
        now = timezone.now()
        gap = shortest_gap(plan, now, anchor=anchor)
        if gap is not None and gap < self.min_schedule_interval_seconds:
            return f"{limit}; this one fires {gap:g} seconds apart."
        together = shortest_combined_gap([(plan, anchor), *siblings], now) if siblings else None
        if together is not None and together < self.min_schedule_interval_seconds:
            return f"{limit}; with the job's other schedules it fires {together:g} seconds apart."
        return None


class DomainMembership(models.Model):
    ADMIN, OPERATOR, VIEWER = "admin", "operator", "viewer"
    ROLES = [(ADMIN, "Domain administrator"), (OPERATOR, "Operator"), (VIEWER, "Viewer")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "domain"], name="one_membership_per_domain")]

    def __str__(self) -> str:
        return f"{self.user} · {self.domain} ({self.get_role_display()})"


class ActionQuerySet(models.QuerySet):
    def available(self) -> ActionQuerySet:
        return self.filter(available=True)

    def sync_with_registry(self, using: str = "default") -> None:
        """One row per registered action; rows whose code is gone become unavailable."""
        specs = registry.all_actions()
        with transaction.atomic(using=using):
            existing = {a.name: a for a in self.using(using).select_for_update()}
            for spec in specs.values():
                fields = {
                    "label": spec.label, "description": spec.description, "module": spec.module,
                    "parameters": spec.parameters, "idempotent": spec.idempotent,
                    "destructive": spec.destructive, "external": spec.external,
                    "dangerous": spec.dangerous, "supports_cancel": spec.supports_cancel,
                    "permissions": list(spec.permissions), "available": True,
                }
                row = existing.get(spec.name)
                if row is None:
                    self.using(using).create(name=spec.name, **fields)
                elif any(getattr(row, key) != value for key, value in fields.items()):
                    self.using(using).filter(pk=row.pk).update(**fields)
            gone = set(existing) - set(specs)
            self.using(using).filter(name__in=gone, available=True).update(available=False)


class Action(models.Model):
    """A registered Python function (see ``jobs.registry``); rows are kept in sync with the code."""

    name = models.CharField(max_length=200, unique=True)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    module = models.CharField(max_length=100, blank=True)
    parameters = models.JSONField(default=list, help_text="Declared in the function's signature.")
    idempotent = models.BooleanField(default=True)
    destructive = models.BooleanField(default=False)
    external = models.BooleanField(default=False, help_text="Calls an external system.")
    dangerous = models.BooleanField(default=False)
    supports_cancel = models.BooleanField(default=False)
    permissions = models.JSONField(
        default=list, blank=True, help_text="app_label.codename permissions the run's user needs for a line to run it.",
    )
    available = models.BooleanField(default=True, help_text="False once the code no longer registers it.")

    objects = ActionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name if self.available else f"{self.name} (unavailable)"


class FilterTemplate(models.Model):
    """A model and a base definition that filter lines start from."""

    name = models.CharField(max_length=200, unique=True)
    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.PROTECT, related_name="filter_templates",
        help_text="The domain whose administrators may use it in their lines (they also need a domain path).",
    )
    model = models.CharField(max_length=200, help_text="app_label.ModelName, e.g. auth.User")
    domain_path = models.CharField(
        max_length=200, blank=True,
        help_text="The lookup from the model to its domain, e.g. customer__domain: a run of a domain's job "
                  "only sees that domain's records. Empty: only system administrators' lines may use it.",
    )
    definition = models.JSONField(default=dict, blank=True, help_text="Field lookups, e.g. {\"is_active\": true}")
    module = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .filters import definition_errors, domain_path_problem, model_for

        try:
            model = model_for(self.model)
        except LookupError as exc:
            raise ValidationError({"model": str(exc)}) from exc
        errors = {}
        definition = definition_errors(model, self.definition, context.known_variables([]))
        if definition:
            errors["definition"] = definition
        path = domain_path_problem(model, self.domain_path) if self.domain_path else None
        if path:
            errors["domain_path"] = [path]
        errors.update(self._widening_errors())
        if errors:
            raise ValidationError(errors)

    def _widening_errors(self) -> dict[str, list[str]]:
        """A change that would let the lines of domain jobs on this template read other domains' records
        (or another model's): refused while such lines use it."""
        stored = FilterTemplate.objects.filter(pk=self.pk).values("domain_path", "model").first() if self.pk else None
        if stored is None:
            return {}
        widened = {}
        if stored["domain_path"] and not self.domain_path:
            widened["domain_path"] = "emptied (their lines would read every domain's records)"
        if stored["model"] != self.model:
            widened["model"] = "changed (their lines would read another model's records)"
        if not widened:
            return {}
        jobs = sorted(set(self.lines.filter(job__domain__isnull=False).values_list("job__identifier", flat=True)))
        if not jobs:
            return {}
        named = ", ".join(jobs[:10]) + (f" and {len(jobs) - 10} more" if len(jobs) > 10 else "")
        return {field: [f"cannot be {how} while filter lines of domain jobs use this template: {named}; change "
                        "or delete those lines first."] for field, how in widened.items()}

    @property
    def for_system_admins_only(self) -> bool:
        """Without a domain path a run cannot be kept to its domain's records: only system administrators use it."""
        return not self.domain_path


identifier_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*$", "Use lowercase letters, digits, - and _, starting with a letter or digit."
)


class JobQuerySet(models.QuerySet):
    def runnable(self) -> JobQuerySet:
        return self.filter(active=True)

    def bump_revisions(self) -> int:
        """Mark these jobs changed: every process reloads their plan (``jobs.plans``) at the next run.

        A fresh random token rather than a counter: a job deleted and created
        again under the same id (a restored database, a test) can never match
        a plan kept from before.
        """
        return self.update(revision=uuid.uuid4())


PREFLIGHT_BUDGET_SECONDS = 2.0  # all the pre-flight checks of one Run page together


class Job(models.Model):
    identifier = models.CharField(
        max_length=100, unique=True, validators=[identifier_validator],
        help_text="Used by scripts and the API; cannot change after creation.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs",
        help_text="Empty for a global job (by installation).",
    )
    active = models.BooleanField(default=True, help_text="An inactive job does not run.")
    stops_on_error = models.BooleanField(default=True, help_text="Stop at the first line that fails.")
    module = models.CharField(max_length=100, blank=True, help_text="The module this job is exported with.")
    queue = models.CharField(
        max_length=100, blank=True, validators=[RegexValidator(r"^[A-Za-z0-9_.-]*$", "Letters, digits, _ . - only.")],
        help_text="Celery queue whose workers run this job; empty for the default queue.",
    )
    params = models.JSONField(
        default=list, blank=True,
        help_text='Run-time parameters, e.g. [{"name": "days", "type": "int", "default": 7}]',
    )
    TYPES = [("manual", "Manual"), ("scheduled", "Scheduled"), ("processing", "Processing"),
             ("integration", "Integration"), ("reporting", "Reporting")]
    job_type = models.CharField(
        max_length=16, choices=TYPES, default="manual",
        help_text="Seed 004's kinds: manual, scheduled, processing (started by the application), integration, "
                  "reporting.",
    )
    BY_INSTALLATION, PER_DOMAIN = "installation", "per_domain"
    EXECUTION = [(BY_INSTALLATION, "By installation (one run)"), (PER_DOMAIN, "Per domain (one run for each domain)")]
    execution = models.CharField(
        max_length=16, choices=EXECUTION, default=BY_INSTALLATION,
        help_text="For a global job: one run, or one run for each domain (each result belongs to its domain).",
    )
    run_as = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="A service user the job runs as; empty: as the user who started it.",
    )
    required_permission = models.CharField(
        max_length=200, blank=True, help_text="app_label.codename a user needs, besides their role, to run it.",
    )
    destructive = models.BooleanField(default=False, help_text="Deletes or overwrites data: Run asks to confirm.")
    external = models.BooleanField(
        default=False, help_text="Books or sends to an external system: Run asks to confirm.",
    )
    ONE_AT_A_TIME, PARALLEL = "one", "parallel"
    CONCURRENCY = [(ONE_AT_A_TIME, "One at a time"), (PARALLEL, "Allow parallel runs")]
    concurrency = models.CharField(
        max_length=16, choices=CONCURRENCY, default=ONE_AT_A_TIME,
        help_text="One at a time refuses a Run while a run of this job is pending or running.",
    )
    time_limit = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 3600)],
        help_text="Seconds a run may take before it is killed; empty for the site default.",
    )
    idempotent = models.BooleanField(
        default=False, help_text="Safe to run more than once: retried automatically after a worker loss.",
    )
    retries = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(10)], help_text="Automatic retries after a failure (0 to 10).",
    )
    retry_delay = models.PositiveIntegerField(
        default=60, validators=[MaxValueValidator(24 * 3600)], help_text="Seconds between a failure and its retry.",
    )
    report = models.JSONField(null=True, blank=True, help_text="E-mail report: recipients and when.")
    owner = models.CharField(max_length=200, blank=True, help_text="Who is responsible for it (person or team).")
    expected_runtime = models.CharField(max_length=100, blank=True, help_text="e.g. about 5 minutes")
    expected_result = models.TextField(blank=True, help_text="What a good run produces.")
    troubleshooting = models.TextField(blank=True, help_text="What to check when it fails; where its logs are.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    revision = models.UUIDField(
        default=uuid.uuid4, editable=False, help_text="Changes with every change of the job, its lines or filters.",
    )

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["identifier"]
        indexes = [models.Index(fields=["domain", "identifier"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.identifier})"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        # Activating a job must not fire the slots it missed while inactive.
        for schedule in Schedule.objects.filter(job_id=self.pk):
            schedule.job = self
            schedule.reschedule()


    def clean(self) -> None:
        if self.pk:
            original = Job.objects.filter(pk=self.pk).values_list("identifier", flat=True).first()
            if original is not None and original != self.identifier:
                raise ValidationError({"identifier": "The identifier cannot change after creation."})
        from .definitions import DefinitionError, validate_report

        self.params = self.params if self.params is not None else []
        errors: dict[str, list[str]] = {}
        try:
            self.params = params.validate_param_specs(self.params)
        except ValidationError as exc:
            errors["params"] = exc.messages
        try:
            validate_report(self.report, "report")
        except DefinitionError as exc:
            errors["report"] = [str(exc)]
        if self.execution == self.PER_DOMAIN and self.domain_id is not None:
            errors["execution"] = ["Only a global job can run per domain."]
        if self.required_permission and "." not in self.required_permission:
            errors["required_permission"] = ["Write it as app_label.codename, e.g. billing.post_invoices."]
        if errors:
            raise ValidationError(errors)

    @property
    def expected_duration(self) -> datetime.timedelta | None:
        """``expected_runtime`` as a duration ("about 5 minutes", "1h 30m"); None when it names none."""
        start = next((at for at, char in enumerate(self.expected_runtime) if char.isdigit()), None)
        seconds = parse_duration(self.expected_runtime[start:]) if start is not None else None
        return datetime.timedelta(seconds=seconds) if seconds else None

    @property
    def effective_time_limit(self) -> int | None:
        """Seconds, or None for no limit (site default 0)."""
        return self.time_limit or settings.JOBS_DEFAULT_TIME_LIMIT_SECONDS or None

    def preflight(self, parameters: dict | None = None, *,
                  budget: float = PREFLIGHT_BUDGET_SECONDS) -> list[tuple[JobLine, str | None]]:
        """Each active line's pre-flight check, all at once within ``budget`` seconds: (line, None) when ready.

        With the job's own default values, and ``parameters`` over them: pass typed values only for people
        trusted to point the checks anywhere (the Run page: system administrators). The checks apply the
        outbound policy of the job's domain.
        """
        from .context import build_variables

        values = {spec["name"]: spec.get("default") for spec in self.params or []} | (parameters or {})
        domain_slug = self.domain.slug if self.domain_id else None
        variables = build_variables(job_identifier=self.identifier, domain_slug=domain_slug, params=values)
        # Stored secrets are never opened in the web process: a check sees the mask in their place.
        variables |= {secrets.variable_name(name): secrets.MASK for name in self.usable_secret_names()}
        masker = secrets.Masker(values.get(name) for name in self.secret_param_names())
        answered, checked = self._preflight_arguments(variables)
        policy = outbound.policy_for(domain_slug)
        problems = registry.run_checks([outbound.under(policy, partial(spec.preflight, arguments))
                                        for _, spec, arguments in checked], budget)
        answered += [(line, masker.text(problem) if problem else problem)
                     for (line, _, _), problem in zip(checked, problems, strict=True)]
        return sorted(answered, key=lambda pair: pair[0].line_no)

    def _preflight_arguments(self, variables: dict[str, Any]) -> tuple[list, list]:
        """(lines answered already, (line, action, arguments) to check) of the active lines with a check."""
        answered: list[tuple[JobLine, str | None]] = []
        checked: list[tuple[JobLine, registry.ActionSpec, dict]] = []
        for line in self.active_lines():
            spec = registry.get(line.action.name) if line.action_id else None
            if spec is None or spec.check is None:
                continue
            try:
                checked.append((line, spec, line.run_parameters(variables)))
            except (ValidationError, LookupError, KeyError) as exc:
                answered.append((line, f"not checked: its parameters do not resolve yet ({exc})"))
        return answered, checked

    def confirmation_reasons(self) -> list[str]:
        """Why Run must be confirmed by typing the identifier (empty: no confirmation needed)."""
        reasons = []
        actions = [line.action for line in self.active_lines() if line.action_id]
        if self.destructive or any(action.destructive for action in actions):
            reasons.append("it deletes or overwrites data")
        if self.external or any(action.external for action in actions):
            reasons.append("it calls an external system")
        return reasons

    def clean_confirmation(self, confirm: str | None) -> None:
        reasons = self.confirmation_reasons()
        if reasons and confirm != self.identifier:
            raise ValidationError({"confirm": [
                f"Type the job's identifier ({self.identifier}) to confirm: {' and '.join(reasons)}."
            ]})

    def param_names(self) -> list[str]:
        return [spec["name"] for spec in self.params or []]

    def secret_param_names(self) -> set[str]:
        return {spec["name"] for spec in self.params or [] if spec.get("type") == "secret"}

    def usable_secret_names(self) -> list[str]:
        """The stored secrets this job's lines may use: its domain's own (a global job: the global ones)."""
        return list(Secret.objects.usable_by(self.domain_id).values_list("name", flat=True))

    def secret_variables(self, usable: set[str] | None = None) -> set[str]:
        """The variables whose values are secrets: ``param.NAME`` of secret parameters, ``secret.NAME``."""
        names = self.usable_secret_names() if usable is None else usable
        return {f"param.{name}" for name in self.secret_param_names()} | {secrets.variable_name(n) for n in names}

    def clean_run_parameters(self, raw: dict | None) -> dict:
        """Typed run-time values from ``raw``; ValidationError names each bad parameter.

        Secret parameters come back sealed (encrypted); a sealed value given again (a retry) is accepted.
        """
        if raw is not None and not isinstance(raw, dict):
            raise ValidationError({"parameters": ["must be an object of name: value"]})
        values = params.clean_values(self.params or [], self._unsealed(raw))
        # Every declared parameter gets a value (None when left out), so ${param.NAME} always resolves.
        hidden = self.secret_param_names()
        return {name: secrets.seal(values[name]) if name in hidden and values.get(name) is not None
                else params.to_json(values.get(name)) for name in self.param_names()}

    def _unsealed(self, raw: dict | None) -> dict | None:
        if not raw:
            return raw
        opened, errors = dict(raw), {}
        for name in self.secret_param_names():
            if secrets.is_sealed(raw.get(name)):
                try:
                    opened[name] = secrets.unseal(raw[name])
                except secrets.SecretError as exc:
                    errors[name] = [str(exc)]
        if errors:
            raise ValidationError(errors)
        return opened

    def active_lines(self) -> models.QuerySet[JobLine]:
        return self.lines.filter(active=True).select_related("action", "filter_template").order_by("line_no")

    # Not copied: what names the copy, when it was made, and ``active`` (a copy starts inactive: see ``copy``).
    NOT_COPIED = ("id", "identifier", "name", "active", "created_at", "updated_at", "revision")

    def copy(self, identifier: str, name: str | None = None, user: Any = None) -> Job:
        """A new job ``identifier`` with every field, line and schedule setting of this one.

        The copy starts inactive, so its schedule never fires (and nobody runs it) until someone
        activates it. ``user`` (None: application code) must be allowed to edit this job; the copy
        stays in its domain, and its system administrators' lines stay theirs (``jobs.authorship``).
        Raises ValidationError naming the field (identifier taken or malformed) or PermissionDenied.
        """
        from . import access, versions

        if user is not None and not access.can_edit(user, self):
            raise PermissionDenied(f"Only who may edit {self.identifier} may copy it.")
        fields = {f.attname: deepcopy(getattr(self, f.attname)) for f in self._meta.concrete_fields
                  if f.name not in self.NOT_COPIED}
        duplicate = Job(identifier=identifier, name=name or self.name, active=False, **fields)
        duplicate.full_clean()
        with transaction.atomic():
            duplicate.save()
            for line in self.lines.order_by("line_no"):
                line.pk = None
                line.job = duplicate
                line.save()
            for schedule in Schedule.objects.filter(job=self):
                schedule.copy_to(duplicate)
            versions.record(duplicate, user, comment=self.copy_comment())
        return duplicate

    def copy_comment(self) -> str:
        from .versions import latest_number

        number = latest_number(self)
        return f"copied from {self.identifier}" + (f" version {number}" if number else "")


class JobLine(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField(help_text="Lines run in this order.")
    active = models.BooleanField(default=True)
    is_filter = models.BooleanField(default=False, help_text="Selects the records the following lines work on.")
    filter_template = models.ForeignKey(
        FilterTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )
    filter_definition = models.JSONField(default=dict, blank=True)
    action = models.ForeignKey(Action, null=True, blank=True, on_delete=models.PROTECT, related_name="lines")
    module = models.CharField(max_length=100, blank=True)
    parameters = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "line_no"]
        constraints = [models.UniqueConstraint(fields=["job", "line_no"], name="unique_line_no_per_job")]

    def __str__(self) -> str:
        return f"{self.job.identifier} line {self.line_no}"

    def clean(self) -> None:
        # An emptied JSON field in a form comes back as None; empty means {} here.
        self.parameters = self.parameters if self.parameters is not None else {}
        self.filter_definition = self.filter_definition if self.filter_definition is not None else {}
        try:
            job_params = self.job.param_names()
        except Job.DoesNotExist:
            job_params = []
        self._make_code_safe(job_params)
        errors = self.validation_errors(job_params)
        if errors:
            raise ValidationError(errors)

    def _make_code_safe(self, job_param_names: list[str]) -> None:
        """Variables written in a shell parameter become environment variables (``jobs.code_params.made_safe``)."""
        spec = registry.get(self.action.name) if self.action_id and not self.is_filter else None
        if spec is not None and spec.code_params and isinstance(self.parameters, dict):
            job = self._job_or_none()
            known = context.known_variables(job_param_names, job.usable_secret_names() if job is not None else [])
            self.parameters = code_params.made_safe(spec.code_params, self.parameters, known)

    def validation_errors(self, job_param_names: list[str]) -> dict[str, list[str]]:
        """Field errors of this line, each naming the parameter and the rule."""
        known = context.known_variables(job_param_names)
        if self.is_filter:
            return self._filter_errors(known)
        if self.action_id is None:
            return {"action": ["Choose the action this line runs."]}
        return self._parameter_errors(known)

    def _job_or_none(self) -> Job | None:
        try:
            return self.job
        except Job.DoesNotExist:
            return None

    def _secret_errors(self, declared: list[dict], usable: set[str]) -> list[str]:
        """Stored secrets it names must be usable by its job; credentials must be references."""
        job = self._job_or_none()
        whose = "a secret of this job's domain" if job is not None and job.domain_id else "a global secret"
        messages = [f"{name}: unknown secret {unknown} (not {whose})"
                    for name, value in sorted(self.parameters.items(), key=lambda item: str(item[0]))
                    for unknown in sorted(secrets.referenced_names(value) - usable)]
        hidden = job.secret_variables(usable) if job is not None else set()
        return messages + secrets.literal_secret_problems(declared, self.parameters, hidden)

    def _filter_errors(self, known: set[str]) -> dict[str, list[str]]:
        from .filters import definition_errors, model_for

        if self.filter_template_id is None:
            return {"filter_template": ["A filter line needs a filter template (it names the model)."]}
        try:
            model = model_for(self.filter_template.model)
        except LookupError as exc:
            return {"filter_template": [str(exc)]}
        errors = definition_errors(model, self.filter_definition, known)
        return {"filter_definition": errors} if errors else {}

    def _parameter_errors(self, known: set[str]) -> dict[str, list[str]]:
        spec = registry.get(self.action.name)
        if spec is None or not self.action.available:
            return {"action": [f"The action {self.action.name} is not available in this installation."]}
        if not isinstance(self.parameters, dict):
            return {"parameters": ["Must be a JSON object of parameter: value."]}
        job = self._job_or_none()
        usable = set(job.usable_secret_names()) if job is not None else set()
        known = known | {secrets.variable_name(name) for name in usable}
        messages = self._secret_errors(spec.parameters, usable)
        for name in sorted(set(self.parameters) - {p["name"] for p in spec.parameters}, key=str):
            messages.append(f"{name}: unknown parameter of {spec.name}")
        for declared in spec.parameters:
            name = declared["name"]
            value = self.parameters.get(name)
            if value is None:
                if declared["required"]:
                    messages.append(f"{name}: this parameter is required")
                continue
            problem = params.json_problem(value)  # what the JSON column could not store, variables or not
            if problem:
                messages.append(f"{name}: {problem}")
                continue
            # Stored secrets it names are checked by _secret_errors, with a message of their own.
            unknown = [u for u in context.unknown_variables(value, known) if not u.startswith(secrets.SECRET_PREFIX)]
            code_problems = code_params.written_problems(spec.code_params.get(name), value)
            if unknown:
                messages.append(f"{name}: unknown variable {', '.join('${' + u + '}' for u in unknown)}")
            elif code_problems:
                messages.extend(f"{name}: {problem}" for problem in code_problems)
            elif not context.variables_in(value):
                try:
                    params.coerce(declared, value)
                except params.ParameterError as exc:
                    messages.append(f"{name}: {exc}")
        if not messages:
            messages = spec.written_problems(self.parameters)
        return {"parameters": messages} if messages else {}

    def run_parameters(self, variables: dict[str, Any]) -> dict[str, Any]:
        """The action's arguments: declared defaults, then this line's values, resolved and typed."""
        spec = registry.get(self.action.name)
        if spec is None:
            raise LookupError(f"the action {self.action.name} is not available in this installation")
        # Code parameters (a shell command, a command line) follow their own rule: values stay data.
        resolved = code_params.resolve_parameters(spec.code_params, self.parameters or {}, variables)
        arguments = params.clean_values(spec.parameters, resolved)
        return arguments


def _site_time_zone() -> str:
    return settings.TIME_ZONE


class Schedule(models.Model):
    """When a job runs by itself. The plan computations live in ``jobs.scheduling``;
    ``results.scheduler`` claims due schedules and starts their runs."""

    DISABLED, AUTOMATIC, INTERVAL, CALENDAR = "disabled", "automatic", "interval", "calendar"
    KINDS = [
        (DISABLED, "Disabled: runs only when someone clicks Run"),
        (AUTOMATIC, "Automatic: the plan its action declares"),
        (INTERVAL, "Interval: every N seconds, minutes, hours or days"),
        (CALENDAR, "Calendar: days of the week and times, or a cron expression"),
    ]
    UNITS = [("seconds", "seconds"), ("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
    CATCH_UP_ONCE, CATCH_UP_SKIP = "once", "skip"
    CATCH_UP = [(CATCH_UP_ONCE, "Run once for all the slots it missed"), (CATCH_UP_SKIP, "Skip missed slots")]

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100, blank=True,
                            help_text="Tells this schedule from the job's others, e.g. nightly (optional).")
    kind = models.CharField(max_length=16, choices=KINDS, default=DISABLED)
    every = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    every_unit = models.CharField(max_length=8, choices=UNITS, default="minutes")
    weekdays = models.JSONField(default=list, blank=True, help_text="0 = Monday … 6 = Sunday")
    times = models.JSONField(default=list, blank=True, help_text='Times of day, e.g. ["08:00", "18:30"]')
    cron = models.CharField(max_length=100, blank=True, help_text="Five fields, e.g. 0 18 * * 5")
    timezone = models.CharField(max_length=64, default=_site_time_zone)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="The first run at (optional).")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="No run after (optional).")
    catch_up = models.CharField(max_length=8, choices=CATCH_UP, default=CATCH_UP_ONCE,
                                help_text="What to do with the slots missed while nothing was running.")
    parameters = models.JSONField(
        default=dict, blank=True,
        help_text='Run-time values for the runs this schedule starts, e.g. {"days": 7}; the others take their default.',
    )
    anchor_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["job", "id"]
        constraints = [
            # A file names a job's schedules by their label: two with the same one would be the same schedule.
            models.UniqueConstraint(fields=["job", "name"], condition=~models.Q(name=""),
                                    name="schedule_name_unique_per_job",
                                    violation_error_message="Another schedule of this job has this name."),
        ]
        indexes = [
            # The scheduler's claim reads only the schedules that are due.
            models.Index(fields=["next_run_at"], name="schedule_due",
                         condition=models.Q(next_run_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.describe()

    def save(self, *args, **kwargs) -> None:
        # An interval keeps its grid: slots count from when it was defined, not from each save or late tick.
        plan = self.plan()
        if plan is not None and plan["type"] == "interval" and (self.anchor_at is None or self._interval_changed()):
            self.anchor_at = timezone.now()
        self.next_run_at = self.compute_next()
        super().save(*args, **kwargs)
        self._saved_interval = self._interval_key()

    NOT_COPIED = ("id", "job", "anchor_at", "next_run_at", "last_run_at")

    def copy_to(self, job: Job) -> Schedule:
        """The same plan for ``job`` (its own grid and next run, computed from now)."""
        fields = {f.attname: deepcopy(getattr(self, f.attname)) for f in self._meta.concrete_fields
                  if f.name not in self.NOT_COPIED}
        return Schedule.objects.create(job=job, **fields)

    def _interval_key(self) -> tuple:
        return (self.kind, self.every, self.every_unit, self.starts_at)


    def plan(self) -> dict[str, Any] | None:
        """The plan as in job definition files, or None when it never fires by itself."""
        from .scheduling import UNITS

        bounds = {"timezone": self.timezone, "start": self.starts_at, "end": self.ends_at}
        if self.kind == self.INTERVAL and self.every:
            return {"type": "interval", "every": self.every * UNITS[self.every_unit], **bounds}
        if self.kind == self.CALENDAR:
            if self.cron:
                return {"type": "calendar", "cron": self.cron, **bounds}
            return {"type": "calendar", "weekdays": list(self.weekdays or []), "times": list(self.times or []),
                    **bounds}
        if self.kind == self.AUTOMATIC:
            declared = self.declared_plan()
            return {**declared, **{k: v for k, v in bounds.items() if v}} if declared else None
        return None

    def when_local(self, instant: datetime.datetime | None) -> str:
        """An instant in this schedule's time zone, labelled with it."""
        from .scheduling import PlanError, zone

        if instant is None:
            return "—"
        try:
            tz = zone(self.timezone)
        except PlanError:
            return instant.isoformat()
        return f"{instant.astimezone(tz):%Y-%m-%d %H:%M} ({self.timezone})"

    def declared_plan(self) -> dict[str, Any] | None:
        """The default plan of the first of the job's actions that declares one."""
        if self.job.pk is None:
            return None
        for line in self.job.active_lines():
            spec = registry.get(line.action.name) if line.action_id else None
            if spec is not None and spec.schedule:
                return dict(spec.schedule)
        return None

    def default_kind(self) -> str:
        """A new schedule of a job whose action declares a plan follows that plan; otherwise by hand only."""
        return self.AUTOMATIC if self.declared_plan() is not None else self.DISABLED

    def describe(self) -> str:
        from .scheduling import describe

        plan = self.plan()  # an automatic schedule reads its job's lines once, here
        if plan is None and self.kind == self.AUTOMATIC:
            return "Automatic, but no action of this job declares a plan"
        return describe(plan)

    def clean(self) -> None:
        from .scheduling import PlanError, check, check_instant, next_fire, zone

        try:
            zone(self.timezone)
            check_instant("start", self.starts_at)
            check_instant("end", self.ends_at)
        except PlanError as exc:
            raise self._plan_error(exc) from exc
        if self.kind in (self.INTERVAL, self.CALENDAR) or (self.kind == self.AUTOMATIC and self.plan()):
            if self.kind == self.INTERVAL and not self.every:
                raise ValidationError({"every": "An interval schedule needs a number above 0."})
            try:
                check(self.plan())
                # A plan that passes the checks may still have no next run (30 February, year 10000).
                next_fire(self.plan(), timezone.now(), anchor=self.anchor_at)
            except PlanError as exc:
                raise self._plan_error(exc) from exc
            self._check_domain_quota()
        if self.parameters or self.plan() is not None:
            self.parameters = self.cleaned_parameters()

    def label(self) -> str:
        """How messages name this schedule: its name, else its plan in words."""
        return repr(self.name) if self.name else self.describe()

    def cleaned_parameters(self) -> dict[str, Any]:
        """The values given, each checked by the rule a Run checks it by (``params.coerce``), stored typed.

        Raises ValidationError on ``parameters`` naming this schedule and each bad parameter. A value left
        out (or empty) takes the parameter's default when the run starts; a required one without a default
        then stops that run with the reason, as a Run would. Secret parameters cannot be given here: a
        schedule's values are shown in the admin and the definition file.
        """
        values = self.parameters
        if not isinstance(values, dict):
            raise ValidationError({"parameters": f"schedule {self.label()}: must be an object of name: value"})
        specs = {spec["name"]: spec for spec in self.job.params or []}
        cleaned, problems = {}, {}
        for name, value in values.items():
            spec = specs.get(name)
            if spec is None:
                problems[name] = "unknown parameter"
            elif spec.get("type") == "secret":
                problems[name] = "a secret parameter cannot be stored on a schedule; it takes its default"
            elif value is not None and not (value == "" and spec.get("type") != "str"):
                try:
                    cleaned[name] = params.to_json(params.coerce(spec, value))
                except params.ParameterError as exc:
                    problems[name] = str(exc)
        if problems:
            raise ValidationError({"parameters": [f"schedule {self.label()}: parameter {name}: {rule}"
                                                  for name, rule in sorted(problems.items(), key=str)]})
        return cleaned

    def _check_domain_quota(self) -> None:
        domain = self.job.domain if self.job.domain_id else None
        if domain is None or not domain.min_schedule_interval_seconds:
            return
        siblings = [(other.plan(), other.anchor_at) for other in self.job.schedules.exclude(pk=self.pk)]
        refusal = domain.schedule_gap_refusal(self.plan(), self.anchor_at,
                                              [(plan, anchor) for plan, anchor in siblings if plan is not None])
        if refusal:
            raise ValidationError({"every" if self.kind == self.INTERVAL else "kind": refusal})

    def _plan_error(self, exc: Exception) -> ValidationError:
        """A PlanError ("field: rule") as a ValidationError on the model field it names."""
        field, _, rule = str(exc).partition(": ")
        field = {"start": "starts_at", "end": "ends_at"}.get(field, field)
        return ValidationError({field if field in self._field_names() else "kind": rule})

    def _field_names(self) -> set[str]:
        return {f.name for f in self._meta.fields}

    def compute_next(self, after: datetime.datetime | None = None) -> datetime.datetime | None:
        from .scheduling import PlanError, next_fire

        plan = self.plan()
        if plan is None or not self.job.active:
            return None
        try:
            return next_fire(plan, after or timezone.now(), anchor=self.anchor_at)
        except PlanError:
            return None  # no next run can be computed any more (validation refuses such plans when saved)

    def reschedule(self) -> None:
        """Next run from now: a schedule enabled or edited never fires what it missed before."""
        self.next_run_at = self.compute_next()
        Schedule.objects.filter(pk=self.pk).update(next_run_at=self.next_run_at)

    def _interval_changed(self) -> bool:
        return getattr(self, "_saved_interval", None) != self._interval_key()

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        if {"kind", "every", "every_unit", "starts_at"} <= set(field_names):
            instance._saved_interval = instance._interval_key()
        return instance


class SecretQuerySet(models.QuerySet):
    def usable_by(self, domain_id: int | None) -> SecretQuerySet:
        """The secrets a job of this domain may use: its domain's own; a global job: the global ones.

        A domain's jobs never use global secrets: a domain administrator writes their lines, and could
        send a system administrator's credential anywhere.
        """
        return self.filter(domain_id=domain_id) if domain_id is not None else self.filter(domain__isnull=True)


class Secret(models.Model):
    """A credential that line parameters reference as ``${secret.NAME}``; its value is encrypted (jobs.secrets)."""

    name = models.CharField(
        max_length=100, validators=[RegexValidator(secrets.NAME_RE, f"Use {secrets.NAME_RULE}.")],
        help_text="Lines use it as ${secret.NAME}; a shell command reads $JOBS_SECRET_NAME (in capitals).",
    )
    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.PROTECT, related_name="secrets",
        help_text="Empty: a global secret, usable by global jobs only (system administrators).",
    )
    token = models.TextField(editable=False, help_text="The value, encrypted with JOBS_SECRET_KEYS.")
    description = models.CharField(max_length=300, blank=True)
    system_only = models.BooleanField(
        default=False, verbose_name="For system administrators' lines only",
        help_text="Only lines a system administrator writes may use it; the domain's administrators can neither "
                  "change it nor write a line that uses it (so none can send it elsewhere).",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)

    objects = SecretQuerySet.as_manager()

    class Meta:
        ordering = ["domain__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["name", "domain"], name="unique_secret_name_per_domain"),
            models.UniqueConstraint(fields=["name"], condition=models.Q(domain__isnull=True),
                                    name="unique_global_secret_name",
                                    violation_error_message="A global secret with this name already exists."),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.domain.slug if self.domain_id else 'global'})"

    def set_value(self, text: str) -> None:
        self.token = secrets.encrypt(text)

    def reveal(self) -> str:
        """The value in clear: for the worker that runs a line using it, never for a page."""
        return secrets.decrypt(self.token)


class JobVersion(models.Model):
    """One saved state of a job: its definition file text (``jobs.versions`` owns them).

    Kept when the job is deleted (``job`` empties, ``job_identifier`` stays), for audit."""

    job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="versions")
    job_identifier = models.CharField(max_length=100)
    number = models.PositiveIntegerField()
    definition = models.TextField(help_text="The job alone as a definition file (YAML).")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    comment = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["job_identifier", "number"],
                                               name="unique_job_version_number")]

    def __str__(self) -> str:
        return f"{self.job_identifier} version {self.number}"


# Maintenance windows and the pause switch live with their logic (``jobs.maintenance``); imported here so Django
# registers them with the app's models.
from .maintenance import MaintenanceWindow, SchedulePause  # noqa: E402,F401
