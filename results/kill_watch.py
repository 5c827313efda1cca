"""How a worker process hears of a kill and keeps its runs' heartbeats, at a cost flat in the number of runs.

On PostgreSQL, ``states.request_kill`` announces a kill (``NOTIFY jobs_kill '<id>'``)
in the kill's own transaction. Each worker process keeps one listening
connection (``KillListener``, its own thread): the run's watch hears the kill
as soon as it is committed, from any host, and costs no transaction while
nothing happens.

The safety net is the heartbeat: every JOBS_HEARTBEAT_SECONDS one UPDATE beats
all of the process's runs and returns which of them were asked to stop
(``states.beat``), so a lost announcement (a dropped connection, a PostgreSQL
restart, a network cut that TCP keepalives have not noticed yet) delays a kill
by one heartbeat at most. Whenever the listener (re)connects, the process polls
once at once (what was announced while it was not listening), and while it is
not listening it polls every JOBS_KILL_POLL_SECONDS, as the embedded default
(SQLite, which has nothing to listen to) always does.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection

from django.conf import settings
from django.db import connection

from . import states

logger = logging.getLogger(__name__)

# Kills announced for a result this process is not watching (yet): kept this long, in case its run is
# being claimed at that moment and its watch starts just after.
ANNOUNCED_KEPT_SECONDS = 30.0
# Waits before each new try to listen after the connection was lost (then the last one, again and again).
RELISTEN_DELAYS = (0.1, 0.5, 1, 2, 4)
# Libpq's TCP keepalives on the listening connection: a silent cut is noticed in about 25 s.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


# Set in Celery workers (results.signals). Any other process that runs a result (a test, a script) polls:
# it has no lifetime a listening connection could follow.
LISTEN_IN_THIS_PROCESS = False


def listening_supported() -> bool:
    return LISTEN_IN_THIS_PROCESS and connection.vendor == "postgresql"


class KillListener(threading.Thread):
    """One LISTEN connection per worker process; ``on_kill(result_id)`` for each announced kill.

    ``on_listening()`` is called each time it starts listening (again): what was announced
    while it was not is then found by a poll. ``listening`` is set while it listens.
    """

    def __init__(self, on_kill: Callable[[int], None], on_listening: Callable[[], None]) -> None:
        super().__init__(name="jobs-kill-listener", daemon=True)
        self.on_kill = on_kill
        self.on_listening = on_listening
        self.listening = threading.Event()
        self.params = _libpq_params()

    def run(self) -> None:
        import psycopg

        failures = 0
        while True:
            try:
                with psycopg.connect(**self.params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {states.KILL_CHANNEL}")
                    failures = 0
                    self.listening.set()
                    self.on_listening()
                    for notify in conn.notifies():
                        self._announced(notify.payload)
            except Exception:  # the connection is gone (restart, terminated): listen again, poll meanwhile
                logger.warning("kill listener lost its connection; polling until it listens again", exc_info=True)
            finally:
                self.listening.clear()
            time.sleep(RELISTEN_DELAYS[min(failures, len(RELISTEN_DELAYS) - 1)])
            failures += 1

    def _announced(self, payload: str) -> None:
        try:
            result_id = int(payload)
        except ValueError:
            logger.warning("kill announced with a payload that is not a result id: %r", payload[:100])
            return
        self.on_kill(result_id)


def _libpq_params() -> dict:
    """Django's own connection parameters (every OPTIONS entry: TLS, channel binding, ...), as its connections
    get them, with keepalives and a name of its own."""
    return {**KEEPALIVES, **connection.get_connection_params(), "application_name": f"jobs-kill-listener:{os.getpid()}"}


class KillWatch:
    """The kill and heartbeat side of one process's monitor: which of its runs must stop, found cheaply.

    ``wake()`` is called (from the listener's thread) when something is to be done at once.
    ``check(result_ids)`` (from the monitor's thread) returns, for the runs being watched,
    those asked to stop and those ended elsewhere, querying only when needed: after an
    announcement, when a beat is due, and when polling without a listener.
    """

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._announced: dict[int, float] = {}  # result id -> when (monotonic)
        self._poll_now = False
        self._idle = True  # no run was watched at the last check
        self._next_beat = self._next_poll = 0.0
        self.listener: KillListener | None = None
        if listening_supported():
            self.listener = KillListener(on_kill=self._on_announced, on_listening=self._on_listening)
            self.listener.start()

    @property
    def listening(self) -> bool:
        return self.listener is not None and self.listener.listening.is_set()

    def _on_announced(self, result_id: int) -> None:
        with self._lock:
            self._announced[result_id] = time.monotonic()
        self._wake()

    def _on_listening(self) -> None:
        with self._lock:
            self._poll_now = True
        self._wake()

    def check(self, result_ids: Collection[int]) -> tuple[list, set[int]]:
        """(kill requests of these runs, as ``states.kill_requests`` rows; ids no longer running)."""
        now = time.monotonic()
        ids = set(result_ids)
        with self._lock:
            announced = ids & self._announced.keys()
            for result_id in [r for r, at in self._announced.items() if r in ids or now - at > ANNOUNCED_KEPT_SECONDS]:
                del self._announced[result_id]
            poll_now, self._poll_now = self._poll_now, False
        if not ids:
            self._idle = True
            return [], set()
        if self._idle:  # the first run after a pause: its claim has just beaten and read its kill request
            self._idle = False
            self._next_beat = now + settings.JOBS_HEARTBEAT_SECONDS
            self._next_poll = now + settings.JOBS_KILL_POLL_SECONDS
        ended: set[int] = set()
        if now >= self._next_beat:
            running = states.beat(ids)
            self._next_beat = now + settings.JOBS_HEARTBEAT_SECONDS
            self._next_poll = now + settings.JOBS_KILL_POLL_SECONDS
            ended = ids - running.keys()
            announced |= {result_id for result_id, kill in running.items() if kill}
        elif poll_now or (not self.listening and now >= self._next_poll):
            self._next_poll = now + settings.JOBS_KILL_POLL_SECONDS
            announced = ids
        try:
            return (states.kill_requests(announced) if announced else []), ended
        except Exception:  # read again at the next look, not left to the next heartbeat
            with self._lock:
                self._announced.update({result_id: now for result_id in announced})
            raise
