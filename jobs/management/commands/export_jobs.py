from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from jobs.definitions import export_jobs
from jobs.models import Job
from jobs.text import named_problem


class Command(BaseCommand):
    help = ("Write jobs (all, those of --module, or the named ones) as a YAML definition file to stdout, "
            "or with --split DIR one file per job, DIR/<identifier>.yaml. Exporting all jobs (or a --module) "
            "into DIR also removes the files of that set's jobs that no longer exist, so that importing DIR "
            "never brings a deleted job back.")

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
            written = set()
            for job in jobs:
                # Identifiers are slugs ([a-z0-9_-]), so each is a safe file name.
                path = folder / f"{job.identifier}.yaml"
                path.write_text(export_jobs(jobs.filter(pk=job.pk)), encoding="utf-8")
                written.add(path.name)
            removed = [] if identifiers else self.remove_stale(folder, written, module)
        except OSError as exc:
            raise CommandError(f"cannot write to {split}: {exc.strerror}", returncode=2) from exc
        self.stdout.write(f"{len(written)} file(s) written to {folder}")
        if removed:
            self.stdout.write(f"removed (their jobs no longer exist): {', '.join(removed)}")

    @staticmethod
    def remove_stale(folder: Path, written: set[str], module: str | None) -> list[str]:
        """The files of an earlier export of this set whose jobs are gone, removed.

        Only a file that is one job's export under its own name (and of ``module``, when given): any other
        file in the folder is someone else's and stays.
        """
        removed = []
        for path in sorted(folder.glob("*.yaml")):
            if path.name in written or not Command.is_job_export(path, module):
                continue
            path.unlink()
            removed.append(path.name)
        return removed

    @staticmethod
    def is_job_export(path: Path, module: str | None) -> bool:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, yaml.YAMLError):
            return False
        entries = document.get("jobs") if isinstance(document, dict) else None
        if not (isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], dict)):
            return False
        entry = entries[0]
        return entry.get("identifier") == path.stem and (module is None or entry.get("module") == module)
