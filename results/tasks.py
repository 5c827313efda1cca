"""Celery tasks: the run of a result, and the reaper's periodic sweep."""
from celery import shared_task

from . import reaper, runner


@shared_task(name="results.run", ignore_result=True)
def run_result(result_id: int) -> None:
    runner.execute(result_id)


@shared_task(name="results.tasks.reap_lost_runs", ignore_result=True)
def reap_lost_runs() -> int:
    return len(reaper.sweep())
