from django.core.management.base import BaseCommand, CommandError

from jobs.definitions import export_jobs
from jobs.models import Job
from jobs.text import named_problem


class Command(BaseCommand):
    help = "Write jobs (all, those of --module, or the named ones) as YAML to stdout."

    def add_arguments(self, parser) -> None:
        parser.add_argument("identifiers", nargs="*", metavar="IDENTIFIER")
        parser.add_argument("--module", help="Only the jobs of this module.")

    def handle(self, *args, identifiers: list[str], module: str | None, **options) -> None:
        problem = named_problem({"IDENTIFIER": identifiers, "--module": module})
        if problem:
            raise CommandError(problem, returncode=2)
        jobs = Job.objects.all()
        if module:
            jobs = jobs.filter(module=module)
        if identifiers:
            jobs = jobs.filter(identifier__in=identifiers)
            missing = sorted(set(identifiers) - set(jobs.values_list("identifier", flat=True)))
            if missing:
                raise CommandError(f"unknown job(s): {', '.join(missing)}", returncode=2)
        self.stdout.write(export_jobs(jobs.order_by("identifier")), ending="")
