from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs.definitions import export_jobs
from jobs.models import Job
from jobs.text import named_problem


class Command(BaseCommand):
    help = ("Write jobs (all, those of --module, or the named ones) as a YAML definition file to stdout, "
            "or with --split DIR one file per job, DIR/<identifier>.yaml.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("identifiers", nargs="*", metavar="IDENTIFIER")
        parser.add_argument("--module", help="Only the jobs of this module.")
        parser.add_argument("--split", metavar="DIR",
                            help="Write one file per job (with the filter templates it uses) into DIR.")

    def handle(self, *args, identifiers: list[str], module: str | None, split: str | None, **options) -> None:
        problem = named_problem({"IDENTIFIER": identifiers, "--module": module, "--split": split})
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
        jobs = jobs.order_by("identifier")
        if split is None:
            self.stdout.write(export_jobs(jobs), ending="")
            return
        folder = Path(split)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for job in jobs:
                # Identifiers are slugs ([a-z0-9_-]), so each is a safe file name.
                (folder / f"{job.identifier}.yaml").write_text(export_jobs(jobs.filter(pk=job.pk)), encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write to {split}: {exc.strerror}", returncode=2) from exc
        self.stdout.write(f"{jobs.count()} file(s) written to {folder}")
