"""Executions: one JobResult per run, its line results and its log.

Status changes never happen here: ``results.states`` owns every transition.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from jobs.models import Job


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Success"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"
    ERROR = "error", "Error"
    KILLED = "killed", "Killed"


TERMINAL = frozenset({Status.SUCCESS, Status.WARNING, Status.INFO, Status.ERROR, Status.KILLED})
ACTIVE = frozenset({Status.PENDING, Status.RUNNING})


class Trigger(models.TextChoices):
    MANUAL = "manual", "By hand (admin)"
    API = "api", "API"
    COMMAND = "command", "Command line"
    SCHEDULE = "schedule", "Schedule"
    RETRY = "retry", "Retry"
    APPLICATION = "application", "Application"
    RUN_AT = "run_at", "Run at (planned)"
    BACKFILL = "backfill", "Backfill"


# Outcomes a person should look at (the operations page) until someone acknowledges them.
NEEDS_ATTENTION = (Status.ERROR, Status.WARNING)
FAILED = (Status.ERROR, Status.KILLED)
SUCCEEDED = (Status.SUCCESS, Status.INFO)


class JobResultQuerySet(models.QuerySet):
    def active(self) -> JobResultQuerySet:
        return self.filter(status__in=ACTIVE)

    def unacknowledged(self, since) -> JobResultQuerySet:
        """Failed or warning runs finished after ``since`` that nobody has acknowledged (index result_attention)."""
        return self.filter(status__in=NEEDS_ATTENTION, acknowledged_at__isnull=True, finished_at__gte=since)


class JobResult(models.Model):
    # Few indexes on purpose: the claim and the end change the indexed status, so each rewrites every
    # index of the row. ``job`` is served by result_job_created; the user links are never searched
    # (a user's deletion scans for them, which is rare).
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="results", db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    domain = models.ForeignKey(
        "jobs.Domain", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The domain this run belongs to: its job's, or for a per-domain run of a global job, its own.",
    )
    run_as = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        help_text="Whose permissions the run had: the job's service user, or who started it.",
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
    )
    parameters = models.JSONField(default=dict, blank=True, help_text="Run-time parameters, typed.")
    variables = models.JSONField(default=dict, blank=True, help_text="Context variables, resolved at start.")
    queue = models.CharField(max_length=100, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process that ran it.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lines_total = models.PositiveIntegerField(default=0)
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text="The schedule's slot this run fills.")
    published_at = models.DateTimeField(null=True, blank=True, help_text="When its message was last sent.")
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries",
        help_text="The result this run retries.",
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    job_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The job's version (jobs.JobVersion number) this run was started with.")
    kill_requested_at = models.DateTimeField(null=True, blank=True)
    kill_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
    )
    # Set once by results.states.acknowledge: someone has seen this failure or warning.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
    )

    objects = JobResultQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["job", "-created_at"], name="result_job_created"),
            models.Index(fields=["status", "-id"], name="result_status"),
            models.Index(fields=["-created_at"], name="result_created"),
            # The reaper's sweep reads only the few active rows.
            models.Index(
                fields=["status", "heartbeat_at"], name="result_active_heartbeat",
                condition=Q(status__in=["pending", "running"]),
            ),
            # The operations page. All partial, so a run adds an entry only when it ends (not when
            # created or claimed): its failures still to acknowledge, each job's outcomes by day, and who
            # acknowledged what (only acknowledged rows).
            models.Index(
                fields=["-finished_at"], name="result_attention",
                condition=Q(status__in=["error", "warning"], acknowledged_at__isnull=True),
            ),
            models.Index(
                fields=["job", "status", "created_at"], name="result_job_outcome",
                condition=Q(status__in=["success", "warning", "info", "error", "killed"]),
            ),
            models.Index(fields=["-acknowledged_at"], name="result_acknowledged",
                         condition=Q(acknowledged_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.job.identifier}"

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_killable(self) -> bool:
        return self.status in ACTIVE

    def answers(self) -> dict:
        """Seed 004's questions about a run, answered from its lines."""
        lines = list(self.line_results.all())
        failures = [failure | {"line_no": line.line_no} for line in lines for failure in line.failures]

        def reported(flag: str) -> bool | None:
            values = [getattr(line, flag) for line in lines if getattr(line, flag) is not None]
            return any(values) if values else None

        return {
            "started": self.started_at is not None,
            "finished": self.is_finished,
            "records_processed": sum(line.records_processed for line in lines),
            "records_failed": sum(line.records_failed for line in lines),
            "failures": failures[:100],
            "data_changed": reported("data_changed"),
            "external_called": reported("external_called"),
            "retry_possible": self.is_finished and self.job.active,
            "retry_safe": self.job.idempotent,
        }

    def typical_duration(self) -> float | None:
        """Median seconds of the job's last successful runs, for the estimate of a running one."""
        durations = sorted(
            (finished - started).total_seconds()
            for started, finished in JobResult.objects.filter(
                job_id=self.job_id, status=Status.SUCCESS, started_at__isnull=False
            ).exclude(id=self.id).order_by("-id").values_list("started_at", "finished_at")[:10]
            if finished is not None
        )
        return durations[len(durations) // 2] if durations else None

    @property
    def duration(self):
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            from django.utils import timezone

            end = timezone.now()
        return end - self.started_at


class JobLineResult(models.Model):
    """The outcome of one line of a run (lines that never started have none)."""

    # No index of its own: the unique constraint's index (result, line_no) serves lookups by result.
    result = models.ForeignKey(JobResult, on_delete=models.CASCADE, related_name="line_results", db_index=False)
    line_no = models.PositiveIntegerField()
    action = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    message = models.TextField(blank=True)
    parameters = models.JSONField(default=dict, blank=True, help_text="Resolved arguments.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What the action reported (seed 004's questions); None where it said nothing.
    records_total = models.PositiveIntegerField(null=True, blank=True)
    records_processed = models.PositiveIntegerField(default=0)
    records_failed = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True, help_text="Failed record ids with their errors.")
    data_changed = models.BooleanField(null=True, blank=True)
    external_called = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["result", "line_no"]
        constraints = [models.UniqueConstraint(fields=["result", "line_no"], name="one_line_result_per_line")]

    def __str__(self) -> str:
        return f"#{self.result_id} line {self.line_no} ({self.status})"


class LogLevel(models.TextChoices):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class JobLogEntry(models.Model):
    # No index of its own: the unique constraint's index (result, seq) serves lookups by result, and
    # one index fewer to keep is faster log writes.
    result = models.ForeignKey(JobResult, on_delete=models.CASCADE, related_name="log_entries", db_index=False)
    seq = models.PositiveBigIntegerField(help_text="Increasing within a result.")
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    line_no = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["result", "seq"]
        constraints = [models.UniqueConstraint(fields=["result", "seq"], name="one_log_entry_per_seq")]

    def __str__(self) -> str:
        return f"#{self.result_id}:{self.seq} {self.level} {self.message[:60]}"


class LogRead(models.Model):
    """How far a user has read a result's log: the job list's log icon is black until they catch up."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    result = models.ForeignKey(JobResult, on_delete=models.CASCADE, related_name="reads")
    seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "result"], name="one_log_read_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id} read #{self.result_id} up to {self.seq}"

    @classmethod
    def mark(cls, user, result_id: int, seq: int) -> None:
        """Only forwards: an older page of the log read later does not make newer entries unread."""
        if not seq or not getattr(user, "is_authenticated", False):
            return
        updated = cls.objects.filter(user=user, result_id=result_id, seq__lt=seq).update(seq=seq)
        if not updated and not cls.objects.filter(user=user, result_id=result_id).exists():
            cls.objects.get_or_create(user=user, result_id=result_id, defaults={"seq": seq})


# Planned runs and backfills live with their logic; imported here so Django registers them with the app's models.
from .backfill import Backfill, BackfillDay  # noqa: E402,F401
from .runat import PlannedRun  # noqa: E402,F401
