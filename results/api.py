"""The JSON API of the contract: jobs, run, result, kill, log.

Session or token authentication (DRF). Objects outside the caller's domains
answer 404; invalid input answers 400 with ``{"errors": {field: [message]}}``.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from jobs import access, maintenance, secrets
from jobs.definitions import schedule_entry
from jobs.models import Job

from . import backfill as backfills
from . import states
from .dispatch import RunRefused, start_runs
from .models import JobLogEntry, JobResult, LogLevel, LogRead, Trigger
from .runat import PlannedRun, plan_run

LOG_PAGE_MAX = 5000


def exception_handler(exc, context):
    """Every error body is ``{"errors": {field: [message, ...]}}``."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_errors(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and "errors" in detail:
        return response
    if isinstance(exc, exceptions.ValidationError):
        errors = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        errors = {key: value if isinstance(value, list) else [value] for key, value in errors.items()}
    else:
        errors = {"detail": [detail.get("detail", str(detail)) if isinstance(detail, dict) else str(detail)]}
    response.data = {"errors": errors}
    return response


def _django_errors(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {key: list(messages) for key, messages in exc.message_dict.items()}
    return {"non_field_errors": exc.messages}


class JobSerializer(serializers.ModelSerializer):
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    last_result = serializers.SerializerMethodField()
    schedules = serializers.SerializerMethodField()
    next_run_at = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["identifier", "name", "description", "domain", "active", "stops_on_error", "module",
                  "queue", "params", "last_result", "schedules", "next_run_at"]

    def get_schedules(self, job: Job) -> list[dict]:
        """Each schedule as in definition files, with its next run."""
        return [{**schedule_entry(schedule),
                 "next_run_at": serializers.DateTimeField().to_representation(schedule.next_run_at)
                 if schedule.next_run_at else None} for schedule in job.schedules.all()]

    def get_next_run_at(self, job: Job) -> str | None:
        """The next run of any of the job's schedules."""
        upcoming = [schedule.next_run_at for schedule in job.schedules.all() if schedule.next_run_at]
        return serializers.DateTimeField().to_representation(min(upcoming)) if upcoming else None

    def get_last_result(self, job: Job) -> dict | None:
        if getattr(job, "last_result_id", None) is None:
            return None
        return {"id": job.last_result_id, "status": job.last_result_status}


class LineResultSerializer(serializers.Serializer):
    line_no = serializers.IntegerField()
    action = serializers.CharField()
    status = serializers.CharField()
    message = serializers.CharField()
    parameters = serializers.JSONField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    records_total = serializers.IntegerField(allow_null=True)
    records_processed = serializers.IntegerField()
    records_failed = serializers.IntegerField()
    failures = serializers.JSONField()
    data_changed = serializers.BooleanField(allow_null=True)
    external_called = serializers.BooleanField(allow_null=True)


class ResultSerializer(serializers.ModelSerializer):
    job = serializers.SlugRelatedField(slug_field="identifier", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    run_as = serializers.SlugRelatedField(slug_field="username", read_only=True)
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    kill_requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    lines = LineResultSerializer(source="line_results", many=True, read_only=True)
    answers = serializers.SerializerMethodField()
    typical_duration = serializers.SerializerMethodField()
    parameters = serializers.SerializerMethodField()

    def get_parameters(self, result: JobResult) -> dict:
        return secrets.masked_values(result.parameters)  # secret parameters are stored sealed: shown masked

    def get_answers(self, result: JobResult) -> dict:
        return result.answers()

    def get_typical_duration(self, result: JobResult) -> float | None:
        return result.typical_duration() if result.status in ("pending", "running") else None

    class Meta:
        model = JobResult
        fields = ["id", "job", "domain", "status", "message", "created_at", "started_at", "finished_at", "trigger",
                  "requested_by", "run_as", "parameters", "variables", "queue", "worker", "lines_total",
                  "kill_requested_at", "kill_requested_by", "attempt", "retry_of", "lines", "answers",
                  "typical_duration", "job_version"]


class RunRequest(serializers.Serializer):
    parameters = serializers.DictField(required=False, default=dict)
    confirm = serializers.CharField(required=False, allow_blank=True, default="",
                                    help_text="The job's identifier, for jobs that must be confirmed.")
    run_at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                       help_text="Plan the run for this time (ISO 8601) instead of now.")


class PlannedRunSerializer(serializers.ModelSerializer):
    job = serializers.SlugRelatedField(slug_field="identifier", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    parameters = serializers.SerializerMethodField()

    def get_parameters(self, planned: PlannedRun) -> dict:
        return secrets.masked_values(planned.parameters)

    class Meta:
        model = PlannedRun
        fields = ["id", "job", "run_at", "state", "parameters", "requested_by", "created_at", "fired_at", "result"]


def visible_result(user, result_id: int) -> JobResult:
    results = access.visible_results(user, JobResult.objects.all())
    return get_object_or_404(
        results.select_related("job", "requested_by", "kill_requested_by", "run_as", "domain")
        .prefetch_related("line_results"),
        id=result_id,
    )


class JobListView(APIView):
    def get(self, request):
        last = JobResult.objects.filter(job=OuterRef("pk")).order_by("-id")
        jobs = access.visible_jobs(request.user)
        wanted = [name for name in request.query_params.get("identifier", "").split(",") if name]
        if wanted:  # the job list page asks only for its own rows
            jobs = jobs.filter(identifier__in=wanted[:500])
        jobs = jobs.select_related("domain").prefetch_related("schedules").annotate(
            last_result_id=Subquery(last.values("id")[:1]),
            last_result_status=Subquery(last.values("status")[:1]),
        )
        return Response(JobSerializer(jobs, many=True).data)


class JobRunView(APIView):
    def post(self, request, identifier: str):
        job = get_object_or_404(access.visible_jobs(request.user), identifier=identifier)
        if not access.can_run(request.user, job):
            raise exceptions.PermissionDenied("You may see this job but not run it.")
        body = RunRequest(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job.clean_confirmation(body.validated_data["confirm"])
        except DjangoValidationError as exc:
            return Response({"errors": _django_errors(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if body.validated_data["run_at"] is not None:
            return self.plan(request, job, body.validated_data)
        try:
            results = start_runs(job, parameters=body.validated_data["parameters"], user=request.user,
                                 trigger=Trigger.API)
        except DjangoValidationError as exc:
            return Response({"errors": _prefixed(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except RunRefused as exc:
            return Response({"errors": {"job": [str(exc)]}}, status=status.HTTP_409_CONFLICT)
        data = ResultSerializer(visible_result(request.user, results[0].id)).data
        if len(results) > 1:  # a global job run per domain
            data["results"] = [result.id for result in results]
        warning = maintenance.run_warning(job.domain_id)
        if warning:  # a run by hand inside a window is the caller's choice: said, not refused
            data["warnings"] = [f"Started {warning}."]
        return Response(data, status=status.HTTP_202_ACCEPTED)


    def plan(self, request, job: Job, data: dict) -> Response:
        """``run_at`` given: a planned run (``results.runat``), validated now like a Run."""
        try:
            planned = plan_run(job, data["run_at"], parameters=data["parameters"], user=request.user,
                               trigger=Trigger.API)
        except DjangoValidationError as exc:
            return Response({"errors": _prefixed(exc, frozenset({"run_at"}))}, status=status.HTTP_400_BAD_REQUEST)
        except RunRefused as exc:
            return Response({"errors": {"job": [str(exc)]}}, status=status.HTTP_409_CONFLICT)
        return Response({"planned": PlannedRunSerializer(planned).data}, status=status.HTTP_202_ACCEPTED)


class PlannedRunCancelView(APIView):
    def post(self, request, planned_id: int):
        planned = get_object_or_404(PlannedRun.objects.filter(job__in=access.visible_jobs(request.user))
                                    .select_related("job"), pk=planned_id)
        if not access.can_run(request.user, planned.job):
            raise exceptions.PermissionDenied("You may see this planned run but not cancel it.")
        if not planned.cancel(request.user):
            return Response({"errors": {"state": ["it has already fired or was cancelled"]}},
                            status=status.HTTP_409_CONFLICT)
        planned.refresh_from_db()
        return Response({"planned": PlannedRunSerializer(planned).data})


class BackfillRequest(serializers.Serializer):
    parameter = serializers.CharField(help_text="The job's date parameter that takes each day.")
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    parallel = serializers.IntegerField(required=False, default=1)
    parameters = serializers.DictField(required=False, default=dict)


class BackfillSerializer(serializers.ModelSerializer):
    job = serializers.SlugRelatedField(slug_field="identifier", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress = serializers.SerializerMethodField()
    days = serializers.SerializerMethodField()

    def get_progress(self, backfill: backfills.Backfill) -> dict:
        return backfill.progress()

    def get_days(self, backfill: backfills.Backfill) -> list[dict]:
        return [{"day": day.day, "result": day.result_id, "status": day.result.status if day.result_id else None}
                for day in backfill.days.select_related("result").order_by("day")]

    class Meta:
        model = backfills.Backfill
        fields = ["id", "job", "parameter", "first_day", "last_day", "parallel", "state", "progress", "days",
                  "created_by", "created_at", "killed_at", "finished_at"]


def visible_backfill(user, backfill_id: int) -> backfills.Backfill:
    return get_object_or_404(backfills.Backfill.objects.filter(job__in=access.visible_jobs(user))
                             .select_related("job", "created_by"), pk=backfill_id)


class JobBackfillView(APIView):
    """``POST /api/jobs/<identifier>/backfill/``: one run per day of a range (``results.backfill``)."""

    def post(self, request, identifier: str):
        job = get_object_or_404(access.visible_jobs(request.user), identifier=identifier)
        if not access.can_run(request.user, job):
            raise exceptions.PermissionDenied("You may see this job but not run it.")
        body = BackfillRequest(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            created = backfills.create(job, parameter=data["parameter"], first_day=data["first_day"],
                                       last_day=data["last_day"], parallel=data["parallel"],
                                       parameters=data["parameters"], user=request.user)
        except DjangoValidationError as exc:
            own = frozenset({"job", "parameter", "first_day", "last_day", "parallel"})
            return Response({"errors": _prefixed(exc, own)}, status=status.HTTP_400_BAD_REQUEST)
        except RunRefused as exc:
            return Response({"errors": {"job": [str(exc)]}}, status=status.HTTP_409_CONFLICT)
        return Response(BackfillSerializer(visible_backfill(request.user, created.pk)).data,
                        status=status.HTTP_202_ACCEPTED)


class BackfillView(APIView):
    def get(self, request, backfill_id: int):
        return Response(BackfillSerializer(visible_backfill(request.user, backfill_id)).data)


class BackfillKillView(APIView):
    def post(self, request, backfill_id: int):
        backfill = visible_backfill(request.user, backfill_id)
        if not access.can_run(request.user, backfill.job):
            raise exceptions.PermissionDenied("You may see this backfill but not kill it.")
        if not backfills.kill(backfill.pk, request.user):
            return Response({"errors": {"state": ["the backfill is over"]}}, status=status.HTTP_409_CONFLICT)
        return Response(BackfillSerializer(visible_backfill(request.user, backfill.pk)).data,
                        status=status.HTTP_202_ACCEPTED)


def _prefixed(exc: DjangoValidationError, own: frozenset[str] = frozenset()) -> dict:
    """Run-time parameter errors are reported under ``parameters.NAME``; the request's ``own`` fields by name."""
    errors = _django_errors(exc)
    return {key if key == "parameters" or key in own else f"parameters.{key}": value for key, value in errors.items()}


class ResultView(APIView):
    def get(self, request, result_id: int):
        return Response(ResultSerializer(visible_result(request.user, result_id)).data)


class ResultKillView(APIView):
    def post(self, request, result_id: int):
        result = visible_result(request.user, result_id)
        if not access.can_kill(request.user, result):
            raise exceptions.PermissionDenied("You may see this result but not kill it.")
        try:
            outcome = states.request_kill(result.id, request.user)
        except states.NotKillable as exc:
            return Response({"errors": {"status": [str(exc)]}}, status=status.HTTP_409_CONFLICT)
        data = ResultSerializer(visible_result(request.user, result.id)).data
        data["kill"] = outcome.status
        return Response(data, status=status.HTTP_202_ACCEPTED)


class ResultLogView(APIView):
    """Entries after ``after`` (oldest first); ``tail=N``: the last N; ``before=S``: the N before S.

    Every page is read through the (result, seq) index, so a log of a million
    lines answers as fast as a short one. ``level=WARNING,ERROR`` filters.
    """

    def get(self, request, result_id: int):
        result = visible_result(request.user, result_id)
        tail = _int_param(request, "tail", 0, minimum=0, maximum=LOG_PAGE_MAX)
        before = _int_param(request, "before", 0, minimum=0)
        after = _int_param(request, "after", 0, minimum=0)
        limit = _int_param(request, "limit", 1000, minimum=1, maximum=LOG_PAGE_MAX)
        entries = JobLogEntry.objects.filter(result_id=result.id).values("seq", "at", "level", "line_no", "message")
        levels = _levels(request)
        if levels:
            entries = entries.filter(level__in=levels)
        more = False
        if tail or before:
            newest_first = entries.filter(seq__lt=before) if before else entries
            page = list(newest_first.order_by("-seq")[: tail or limit])[::-1]
        else:
            page = list(entries.filter(seq__gt=after).order_by("seq")[: limit + 1])
            more = len(page) > limit
            page = page[:limit]
        if page:
            LogRead.mark(request.user, result.id, page[-1]["seq"])
        return Response({"entries": page, "finished": result.is_finished and not more, "status": result.status})


def _levels(request) -> list[str]:
    raw = request.query_params.get("level", "")
    levels = [level.strip().upper() for level in raw.split(",") if level.strip()]
    unknown = sorted(set(levels) - set(LogLevel.values))
    if unknown:
        raise exceptions.ValidationError({"level": [f"must be among {', '.join(LogLevel.values)}"]})
    return levels


def _int_param(request, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise exceptions.ValidationError({name: ["must be a whole number"]}) from None
    if value < minimum or (maximum is not None and value > maximum):
        rule = f"must be at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
        raise exceptions.ValidationError({name: [rule]})
    return value



