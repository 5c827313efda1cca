import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs.definitions import DefinitionError, import_jobs


class Command(BaseCommand):
    help = "Create or update jobs by identifier from a YAML definition file (one transaction)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="YAML file, or - for standard input.")
        parser.add_argument("--skip-existing", action="store_true", help="Leave jobs that exist as they are.")

    def handle(self, *args, file: str, skip_existing: bool, **options) -> None:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}", returncode=2) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file}: not UTF-8 text (byte {exc.start + 1}) (nothing was imported)",
                               returncode=2) from exc
        try:
            report = import_jobs(text, update_existing=not skip_existing)
        except DefinitionError as exc:
            raise CommandError(f"{file}: {exc} (nothing was imported)", returncode=2) from exc
        for outcome, identifiers in report.items():
            if identifiers:
                self.stdout.write(f"{outcome}: {', '.join(identifiers)}")
