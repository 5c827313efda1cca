"""Admin windows for executions: the Job Result list and page, with Kill.

Results are read-only; only the state machine changes them. The queryset is
limited to the jobs the user may see, so other domains' results answer 404.
"""
from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from jobs import access, secrets, versions
from jobs.admin import MembershipAdminMixin, NotFoundOutsideDomainsMixin, status_badge
from jobs.forms import RunParametersForm
from jobs.when import when_html

from . import states
from .dispatch import RunRefused, start_run
from .listing import CreatedRangeFilter, DomainFilter, JobFilter, csv_rows, filter_problems
from .models import JobLogEntry, JobResult, Trigger
from .run_page import run_page


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


class ExecutionsReadOnlyMixin(MembershipAdminMixin):
    """Executions (results, planned runs, backfills) are read by members, made by the runs themselves, and deleted
    only by system administrators (a job's deletion takes its executions)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return access.is_system_admin(request.user)


@admin.register(JobResult)
class JobResultAdmin(NotFoundOutsideDomainsMixin, ExecutionsReadOnlyMixin, admin.ModelAdmin):
    change_form_template = "admin/results/jobresult/change_form.html"
    change_list_template = "admin/results/jobresult/change_list.html"
    # Few, wrapping columns: the list fits 1400 px beside the sidebar and 800 px without sideways scrolling.
    list_display = ["id", "status_icon", "job_link", "started_cell", "short_message"]  # + log, Kill: get_list_display
    list_display_links = ["id", "status_icon"]  # the status links too: below 1024 px the id column goes
    list_filter = ["status", DomainFilter, JobFilter, CreatedRangeFilter, "trigger"]
    search_fields = ["job__identifier", "job__name", "message"]
    list_select_related = ["job", "job__domain", "requested_by", "domain"]
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False
    actions = ["kill_selected", "retry_selected"]
    BULK_MAX = 500

    class Media:
        css = {"all": ["jobs/jobs.css"]}
        js = ["jobs/popup.js", "jobs/job_list.js"]
    # Status, times, lines and log are the live panel of the page (result.js); these are the rest.
    readonly_fields = ["job", "domain", "run_as", "shown_parameters", "variables", "queue", "created_at",
                       "heartbeat_at"]
    fieldsets = [("Details", {"fields": readonly_fields, "classes": ["collapse"]})]

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
        """The job (linked) and, under it, the run's domain."""
        domain = result.domain if result.domain_id else result.job.domain
        return format_html('<a class="job-identifier" href="{}">{}</a><div class="result-domain">{}</div>',
                           reverse("admin:jobs_job_change", args=[result.job_id]), result.job.identifier,
                           domain.name if domain is not None else "Global")

    @admin.display(description="Started", ordering="started_at")
    def started_cell(self, result: JobResult):
        """When it started, how long it took, and who or what started it."""
        duration = result.duration
        by = f" by {result.requested_by.get_username()}" if result.requested_by_id else ""
        return format_html('{}<div class="result-how">{}{}{}</div>',
                           when_html(result.started_at) if result.started_at else "not yet",
                           f"{duration.total_seconds():.1f} s · " if duration is not None else "",
                           result.get_trigger_display(), by)

    @admin.display(description="Message")
    def short_message(self, result: JobResult) -> str:
        return result.message if len(result.message) <= 100 else result.message[:99] + "…"

    def get_list_display(self, request):
        return [*super().get_list_display(request), self.row_links_for(request)]

    def row_links_for(self, request):
        """The row's log link and Kill button, Kill only where this user may kill (one query for the page)."""
        may_kill_in = access.request_run_domains(request)

        @admin.display(description="")
        def row_links(result: JobResult):
            url = reverse("admin:results_jobresult_change", args=[result.pk])
            log = format_html('<a class="log-popup" href="{}?_popup=1#job-log" data-popup="{}">log</a>', url, url)
            if not result.is_killable or not access.can_kill_given(may_kill_in, result):
                return format_html('<div class="row-buttons">{}</div>', log)
            return format_html('<div class="row-buttons">{}<a class="button kill-button" href="{}">Kill</a></div>',
                               log, reverse("admin:results_jobresult_kill", args=[result.pk]))

        return row_links

    # --- bulk Kill and Retry: one confirmation page, then each result through the state machine ----------------
    def has_run_permission(self, request) -> bool:
        """Offers the bulk Kill and Retry only to roles that may run somewhere."""
        return access.request_runs_somewhere(request)

    @admin.action(description="Kill selected results", permissions=["run"])
    def kill_selected(self, request, queryset):
        return self._bulk(request, queryset, "kill_selected", "Kill", self._kill_plan, self._kill)

    @admin.action(description="Retry selected results (same parameters)", permissions=["run"])
    def retry_selected(self, request, queryset):
        return self._bulk(request, queryset, "retry_selected", "Retry", self._retry_plan, self._retry)

    def _bulk(self, request, queryset, action: str, verb: str, plan, do):
        """The confirmation lists each selected result with what will happen to it; "Yes" does it."""
        if queryset.count() > self.BULK_MAX:
            self.message_user(request, f"Select at most {self.BULK_MAX} results for a bulk {verb.lower()} "
                              "(filter the list to narrow it).", messages.ERROR)
            return None
        results = list(queryset.select_related("job").order_by("-id"))
        may_run_in = access.request_run_domains(request)  # one query for the whole selection
        planned = [(result, plan(request, result, may_run_in)) for result in results]
        if request.POST.get("post") != "yes":
            context = {**self.admin_site.each_context(request), "title": f"{verb} {len(results)} result(s)?",
                       "planned": planned, "action": action, "verb": verb, "opts": self.model._meta,
                       "doable": sum(1 for _, reason in planned if reason is None),
                       "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
            return TemplateResponse(request, "admin/results/jobresult/bulk_confirmation.html", context)
        done, refused = [], [f"#{result.pk} ({reason})" for result, reason in planned if reason is not None]
        for result, reason in planned:
            if reason is None:
                succeeded, text = do(request, result)
                (done if succeeded else refused).append(f"#{result.pk} {text}")
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Left out: {', '.join(refused)}.", messages.WARNING)
        return None

    def _kill_plan(self, request, result: JobResult, may_run_in: set[int] | None) -> str | None:
        """None if it will be killed, else why not."""
        if not access.can_kill_given(may_run_in, result):
            return "you may not kill it"
        return None if result.is_killable else f"already {result.status}"

    def _kill(self, request, result: JobResult) -> tuple[bool, str]:
        try:
            outcome = states.request_kill(result.pk, request.user)
        except states.NotKillable as exc:  # it finished since the confirmation was shown
            return False, f"not killed: {exc}"
        return True, "killed" if outcome.status == "killed" else "being killed"

    def _retry_plan(self, request, result: JobResult, may_run_in: set[int] | None) -> str | None:
        """None if it will be run again, else why not (``access.can_run``, with the domains read once)."""
        if not access.can_run_given(request.user, may_run_in, result.job):
            return "you may not run its job"
        if not result.is_finished:
            return f"still {result.status}"
        if result.job.confirmation_reasons():
            return "its job must be confirmed: retry it from its page"
        return None

    def _retry(self, request, result: JobResult) -> tuple[bool, str]:
        try:
            retry = start_run(result.job, parameters=result.parameters, user=request.user, trigger=Trigger.RETRY,
                              retry_of=result)
        except (RunRefused, ValidationError) as exc:
            return False, f"not retried: {' '.join(getattr(exc, 'messages', [str(exc)]))}"
        return True, f"as #{retry.pk}"

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        for problem in filter_problems(changelist):  # a date that is not one: said, and left out
            self.message_user(request, problem, messages.ERROR)
        return changelist

    # --- CSV export of the filtered list ------------------------------------------------------------------
    def export_view(self, request):
        """The list as filtered, searched and ordered on screen (every page of it), streamed as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = super().get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponse("The list's filters are not valid: open the list again and choose them there.",
                                status=400, content_type="text/plain; charset=utf-8")
        problems = filter_problems(changelist)
        if problems:
            return HttpResponse("\n".join(problems), status=400, content_type="text/plain; charset=utf-8")
        response = StreamingHttpResponse(csv_rows(changelist.queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="job-results-{timezone.now():%Y%m%d-%H%M}.csv"'
        return response

    def get_urls(self):
        kill = self.admin_site.admin_view(self.kill_view)
        retry = self.admin_site.admin_view(self.retry_view)
        download = self.admin_site.admin_view(self.log_download_view)
        export = self.admin_site.admin_view(self.export_view)
        return [
            path("export.csv", export, name="results_jobresult_export"),
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
