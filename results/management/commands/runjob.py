import datetime as dt
import sys
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from jobs import access, maintenance
from jobs.models import Job
from jobs.text import named_problem, problems_in_words
from results.dispatch import RunRefused, start_run
from results.models import TERMINAL, JobResult, Status, Trigger
from results.runat import plan_run

OK_STATUSES = {Status.SUCCESS, Status.WARNING, Status.INFO}


class Command(BaseCommand):
    help = ("Run a job: prints the result id; with --wait, waits for the end and prints the status. "
            "Exit 0 success/warning/info, 1 error/killed/timeout, 2 bad input.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("identifier")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
        parser.add_argument("--user", metavar="USERNAME", help="Run as this user, with their domains' rights.")
        parser.add_argument("--at", metavar="ISO-DATETIME", default=None,
                            help="Plan the run for this time (e.g. 2026-12-03T18:00, in TIME_ZONE without an offset); "
                                 "prints the planned run's id.")

    def handle(self, *args, identifier: str, param: list[str], wait: bool, timeout: float | None,
               user: str | None, at: str | None = None, **options) -> None:
        if timeout is not None and timeout <= 0:
            raise CommandError("--timeout must be a number of seconds above 0", returncode=2)
        # --param values: checked as parameters
        problem = named_problem({"IDENTIFIER": identifier, "--user": user, "--at": at})
        if problem:
            raise CommandError(problem, returncode=2)
        runner = self._user(user)
        jobs = access.visible_jobs(runner) if runner is not None else Job.objects.all()
        job = jobs.filter(identifier=identifier).first()
        if job is None:
            raise CommandError(f"unknown job {identifier!r}", returncode=2)
        if runner is not None and not access.can_run(runner, job):
            raise CommandError(f"user {runner.get_username()!r} may not run {identifier!r}", returncode=2)
        if at is not None:
            self._plan(job, at, param, runner, wait)
            return
        try:
            result = start_run(job, parameters=self._parameters(param), user=runner, trigger=Trigger.COMMAND)
        except RunRefused as exc:
            raise CommandError(str(exc), returncode=2) from exc
        except ValidationError as exc:
            raise CommandError(problems_in_words(exc, lambda name: f"parameter {name}"), returncode=2) from exc
        self.stdout.write(str(result.id))
        warning = maintenance.run_warning(job.domain_id)
        if warning:
            self.stderr.write(f"warning: started {warning}")
        self.stdout.flush()
        if wait:
            self._wait(result.id, timeout)

    def _plan(self, job: Job, at: str, param: list[str], runner, wait: bool) -> None:
        """``--at``: a planned run (``results.runat``), fired by beat; its parameters are checked now."""
        if wait:
            raise CommandError("--wait cannot be used with --at", returncode=2)
        try:
            run_at = dt.datetime.fromisoformat(at)
        except ValueError:
            raise CommandError(f"--at {at!r}: write a date and time as YYYY-MM-DDTHH:MM[:SS][+HH:MM]",
                               returncode=2) from None
        if timezone.is_naive(run_at):
            run_at = timezone.make_aware(run_at)
        try:
            planned = plan_run(job, run_at, parameters=self._parameters(param), user=runner, trigger=Trigger.COMMAND)
        except RunRefused as exc:
            raise CommandError(str(exc), returncode=2) from exc
        except ValidationError as exc:
            words = problems_in_words(exc, lambda name: "--at" if name == "run_at" else f"parameter {name}")
            raise CommandError(words, returncode=2) from exc
        self.stdout.write(str(planned.id))

    def _user(self, username: str | None):
        if username is None:
            return None
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}, is_active=True).first()
        if user is None:
            raise CommandError(f"unknown or inactive user {username!r}", returncode=2)
        return user

    def _parameters(self, pairs: list[str]) -> dict:
        values = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise CommandError(f"--param {pair!r}: write it as NAME=VALUE", returncode=2)
            values[name] = value
        return values

    def _wait(self, result_id: int, timeout: float | None) -> None:
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            status, message = JobResult.objects.filter(id=result_id).values_list("status", "message").get()
            if status in TERMINAL:
                self.stdout.write(status)
                if message:
                    self.stderr.write(message)
                if status not in OK_STATUSES:
                    sys.exit(1)
                return
            if deadline is not None and time.monotonic() >= deadline:
                self.stdout.write(status)
                self.stderr.write(f"timed out after {timeout:g} s waiting for result {result_id}")
                sys.exit(1)
            time.sleep(0.1)
