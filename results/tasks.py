"""Celery tasks: the run of a result, and the e-mail report of a finished run (beat runs the reaper itself)."""
from celery import shared_task
from django.db import close_old_connections

from . import reports, runner
from .db import reconnecting


@shared_task(name="results.run", ignore_result=True)
def run_result(result_id: int) -> None:
    close_old_connections()  # drops a broken or expired connection; keeps a healthy one
    try:
        runner.execute(result_id)
    finally:
        close_old_connections()


@shared_task(name="results.send_report", ignore_result=True)
def send_report(result_id: int) -> bool:
    """Published by ``reports.queue_report`` after a run ended, so a slow SMTP server never holds a run."""
    close_old_connections()
    try:
        return reconnecting(lambda: reports.send_report(result_id))  # its reads come before the mail is sent
    finally:
        close_old_connections()
