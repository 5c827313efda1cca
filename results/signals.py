"""Worker start-up: sync the action rows, sweep lost runs, allow forced stops (each pool process in a session
of its own), reconnect without health checks."""
import logging

from celery.signals import worker_process_init, worker_ready

logger = logging.getLogger(__name__)


@worker_ready.connect
def on_worker_ready(**kwargs) -> None:
    from jobs.models import Action

    from . import reaper

    Action.objects.sync_with_registry()
    ended = reaper.sweep_host() + reaper.sweep()
    if ended:
        logger.warning("runs ended at worker start-up as lost: %s", ended)


@worker_process_init.connect
def on_pool_process_start(**kwargs) -> None:
    from . import db, stopping, watchdog

    watchdog.FORCE_EXIT_ALLOWED = True
    stopping.lead_own_session()  # the processes its runs start are its session's: a kill finds them all
    db.skip_health_checks()
