"""The seam between the job admin (definitions) and executions (runs, results, logs).

``jobs`` never imports ``results``: executions depend on definitions, not the other way round. The
job admin still shows a job's runs and starts new ones, so it asks for them here; the results app
registers its implementation (``results.job_page``) when it is ready.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite
    from django.db.models import QuerySet
    from django.http import HttpRequest, HttpResponse

    from .models import Job


class Executions(Protocol):
    def with_last_run(self, jobs: QuerySet[Job], user) -> QuerySet[Job]:
        """``jobs`` annotated with their last run (id, status, time) and what ``user`` has read of its log."""

    def job_page_context(self, request: HttpRequest, job: Job) -> dict:
        """What the job page shows of the job's runs; ``executions_template`` is the include that shows it."""

    def run_dialog(self, request: HttpRequest, admin_site: AdminSite, job: Job) -> HttpResponse:
        """The Run dialog of ``job`` (the caller has checked that ``request.user`` may run it)."""

    def run_now(self, request: HttpRequest, jobs: list[Job]) -> tuple[list[str], list[str]]:
        """Starts a run of each of ``jobs`` by hand: ("identifier #id" started, "identifier (why)" refused)."""


_registered: Executions | None = None


def register(implementation: Executions) -> None:
    global _registered
    _registered = implementation


def executions() -> Executions:
    if _registered is None:
        raise ImproperlyConfigured("No executions are registered: add 'results' to INSTALLED_APPS.")
    return _registered
