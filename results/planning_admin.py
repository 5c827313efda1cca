"""Admin windows of what is planned: planned runs (run at) with Cancel, backfills with progress and Kill,
and the calendar of upcoming runs.

Querysets go through ``jobs.access``: other domains' planned runs and backfills answer 404; Cancel, Kill and
a new backfill need a role that may run the job.
"""
from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from jobs import access, secrets
from jobs.admin import NotFoundOutsideDomainsMixin
from jobs.forms import field_for
from jobs.models import Job

from . import backfill as backfills
from . import calendar
from .admin import ExecutionsReadOnlyMixin
from .dispatch import RunRefused
from .runat import PlannedRun


@admin.register(PlannedRun)
class PlannedRunAdmin(NotFoundOutsideDomainsMixin, ExecutionsReadOnlyMixin, admin.ModelAdmin):
    """Runs planned for later (run at): pending ones can be cancelled by those who may run the job."""

    list_display = ["job", "run_at", "state", "requested_by", "trigger", "result_link", "cancel_link"]
    list_filter = ["state"]
    fields = ["job", "run_at", "state", "shown_parameters", "requested_by", "trigger", "created_at", "fired_at",
              "result_link", "cancelled_by"]
    readonly_fields = fields
    change_form_template = "admin/results/plannedrun/change_form.html"
    change_list_template = "admin/results/plannedrun/change_list.html"

    def get_queryset(self, request):
        planned = super().get_queryset(request).select_related("job", "requested_by", "cancelled_by")
        return planned.filter(job__in=access.visible_jobs(request.user))

    @admin.display(description="Parameters")
    def shown_parameters(self, planned: PlannedRun) -> dict:
        return secrets.masked_values(planned.parameters)

    @admin.display(description="Result")
    def result_link(self, planned: PlannedRun):
        if not planned.result_id:
            return "—"
        return format_html('<a href="{}">#{}</a>', reverse("admin:results_jobresult_change",
                                                           args=[planned.result_id]), planned.result_id)

    @admin.display(description="")
    def cancel_link(self, planned: PlannedRun):
        if not planned.is_cancellable:
            return ""
        return format_html('<a class="button kill-button" href="{}">Cancel</a>',
                           reverse("admin:results_plannedrun_cancel", args=[planned.pk]))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<int:object_id>/cancel/", wrap(self.cancel_view), name="results_plannedrun_cancel"),
                path("calendar/", wrap(self.calendar_view), name="results_plannedrun_calendar"),
                *super().get_urls()]

    def cancel_view(self, request, object_id: int):
        planned = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not access.can_run(request.user, planned.job):
            raise PermissionDenied
        change_url = reverse("admin:results_plannedrun_change", args=[planned.pk])
        if request.method == "POST":
            if planned.cancel(request.user):
                self.message_user(request, f"The run of {planned.job.identifier} planned for "
                                  f"{planned.run_at:%Y-%m-%d %H:%M} UTC is cancelled.", messages.SUCCESS)
            else:
                self.message_user(request, "Not cancelled: it has already fired or was cancelled.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        context = {**self.admin_site.each_context(request), "title": "Cancel the planned run?", "planned": planned,
                   "opts": self.model._meta, "change_url": change_url}
        return TemplateResponse(request, "admin/results/plannedrun/cancel_confirmation.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        planned = self.get_object(request, object_id)
        extra = {"can_cancel": planned is not None and planned.is_cancellable and access.can_run(request.user,
                                                                                                   planned.job)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def calendar_view(self, request):
        """A week of upcoming runs of the jobs the user sees (``?week=YYYY-MM-DD``), windows shaded."""
        if not access.request_is_member(request):
            raise PermissionDenied
        try:
            first_day = dt.date.fromisoformat(request.GET["week"]) if request.GET.get("week") else None
        except ValueError:
            first_day = None
            self.message_user(request, "week: must be a date as YYYY-MM-DD; showing this week.", messages.ERROR)
        context = {**self.admin_site.each_context(request), "title": "Calendar of upcoming runs",
                   "week": calendar.week(request.user, first_day), "opts": self.model._meta}
        return TemplateResponse(request, "admin/results/plannedrun/calendar.html", context)


class BackfillForm(forms.Form):
    parameter = forms.ChoiceField(help_text="The date parameter that takes each day.")
    first_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    last_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    parallel = forms.IntegerField(min_value=1, max_value=backfills.MAX_PARALLEL, initial=1,
                                  help_text="How many days run at once (1: one after the other, in order).")

    def __init__(self, job: Job, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        dates = backfills.date_parameters(job)
        self.fields["parameter"].choices = [(name, name) for name in dates]
        self.other_names = [spec["name"] for spec in job.params or [] if spec["name"] not in dates]
        for spec in job.params or []:
            if spec["name"] in self.other_names:
                self.fields[f"param-{spec['name']}"] = field_for(spec)

    def other_values(self) -> dict:
        return {name: self.cleaned_data[f"param-{name}"] for name in self.other_names
                if self.cleaned_data.get(f"param-{name}") not in (None, "")}


@admin.register(backfills.Backfill)
class BackfillAdmin(NotFoundOutsideDomainsMixin, ExecutionsReadOnlyMixin, admin.ModelAdmin):
    """Backfills: progress, the day-by-day runs and one Kill for all of them."""

    list_display = ["__str__", "state", "progress_text", "parallel", "created_by", "created_at"]
    fields = ["job", "parameter", "first_day", "last_day", "parallel", "created_by", "created_at", "killed_at",
              "killed_by", "finished_at"]
    readonly_fields = fields
    change_form_template = "admin/results/backfill/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("job", "created_by").filter(
            job__in=access.visible_jobs(request.user))

    @admin.display(description="Progress")
    def progress_text(self, backfill: backfills.Backfill) -> str:
        progress = backfill.progress()
        return f"{progress['done']} of {progress['total']} days done, {progress['going']} going"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<int:object_id>/kill/", wrap(self.kill_view), name="results_backfill_kill"),
                path("start/<int:job_id>/", wrap(self.start_view), name="results_backfill_start"),
                *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        backfill = self.get_object(request, object_id)
        extra = {}
        if backfill is not None:
            extra = {"progress": backfill.progress(), "backfill": backfill,
                     "days": backfill.days.select_related("result").order_by("day"),
                     "can_kill": backfill.is_open and access.can_run(request.user, backfill.job)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def kill_view(self, request, object_id: int):
        backfill = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not access.can_run(request.user, backfill.job):
            raise PermissionDenied
        change_url = reverse("admin:results_backfill_change", args=[backfill.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        if backfills.kill(backfill.pk, request.user):
            self.message_user(request, "Backfill killed: its running days are being killed and the rest will not "
                              "start.", messages.SUCCESS)
        else:
            self.message_user(request, "Not killed: the backfill is over.", messages.ERROR)
        return HttpResponseRedirect(change_url)

    def start_view(self, request, job_id: int):
        """The Backfill form of a job with a date parameter (from the job page)."""
        job = get_object_or_404(access.visible_jobs(request.user), pk=job_id)
        if not access.can_run(request.user, job):
            raise PermissionDenied
        form = BackfillForm(job, request.POST or None)
        problem = None if backfills.date_parameters(job) else f"{job.identifier} has no date parameter to backfill."
        if problem is None and request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                created = backfills.create(job, parameter=data["parameter"], first_day=data["first_day"],
                                           last_day=data["last_day"], parallel=data["parallel"],
                                           parameters=form.other_values(), user=request.user)
            except ValidationError as exc:
                for name, problems in exc.message_dict.items():
                    key = name if name in form.fields else f"param-{name}"
                    form.add_error(key if key in form.fields else None, problems)
            except RunRefused as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"Backfill of {job.identifier} started.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:results_backfill_change", args=[created.pk]))
        context = {**self.admin_site.each_context(request), "title": f"Backfill {job.name}", "job": job,
                   "form": form, "problem": problem, "opts": self.model._meta}
        return TemplateResponse(request, "admin/results/backfill/start.html", context)
