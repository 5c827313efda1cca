"""Who may see and do what, by domain.

System administrators (superusers) see everything. Everyone else sees the
jobs of the domains they are members of, never global jobs; ``admin`` members
edit them, ``admin`` and ``operator`` members run and kill them, ``viewer``
members only read. Callers turn "not visible" into a 404.
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from .models import Domain, DomainMembership, Job

RUN_ROLES = (DomainMembership.ADMIN, DomainMembership.OPERATOR)
EDIT_ROLES = (DomainMembership.ADMIN,)

User = AbstractBaseUser | AnonymousUser


def is_system_admin(user: User) -> bool:
    return bool(user and user.is_active and user.is_superuser)


def domain_ids(user: User, roles: tuple[str, ...] | None = None) -> QuerySet:
    memberships = DomainMembership.objects.filter(user_id=getattr(user, "pk", None))
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return memberships.values("domain_id")


def visible_domains(user: User) -> QuerySet[Domain]:
    if is_system_admin(user):
        return Domain.objects.all()
    return Domain.objects.filter(id__in=domain_ids(user))


def editable_domains(user: User) -> QuerySet[Domain]:
    if is_system_admin(user):
        return Domain.objects.all()
    return Domain.objects.filter(id__in=domain_ids(user, EDIT_ROLES))


def visible_jobs(user: User, queryset: QuerySet[Job] | None = None) -> QuerySet[Job]:
    jobs = Job.objects.all() if queryset is None else queryset
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return jobs.none()
    if is_system_admin(user):
        return jobs
    return jobs.filter(domain_id__in=domain_ids(user))


def runnable_jobs(user: User, queryset: QuerySet[Job] | None = None) -> QuerySet[Job]:
    jobs = visible_jobs(user, queryset)
    if is_system_admin(user):
        return jobs
    return jobs.filter(domain_id__in=domain_ids(user, RUN_ROLES))


def editable_jobs(user: User, queryset: QuerySet[Job] | None = None) -> QuerySet[Job]:
    jobs = visible_jobs(user, queryset)
    if is_system_admin(user):
        return jobs
    return jobs.filter(domain_id__in=domain_ids(user, EDIT_ROLES))


def visible_results(user: User, results: QuerySet) -> QuerySet:
    """Results of the user's domains: of their jobs, and their domain's runs of per-domain global jobs."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return results.none()
    if is_system_admin(user):
        return results
    ids = domain_ids(user)
    # job_id IN (...) rather than a join on the job: with the OR, a join makes PostgreSQL filter every
    # result of a million-row table; this way it walks the newest results and stops at the page's end.
    their_jobs = Job.objects.filter(domain_id__in=ids).values("id")
    return results.filter(Q(job_id__in=their_jobs) | Q(domain_id__in=ids))


def has_role_in(user: User, domain_id: int | None, roles: tuple[str, ...]) -> bool:
    if is_system_admin(user):
        return True
    if domain_id is None or not getattr(user, "is_authenticated", False):
        return False
    return DomainMembership.objects.filter(user_id=user.pk, domain_id=domain_id, role__in=roles).exists()


def has_role(user: User, job: Job, roles: tuple[str, ...]) -> bool:
    return has_role_in(user, job.domain_id, roles)


def can_run(user: User, job: Job) -> bool:
    """A run role in the job's domain, and the job's extra permission if it names one (seed 004)."""
    return has_role(user, job, RUN_ROLES) and has_required_permission(user, job)


def has_required_permission(user: User, job: Job) -> bool:
    """The further Django permission a job may require of whoever runs it (seed 004)."""
    return not job.required_permission or is_system_admin(user) or user.has_perm(job.required_permission)


def run_domain_ids(user: User) -> set[int] | None:
    """The domains where ``user`` may run and kill; None means every domain (system administrator)."""
    if is_system_admin(user):
        return None
    return set(DomainMembership.objects.filter(user_id=getattr(user, "pk", None), role__in=RUN_ROLES)
               .values_list("domain_id", flat=True))


def runs_in(run_domains: set[int] | None, domain_id: int | None) -> bool:
    """``run_domain_ids(user)``, read once for a page of rows: may the user run and kill in this domain?"""
    return run_domains is None or domain_id in run_domains


def can_run_given(user: User, run_domains: set[int] | None, job: Job) -> bool:
    """``can_run`` for many jobs, with ``run_domain_ids(user)`` read once."""
    return runs_in(run_domains, job.domain_id) and has_required_permission(user, job)


def can_kill_given(run_domains: set[int] | None, result) -> bool:
    """``can_kill`` for many results, with ``run_domain_ids(user)`` read once."""
    return runs_in(run_domains, result.domain_id or result.job.domain_id)


def can_kill(user: User, result) -> bool:
    """Operators and admins of the run's domain (a per-domain run of a global job included)."""
    return has_role_in(user, result.domain_id or result.job.domain_id, RUN_ROLES)


def can_acknowledge(user: User, result) -> bool:
    """Acknowledging a failed run is an operator's action, like Kill: viewers only read."""
    return can_kill(user, result)


def can_edit(user: User, job: Job) -> bool:
    return has_role(user, job, EDIT_ROLES)


def is_member(user: User) -> bool:
    return is_system_admin(user) or DomainMembership.objects.filter(user_id=getattr(user, "pk", None)).exists()


# --- the same questions, answered once per request ------------------------------------------------------------
# The admin asks them for every model of its sidebar, every inline, form and fieldset of a page.

def per_request(request, key: tuple, compute):
    """``compute()`` once per request (the answers live on the request)."""
    answers = request.__dict__.setdefault("_jobs_access_answers", {})
    if key not in answers:
        answers[key] = compute()
    return answers[key]


def request_is_member(request) -> bool:
    """``is_member`` of the request's user, asked once per request."""
    return per_request(request, ("member",), lambda: is_member(request.user))


def request_run_domains(request) -> set[int] | None:
    """``run_domain_ids`` of the request's user, read once per request."""
    return per_request(request, ("run domains",), lambda: run_domain_ids(request.user))


def request_can_run(request, job: Job) -> bool:
    """``can_run`` of the request's user, asked once per request and job (the job page asks three times)."""
    return per_request(request, ("run", job.pk), lambda: can_run(request.user, job))


def request_runs_somewhere(request) -> bool:
    """May run (and kill) in some domain: the admin offers its Run and Kill actions."""
    run_domains = request_run_domains(request)
    return run_domains is None or bool(run_domains)


def request_edits_somewhere(request) -> bool:
    """A system administrator or an administrator of some domain (may add what belongs to a domain)."""
    return per_request(request, ("edits",), lambda: is_system_admin(request.user)
                       or editable_domains(request.user).exists())
