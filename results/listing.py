"""The result list's filters (domain, job, date range) and its CSV export.

Every choice a filter offers comes from ``jobs.access`` (the caller's domains and jobs); a value typed into
the address bar for something else only narrows the caller's own results, which are all the list ever holds.
"""
from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator

from django.contrib import admin
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import QueryDict
from django.utils import timezone

from jobs import access
from jobs.models import Job

from .models import JobResult


class DomainFilter(admin.SimpleListFilter):
    """By the run's domain: its own (a per-domain run of a global job) or its job's."""

    title = "domain"
    parameter_name = "domain"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in access.visible_domains(request.user).order_by("name")
                .values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value or not value.isdigit():
            return queryset
        return queryset.filter(Q(domain_id=value) | Q(job_id__in=Job.objects.filter(domain_id=value).values("id")))


class JobFilter(admin.SimpleListFilter):
    """By job: only the jobs the caller sees are offered; with many jobs, those of the latest runs.

    Ten thousand links would cost the page more than its million rows (and help nobody): past ``OFFERED``
    jobs, the filter offers the jobs of the latest runs; any job's own link (``?job=ID``) still filters.
    """

    title = "job"
    parameter_name = "job"
    OFFERED = 100
    RECENT_RUNS = 2000

    def lookups(self, request, model_admin):
        jobs = access.visible_jobs(request.user).order_by("identifier").values_list("pk", "identifier")
        offered = list(jobs[:self.OFFERED + 1])
        if len(offered) > self.OFFERED:
            recent = access.visible_results(request.user, JobResult.objects.all()).order_by("-id") \
                .values_list("job_id", flat=True)[:self.RECENT_RUNS]
            chosen = {int(self.value())} if (self.value() or "").isdigit() else set()
            offered = list(jobs.filter(pk__in={*recent} | chosen)[:self.OFFERED])
        return [(str(pk), identifier) for pk, identifier in offered]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(job_id=value) if value and value.isdigit() else queryset


class CreatedRangeFilter(admin.ListFilter):
    """Runs created from one day to another (both included, in the site's time zone): two date boxes."""

    title = "date"
    template = "admin/results/jobresult/date_range_filter.html"
    FIELDS = {"created_from": "From", "created_to": "To"}

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.request = request
        self.dates: dict[str, dt.date] = {}
        self.typed: dict[str, str] = {}
        self.problems: list[str] = []  # the list shows them as messages; the CSV export refuses them
        for name, label in self.FIELDS.items():
            if name not in params:
                continue
            text = params.pop(name)[-1].strip()
            self.typed[name] = text
            self.used_parameters[name] = text
            if not text:
                continue
            try:
                self.dates[name] = dt.date.fromisoformat(text)
            except ValueError:
                self.problems.append(f"{label} date: enter a date as YYYY-MM-DD (e.g. 2026-12-03), "
                                     f"not {text[:40]!r}.")

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.FIELDS)

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if "created_from" in self.dates:
            queryset = queryset.filter(created_at__gte=self._midnight(self.dates["created_from"]))
        if "created_to" in self.dates:
            queryset = queryset.filter(created_at__lt=self._midnight(self.dates["created_to"] + dt.timedelta(days=1)))
        return queryset

    @staticmethod
    def _midnight(day: dt.date) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

    def choices(self, changelist):
        """One "choice": the form, with the list's other filters kept as hidden fields."""
        others = QueryDict(changelist.get_query_string(remove=[*self.FIELDS, "p"]).lstrip("?"))
        yield {"fields": [(name, label, self.typed.get(name, "")) for name, label in self.FIELDS.items()],
               "hidden": [(name, value) for name, values in others.lists() for value in values],
               "clear": changelist.get_query_string(remove=[*self.FIELDS, "p"]) if self.typed else None}


def filter_problems(changelist) -> list[str]:
    return [problem for spec in changelist.filter_specs for problem in getattr(spec, "problems", [])]


# --- CSV export ---------------------------------------------------------------------------------------------
CSV_COLUMNS = ["id", "job", "job_name", "domain", "status", "trigger", "requested_by", "created_at", "started_at",
               "finished_at", "duration_s", "message"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: a leading =, +, -, @ would make it a formula (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """csv.writer writes each row here and gets the line back (no buffer: the response streams it)."""

    def write(self, line: str) -> str:
        return line


def csv_rows(results: QuerySet) -> Iterator[str]:
    """The results as CSV lines, read in chunks (never the whole list in memory). No parameters, no variables:
    what a run was given may hold secrets."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    rows = results.annotate(
        domain_name=Coalesce(F("domain__name"), F("job__domain__name")),
    ).values_list("id", "job__identifier", "job__name", "domain_name", "status", "trigger", "requested_by__username",
                  "created_at", "started_at", "finished_at", "message")
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow(_csv_row(row))


def _csv_row(row: Iterable) -> list[str]:
    pk, identifier, name, domain, status, trigger, username, created, started, finished, message = row
    duration = f"{(finished - started).total_seconds():.3f}" if started and finished else ""
    return [cell(value) for value in (pk, identifier, name, domain or "Global", status, trigger, username, created,
                                      started, finished)] + [duration, cell(message)]
