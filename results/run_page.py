"""The Run dialog of a job: its parameters, then a confirmation of what will run (Retry shows it too)."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from jobs import access, maintenance, secrets
from jobs.forms import RunLaterForm, RunParametersForm
from jobs.models import Job

from .dispatch import RunRefused, start_run
from .models import Trigger
from .runat import plan_run


def run_dialog(request: HttpRequest, admin_site, job: Job) -> HttpResponse:
    """Two steps: the parameters, then a confirmation that says what will run (one step without parameters).

    The caller has checked that ``request.user`` may run ``job``.
    """
    reasons = job.confirmation_reasons()
    posted = request.method == "POST"
    confirm_step = not job.params or request.POST.get("step") == "confirm"
    form = RunParametersForm(job.params or [], request.POST if posted else None,
                             confirm_identifier=job.identifier if reasons and confirm_step else None)
    valid = posted and form.is_valid()
    only_confirmation_missing = posted and not valid and set(form.errors) == {"confirm"}
    confirming = not job.params or valid or only_confirmation_missing
    if valid and not confirm_step:
        form = RunParametersForm(job.params or [], request.POST,
                                 confirm_identifier=job.identifier if reasons else None)
        form.is_valid()
        form.errors.pop("confirm", None)  # asked for on this step, not an error yet
    elif valid:
        later = RunLaterForm(job, request.POST, prefix="later")
        try:
            job.clean_confirmation(form.cleaned_data.get("confirm"))
            run_at = later.checked_run_at()
            if run_at is not None:
                planned = plan_run(job, run_at, parameters=form.values(), user=request.user)
            else:
                result = start_run(job, parameters=form.values(), user=request.user, trigger=Trigger.MANUAL)
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                target = later if name in later.fields else form
                target.add_error(name if name in target.fields else None, problems)
        except RunRefused as exc:
            form.add_error(None, str(exc))
        else:
            if run_at is not None:
                messages.success(request, f"{job.identifier} planned for {run_at:%Y-%m-%d %H:%M %Z}.")
                return HttpResponseRedirect(reverse("admin:results_plannedrun_change", args=[planned.pk]))
            messages.success(request, f"{job.identifier} queued as result #{result.id}.")
            return HttpResponseRedirect(reverse("admin:results_jobresult_change", args=[result.id]))
        values = form.values() if form.is_bound and hasattr(form, "cleaned_data") else None
        return run_page(request, admin_site, job, form, values=values, confirming=confirming, later=later)
    values = form.values() if form.is_bound and hasattr(form, "cleaned_data") else None
    return run_page(request, admin_site, job, form, values=values, confirming=confirming)


def run_now(request: HttpRequest, jobs: list[Job]) -> tuple[list[str], list[str]]:
    """The list's "Run now": a run of each job that needs no confirmation."""
    started, refused = [], []
    for job in jobs:
        if job.confirmation_reasons():
            refused.append(f"{job.identifier} (it must be confirmed: run it from its page)")
            continue
        try:
            result = start_run(job, user=request.user, trigger=Trigger.MANUAL)
        except (ValidationError, RunRefused) as exc:
            refused.append(f"{job.identifier} ({'; '.join(getattr(exc, 'messages', [str(exc)]))})")
        else:
            started.append(f"{job.identifier} #{result.id}")
    return started, refused


def shown_values(form: forms.Form, values: dict | None, retry_of=None) -> dict | None:
    """The run's values as the confirmation shows them: secrets masked (a retry's are stored sealed)."""
    if values is None:
        return None
    return secrets.masked_values(values) if retry_of is not None else form.shown_values()


def run_page(request: HttpRequest, admin_site, job: Job, form: forms.Form, *, values: dict | None,
             confirming: bool, retry_of=None, later: forms.Form | None = None) -> TemplateResponse:
    """The Run dialog of ``job`` (parameters, or the confirmation with the lines, values and pre-flight checks).

    Retry shows the same confirmation (``retry_of``: the result it runs again, with its values).
    """
    verb = f"retry #{retry_of.pk} of" if retry_of is not None else "run"
    # Checks connect to hosts: only system administrators point them with typed values and read why one
    # failed; others get the job's own values and "not ready" (no port scans through the Run page).
    trusted = access.is_system_admin(request.user)
    context = {
        **admin_site.each_context(request),
        "preflight": job.preflight(values if trusted else None) if confirming else [],
        "preflight_details": trusted,
        "step": "confirm" if confirming else "parameters",
        "values": shown_values(form, values, retry_of),
        "title": f"Run {job.name}" if not confirming else f"Confirm: {verb} {job.name}",
        "job": job,
        "form": form,
        "lines": job.active_lines(),
        "reasons": job.confirmation_reasons(),
        "retry_of": retry_of,
        # Run's "later at…" and the maintenance window warning (jobs.maintenance); a retry runs now.
        "later": (later or RunLaterForm(job, prefix="later")) if retry_of is None else None,
        "window_warning": maintenance.run_warning(job.domain_id) if confirming else None,
        "opts": Job._meta,
        "original": job,
    }
    return TemplateResponse(request, "admin/jobs/job/run.html", context)
