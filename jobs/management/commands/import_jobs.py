import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs.definitions import DefinitionError, import_texts, preview_texts


class Command(BaseCommand):
    help = ("Create or update jobs by identifier (and the filter templates they use, by name) from a YAML "
            "definition file, or from every *.yaml file of a folder (one transaction).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="YAML file, a folder of them (as export_jobs --split writes), "
                                         "or - for standard input.")
        parser.add_argument("--skip-existing", action="store_true", help="Leave jobs that exist as they are.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Say what would be created or changed (field by field) and change nothing.")

    def handle(self, *args, file: str, skip_existing: bool, dry_run: bool, **options) -> None:
        texts = self._read(file)
        try:
            if dry_run:
                self._preview(texts, skip_existing)
                return
            report = import_texts(texts, update_existing=not skip_existing)
        except DefinitionError as exc:
            raise CommandError(f"{file}: {exc} (nothing was imported)", returncode=2) from exc
        for outcome, identifiers in report.items():
            if identifiers:
                self.stdout.write(f"{outcome}: {', '.join(identifiers)}")

    def _read(self, file: str) -> list[tuple[str, str]]:
        try:
            if file == "-":
                return [("standard input", sys.stdin.read())]
            path = Path(file)
            if path.is_dir():
                files = sorted(path.glob("*.yaml"))
                if not files:
                    raise CommandError(f"{file}: no *.yaml file in this folder", returncode=2)
                return [(item.name, item.read_text(encoding="utf-8")) for item in files]
            return [(path.name, path.read_text(encoding="utf-8"))]
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}", returncode=2) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file}: not UTF-8 text (byte {exc.start + 1}) (nothing was imported)",
                               returncode=2) from exc

    def _preview(self, texts: list[tuple[str, str]], skip_existing: bool) -> None:
        for change in preview_texts(texts, update_existing=not skip_existing):
            self.stdout.write(f"{change.outcome}: {change.kind} {change.name}")
            for name, old, new in change.shown_fields:
                self.stdout.write(f"  {name}: {old} -> {new}")
        self.stdout.write("dry run: nothing was changed")

