from django.core.management.base import BaseCommand, CommandError

from results import states
from results.models import JobResult


class Command(BaseCommand):
    help = "Kill a pending or running result. Exit 0 once recorded, 2 if it cannot be killed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("result_id", type=int)

    def handle(self, *args, result_id: int, **options) -> None:
        if not JobResult.objects.filter(id=result_id).exists():
            raise CommandError(f"unknown result {result_id}", returncode=2)
        try:
            outcome = states.request_kill(result_id, None)
        except states.NotKillable as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write("killed" if outcome.status == "killed" else "kill requested")
