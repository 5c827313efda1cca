"""Admin windows for executions: the Job Result list and page, with Kill.

Results are read-only; only the state machine changes them. The queryset is
limited to the jobs the user may see, so other domains' results answer 404.
"""
from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from jobs import access, secrets, versions
from jobs.admin import NotFoundOutsideDomainsMixin, run_page, status_badge
from jobs.forms import RunParametersForm

from . import states
from .dispatch import RunRefused, start_run
from .models import JobLogEntry, JobResult, Trigger


def log_lines(result_id: int, page: int = 5000):
    last = 0
    while True:
        rows = list(JobLogEntry.objects.filter(result_id=result_id, seq__gt=last).order_by("seq")
                    .values_list("seq", "at", "level", "line_no", "message")[:page])
        if not rows:
            return
        for _seq, at, level, line_no, message in rows:
            where = f" [line {line_no}]" if line_no is not None else ""
            yield f"{at.isoformat()} {level}{where} {message}\n"
        last = rows[-1][0]


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP`` results (then the list says "more than"): an exact COUNT over a million
    results takes longer than the page itself, and nobody pages that far rather than filter."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP + 1].count()  # COUNT(*) over a LIMITed subquery

    @property
    def capped(self) -> bool:
        return self.count > self.CAP

    @property
    def cap_text(self) -> str:
        return f"{self.CAP:,}"


@admin.register(JobResult)
class JobResultAdmin(NotFoundOutsideDomainsMixin, admin.ModelAdmin):
    change_form_template = "admin/results/jobresult/change_form.html"
    list_display = ["id", "status_icon", "job_link", "domain", "trigger", "requested_by", "started_at",
                    "duration_text", "short_message", "log_link"]  # + the Kill button: get_list_display
    list_display_links = ["id"]
    list_filter = ["status", "trigger"]
    search_fields = ["job__identifier", "job__name", "message"]
    list_select_related = ["job", "requested_by", "domain"]
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False

    class Media:
        css = {"all": ["jobs/jobs.css"]}
        js = ["jobs/popup.js"]
    # Status, times, lines and log are the live panel of the page (result.js); these are the rest.
    readonly_fields = ["job", "domain", "run_as", "shown_parameters", "variables", "queue", "created_at",
                       "heartbeat_at"]
    fieldsets = [("Details", {"fields": readonly_fields, "classes": ["collapse"]})]

    def has_module_permission(self, request) -> bool:
        return access.is_member(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return access.is_member(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return access.is_system_admin(request.user)

    def get_queryset(self, request):
        return access.visible_results(request.user, super().get_queryset(request))

    @admin.display(description="Parameters")
    def shown_parameters(self, result: JobResult) -> str:
        return json.dumps(secrets.masked_values(result.parameters), ensure_ascii=False)

    @admin.display(description="Status", ordering="status")
    def status_icon(self, result: JobResult):
        return status_badge(result.status, result.get_status_display())

    @admin.display(description="Job", ordering="job__identifier")
    def job_link(self, result: JobResult):
        return format_html('<a href="{}">{}</a>', reverse("admin:jobs_job_change", args=[result.job_id]),
                           result.job.identifier)

    @admin.display(description="Duration")
    def duration_text(self, result: JobResult) -> str:
        duration = result.duration
        return f"{duration.total_seconds():.1f} s" if duration is not None else "—"

    @admin.display(description="Message")
    def short_message(self, result: JobResult) -> str:
        return result.message if len(result.message) <= 100 else result.message[:99] + "…"

    @admin.display(description="Log")
    def log_link(self, result: JobResult):
        url = reverse("admin:results_jobresult_change", args=[result.pk])
        return format_html('<a class="log-popup" href="{}?_popup=1#job-log" data-popup="{}">log</a>', url, url)

    def get_list_display(self, request):
        return [*super().get_list_display(request), self.kill_link_for(request)]

    def kill_link_for(self, request):
        """The Kill button of a row, only where this user may kill (one query for the whole page)."""
        may_kill_in = access.run_domain_ids(request.user)

        @admin.display(description="")
        def kill_link(result: JobResult):
            domain_id = result.domain_id or result.job.domain_id
            if not result.is_killable or (may_kill_in is not None and domain_id not in may_kill_in):
                return ""
            return format_html('<a class="button kill-button" href="{}">Kill</a>',
                               reverse("admin:results_jobresult_kill", args=[result.pk]))

        return kill_link

    def get_urls(self):
        kill = self.admin_site.admin_view(self.kill_view)
        retry = self.admin_site.admin_view(self.retry_view)
        download = self.admin_site.admin_view(self.log_download_view)
        return [
            path("<int:object_id>/kill/", kill, name="results_jobresult_kill"),
            path("<int:object_id>/retry/", retry, name="results_jobresult_retry"),
            path("<int:object_id>/log.txt", download, name="results_jobresult_log"),
            *super().get_urls(),
        ]

    def log_download_view(self, request, object_id: int):
        """The whole log as a text file, streamed in pages of the (result, seq) index."""
        result = get_object_or_404(self.get_queryset(request), pk=object_id)
        response = StreamingHttpResponse(log_lines(result.pk), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{result.job.identifier}-{result.pk}.log"'
        return response

    def retry_view(self, request, object_id: int):
        """Run the job again with the same parameters, linked to this result (POST only).

        A job that must be confirmed (destructive, external) shows Run's confirmation first: its
        lines, the values, the pre-flight checks, and the identifier to type.
        """
        result = get_object_or_404(self.get_queryset(request).select_related("job"), pk=object_id)
        job = result.job
        if not access.can_run(request.user, job):
            raise PermissionDenied
        change_url = reverse("admin:results_jobresult_change", args=[result.pk])
        if request.method != "POST" or not result.is_finished:
            return HttpResponseRedirect(change_url)
        confirmation = None
        if job.confirmation_reasons():
            confirmation = RunParametersForm([], request.POST if "confirm" in request.POST else None,
                                             confirm_identifier=job.identifier)
            if not confirmation.is_valid():
                return self.retry_confirmation(request, result, confirmation)
        try:
            if confirmation is not None:
                job.clean_confirmation(confirmation.cleaned_data["confirm"])
            retry = start_run(job, parameters=result.parameters, user=request.user, trigger=Trigger.RETRY,
                              retry_of=result)
        except (RunRefused, ValidationError) as exc:
            if confirmation is not None:
                confirmation.add_error("confirm" if "confirm" in getattr(exc, "message_dict", {}) else None,
                                       getattr(exc, "messages", [str(exc)]))
                return self.retry_confirmation(request, result, confirmation)
            self.message_user(request, f"Not retried: {' '.join(getattr(exc, 'messages', [str(exc)]))}",
                              messages.ERROR)
            return HttpResponseRedirect(change_url)
        self.message_user(request, f"Retry of #{result.pk} queued as #{retry.pk}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:results_jobresult_change", args=[retry.pk]))

    def retry_confirmation(self, request, result: JobResult, form: RunParametersForm):
        return run_page(request, self.admin_site, result.job, form, values=result.parameters, confirming=True,
                        retry_of=result)

    def kill_view(self, request, object_id: int):
        result = get_object_or_404(self.get_queryset(request).select_related("job"), pk=object_id)
        if not access.can_kill(request.user, result):
            raise PermissionDenied
        change_url = reverse("admin:results_jobresult_change", args=[result.pk])
        if request.method == "POST":
            try:
                outcome = states.request_kill(result.pk, request.user)
            except states.NotKillable as exc:
                self.message_user(request, f"Not killed: {exc}.", messages.ERROR)
            else:
                text = "was killed before it started" if outcome.status == "killed" else "is being killed"
                self.message_user(request, f"Result #{result.pk} {text}.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Kill result #{result.pk}?",
            "result": result,
            "opts": self.model._meta,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/results/jobresult/kill_confirmation.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        result = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if result is not None:
            extra_context["can_kill"] = result.is_killable and access.can_kill(request.user, result)
            extra_context["can_run"] = access.can_run(request.user, result.job)
            extra_context["job_version_now"] = versions.latest_number(result.job)
        return super().change_view(request, object_id, form_url, extra_context)


from . import planning_admin  # noqa: E402,F401  (registers planned runs, backfills and the calendar)
