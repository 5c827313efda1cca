"""What the job page shows of a job's executions: its Results window and its history chart.

The job admin (``jobs.admin``) reaches this only through ``jobs.executions``: definitions never import
executions. ``ResultsForJobs`` is registered there by ``ResultsConfig.ready``.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.core.paginator import Page
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from jobs import access
from jobs.models import Job

from . import run_page
from .admin import CappedCountPaginator
from .models import JobLogEntry, JobResult, LogRead, Status

RESULTS_PER_PAGE = 20
CHART_RUNS = 50


class ResultsForJobs:
    """The implementation of ``jobs.executions.Executions``."""

    def with_last_run(self, jobs: QuerySet[Job], user) -> QuerySet[Job]:
        last = JobResult.objects.filter(job=OuterRef("pk")).order_by("-id")
        jobs = jobs.annotate(
            last_result_id=Subquery(last.values("id")[:1]),
            last_result_status=Subquery(last.values("status")[:1]),
            last_result_at=Subquery(last.values("created_at")[:1]),
        )
        # The log icon: is there a log entry of the last run this user has not read yet?
        return jobs.annotate(
            last_log_seq=Subquery(JobLogEntry.objects.filter(result_id=OuterRef("last_result_id"))
                                  .order_by("-seq").values("seq")[:1]),
            last_read_seq=Subquery(LogRead.objects.filter(result_id=OuterRef("last_result_id"),
                                                          user_id=user.pk).values("seq")[:1]),
        )

    def job_page_context(self, request: HttpRequest, job: Job) -> dict:
        may_run = access.request_can_run(request, job)
        return results_section(request, job) | {
            "planned_runs": job.planned_runs.pending().select_related("requested_by").order_by("run_at")[:20],
            "can_backfill": may_run and any(spec.get("type") == "date" for spec in job.params or []),
        }

    def run_dialog(self, request: HttpRequest, admin_site, job: Job) -> HttpResponse:
        return run_page.run_dialog(request, admin_site, job)

    def run_now(self, request: HttpRequest, jobs: list[Job]) -> tuple[list[str], list[str]]:
        return run_page.run_now(request, jobs)


@dataclass(frozen=True)
class ResultsQuery:
    """The Results window's search (``results_q``), status filter (``results_status``) and page."""

    text: str
    status: str
    page: str

    @classmethod
    def from_request(cls, request: HttpRequest) -> ResultsQuery:
        status = request.GET.get("results_status", "")
        return cls(text=request.GET.get("results_q", "").strip()[:200],
                   status=status if status in Status.values else "",
                   page=request.GET.get("results_page", "1"))

    def apply(self, results: QuerySet[JobResult]) -> QuerySet[JobResult]:
        if self.status:
            results = results.filter(status=self.status)
        if self.text:
            number = self.text.removeprefix("#")
            found = Q(message__icontains=self.text) | Q(requested_by__username__icontains=self.text)
            results = results.filter(found | Q(pk=int(number)) if number.isdigit() and len(number) < 19 else found)
        return results

    def link(self, **changes) -> str:
        """The query string of this view with ``changes`` (the job page's own parameters kept)."""
        params = QueryDict(mutable=True)
        values = {"results_q": self.text, "results_status": self.status, **changes}
        params.update({name: value for name, value in values.items() if value not in ("", None, 1, "1")})
        return f"?{params.urlencode()}#job-results" if params else "?#job-results"


def results_section(request: HttpRequest, job: Job) -> dict:
    """The context of the Results window: a page of the job's runs this user may see, with Kill and Retry."""
    query = ResultsQuery.from_request(request)
    visible = access.visible_results(request.user, JobResult.objects.filter(job=job))
    results = query.apply(visible).select_related("requested_by").order_by("-id")
    page = CappedCountPaginator(results, RESULTS_PER_PAGE).get_page(query.page)
    may_kill_in = access.request_run_domains(request)
    may_retry = access.request_can_run(request, job)
    rows = [result_row(result, job, may_kill_in, may_retry) for result in page]
    return {
        "executions_template": "admin/results/job_results.html",
        "results_page": page,
        "results_rows": rows,
        "results_query": query,
        "results_pages": page_links(page, query),
        "status_choices": Status.choices,
        "history_chart": history_chart(visible),
    }


def result_row(result: JobResult, job: Job, may_kill_in: set[int] | None, may_retry: bool) -> dict:
    return {
        "result": result,
        "url": reverse("admin:results_jobresult_change", args=[result.pk]),
        "duration": duration_text(result.duration.total_seconds()) if result.duration is not None else "—",
        "kill_url": reverse("admin:results_jobresult_kill", args=[result.pk])
        if result.is_killable and access.runs_in(may_kill_in, result.domain_id or job.domain_id) else None,
        "retry_url": reverse("admin:results_jobresult_retry", args=[result.pk])
        if result.is_finished and may_retry else None,
    }


def page_links(page: Page, query: ResultsQuery) -> dict:
    paginator = page.paginator
    return {
        "previous": query.link(results_page=page.previous_page_number()) if page.has_previous() else None,
        "next": query.link(results_page=page.next_page_number()) if page.has_next() else None,
        "first": query.link(results_page=1) if page.number > 2 else None,
        "last": query.link(results_page=paginator.num_pages)
        if not paginator.capped and page.number < paginator.num_pages - 1 else None,
        "total": f"more than {paginator.cap_text}" if paginator.capped else f"{paginator.count:,}",
    }


# --- The history chart: server-side SVG (no script, nothing for the CSP to block) ----------------------

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
UNITS = [(3600, "h"), (60, "min"), (1, "s")]


def duration_text(seconds: float) -> str:
    """1.2 s, 4 min 10 s, 2 h 5 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def duration_ticks(longest: float) -> tuple[float, list[tuple[float, str]]]:
    """A round top for the duration axis and its ticks labelled with a unit (0 s … 40 s; 0 min … 6 min)."""
    size, unit = next(((size, unit) for size, unit in UNITS if longest >= 2 * size), (1, "s"))
    span = max(longest / size, 1e-9)
    raw_step = span / 5
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    top = step * math.ceil(span / step)
    count = round(top / step)
    return top * size, [(i * step * size, f"{i * step:g} {unit}") for i in range(count + 1)]


def num(value: float) -> str:
    """A coordinate for the SVG (format_html escapes its arguments to text first: numbers are formatted here)."""
    return f"{value:.1f}"


def time_label(instant: dt.datetime, span: dt.timedelta) -> str:
    local = timezone.localtime(instant)
    if span < dt.timedelta(minutes=10):
        return f"{local:%H:%M:%S}"
    if span < dt.timedelta(days=1):
        return f"{local:%H:%M}"
    return f"{local:%d %b %H:%M}"


def history_chart(results: QuerySet[JobResult], count: int = CHART_RUNS) -> dict | None:
    """The last ``count`` runs that started: a bar each at its start time, as tall as it took, coloured by status.

    Returns the SVG and the legend (statuses with how many runs), or None when nothing ran yet.
    """
    runs = list(results.filter(started_at__isnull=False).order_by("-id")
                .values("id", "status", "started_at", "finished_at")[:count])[::-1]
    if not runs:
        return None
    now = timezone.now()
    for run in runs:
        run["seconds"] = max(0.0, ((run["finished_at"] or now) - run["started_at"]).total_seconds())
    first, last = min(r["started_at"] for r in runs), max(r["started_at"] for r in runs)
    if last - first < dt.timedelta(seconds=60):  # a single run, or a burst: a minute either side
        first, last = first - dt.timedelta(seconds=30), last + dt.timedelta(seconds=30)
    span = last - first
    top, y_ticks = duration_ticks(max(r["seconds"] for r in runs))
    bar = max(3.0, min(14.0, PLOT_W / len(runs) * 0.6))

    def x_of(instant: dt.datetime) -> float:
        return LEFT + bar / 2 + (instant - first) / span * (PLOT_W - bar)

    def y_of(seconds: float) -> float:
        return TOP + PLOT_H - seconds / top * PLOT_H

    parts = [format_html('<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                         '<text class="y-tick" x="{}" y="{}">{}</text>',
                         LEFT, WIDTH - RIGHT, num(y_of(value)), num(y_of(value)), LEFT - 6, num(y_of(value) + 4), label)
             for value, label in y_ticks]
    for index in range(5):
        instant = first + span * index / 4
        anchor = "start" if index == 0 else "end" if index == 4 else "middle"
        parts.append(format_html('<text class="x-tick x-tick-{}" x="{}" y="{}">{}</text>', anchor,
                                 num(x_of(instant)), HEIGHT - BOTTOM + 16, time_label(instant, span)))
    parts.append(format_html('<text class="axis-title" x="{}" y="{}">Start time</text>', WIDTH - RIGHT, HEIGHT - 4))
    parts.append(format_html('<text class="axis-title axis-title-y" x="4" y="{}">Duration</text>', 12))
    for run in runs:
        height = max(2.0, run["seconds"] / top * PLOT_H)
        url = reverse("admin:results_jobresult_change", args=[run["id"]])
        parts.append(format_html(
            '<a href="{}" data-popup="{}"><rect class="bar-{}" x="{}" y="{}" width="{}" height="{}">'
            "<title>#{} {} · started {} · {}</title></rect></a>",
            f"{url}?_popup=1#job-log", url, run["status"], num(x_of(run["started_at"]) - bar / 2),
            num(TOP + PLOT_H - height), num(bar), num(height), run["id"], run["status"],
            f"{timezone.localtime(run['started_at']):%Y-%m-%d %H:%M:%S}", duration_text(run["seconds"])))
    parts.append(format_html('<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                             '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>',
                             LEFT, WIDTH - RIGHT, TOP + PLOT_H, TOP + PLOT_H, LEFT, LEFT, TOP, TOP + PLOT_H))
    svg = format_html(
        '<svg class="history-chart" id="history-chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="Duration of the last {} runs by start time">{}</svg>',
        WIDTH, HEIGHT, WIDTH, HEIGHT, len(runs), SafeString("".join(parts)))
    counts: dict[str, int] = {}
    for run in runs:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    legend = format_html_join("", '<li><span class="swatch bar-{}"></span>{} ({})</li>',
                              ((status, Status(status).label.lower(), counts[status])
                               for status in Status.values if status in counts))
    return {"svg": svg, "legend": legend, "count": len(runs)}
