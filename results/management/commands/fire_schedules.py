from django.core.management.base import BaseCommand

from results.scheduler import fire_due


class Command(BaseCommand):
    help = ("Fire the due schedules once (for system cron / django-crontab instead of, or beside, Celery beat: "
            "a slot is never fired twice).")

    def handle(self, *args, **options) -> None:
        for result in fire_due():
            self.stdout.write(f"{result.job.identifier}: result #{result.id} ({result.status})")
