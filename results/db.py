"""Database access that survives a restart of the database server (used inside workers).

A worker process keeps its connection between tasks. Django's health check
(``CONN_HEALTH_CHECKS``) would pay one ``SELECT 1`` per task to find a dead
one; workers switch it off (``results.signals``) and instead retry the work on
a fresh connection when the connection turns out to be lost.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Waits before each new try after a lost connection (None: give up): about 30 s in all,
# what a PostgreSQL restart or fail-over takes.
RECONNECT_DELAYS = (0.5, 1, 2, 4, 8, 15, None)
# Errors a retry would only repeat: the values themselves cannot be stored (a count beyond its column's range,
# a row whose result was deleted), found by the database or by the field converting the value before it.
UNSTORABLE = (DataError, IntegrityError, ValueError, TypeError, OverflowError, ValidationError)


def reconnecting(work: Callable[[], T]) -> T:
    """``work()``, again on a fresh connection if the database went away; ``work`` must be safe to repeat."""
    for delay in RECONNECT_DELAYS:
        try:
            return work()
        except (OperationalError, InterfaceError):
            if delay is None or connection.in_atomic_block:
                raise
            logger.warning("database connection lost; trying again in %s s", delay, exc_info=True)
            connection.close()
            time.sleep(delay)
    raise AssertionError("unreachable")


def skip_health_checks() -> None:
    """For worker processes: ``reconnecting`` replaces the per-task health check."""
    connection.settings_dict["CONN_HEALTH_CHECKS"] = False
    connection.health_check_enabled = False
