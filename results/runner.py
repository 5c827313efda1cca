"""Execution of a run's lines, inside a Celery worker process.

``execute(result_id)`` claims the pending result (``states.claim``), runs the
active lines in ``line_no`` order and ends the result through ``states``. A
watchdog thread beside it beats the heartbeat, writes the run's journal (log, line starts and ends), and
watches the database for a kill: cooperative actions see it through the
context, any other line is interrupted in its thread, and a line still running
after the grace period is stopped by force (``results.stopping``).
"""
from __future__ import annotations

import functools
import logging
import os
import socket
import traceback
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from jobs import access, plans, registry, secrets
from jobs import context as context_vars
from jobs.actions.shell import term_grace
from jobs.filters import RecordSet, queryset_for, within_domains
from jobs.models import JobLine
from jobs.plans import JobPlan
from jobs.registry import Cancelled, LineFailed

from . import aftermath, states, stopping
from .db import reconnecting
from .journal import LineLogger, RunJournal
from .models import JobLineResult, LogLevel, Status
from .watchdog import MAX_FAILURES_KEPT, LineTally, Monitor, RunControl, RunWatch

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{_host()}:{os.getpid()}"


@functools.cache
def _host() -> str:
    return socket.gethostname()  # a system call: every run names its worker twice


class RunAs:
    """The user a run runs as (``JobResult.run_as``), read from the database on first use: most runs never ask."""

    def __init__(self, user_id: int | None) -> None:
        self.user_id = user_id

    @cached_property
    def user(self) -> AbstractBaseUser | None:
        if self.user_id is None:
            return None
        return get_user_model()._default_manager.filter(pk=self.user_id).first()

    @property
    def sees_every_domain(self) -> bool:
        """Nobody (a schedule's run) or a system administrator: the run's user limits nothing."""
        return self.user_id is None or access.is_system_admin(self.user)

    def domain_ids(self) -> QuerySet | list:
        """The domains whose records the user may see (none once deleted or deactivated)."""
        user = self.user
        return access.domain_ids(user) if user is not None and user.is_active else []


class RunContext:
    """The ``ctx`` an action receives as its first argument."""

    def __init__(self, *, result_id: int, job_identifier: str, line_no: int, params: dict,
                 variables: dict, log: LineLogger, records: RecordSet | None, control: RunControl,
                 run_as: RunAs | None = None, named_secrets: dict[str, str] | None = None) -> None:
        self.result_id = result_id
        self.job_identifier = job_identifier
        self.line_no = line_no
        self.params = params  # secret parameters in clear: what the action needs (the log masks them)
        self.variables = variables  # as stored on the result: secrets masked
        self.secrets = dict(named_secrets or {})  # the stored secrets this line names: {"secret.NAME": value}
        self.log = log
        self.records = records
        self._control = control
        self.warnings: list[str] = []
        self.tally = control.tally or LineTally()
        self._run_as = run_as or RunAs(None)

    @property
    def user(self) -> AbstractBaseUser | None:
        """Who the run runs as: the job's service user, else who started it; None for a schedule's run of a
        job without a service user (nobody: check for None before asking for permissions)."""
        return self._run_as.user

    @property
    def cancelled(self) -> bool:
        return self._control.stop_requested.is_set()

    def check_cancelled(self) -> None:
        """Raise ``Cancelled`` if the run is being killed; call it between units of work."""
        if self.cancelled:
            raise Cancelled()

    def wait_cancelled(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True as soon as the run is being killed."""
        return self._control.stop_requested.wait(max(0.0, seconds))

    def sleep(self, seconds: float) -> None:
        if self.wait_cancelled(seconds):
            raise Cancelled()

    def warn(self, message: str) -> None:
        """Log a warning and end this line as ``warning`` (unless it fails)."""
        self.warnings.append(message)
        self.log.warning(message)

    def progress(self, done: int, total: int | None = None) -> None:
        """Records done so far (of ``total``): the result page shows a progress bar."""
        self.tally.processed = done
        if total is not None:
            self.tally.total = total

    def processed(self, count: int = 1) -> None:
        """``count`` more records were processed."""
        self.tally.processed += count

    def failed(self, record_id: Any, error: Any) -> None:
        """A record failed; the line goes on and ends ``warning``, listing the failed ids with their errors."""
        self.tally.failed += 1
        if len(self.tally.failures) < MAX_FAILURES_KEPT:
            self.tally.failures.append({"id": str(record_id), "error": str(error)[:500]})
        self.log.error(f"record {record_id} failed: {error}")

    def changed_data(self, changed: bool = True) -> None:
        """Say whether this line changed data (the result page answers "was data changed?")."""
        self.tally.data_changed = changed

    def called_external(self) -> None:
        """Say that this line called an external system (automatic for actions declared external)."""
        self.tally.external_called = True

    def secret(self, name: str) -> str:
        """The value of the stored secret ``name``, if this line names it (``${secret.NAME}``, ``JOBS_SECRET_NAME``)."""
        try:
            return self.secrets[secrets.variable_name(name)]
        except KeyError:
            raise LookupError(f"this line does not name the secret {name}") from None

    def secret_environment(self) -> dict[str, str]:
        """Environment variables for a subprocess, in clear, of only the secrets this line names:
        ``JOBS_SECRET_NAME`` and ``JOBS_PARAM_NAME`` of a secret run-time parameter (elsewhere masked)."""
        prefix = secrets.SECRET_PREFIX
        return {secrets.environment_name(key[len(prefix):]) if key.startswith(prefix) else context_vars.env_name(key):
                value for key, value in self.secrets.items()}

    def register_process_group(self, pgid: int) -> None:
        """Processes in this group are killed if the line must be stopped by force."""
        self._control.add_process_group(pgid)

    def unregister_process_group(self, pgid: int) -> None:
        self._control.discard_process_group(pgid)


@dataclass
class LineOutcome:
    status: str
    message: str
    records: RecordSet | None = None
    tally: LineTally | None = None


class Run:
    """The lines of one claimed result, run in order."""

    def __init__(self, claim: states.Claim, plan: JobPlan, journal: RunJournal, control: RunControl) -> None:
        self.claim = claim
        self.result_id = claim.result_id
        self.job = plan.job
        self.lines = plan.lines
        self.journal = journal
        self.control = control
        # Secrets are opened here, used to resolve the lines, and masked in everything the run stores.
        self.params = secrets.revealed_values(claim.parameters, plan.job.secret_param_names())
        self.run_as = RunAs(claim.run_as_id)
        # The run's domain: its own (a per-domain run of a global job), else its job's.
        self.domain_id = claim.domain_id if claim.domain_id is not None else self.job.domain_id
        self.variables = context_vars.build_variables(
            job_identifier=self.job.identifier, domain_slug=claim.domain_slug,
            params=secrets.masked_values(claim.parameters))
        named = set().union(*(secrets.referenced_names(line.parameters) for line in self.lines))
        stored, self.secret_problems = secrets.stored_values(self.job.domain_id, named) if named else ({}, [])
        self.secrets = {f"param.{name}": self.params[name] for name, value in claim.parameters.items()
                        if secrets.is_sealed(value)} | {secrets.variable_name(n): v for n, v in stored.items()}
        journal.masker = secrets.Masker(self.secrets.values())
        journal.set_run_fields(variables=self.variables, lines_total=len(self.lines))

    def execute(self) -> tuple[str, str]:
        lines = self.lines
        if self.claim.message:  # a note from whoever queued it (e.g. a caught-up schedule slot)
            self.journal.write(LogLevel.INFO, self.claim.message)
        if not lines:
            self.journal.write(LogLevel.INFO, "The job has no active lines: nothing to do.")
            return Status.INFO, "Nothing to do: the job has no active lines."
        self.journal.write(LogLevel.INFO, f"Started on {worker_name()}: {len(lines)} active line(s).")
        for problem in self.secret_problems:
            self.journal.write(LogLevel.ERROR, problem)
        outcomes: list[tuple[JobLine, LineOutcome]] = []
        records: RecordSet | None = None
        for line in lines:
            if self.control.stop_requested.is_set():
                break
            outcome = self.run_line(line, records)
            outcomes.append((line, outcome))
            if outcome.status == Status.KILLED:
                break
            if line.is_filter:
                records = outcome.records
                if outcome.status == Status.INFO:
                    return Status.INFO, f"Nothing to do: the filter of line {line.line_no} matched no records."
            if outcome.status == Status.ERROR and self.job.stops_on_error:
                self.journal.write(LogLevel.ERROR, f"Line {line.line_no} failed; the job stops on error.")
                break
        return self.summarize(outcomes, len(lines))

    def summarize(self, outcomes: list[tuple[JobLine, LineOutcome]], total: int) -> tuple[str, str]:
        if self.control.stop_requested.is_set():
            return Status.KILLED, self.control.stop_message or "Killed."
        failed = [(line, o) for line, o in outcomes if o.status == Status.ERROR]
        if failed:
            line, outcome = failed[0]
            more = f" ({len(failed)} lines failed)" if len(failed) > 1 else ""
            return Status.ERROR, f"Line {line.line_no} failed: {outcome.message}{more}"
        warned = [line.line_no for line, o in outcomes if o.status == Status.WARNING]
        if warned:
            return Status.WARNING, f"{total} line(s) done; warnings in line(s) {', '.join(map(str, warned))}."
        if all(o.status == Status.INFO for _, o in outcomes):
            return Status.INFO, "Nothing to do."
        return Status.SUCCESS, f"{total} line(s) done."

    def run_line(self, line: JobLine, records: RecordSet | None) -> LineOutcome:
        self.control.current_line = line.line_no
        started = timezone.now()
        try:
            arguments, error = self._arguments(line)
            line_result = JobLineResult(
                result_id=self.result_id, line_no=line.line_no, status=Status.RUNNING, started_at=started,
                action=line.action.name if line.action_id else "filter",
                parameters=self.journal.masker.value(_jsonable(arguments or {})),
            )
            self.journal.start_line(line_result)
            outcome = error or self._refusal(line) or self._call(line, arguments, records)
            if self.control.stop_requested.is_set():  # whatever the line started, registered or not, ends with it
                self.control.stopper.end_processes(term_grace())
        finally:
            self.control.current_line = None
        outcome.message = self.journal.masker.text(outcome.message)
        ended = {"status": outcome.status, "message": outcome.message, "finished_at": timezone.now()}
        if outcome.tally is not None:
            ended.update(self.journal.masker.value(outcome.tally.fields()))
        self.journal.end_line(line_result, **ended)
        level = LogLevel.ERROR if outcome.status == Status.ERROR else LogLevel.INFO
        self.journal.write(level, f"Line {line.line_no}: {outcome.status}: {outcome.message}", line.line_no)
        return outcome

    def _arguments(self, line: JobLine) -> tuple[dict | None, LineOutcome | None]:
        if line.is_filter:
            return {"filter": line.filter_definition}, None
        try:
            return line.run_parameters(self.variables | self.secrets), None
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
            return None, LineOutcome(Status.ERROR, f"Invalid parameters: {problems}")
        except KeyError as exc:
            name = str(exc.args[0]) if exc.args else ""
            if name.startswith(secrets.SECRET_PREFIX):  # deleted (or moved to another domain) since the line was saved
                return None, LineOutcome(Status.ERROR, f"The secret {name[len(secrets.SECRET_PREFIX):]} is not in "
                                                       "the secrets of this job's domain any more")
            return None, LineOutcome(Status.ERROR, f"Cannot resolve parameters: {exc}")
        except LookupError as exc:
            return None, LineOutcome(Status.ERROR, f"Cannot resolve parameters: {exc}")

    def _refusal(self, line: JobLine) -> LineOutcome | None:
        """A line whose action needs a permission the run's user lacks fails before the action is called."""
        spec = None if line.is_filter else registry.get(line.action.name)
        if spec is None or not spec.permissions:  # the user is read only when something needs it
            return None
        problem = spec.permission_refusal(self.run_as.user)
        return LineOutcome(Status.ERROR, f"Not allowed: {problem}.") if problem else None

    def _call(self, line: JobLine, arguments: dict, records: RecordSet | None) -> LineOutcome:
        log = self.journal.for_line(line.line_no)
        try:
            if line.is_filter:
                # One COUNT of the runner's own: an interrupt landing inside Django's or psycopg's code could leave
                # the run's connection half-used; a query that outlasts the grace is forced like code blocked in C.
                return self._select(line)
            spec = registry.get(line.action.name)
            tally = self.control.tally = LineTally(external_called=True if spec.external else None)
            ctx = RunContext(
                result_id=self.result_id, job_identifier=self.job.identifier, line_no=line.line_no,
                params=self.params, variables=self.variables, log=log, records=records,
                control=self.control, run_as=self.run_as, named_secrets=self._named_by(line),
            )
            returned = self.control.stopper.run_action(lambda: spec.func(ctx, **arguments),
                                                       cooperates=spec.supports_cancel)
        except (Cancelled, stopping.LineInterrupted):
            return LineOutcome(Status.KILLED, "Killed during this line.", tally=self.control.tally)
        except LineFailed as exc:
            log.error(str(exc))
            return LineOutcome(Status.ERROR, str(exc), tally=self.control.tally)
        except Exception as exc:
            log.error("".join(traceback.format_exception(exc)).rstrip())
            return LineOutcome(Status.ERROR, f"{type(exc).__name__}: {exc}", tally=self.control.tally)
        finally:
            self.control.tally = None
        message = str(returned) if returned is not None else "Done."
        if tally.failed:
            ctx.warnings.append(f"{tally.failed} record(s) failed of {tally.processed + tally.failed}")
        if ctx.warnings:
            return LineOutcome(Status.WARNING, "; ".join(ctx.warnings), tally=tally)
        return LineOutcome(Status.SUCCESS, message, tally=tally)

    def _named_by(self, line: JobLine) -> dict[str, str]:
        """The secrets ``line`` names, for ``ctx.secret`` and ``ctx.secret_environment``: stored ones, and
        secret run-time parameters it uses as ``${param.NAME}`` or ``$JOBS_PARAM_NAME``."""
        keys = {secrets.variable_name(name) for name in secrets.referenced_names(line.parameters)}
        texts = " ".join(context_vars.strings_in(line.parameters))
        keys |= {key for key in self.secrets if key.startswith("param.")
                 and ("${" + key + "}" in texts or context_vars.env_name(key) in texts)}
        return {key: value for key, value in self.secrets.items() if key in keys}

    def _select(self, line: JobLine) -> LineOutcome:
        template = line.filter_template
        queryset = queryset_for(template.model, template.definition, line.filter_definition, self.variables)
        records = RecordSet(self._visible(queryset, template.domain_path, line.line_no))
        count = records.count()
        if count == 0:
            return LineOutcome(Status.INFO, "The filter matched no records.", records)
        return LineOutcome(Status.SUCCESS, f"{count} record(s) selected.", records)

    def _visible(self, queryset: QuerySet, domain_path: str, line_no: int) -> QuerySet:
        """Only the records this run may see: of the run's domain, and of the run's user's domains.

        Added to whatever the line's definition says, so no definition reaches another domain's records.
        A template without a domain path is for system administrators' lines only (the admin refuses it
        to everybody else): its line sees every record, and the log says so.
        """
        limited = self.domain_id is not None or not self.run_as.sees_every_domain
        if not domain_path:
            if limited:
                self.journal.write(LogLevel.INFO, "The filter template has no domain path: its records are not "
                                   "limited to a domain (a system administrator's line).", line_no)
            return queryset
        if self.domain_id is not None:
            queryset = within_domains(queryset, domain_path, [self.domain_id])
        if not self.run_as.sees_every_domain:
            queryset = within_domains(queryset, domain_path, self.run_as.domain_ids())
        return queryset


def _jsonable(arguments: dict) -> dict:
    from jobs.params import to_json

    return {key: to_json(value) for key, value in arguments.items()}


def execute(result_id: int) -> None:
    """Run the result if this process wins its claim; every path ends it."""
    claim = reconnecting(lambda: states.claim(result_id, worker_name()))
    if claim is None:
        logger.info("result %s is not pending (already taken, killed or deleted): nothing to run", result_id)
        return
    control = RunControl()
    journal = RunJournal(result_id)
    run_watch: RunWatch | None = None
    monitor = Monitor.get()
    job = None
    try:
        plan = reconnecting(lambda: plans.plan_for(claim.job_id, claim.job_revision))
        job = plan.job
        run_watch = RunWatch(result_id, journal, control, job.effective_time_limit)
        monitor.watch(run_watch)
        run = Run(claim, plan, journal, control)
        status, message = run.execute()
        control.finished.set()

        def end_run() -> bool:  # the journal's last writes and the run's end, with the run's fields: one commit
            return journal.flush(then=lambda run_fields: states.finish(
                result_id, *journal.honest_end(status, message), also=run_fields, cut_short=bool(journal.losses)))

        with journal.flushing():
            ended = reconnecting(end_run)
        if ended:
            aftermath.run_ended(result_id, journal.honest_end(status, message)[0], job=job)
    except BaseException as exc:
        control.finished.set()
        if _end_after_runner_failure(result_id, journal, exc):
            aftermath.run_ended(result_id, Status.ERROR, job=job)
        if not isinstance(exc, Exception):
            raise
    finally:
        control.finished.set()
        if run_watch is not None:
            monitor.unwatch(run_watch)


def _end_after_runner_failure(result_id: int, journal: RunJournal, exc: BaseException) -> bool:
    """The runner itself failed: end the run as ``error`` with the traceback.

    The database may be what failed, so the ending is retried on fresh
    connections (``reconnecting``); if it still cannot be written, the reaper
    ends the run once the heartbeat stops.
    """
    text = journal.masker.text("".join(traceback.format_exception(exc)).rstrip())  # the worker's log too
    logger.error("runner of result %s failed:\n%s", result_id, text)
    journal.write(LogLevel.ERROR, f"The runner failed:\n{text}")  # kept by the journal until written

    def record() -> bool:
        journal.flush()
        return states.finish(result_id, Status.ERROR,
                             journal.masker.text(f"The runner failed: {type(exc).__name__}: {exc}"), cut_short=True)

    try:
        return reconnecting(record)
    except Exception:
        logger.exception("could not record the failure of result %s; the reaper will end it", result_id)
        return False
