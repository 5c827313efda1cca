from django.core.management.base import BaseCommand

from jobs.models import Action


class Command(BaseCommand):
    help = "Bring the Action rows in line with the registered actions (also done by migrate and worker start)."

    def handle(self, *args, **options) -> None:
        Action.objects.sync_with_registry()
        for action in Action.objects.all():
            self.stdout.write(f"{action.name}\t{'available' if action.available else 'unavailable'}")
