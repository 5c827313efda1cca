"""The operations page: what needs an operator now.

Running runs (with Kill), failed or warning runs of the last 24 hours nobody has acknowledged
(with Acknowledge), runs over their job's expected duration, the next scheduled runs and each job's
outcomes of the last 7 days. The page draws itself from ``state.json`` (``static/jobs/operations.js``)
and asks again every few seconds, so it stays live without a reload.

Every section reads one bounded query through an index made for it (``results.models``), so the
page costs the same with a million results: the running runs through the partial index of active
rows, the failures through ``result_attention``, each day of a job's strip through probes of
``result_job_outcome`` (does a failure exist that day?) rather than counting its runs.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

from django.contrib import admin, messages
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from jobs import access, scheduling
from jobs.models import Job, Schedule

from . import states
from .models import ACTIVE, FAILED, SUCCEEDED, JobResult, Status

SHOWN = 50  # rows of a list section
ACTIVE_READ = 200  # active runs read to find the ones over their expected duration
ATTENTION_WINDOW = dt.timedelta(hours=24)
ATTENTION_COUNT_CAP = 1000  # "more than 1,000": counting further costs more than it tells
UPCOMING = 10
STRIP_DAYS = 7
STRIP_JOBS = 30
# A day of a strip shows its worst outcome, in this order of severity. Each status is its own probe: one status
# is an equality on every column of result_job_outcome, where an IN list would walk the day's runs. A probe is
# "the id of the day's first such run" (LIMIT 1) rather than EXISTS, which PostgreSQL may turn into a hash of
# every run of the day when it misjudges how many there are. The order is the index's own: without it, a status
# the statistics find everywhere (success) made the planner read the whole table for a job that has none that
# day, expecting to meet one soon (5.4 s at 1,000,000 results, freshly analysed); in the index's order a
# sequential scan would also have to sort, so the index is the cheapest plan whatever the estimate.
OUTCOMES = {"failed": FAILED, "warning": (Status.WARNING,), "ok": SUCCEEDED}


def _iso(instant: dt.datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Board:
    """What the operations page shows ``user``, read at ``now``."""

    user: AbstractBaseUser
    now: dt.datetime

    @cached_property
    def run_domains(self) -> set[int] | None:
        """Where the user may kill and acknowledge (None: everywhere); one query for every row."""
        return access.run_domain_ids(self.user)

    def may_act_on(self, result: JobResult) -> bool:
        """Kill and Acknowledge are operators' actions (``access.can_kill``), decided here without a query."""
        return access.can_kill_given(self.run_domains, result)

    def visible(self, results):
        return access.visible_results(self.user, results).select_related("job")

    @cached_property
    def active(self) -> list[JobResult]:
        results = self.visible(JobResult.objects.filter(status__in=ACTIVE)).select_related("requested_by")
        return list(results.order_by("-id")[:ACTIVE_READ])

    def overdue(self) -> list[JobResult]:
        """Running longer than their job's expected duration (``Job.expected_runtime``), longest first."""
        late = [result for result in self.active if result.status == Status.RUNNING and result.started_at
                and (expected := result.job.expected_duration) is not None and self.now - result.started_at > expected]
        return sorted(late, key=lambda result: result.started_at)

    def attention(self) -> tuple[list[JobResult], int]:
        """The newest unacknowledged failures and warnings of the window, and how many there are (capped)."""
        results = self.visible(JobResult.objects.unacknowledged(self.now - ATTENTION_WINDOW))
        shown = list(results.order_by("-finished_at")[:SHOWN])
        # Unordered, so the count stops at the cap instead of sorting every failure of the window first.
        count = results.order_by().values("id")[: ATTENTION_COUNT_CAP + 1].count()
        return shown, count

    def acknowledged(self) -> list[JobResult]:
        """Acknowledged within the window: who has looked at which failure (index result_acknowledged)."""
        results = self.visible(JobResult.objects.filter(acknowledged_at__gte=self.now - ATTENTION_WINDOW))
        return list(results.select_related("acknowledged_by").order_by("-acknowledged_at")[:10])

    def upcoming(self) -> list[Schedule]:
        """The next slots of active jobs' schedules. Schedule rows, so a job with several schedules shows each."""
        jobs = access.visible_jobs(self.user, Job.objects.filter(active=True))
        schedules = Schedule.objects.filter(next_run_at__isnull=False, job__in=jobs).select_related("job")
        return list(schedules.order_by("next_run_at")[:UPCOMING])  # no tie-breaker: it would sort every tie

    def days(self) -> list[dt.datetime]:
        """Local midnights of the strip's days, oldest first."""
        today = timezone.localtime(self.now).replace(hour=0, minute=0, second=0, microsecond=0)
        return [today - dt.timedelta(days=back) for back in range(STRIP_DAYS - 1, -1, -1)]

    def strips(self) -> tuple[list[dict], bool]:
        """Each visible job that ran in the last 7 days, with the worst outcome of each day (one query)."""
        days = self.days()
        ran = JobResult.objects.filter(job_id=OuterRef("pk"), created_at__gte=days[0])
        probes = {}
        for index, start in enumerate(days):
            end = start + dt.timedelta(days=1)
            for status in (status for statuses in OUTCOMES.values() for status in statuses):
                probes[f"d{index}_{status}"] = Subquery(JobResult.objects.filter(
                    job_id=OuterRef("pk"), status=status, created_at__gte=start, created_at__lt=end,
                ).order_by("created_at").values("created_at")[:1])
        jobs = access.visible_jobs(self.user, Job.objects.filter(active=True)).filter(Exists(ran))
        rows = list(jobs.annotate(**probes).order_by("identifier")[: STRIP_JOBS + 1])
        strips = [{
            "identifier": job.identifier, "name": job.name, "url": reverse("admin:jobs_job_change", args=[job.pk]),
            "days": [next((outcome for outcome, statuses in OUTCOMES.items()
                           if any(getattr(job, f"d{index}_{status}") for status in statuses)), "none")
                     for index in range(STRIP_DAYS)],
        } for job in rows[:STRIP_JOBS]]
        return strips, len(rows) > STRIP_JOBS

    # --- JSON ----------------------------------------------------------------------------------------------
    def result_row(self, result: JobResult) -> dict:
        return {
            "id": result.pk, "status": result.status, "job": result.job.identifier, "job_name": result.job.name,
            "url": reverse("admin:results_jobresult_change", args=[result.pk]),
            "job_url": reverse("admin:jobs_job_change", args=[result.job_id]),
            "message": _short(result.message), "created_at": _iso(result.created_at),
            "started_at": _iso(result.started_at), "finished_at": _iso(result.finished_at),
        }

    def running_row(self, result: JobResult) -> dict:
        expected = result.job.expected_duration
        may_kill = self.may_act_on(result) and result.kill_requested_at is None
        return self.result_row(result) | {
            "requested_by": result.requested_by.get_username() if result.requested_by else None,
            "trigger": result.get_trigger_display(),
            "expected_seconds": expected.total_seconds() if expected else None,
            "expected_text": result.job.expected_runtime,
            "kill_requested": result.kill_requested_at is not None,
            "kill_url": reverse("admin:results_jobresult_kill", args=[result.pk]) if may_kill else None,
        }

    def state(self) -> dict:
        attention, attention_count = self.attention()
        strips, more_jobs = self.strips()
        return {
            "now": _iso(self.now),
            "running": [self.running_row(result) for result in self.active[:SHOWN]],
            "running_more": len(self.active) > SHOWN,
            "overdue": [self.running_row(result) for result in self.overdue()[:SHOWN]],
            "attention": [self.result_row(result) | {
                "acknowledge_url": reverse("operations:acknowledge", args=[result.pk])
                if self.may_act_on(result) else None,
            } for result in attention],
            "attention_count": attention_count,
            "attention_capped": attention_count > ATTENTION_COUNT_CAP,
            "acknowledged": [self.result_row(result) | {
                "acknowledged_by": result.acknowledged_by.get_username() if result.acknowledged_by else None,
                "acknowledged_at": _iso(result.acknowledged_at),
            } for result in self.acknowledged()],
            "upcoming": [{
                "job": schedule.job.identifier, "job_name": schedule.job.name,
                "job_url": reverse("admin:jobs_job_change", args=[schedule.job_id]),
                "at": _iso(schedule.next_run_at), "at_local": schedule.when_local(schedule.next_run_at),
                "plan": _plan_words(schedule),
            } for schedule in self.upcoming()],
            "days": [day.date().isoformat() for day in self.days()],
            "strips": strips,
            "strips_more": more_jobs,
        }


def _plan_words(schedule: Schedule) -> str:
    # An automatic schedule's plan is its action's: reading it costs queries per row, and the slot says enough.
    if schedule.kind == Schedule.AUTOMATIC:
        return "Automatic (the plan of its action)"
    return scheduling.describe(schedule.plan())


def _members_only(request: HttpRequest) -> None:
    """Members of a domain and system administrators; other staff have no runs to watch."""
    if not access.is_member(request.user):
        raise PermissionDenied


@require_GET
def page(request: HttpRequest) -> HttpResponse:
    _members_only(request)
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        "state": Board(request.user, timezone.now()).state(),
        "state_url": reverse("operations:state"),
    }
    return TemplateResponse(request, "admin/results/operations.html", context)


@require_GET
def state(request: HttpRequest) -> JsonResponse:
    _members_only(request)
    return JsonResponse(Board(request.user, timezone.now()).state())


@require_POST
def acknowledge(request: HttpRequest, result_id: int) -> HttpResponse:
    """Acknowledge a failure (operators and admins of its domain); 404 outside the caller's domains."""
    result = get_object_or_404(access.visible_results(request.user, JobResult.objects.select_related("job")),
                               pk=result_id)
    if not access.can_acknowledge(request.user, result):
        raise PermissionDenied
    done = states.acknowledge(result.pk, request.user)
    if not done:
        result.refresh_from_db(fields=["status", "acknowledged_at", "acknowledged_by"])
    text = _acknowledge_text(result, done)
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"acknowledged": done, "message": text}, status=200 if done else 409)
    messages.add_message(request, messages.SUCCESS if done else messages.WARNING, text)
    return HttpResponseRedirect(reverse("operations:page"))


def _acknowledge_text(result: JobResult, done: bool) -> str:
    if done:
        return f"Result #{result.pk} acknowledged."
    if result.acknowledged_at is not None:
        who = result.acknowledged_by.get_username() if result.acknowledged_by else "someone"
        when = timezone.localtime(result.acknowledged_at).strftime("%Y-%m-%d %H:%M:%S")
        return f"Result #{result.pk} was already acknowledged by {who} at {when}."
    return f"Result #{result.pk} is {result.status}: only failures and warnings are acknowledged."


def landing(request: HttpRequest) -> HttpResponse:
    """``/``: members and system administrators land on the operations page, other staff on the app list."""
    if not admin.site.has_permission(request):  # as the admin: anonymous, inactive or not staff
        return HttpResponseRedirect(f"{reverse('admin:login')}?next=/")
    return HttpResponseRedirect(reverse("operations:page" if access.is_member(request.user) else "admin:index"))


app_name = "operations"
urlpatterns = [
    path("", admin.site.admin_view(page), name="page"),
    path("state.json", admin.site.admin_view(state), name="state"),
    path("<int:result_id>/acknowledge/", admin.site.admin_view(acknowledge), name="acknowledge"),
]
