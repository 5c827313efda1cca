"""Versions of a job: every save stores the job's whole definition (the file format), who, when and why.

``record`` is called by every write path (the admin's job page after its lines and schedule are saved,
definition file imports, ``Job.copy``, ``restore``); it stores nothing when the definition did not change.
Versions are numbered 1, 2, ... per job identifier and are kept when their job is deleted (the job link
empties, the identifier stays), for audit.

Restoring a version imports its definition for that job (its filter templates are left as they are now) and
records a new version. System administrators may restore any version; a domain admin only when neither the
job now nor the version has a line only system administrators may write (``jobs.authorship``) and the restore
changes none of the fields reserved to them (domain, run_as, execution, required_permission) and its filter
lines use their domains' templates only.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from . import access, authorship
from .definitions import dump_document, export_document, import_texts, load
from .models import Job, JobVersion

User = AbstractBaseUser | AnonymousUser
# Job fields only a system administrator sets (read-only for others on the job's page).
SYSTEM_ADMIN_FIELDS = ("domain_id", "run_as_id", "execution", "required_permission")


def definition_of(job: Job) -> str:
    """The job alone (with the filter templates its lines use) as a definition file."""
    return dump_document(export_document(Job.objects.filter(pk=job.pk)))


def latest(job: Job) -> JobVersion | None:
    return JobVersion.objects.filter(job=job).order_by("-number").first()


def latest_number(job: Job) -> int | None:
    """The job's current version number: one indexed query (the run's start records it)."""
    return JobVersion.objects.filter(job_id=job.pk).order_by("-number").values_list("number", flat=True).first()


def record(job: Job, user: User | None = None, comment: str = "") -> JobVersion | None:
    """A new version of ``job`` when its definition differs from the latest one; None when unchanged.

    The job's row is locked, so two saves at once number their versions one after the other."""
    author = user if user is not None and getattr(user, "is_authenticated", False) else None
    for _attempt in range(3):  # the identifier's numbers may be taken by a deleted job's versions meanwhile
        try:
            with transaction.atomic():
                Job.objects.select_for_update().filter(pk=job.pk).first()
                text = definition_of(job)
                previous = latest(job)
                if previous is not None and previous.definition == text:
                    return None
                last = (JobVersion.objects.filter(job_identifier=job.identifier).order_by("-number")
                        .values_list("number", flat=True).first())
                return JobVersion.objects.create(job=job, job_identifier=job.identifier, number=(last or 0) + 1,
                                                 definition=text, created_by=author, comment=comment[:300])
        except IntegrityError:
            continue
    raise RuntimeError(f"Could not number a new version of {job.identifier}.")


@dataclass
class DiffLine:
    kind: str  # "added", "removed", "hunk", "header" or "same": the CSS class's suffix
    text: str


def diff(old: JobVersion, new: JobVersion) -> list[DiffLine]:
    """A unified diff of two versions' definitions, line by line with what each line is."""
    lines = difflib.unified_diff(old.definition.splitlines(), new.definition.splitlines(),
                                 f"version {old.number}", f"version {new.number}", lineterm="")
    return [DiffLine(_kind(line), line) for line in lines]


def _kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "header"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "added", "-": "removed"}.get(line[:1], "same")


def may_restore(user: User, job: Job) -> bool:
    """Who is offered Restore at all: system administrators, and the job's domain admins."""
    return access.is_system_admin(user) or (job.domain_id is not None and access.can_edit(user, job))


def restore(job: Job, version: JobVersion, user: User) -> JobVersion | None:
    """Make ``job`` what ``version`` says again (one transaction) and record it as a new version (None: the
    job was that already).

    Raises PermissionDenied (saying why) when ``user`` may not; nothing is changed then."""
    if version.job_id != job.pk or not may_restore(user, job):
        raise PermissionDenied("Only system administrators and the job's domain admins may restore a version.")
    document: dict[str, Any] = load(version.definition)
    document["filter_templates"] = []  # templates are shared: a job's restore leaves them as they are now
    with transaction.atomic():
        before = Job.objects.select_for_update().get(pk=job.pk)
        previous = latest_number(before)
        had_protected = bool(authorship.protected_lines(before))
        import_texts([(f"version {version.number}", dump_document(document))], user=user,
                     comment=f"restored version {version.number}")
        after = Job.objects.get(pk=job.pk)
        if not access.is_system_admin(user):
            problem = _domain_admin_refusal(user, before, after, had_protected)
            if problem:
                raise PermissionDenied(problem)  # leaving the atomic block rolls the import back
        newest = latest(after)
        return newest if newest is not None and newest.number != previous else None


def _domain_admin_refusal(user: User, before: Job, after: Job, had_protected: bool) -> str:
    if had_protected or authorship.protected_lines(after):
        return "This job has lines written by a system administrator: only a system administrator may restore it."
    if authorship.fed_by_domainless_filters(authorship.stored_layout(before)) or \
            authorship.fed_by_domainless_filters(authorship.stored_layout(after)):
        return "This job filters across every domain: only a system administrator may restore it."
    changed = [name.removesuffix("_id") for name in SYSTEM_ADMIN_FIELDS
               if getattr(before, name) != getattr(after, name)]
    if changed:
        return f"Restoring this version would change {', '.join(changed)}: only a system administrator may."
    allowed = access.editable_domains(user)  # the job page's rule for the filter templates a line may use
    if after.lines.filter(filter_template__isnull=False).exclude(filter_template__domain__in=allowed).exists():
        return "This version uses a filter template of another domain: only a system administrator may restore it."
    return ""
