"""Worker start-up: refuse a pool it cannot watch, sync the action rows, sweep lost runs, allow forced stops
(each pool process in a session of its own), reconnect without health checks, listen for kills, keep what
start-up loaded out of the garbage collector's walks (``gc.freeze``)."""
import gc
import logging

from celery.signals import worker_init, worker_process_init, worker_ready

logger = logging.getLogger(__name__)


# Pools whose tasks are greenlets: a line blocked in C (or in a library that is not patched) would stop the
# watchdog with it, so neither a kill nor a heartbeat could be relied on.
REFUSED_POOLS = ("gevent", "eventlet")


@worker_init.connect
def on_worker_init(sender=None, **kwargs) -> None:
    """Refuse, at start, a pool the runs cannot be watched in (prefork, threads and solo are supported)."""
    from celery.concurrency import ALIASES

    pool = getattr(sender, "pool_cls", None)
    name = ALIASES.get(pool, pool) if isinstance(pool, str) else getattr(pool, "__module__", "")
    refused = [refused for refused in REFUSED_POOLS if refused in str(name).lower()]
    if refused:
        raise SystemExit(f"Jobs workers do not support the {refused[0]} pool: use -P prefork (one run per process, "
                         "the default), -P threads or -P solo.")
    from . import kill_watch

    kill_watch.LISTEN_IN_THIS_PROCESS = True  # inherited by prefork's pool processes


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
    watchdog.Monitor.get()  # listening for kills before the first run is claimed
    # Everything loaded so far (Django, Celery, the registry) lives as long as the process: out of the
    # collector's sight, each full collection no longer walks it. A run allocates enough to trigger
    # collections often; measured in the bench's drain, ~10% more runs a second (see the README).
    gc.freeze()
