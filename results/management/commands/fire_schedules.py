from django.core.management.base import BaseCommand

from results import reaper
from results.scheduler import fire_due


class Command(BaseCommand):
    help = ("Fire the due schedules once (for system cron / django-crontab instead of, or beside, Celery beat: "
            "a slot is never fired twice); then end the runs whose worker is lost, as beat does.")

    def handle(self, *args, **options) -> None:
        for result in fire_due():
            self.stdout.write(f"{result.job.identifier}: result #{result.id} ({result.status})")
        for result_id in reaper.sweep():
            self.stdout.write(f"result #{result_id}: ended, its worker is lost")
