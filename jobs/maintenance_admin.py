"""Admin of maintenance windows and of the "pause all schedules" switch (``jobs.maintenance``).

System administrators define global windows and pause or resume every schedule; a domain's
administrators define their domain's windows; every member reads the windows that apply to
their jobs (the global ones and their domains'). Other domains' windows answer 404.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from . import access, maintenance
from .admin import DomainOwnedAdminMixin, NotFoundOutsideDomainsMixin
from .forms import _time_zone_choices
from .maintenance import MaintenanceWindow


class MaintenanceWindowForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=[(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")],
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple(attrs={"class": "weekday-picker"}),
        label="Days of the week",
    )
    timezone = forms.ChoiceField(choices=_time_zone_choices)

    class Meta:
        model = MaintenanceWindow
        fields = ["name", "domain", "active", "kind", "starts_at", "ends_at", "weekdays", "start_time", "end_time",
                  "cron", "duration_minutes", "timezone", "note"]


class PauseForm(forms.Form):
    reason = forms.CharField(max_length=300, help_text="Why: shown on every admin page while schedules are paused.")


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(NotFoundOutsideDomainsMixin, DomainOwnedAdminMixin, admin.ModelAdmin):
    form = MaintenanceWindowForm
    list_display = ["name", "scope", "kind", "when", "active"]
    list_filter = ["active", "kind"]
    search_fields = ["name", "note"]
    change_list_template = "admin/jobs/maintenancewindow/change_list.html"
    fieldsets = [
        (None, {"fields": ["name", "domain", "active", "kind", "note"]}),
        ("One-off", {"fields": [("starts_at", "ends_at")]}),
        ("Weekly", {"fields": ["weekdays", ("start_time", "end_time")]}),
        ("Cron", {"fields": [("cron", "duration_minutes")]}),
        ("Time zone", {"fields": ["timezone"]}),
    ]

    @admin.display(description="Domain", ordering="domain__name")
    def scope(self, window: MaintenanceWindow) -> str:
        return window.domain.name if window.domain_id else "Global"

    @admin.display(description="When")
    def when(self, window: MaintenanceWindow) -> str:
        return window.describe()

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("domain").visible_to(request.user)

    def save_model(self, request, obj: MaintenanceWindow, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def changelist_view(self, request, extra_context=None):
        extra = {"schedule_pause_now": maintenance.current_pause(),
                 "may_pause": access.is_system_admin(request.user)}
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def get_urls(self):
        pause = self.admin_site.admin_view(self.pause_view)
        return [path("pause/", pause, name="jobs_maintenancewindow_pause"), *super().get_urls()]

    def pause_view(self, request):
        """Pause or resume every schedule (system administrators): who and why are shown on every page."""
        if not access.is_system_admin(request.user):
            raise PermissionDenied
        current = maintenance.current_pause()
        # What the person pressed decides, not what the page showed: a Pause sent after someone else paused
        # must not resume (the pause's own race is settled by pause_all).
        resuming = request.method == "POST" and "resume" in request.POST
        form = PauseForm(request.POST if request.method == "POST" and not resuming else None)
        if resuming:
            done = maintenance.resume_all(request.user)
            self.message_user(request, "Schedules resumed." if done else "Schedules were not paused.",
                              messages.SUCCESS if done else messages.WARNING)
            return HttpResponseRedirect(reverse("admin:jobs_maintenancewindow_changelist"))
        if form.is_valid():
            if maintenance.pause_all(request.user, form.cleaned_data["reason"]) is None:
                self.message_user(request, "Schedules were already paused.", messages.WARNING)
            else:
                self.message_user(request, "Every schedule is paused.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:jobs_maintenancewindow_changelist"))
        context = {**self.admin_site.each_context(request), "title": "Pause all schedules", "form": form,
                   "current": current, "opts": self.model._meta}
        return TemplateResponse(request, "admin/jobs/maintenancewindow/pause.html", context)
