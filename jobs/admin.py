"""Admin windows for definitions: jobs with their lines, domains, actions, filters.

Every queryset goes through ``jobs.access``: objects of other domains are not
in the queryset, so Django's admin answers 404 for them.
"""
from __future__ import annotations

import json
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.forms.models import BaseInlineFormSet, ModelChoiceIterator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.choices import BaseChoiceIterator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from . import access, authorship, registry, versions
from . import context as context_vars
from .code_params import variables_hint
from .definitions import DefinitionError, export_jobs, import_texts, preview_texts
from .executions import executions
from .filters import model_for, relations_followed
from .forms import ImportJobsForm, JSONTextField, ParamSpecsField, ReportField, ScheduleForm
from .models import Action, Domain, DomainMembership, FilterTemplate, Job, JobLine, Schedule, Secret
from .scheduling import describe as describe_plan
from .when import when_html

STATUS_ICONS = {
    "success": ("✔", "ok"), "warning": ("⚠", "warn"), "info": ("ℹ", "info"), "error": ("✖", "bad"),
    "killed": ("✖", "bad"), "running": ("●", "running"), "pending": ("○", "pending"), None: ("–", "never"),
}


def status_badge(status: str | None, label: str | None = None):
    icon, css = STATUS_ICONS.get(status, ("?", "never"))
    return format_html('<span class="job-status job-status-{}" title="{}">{} {}</span>',
                       css, status or "never run", icon, label if label is not None else (status or "never run"))


def can_edit(request, job: Job) -> bool:
    return access.per_request(request, ("edit", job.pk), lambda: access.can_edit(request.user, job))


class NotFoundOutsideDomainsMixin:
    """Objects outside ``get_queryset`` (other domains) answer 404, never a redirect that hints they exist."""

    def _visible_or_404(self, request, object_id) -> None:
        if object_id is not None and self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.model._meta.verbose_name} matches the given query.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._visible_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._visible_or_404(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._visible_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)


class MembershipAdminMixin:
    """Staff members of a domain use the admin with no Django permissions of their own."""

    def has_module_permission(self, request) -> bool:
        return access.request_is_member(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return access.request_is_member(request)


class SystemAdminOnlyMixin:
    def has_module_permission(self, request) -> bool:
        return access.is_system_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return access.is_system_admin(request.user)

    def has_add_permission(self, request, obj=None) -> bool:
        return access.is_system_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return access.is_system_admin(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return access.is_system_admin(request.user)


class MembershipInline(SystemAdminOnlyMixin, admin.TabularInline):
    model = DomainMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Domain)
class DomainAdmin(NotFoundOutsideDomainsMixin, MembershipAdminMixin, SystemAdminOnlyMixin, admin.ModelAdmin):
    """Members read their domains; only system administrators change them."""

    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return access.visible_domains(request.user)


@admin.register(Action)
class ActionAdmin(MembershipAdminMixin, admin.ModelAdmin):
    """The installed actions, read only: what each takes and where it is used."""

    list_display = ["name", "label", "module", "available", "idempotent", "destructive", "external", "dangerous",
                    "supports_cancel"]
    list_filter = ["available", "module", "dangerous", "external", "destructive"]
    search_fields = ["name", "label", "description"]
    readonly_fields = ["name", "label", "description", "module", "available", "idempotent", "destructive",
                       "external", "dangerous", "supports_cancel", "required_permissions", "automatic_plan",
                       "parameter_table"]
    fields = readonly_fields

    @admin.display(description="Automatic plan")
    def automatic_plan(self, action: Action) -> str:
        """The plan an "automatic" schedule of a job using this action follows (``registry.action(schedule=…)``)."""
        spec = registry.get(action.name)
        if spec is None or not spec.schedule:
            return "None: a job using it runs by hand or on a plan of its own"
        return describe_plan({"timezone": "in the schedule's time zone", **spec.schedule})

    @admin.display(description="Required permissions")
    def required_permissions(self, action: Action) -> str:
        return ", ".join(action.permissions or []) or "None"

    @admin.display(description="Parameters")
    def parameter_table(self, action: Action):
        rows = format_html_join(
            "", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((p["name"], p.get("type", "str") + (f" ({', '.join(map(str, p['choices']))})" if p.get("choices")
                                                  else ""),
              "required" if p.get("required") else "", "" if p.get("default") is None else p["default"],
              p.get("help", "")) for p in action.parameters),
        )
        if not action.parameters:
            return "None"
        return format_html('<table><thead><tr><th>Name</th><th>Type</th><th></th><th>Default</th><th>Help</th>'
                           "</tr></thead><tbody>{}</tbody></table>", rows)

    change_form_template = "admin/jobs/action/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        action = self.get_object(request, unquote(object_id))
        used_by = access.visible_jobs(request.user).filter(lines__action=action).distinct().order_by("identifier")
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "used_by": used_by})

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def json_textareas(rows: int, cols: int) -> dict:
    """JSON fields as text areas; JSONTextField makes text nested too deeply a field error, not a crash."""
    return {models.JSONField: {"form_class": JSONTextField, "widget": forms.Textarea(attrs={"rows": rows,
                                                                                           "cols": cols})}}


COMPACT_JSON = json_textareas(2, 36)
WIDE_JSON = json_textareas(3, 60)


@admin.register(FilterTemplate)
class FilterTemplateAdmin(SystemAdminOnlyMixin, admin.ModelAdmin):
    formfield_overrides = WIDE_JSON
    list_display = ["name", "model", "domain_path", "domain", "module"]
    search_fields = ["name", "model"]


class SecretForm(forms.ModelForm):
    """The value is write-only: a password box never filled in again; left empty on a change, it is kept."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}), required=False,
        strip=False, help_text="Stored encrypted and never shown again. Leave empty to keep the current value.",
    )

    class Meta:
        model = Secret
        fields = ["name", "domain", "description"]

    def clean_value(self) -> str:
        value = self.cleaned_data.get("value") or ""
        if not value and self.instance.pk is None:
            raise ValidationError("A new secret needs a value.")
        if "\x00" in value:
            raise ValidationError("The value must not contain NUL characters.")
        return value

    def save(self, commit: bool = True) -> Secret:
        if self.cleaned_data.get("value"):
            self.instance.set_value(self.cleaned_data["value"])
        return super().save(commit)


class DomainOwnedAdminMixin(MembershipAdminMixin):
    """Objects of a domain, or global: members read them, a domain's administrators change its own, and only
    system administrators the global ones (a domain admin's form offers only their domains)."""

    def has_add_permission(self, request) -> bool:
        return access.request_edits_somewhere(request)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return access.has_role_in(request.user, obj.domain_id, access.EDIT_ROLES)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "domain":
            kwargs["queryset"] = access.editable_domains(request.user)
            kwargs["required"] = not access.is_system_admin(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Secret)
class SecretAdmin(NotFoundOutsideDomainsMixin, DomainOwnedAdminMixin, admin.ModelAdmin):
    """Members see the names of their domains' secrets; domain administrators set them; nobody reads a value."""

    form = SecretForm
    list_display = ["name", "domain_or_global", "description", "updated_at", "updated_by"]
    list_filter = [("domain", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "description"]
    readonly_fields = ["updated_at", "updated_by"]

    @admin.display(description="Domain", ordering="domain__name")
    def domain_or_global(self, secret: Secret) -> str:
        return secret.domain.name if secret.domain_id else "Global"

    def get_fields(self, request, obj=None):
        fields = ["name", "domain", "description"] + (["system_only"] if access.is_system_admin(request.user) else [])
        if self.has_change_permission(request, obj) or (obj is None and self.has_add_permission(request)):
            fields.append("value")  # never for a reader: only the form's empty password box has this name
        return fields + (["updated_at", "updated_by"] if obj is not None else [])

    def get_queryset(self, request):
        secrets = super().get_queryset(request).select_related("domain", "updated_by")
        if access.is_system_admin(request.user):
            return secrets
        return secrets.filter(domain__in=access.visible_domains(request.user))

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.system_only and not access.is_system_admin(request.user):
            return False  # kept for system administrators' lines: a domain admin reads its name only
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj: Secret, form, change) -> None:
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


class ParentAwareFormSet(BaseInlineFormSet):
    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        # Validate against the job as edited on this same page (its params, its active flag).
        form.instance.job = self.instance
        return form


class ScheduleFormSet(ParentAwareFormSet):
    @classmethod
    def get_default_prefix(cls) -> str:
        return "schedule"  # the form names of the days when a job had one schedule (pages, scripts, tests)

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if form.instance.pk is None and not form.is_bound:
            form.initial["kind"] = form.instance.default_kind()  # the plan its action declares, if one does
        return form


class ScheduleInline(admin.StackedInline):
    model = Schedule
    form = ScheduleForm
    formset = ScheduleFormSet
    formfield_overrides = WIDE_JSON
    extra = 1
    verbose_name = "schedule"
    verbose_name_plural = "Scheduling"
    fieldsets = [
        (None, {"fields": ["name", "kind", "plan_in_words", "next_run", "last_run"]}),
        ("Interval", {"fields": [("every", "every_unit")]}),
        ("Calendar", {"fields": ["weekdays", "times", "cron"]}),
        ("Bounds and time zone", {"fields": ["timezone", ("starts_at", "ends_at"), "catch_up"]}),
        ("Parameter values", {"fields": ["parameters"]}),
    ]
    readonly_fields = ["plan_in_words", "next_run", "last_run"]

    @admin.display(description="In words")
    def plan_in_words(self, schedule: Schedule) -> str:
        return schedule.describe() if schedule.pk else "—"

    @admin.display(description="Next run")
    def next_run(self, schedule: Schedule) -> str:
        return schedule.when_local(schedule.next_run_at)

    @admin.display(description="Last run")
    def last_run(self, schedule: Schedule) -> str:
        return schedule.when_local(schedule.last_run_at)

    def has_view_permission(self, request, obj=None) -> bool:
        return access.request_is_member(request)

    def has_add_permission(self, request, obj=None) -> bool:
        return obj is None or can_edit(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or can_edit(request, obj)





TEMPLATE_RULE = ("Not a filter template you may use: a domain administrator uses the templates of their domains "
                 "that have a domain path (a run then sees its domain's records only).")


class OfferedModelChoiceField(forms.ModelChoiceField):
    """Offers ``offered`` in its drop-down, checks a posted value against the whole ``queryset``: what is not
    offered is refused by the rules that own it (``jobs.authorship``), with their reason."""

    class OfferedIterator(ModelChoiceIterator):
        def __init__(self, field) -> None:
            super().__init__(field)
            self.queryset = field.offered

    iterator = OfferedIterator

    def __init__(self, queryset, *, offered, **kwargs) -> None:
        self.offered = offered
        super().__init__(queryset, **kwargs)

    def offer(self, more) -> None:
        self.offered = self.offered | more
        self.widget.choices = self.choices


class JobLineForm(forms.ModelForm):
    """Refuses to anybody but a system administrator what ``jobs.authorship`` reserves to them, and a filter
    template that reads every domain."""

    user = None  # set per request by JobLineInline.get_formset

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The line's own template and action stay valid choices (an unchanged line must not block the page);
        # clean() still refuses a change to a line its editor may not make.
        field = self.fields.get("filter_template")
        if field is not None and self.instance.filter_template_id is not None:
            field.queryset = field.queryset | FilterTemplate.objects.filter(pk=self.instance.filter_template_id)
        field = self.fields.get("action")
        if isinstance(field, OfferedModelChoiceField) and self.instance.action_id is not None:
            field.offer(Action.objects.filter(pk=self.instance.action_id))
        if "line_no" in self.fields:  # empty: the formset numbers a new line after the others (10, 20, ...)
            self.fields["line_no"].required = False

    def clean(self):
        cleaned = super().clean()
        if self.user is None or access.is_system_admin(self.user) or not self.has_changed():
            return cleaned
        template = cleaned.get("filter_template")
        old_template = self.instance.filter_template if self.instance.pk and self.instance.filter_template_id else None
        for used in {t for t in (template, old_template) if t is not None and t.for_system_admins_only}:
            raise ValidationError({"filter_template": [
                f"Only a system administrator may add or change a filter line on {used.name}: the template has "
                "no domain path, so its line would read every domain's records."]})
        if cleaned.get("is_filter") and template is not None:
            followed = relations_followed(model_for(template.model), cleaned.get("filter_definition"))
            if followed:
                raise ValidationError({"filter_definition": [
                    f"{key}: following a relation into another model is for system administrators only"
                    for key in followed]})
        # The line as stored: this form's instance takes the posted values once cleaned.
        saved = JobLine.objects.select_related("action").filter(pk=self.instance.pk).first() if self.instance.pk \
            else None
        refusal = authorship.line_change_refusal(self.user, saved, self.changed_data, new_action=cleaned.get("action"))
        if refusal:
            raise ValidationError(refusal)
        refusal = authorship.secret_refusal(self.user, self.instance.job, cleaned.get("parameters"))
        if refusal:
            raise ValidationError({"parameters": [refusal]})
        return cleaned


class SharedChoices(BaseChoiceIterator):
    """A select's choices read from the database when first drawn, then reused by every row that draws them."""

    def __init__(self, choices) -> None:
        self.choices, self.read = choices, None

    def __iter__(self):
        if self.read is None:
            self.read = list(iter(self.choices))  # iter(): no COUNT query first
        return iter(self.read)


class JobLineFormSet(ParentAwareFormSet):
    """Deleting a line comes through its DELETE box, which skips the form's own clean: checked here."""

    user = None  # set per request by JobLineInline.get_formset
    LINE_STEP = 10

    def _construct_form(self, i, **kwargs):
        if i >= self.initial_form_count():  # a new row: numbered after the others (the page's script does so too)
            kwargs["initial"] = {**kwargs.get("initial", {}),
                                 "line_no": self._next_line_no() + self.LINE_STEP * (i - self.initial_form_count())}
        return super()._construct_form(i, **kwargs)

    def _next_line_no(self, taken: tuple[int, ...] = ()) -> int:
        """The next multiple of 10 after the job's stored lines (and ``taken``)."""
        if not hasattr(self, "_stored_max"):
            self._stored_max = max((line.line_no for line in self.get_queryset()), default=0) \
                if self.instance.pk else 0
        return (max([self._stored_max, *taken]) // self.LINE_STEP + 1) * self.LINE_STEP

    def _number_new_lines(self) -> None:
        """A new line left without a number goes after every other line."""
        numbered = [form for form in self.forms if getattr(form, "cleaned_data", None) is not None]
        for form in numbered:
            if form.cleaned_data.get("line_no") is not None or not form.has_changed() \
                    or (self.can_delete and self._should_delete_form(form)):
                continue
            if form.instance.pk:
                form.add_error("line_no", "A line needs its number (lines run in this order).")
                continue
            taken = tuple(f.cleaned_data["line_no"] for f in numbered if f.cleaned_data.get("line_no") is not None)
            form.cleaned_data["line_no"] = form.instance.line_no = self._next_line_no(taken)

    def save_existing_objects(self, commit=True):
        if commit:
            self._park_moved_lines()
        return super().save_existing_objects(commit)

    def _park_moved_lines(self) -> None:
        """Lines that change number (reordered) or go first step aside to numbers no line uses.

        The database checks (job, line_no) unique row by row: saving a swap of two lines one at a time would
        collide midway. One UPDATE moves them all above every number in use, inside the admin's transaction.
        """
        moving = [form.instance.pk for form in self.initial_forms if form.instance.pk and (
            (self.can_delete and self._should_delete_form(form)) or "line_no" in form.changed_data)]
        if not moving:
            return
        posted = [form.instance.line_no or 0 for form in self.forms]
        above = max([self._next_line_no(), *posted]) + 1
        JobLine.objects.filter(job=self.instance, pk__in=moving).update(line_no=F("line_no") + above)

    def add_fields(self, form, index) -> None:
        """Every row offers the same actions and templates: read them once, not once per row (N+1)."""
        super().add_fields(form, index)
        shared = self.__dict__.setdefault("_shared_choices", {})
        for name in ("action", "filter_template"):
            field = form.fields.get(name)
            if field is None or (name == "filter_template" and form.instance.filter_template_id is not None):
                continue  # a line's own template may widen its choices (JobLineForm.__init__)
            # A domain admin's rows are offered the actions they may use plus the row's own: rows share by that.
            key = (name, form.instance.action_id) if isinstance(field, OfferedModelChoiceField) else name
            if key not in shared:
                shared[key] = SharedChoices(field.choices)
            field.choices = shared[key]
            inner = getattr(field.widget, "widget", None)  # the admin's add/change wrapper renders this one
            if inner is not None:
                inner.choices = shared[key]

    def clean(self) -> None:
        self._number_new_lines()
        super().clean()
        if authorship.may_change_authored(self.user):
            return
        # As stored: a deleted row's form instance holds whatever was posted with it.
        saved = {line.pk: line for line in authorship.protected_lines(self.instance)}
        for form in self.initial_forms:
            if form.instance.pk in saved and self.can_delete and self._should_delete_form(form):
                raise ValidationError(authorship.line_change_refusal(self.user, saved[form.instance.pk], [],
                                                                     deleting=True))
        posted, touched = self._posted_layout()
        problems = authorship.feed_refusals(self.user, authorship.stored_layout(self.instance), posted, touched)
        if problems:
            raise ValidationError(problems)

    def _posted_layout(self) -> tuple[list[authorship.LineLayout], set]:
        """The lines as they would be saved, and the keys of those added, changed or deleted."""
        posted, touched = [], set()
        for index, form in enumerate(self.forms):
            key = form.instance.pk or f"new-{index}"
            if self.can_delete and self._should_delete_form(form):
                touched.add(key)
                continue
            if not form.has_changed():
                if form.instance.pk is None:
                    continue  # an empty extra row
            else:
                touched.add(key)
            data = getattr(form, "cleaned_data", {})
            line_no = data.get("line_no", form.instance.line_no)
            if line_no is None:
                continue  # refused by the form itself
            is_filter = data.get("is_filter", form.instance.is_filter)
            template = data.get("filter_template") if "filter_template" in data else form.instance.filter_template
            posted.append(authorship.LineLayout(key, line_no, data.get("active", form.instance.active), is_filter,
                                                template if is_filter else None))
        return posted, touched


class JobLineInline(admin.TabularInline):
    model = JobLine
    form = JobLineForm
    formset = JobLineFormSet
    formfield_overrides = COMPACT_JSON
    extra = 1

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = type("JobLineForm", (formset.form,), {"user": request.user})
        return type("JobLineFormSet", (formset,), {"user": request.user})
    ordering = ["line_no"]
    fields = ["line_no", "active", "action", "parameters", "is_filter", "filter_template", "filter_definition",
              "module"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "action":
            kwargs["queryset"] = Action.objects.available()
            if not authorship.may_change_authored(request.user):
                # Dangerous actions are not offered; one posted anyway meets jobs.authorship's refusal (clean).
                kwargs["form_class"] = OfferedModelChoiceField
                kwargs["offered"] = kwargs["queryset"].filter(dangerous=False)
        if db_field.name == "filter_template":
            templates = FilterTemplate.objects.all()
            if not access.is_system_admin(request.user):  # their domains' templates that keep a run to its domain
                templates = templates.filter(domain__in=access.editable_domains(request.user)).exclude(domain_path="")
                kwargs["error_messages"] = {"invalid_choice": TEMPLATE_RULE}
            kwargs["queryset"] = templates
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_view_permission(self, request, obj=None) -> bool:
        return access.request_is_member(request)

    def has_add_permission(self, request, obj=None) -> bool:
        return obj is None or can_edit(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or can_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is None or can_edit(request, obj)


class JobForm(forms.ModelForm):
    """Refuses to anybody but a system administrator the job changes ``jobs.authorship`` reserves to them."""

    user = None  # set per request by JobAdmin.get_form
    params = ParamSpecsField(label="Run-time parameters",
                             help_text="What Run asks for; lines use them as ${param.NAME}.")
    report = ReportField(label="E-mail report")
    change_note = forms.CharField(
        label="Change note", max_length=300, required=False,
        help_text="Why you change the job: kept with the version this save stores (see History).")

    class Media:
        js = ["jobs/job_form.js"]  # the parameter table, report, schedule kinds, line order, filter fields

    def clean(self):
        cleaned = super().clean()
        saved = Job.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        if saved is None:
            return cleaned
        guarded = [*authorship.GUARDED_JOB_FIELDS, "params"]
        edited = Job(**{name: cleaned.get(name, getattr(saved, name)) for name in guarded})
        for field, problems in authorship.job_change_refusals(self.user, saved, edited).items():
            self.add_error(field, problems)
        return cleaned


class CopyJobForm(forms.Form):
    identifier = forms.CharField(max_length=100, help_text="The new job's identifier (it cannot change later).")
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the same name.")


class LastRunFilter(admin.SimpleListFilter):
    """The status icons as toggles: ``?last_run=error,killed`` lists the jobs whose last run has any of them."""

    title = "last run"
    parameter_name = "last_run"
    template = "admin/jobs/job/status_toggles.html"
    STATUSES = ("success", "warning", "info", "error", "killed", "running", "pending", "never")

    def lookups(self, request, model_admin):
        return [(status, STATUS_ICONS[None if status == "never" else status][0]) for status in self.STATUSES]

    def chosen(self) -> list[str]:
        return [status for status in self.STATUSES if status in (self.value() or "").split(",")]

    def queryset(self, request, queryset):
        chosen = self.chosen()
        if not chosen:
            return queryset
        matching = Q(last_result_status__in=[status for status in chosen if status != "never"])
        if "never" in chosen:
            matching |= Q(last_result_status__isnull=True)
        return queryset.filter(matching)

    def choices(self, changelist):
        chosen = self.chosen()
        yield {"selected": not chosen, "display": "All", "status": "all", "css": "all",
               "query_string": changelist.get_query_string(remove=[self.parameter_name])}
        for status, icon in self.lookup_choices:
            toggled = [other for other in self.STATUSES if (other in chosen) != (other == status)]
            query = (changelist.get_query_string({self.parameter_name: ",".join(toggled)}) if toggled
                     else changelist.get_query_string(remove=[self.parameter_name]))
            yield {"selected": status in chosen, "display": icon, "status": status, "query_string": query,
                   "css": STATUS_ICONS[None if status == "never" else status][1]}


def is_sub_minute(schedule: Schedule | None) -> bool:
    """A schedule that fires more often than once a minute: its times are shown with seconds."""
    from .scheduling import UNITS

    return (schedule is not None and schedule.kind == Schedule.INTERVAL and bool(schedule.every)
            and schedule.every * UNITS[schedule.every_unit] < 60)


@admin.register(Job)
class JobAdmin(NotFoundOutsideDomainsMixin, MembershipAdminMixin, admin.ModelAdmin):
    form = JobForm
    change_form_template = "admin/jobs/job/change_form.html"
    # Few, wrapping columns: the list fits 1400 px beside the sidebar and 800 px without sideways scrolling.
    list_display = ["job_cell", "job_type", "domain_or_global", "active", "last_status", "schedule_cell"]
    list_display_links = None  # job_cell links the name itself; the row's Run/Kill: get_list_display
    list_filter = [LastRunFilter, "job_type", "active", ("domain", admin.RelatedOnlyFieldListFilter), "module"]
    search_fields = ["identifier", "name", "description"]
    list_select_related = ["domain"]
    actions = ["run_now", "export_yaml", "copy_job"]
    change_list_template = "admin/jobs/job/change_list.html"
    inlines = [JobLineInline, ScheduleInline]

    class Media:
        css = {"all": ["jobs/jobs.css"]}
        js = ["jobs/popup.js", "jobs/line_params.js", "jobs/job_list.js"]
    formfield_overrides = WIDE_JSON
    fieldsets = [
        (None, {"fields": ["identifier", "name", "description", "job_type", "domain", "execution", "active",
                           "stops_on_error"]}),
        ("Who and how", {"fields": ["run_as", "required_permission", "destructive", "external"]}),
        ("Execution", {"fields": ["params", "concurrency", "time_limit", "idempotent", "retries", "retry_delay",
                                  "queue", "module"]}),
        ("For operators", {"fields": ["owner", "expected_runtime", "expected_result", "troubleshooting"]}),
        ("E-mail report", {"fields": ["report"], "classes": ["collapse"]}),
    ]

    # --- the read-only page (operators, viewers): the definition in words, the notes shown once, at the top ---
    READER_FIELDS = {"params": "params_shown", "report": "report_shown"}

    def is_reader(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def reader_fieldsets(self, fieldsets) -> list:
        return [(name or "Definition", {**options, "fields": [self.READER_FIELDS.get(f, f) for f in options["fields"]]})
                for name, options in fieldsets if name != "For operators"]  # the operator panel shows those

    @admin.display(description="Run-time parameters")
    def params_shown(self, job: Job):
        if not job.params:
            return "None"
        rows = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (spec["name"], spec.get("type", "str") + (f" ({', '.join(map(str, spec['choices']))})"
                                                      if spec.get("choices") else ""),
             "required" if spec.get("required") else "", "" if spec.get("default") is None else spec["default"],
             spec.get("help", "")) for spec in job.params))
        return format_html('<table class="params-shown"><thead><tr><th>Name</th><th>Type</th><th></th><th>Default'
                           "</th><th>Help</th></tr></thead><tbody>{}</tbody></table>", rows)

    @admin.display(description="E-mail report")
    def report_shown(self, job: Job) -> str:
        report = job.report or {}
        recipients = report.get("recipients") or []
        if not recipients or report.get("when") == "never":
            return "No report is sent."
        when = {"always": "after every run", "warning": "after a warning or a failure"}.get(
            report.get("when", "failure"), "after a failure")
        return f"Sent to {', '.join(recipients)} {when}."

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.is_reader(request, obj):
            return self.reader_fieldsets(fieldsets)
        if obj is None or self.has_change_permission(request, obj):  # the note goes with a save
            fieldsets = [*fieldsets, ("Change note", {"fields": ["change_note"]})]
        return fieldsets

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # Now the lines and the schedule are saved too: the version is the job as a whole.
        versions.record(form.instance, request.user, form.cleaned_data.get("change_note", ""))

    # --- permissions (by domain; members read: MembershipAdminMixin) ---------------
    def has_add_permission(self, request) -> bool:
        return access.request_edits_somewhere(request)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None:
            return access.request_is_member(request)
        return can_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj) and (obj is not None or self.has_add_permission(request))

    def get_queryset(self, request):
        upcoming = Schedule.objects.filter(job=OuterRef("pk"), next_run_at__isnull=False).order_by("next_run_at")
        jobs = access.visible_jobs(request.user, super().get_queryset(request)).prefetch_related("schedules").annotate(
            next_scheduled_run=Subquery(upcoming.values("next_run_at")[:1]))
        return executions().with_last_run(jobs, request.user)

    def get_object(self, request, object_id, from_field=None):
        # Asked for three times on the job page (the 404 check, its context, Django's own view): read once.
        return access.per_request(request, ("job", object_id, from_field),
                           lambda: super(JobAdmin, self).get_object(request, object_id, from_field))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type("JobForm", (form,), {"user": request.user})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Django's hidden "save as new" would turn this page into an add form that bypasses the
        # change page's rules (a read-only identifier, who wrote the lines): Copy does it properly.
        if request.method == "POST" and "_saveasnew" in request.POST:
            return HttpResponseBadRequest("Save as new is not available for jobs: use Copy on the job's page.",
                                          content_type="text/plain; charset=utf-8")
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_readonly_fields(self, request, obj=None):
        readonly = ["identifier"] if obj is not None else []
        if self.is_reader(request, obj):
            readonly += self.READER_FIELDS.values()
        if not access.is_system_admin(request.user):
            # A service user's rights, every domain, or lifting a required permission: system administrators' calls.
            readonly += ["run_as", "execution", "required_permission"]
        return readonly

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "domain":
            kwargs["queryset"] = access.editable_domains(request.user)
            kwargs["required"] = not access.is_system_admin(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- columns -----------------------------------------------------------------
    @admin.display(description="Job", ordering="identifier")
    def job_cell(self, job: Job):
        """The name (linked), the identifier, and the description under them."""
        description = Truncator(job.description).chars(160)
        return format_html('<a class="job-name" href="{}">{}</a>{} <code class="job-identifier">{}</code>{}',
                           reverse("admin:jobs_job_change", args=[job.pk]), job.name,
                           "" if job.active else mark_safe(' <span class="job-inactive">inactive</span>'),
                           job.identifier,
                           format_html('<div class="job-description">{}</div>', description) if description else "")

    @admin.display(description="Domain", ordering="domain__name")
    def domain_or_global(self, job: Job) -> str:
        if job.domain_id:
            return job.domain.name
        return "Global, per domain" if job.execution == Job.PER_DOMAIN else "Global"

    @admin.display(description="Last run", ordering="last_result_at")
    def last_status(self, job: Job):
        """Status icon (linked to the run), log icon, and when; job_list.js redraws it from ``live_view``."""
        status = getattr(job, "last_result_status", None)
        if status is None:
            return format_html('<div class="last-run" data-job="{}" data-id="{}">{}</div>', job.identifier, job.pk,
                               status_badge(None))
        url = reverse("admin:results_jobresult_change", args=[job.last_result_id])
        return format_html('<div class="last-run" data-job="{}" data-id="{}" data-result="{}" data-status="{}">'
                           '<a href="{}">{}</a> {} {}</div>', job.identifier, job.pk, job.last_result_id, status,
                           url, status_badge(status), self.log_icon(job),
                           when_html(job.last_result_at, seconds=any(is_sub_minute(s) for s in job.schedules.all())))

    @admin.display(description="Schedule", ordering="next_scheduled_run")
    def schedule_cell(self, job: Job):
        """The plans in words and the next run of any of them."""
        schedules = [s for s in job.schedules.all() if s.kind != Schedule.DISABLED]
        if not schedules:
            return "By hand only"
        plans = format_html_join(mark_safe("<br>"), "{}", ((s.describe(),) for s in schedules))
        upcoming = [s for s in schedules if s.next_run_at is not None]
        if not upcoming:
            return plans
        first = min(upcoming, key=lambda s: s.next_run_at)
        return format_html('{}<div class="next-run">next: {}</div>', plans,
                           when_html(first.next_run_at, seconds=is_sub_minute(first)))

    def log_icon(self, job: Job):
        if getattr(job, "last_log_seq", None) is None:
            return ""
        unread = job.last_log_seq > (job.last_read_seq or 0)
        url = reverse("admin:results_jobresult_change", args=[job.last_result_id])
        return format_html('<a class="log-icon log-{}" href="{}?_popup=1#job-log" data-popup="{}" title="{}">{}</a>',
                           "unread" if unread else "read", url, url,
                           "new log entries" if unread else "log read", "■" if unread else "□")

    def get_list_display(self, request):
        return [*super().get_list_display(request), self.row_buttons_for(request)]

    def row_buttons_for(self, request):
        """The row's Run and Kill, only where this user may use them (one query for the whole page)."""
        may_run_in = access.request_run_domains(request)

        @admin.display(description="")
        def row_buttons(job: Job):
            if not access.runs_in(may_run_in, job.domain_id):
                return format_html('<div class="row-buttons" data-id="{}"></div>', job.pk)
            run = ""
            if job.active and access.can_run_given(request.user, may_run_in, job):
                run = format_html('<a class="button run-link" href="{}">Run</a>',
                                  reverse("admin:jobs_job_run", args=[job.pk]))
            kill = ""
            if getattr(job, "last_result_status", None) in ("pending", "running"):
                kill = format_html('<a class="button kill-button" href="{}">Kill</a>',
                                   reverse("admin:results_jobresult_kill", args=[job.last_result_id]))
            return format_html('<div class="row-buttons" data-id="{}">{}{}</div>', job.pk, run, kill)

        return row_buttons

    LIVE_IDS_MAX = 200

    def live_view(self, request):
        """What job_list.js redraws every 2 s: each listed job's last-run cell and Run/Kill, as HTML.

        ``?ids=1,2,3`` (at most 200); jobs outside the caller's domains are simply not in the answer.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        text = request.GET.get("ids", "")
        ids = text.split(",") if text else []
        if len(ids) > self.LIVE_IDS_MAX or not all(part.isdigit() and len(part) < 12 for part in ids):
            return JsonResponse({"errors": {"ids": [f"comma-separated job ids, at most {self.LIVE_IDS_MAX}"]}},
                                status=400)
        buttons = self.row_buttons_for(request)
        jobs = self.get_queryset(request).filter(pk__in=ids)  # its rows: last run and schedules included
        return JsonResponse({"jobs": {str(job.pk): {"last_run": self.last_status(job), "buttons": buttons(job)}
                                      for job in jobs}})

    # --- Run -----------------------------------------------------------------------
    def get_urls(self):
        run = self.admin_site.admin_view(self.run_view)
        copy = self.admin_site.admin_view(self.copy_view)
        import_view = self.admin_site.admin_view(self.import_view)
        versions_view = self.admin_site.admin_view(self.versions_view)
        live = self.admin_site.admin_view(self.live_view)
        return [
            path("live/", live, name="jobs_job_live"),
            path("<int:object_id>/history/versions/", versions_view, name="jobs_job_versions"),
            path("<int:object_id>/run/", run, name="jobs_job_run"),
            path("<int:object_id>/copy/", copy, name="jobs_job_copy"),
            path("import/", import_view, name="jobs_job_import"),
            *super().get_urls(),
        ]

    IMPORT_SESSION_KEY = "jobs_import_pending"

    def import_view(self, request):
        """Upload a job definition file, see what it would change (job by job, field by field), then Apply:
        one transaction, every error named by job and line (system admins only)."""
        if not access.is_system_admin(request.user):
            raise PermissionDenied
        if request.method == "POST" and "apply" in request.POST:
            return self._apply_import(request)
        form = ImportJobsForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            update_existing = not form.cleaned_data["skip_existing"]
            try:
                changes = preview_texts([("the file", form.text())], update_existing=update_existing)
            except DefinitionError as exc:
                form.add_error("file", f"{exc} (nothing was imported)")
            else:
                # The text stays on the server (the session) between preview and Apply; Apply validates it again.
                token = uuid.uuid4().hex
                request.session[self.IMPORT_SESSION_KEY] = {"token": token, "text": form.text(),
                                                            "update_existing": update_existing}
                context = {**self.admin_site.each_context(request), "title": "Import jobs: what would change",
                           "changes": changes, "token": token, "opts": self.model._meta}
                return TemplateResponse(request, "admin/jobs/job/import_preview.html", context)
        context = {**self.admin_site.each_context(request), "title": "Import jobs", "form": form,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/jobs/job/import.html", context)

    def _apply_import(self, request):
        pending = request.session.get(self.IMPORT_SESSION_KEY)
        if not pending or request.POST.get("token") != pending.get("token"):
            self.message_user(request, "Nothing to apply: upload the file again.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:jobs_job_import"))
        try:
            report = import_texts([("the file", pending["text"])], update_existing=pending["update_existing"],
                                  user=request.user)
        except DefinitionError as exc:  # the database changed since the preview
            self.message_user(request, f"{exc} (nothing was imported)", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:jobs_job_import"))
        del request.session[self.IMPORT_SESSION_KEY]
        summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in report.items() if v) or "nothing to do"
        self.message_user(request, f"Imported. {summary}", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))

    @admin.action(description="Export selected jobs as YAML")
    def export_yaml(self, request, queryset):
        """The selected jobs (those this user sees) as a definition file that import_jobs takes back."""
        response = HttpResponse(export_jobs(access.visible_jobs(request.user, Job.objects.filter(
            pk__in=queryset.values("pk"))).order_by("identifier")), content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="jobs.yaml"'
        return response

    @admin.action(description="Copy the selected job", permissions=["add"])
    def copy_job(self, request, queryset):
        """Asks for the copy's identifier and name on the job's Copy page."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one job to copy.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:jobs_job_copy", args=[queryset.get().pk]))

    def copy_view(self, request, object_id: int):
        """A new job with every field, line and schedule setting of this one (``Job.copy``), inactive."""
        job = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not access.can_edit(request.user, job):
            raise PermissionDenied
        form = CopyJobForm(request.POST or None, initial={"identifier": f"{job.identifier}-copy", "name": job.name})
        if request.method == "POST" and form.is_valid():
            try:
                duplicate = job.copy(form.cleaned_data["identifier"], form.cleaned_data["name"] or None,
                                     user=request.user)
            except ValidationError as exc:
                for name, problems in exc.message_dict.items():
                    form.add_error(name if name in form.fields else None, problems)
            else:
                self.log_addition(request, duplicate, [{"added": {}}])
                self.message_user(request, f"{job.identifier} copied as {duplicate.identifier}; the copy is "
                                  "inactive until you activate it.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[duplicate.pk]))
        context = {**self.admin_site.each_context(request), "title": f"Copy {job.name}", "job": job, "form": form,
                   "opts": self.model._meta, "original": job}
        return TemplateResponse(request, "admin/jobs/job/copy.html", context)

    def versions_view(self, request, object_id: int):
        """The History window: the job's versions, a diff of any two (?a=N&b=M), Restore (POST restore=N)."""
        job = get_object_or_404(self.get_queryset(request), pk=object_id)
        all_versions = list(job.versions.select_related("created_by").order_by("-number"))
        if request.method == "POST":
            return self._restore(request, job, all_versions)
        by_number = {version.number: version for version in all_versions}
        older, newer = self._compared(request, all_versions, by_number)
        context = {**self.admin_site.each_context(request), "title": f"History of {job.name}", "job": job,
                   "original": job, "opts": self.model._meta, "versions": all_versions, "older": older,
                   "newer": newer, "diff": versions.diff(older, newer) if older and newer else None,
                   "can_restore": versions.may_restore(request.user, job)}
        return TemplateResponse(request, "admin/jobs/job/versions.html", context)

    @staticmethod
    def _compared(request, all_versions, by_number):
        """The two versions to compare: those asked for, or by default the latest and the one before it."""
        def asked(name):
            value = request.GET.get(name, "")
            return by_number.get(int(value)) if value.isdigit() else None

        older, newer = asked("a"), asked("b")
        if older is None and newer is None and len(all_versions) >= 2:
            newer, older = all_versions[0], all_versions[1]
        if older and newer and older.number > newer.number:
            older, newer = newer, older
        return older, newer

    def _restore(self, request, job: Job, all_versions):
        if not versions.may_restore(request.user, job):
            raise PermissionDenied
        number = request.POST.get("restore", "")
        version = next((v for v in all_versions if str(v.number) == number), None)
        if version is None:
            raise Http404("No such version of this job.")
        try:
            restored = versions.restore(job, version, request.user)
        except (PermissionDenied, DefinitionError) as exc:
            self.message_user(request, f"Version {version.number} was not restored: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"Version {version.number} restored"
                              + (f" as version {restored.number}." if restored else " (nothing differed)."),
                              messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:jobs_job_versions", args=[job.pk]))

    def run_view(self, request, object_id: int):
        job = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not access.can_run(request.user, job):
            raise PermissionDenied
        return executions().run_dialog(request, self.admin_site, job)

    def has_run_permission(self, request) -> bool:
        """Offers "Run now" only to roles that may run (system administrators, domain admins, operators)."""
        return access.request_runs_somewhere(request)

    @admin.action(description="Run now", permissions=["run"])
    def run_now(self, request, queryset):
        # can_run: a further permission a job may require
        runnable = [job for job in access.runnable_jobs(request.user, queryset) if access.can_run(request.user, job)]
        started, refused = executions().run_now(request, runnable)
        not_allowed = queryset.count() - len(started) - len(refused)
        if started:
            self.message_user(request, f"Queued: {', '.join(started)}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not run: {', '.join(refused)}.", messages.ERROR)
        if not_allowed:
            self.message_user(request, f"{not_allowed} job(s) you may not run were left out.", messages.WARNING)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # What the typed line editor (line_params.js) needs: each action's parameters and the variables.
        job_params = obj.param_names() if obj is not None else []
        secret_names = obj.usable_secret_names() if obj is not None else []  # names only, never values
        names = sorted(context_vars.known_variables(job_params, secret_names))
        variables = ["${" + name + "}" for name in names]
        context["action_specs"] = {
            str(action.pk): {"name": action.name, "parameters": action.parameters, "variables": variables,
                             "hint": variables_hint(getattr(registry.get(action.name), "code_params", {}), names)}
            for action in Action.objects.available()
        }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        job = self.get_object(request, object_id)
        if job is not None:
            may_edit = can_edit(request, job)
            extra_context.update(executions().job_page_context(request, job))
            extra_context["can_run"] = access.request_can_run(request, job)
            extra_context["can_copy"] = may_edit
            extra_context["version_number"] = versions.latest_number(job)
            extra_context["schedules_shown"] = shown_schedules(job)
            if not may_edit:  # the read-only page draws the definition itself: no inputs at all
                extra_context["lines_shown"] = shown_lines(job)
        return super().change_view(request, object_id, form_url, extra_context)


def shown_schedules(job: Job) -> list[dict]:
    """The job's schedules as read-only rows."""
    return [{"name": schedule.name, "plan": schedule.describe(), "next_run": schedule.when_local(schedule.next_run_at),
             "last_run": schedule.when_local(schedule.last_run_at), "kind": schedule.kind,
             "parameters": schedule.parameters}
            for schedule in job.schedules.all()]


def shown_lines(job: Job) -> list[dict]:
    """The job's lines for the read-only page: parameters as short "name: value" pairs that wrap."""
    lines = job.lines.select_related("action", "filter_template").order_by("line_no")
    return [{"line": line, "parameters": [(name, json_text(value)) for name, value in (line.parameters or {}).items()],
             "filter": [(name, json_text(value)) for name, value in (line.filter_definition or {}).items()]
             if line.is_filter else []}
            for line in lines]


def json_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


from . import maintenance_admin  # noqa: E402,F401  (registers the maintenance windows' admin; it uses this module's mixins)
