"""Actions of the chaos suite (registered through JOBS_ACTION_MODULES=chaos.actions).

Each one first appends a line ``result_id worker pid time`` to ``path`` (one
``write`` in append mode: lines from many processes never mix), so the suite
can count how often a run really started, and on which worker (the worker's
``CHAOS_WORKER`` environment variable).
"""
from __future__ import annotations

import os
import time

from jobs.registry import action


def record_start(result_id: int, path: str) -> None:
    line = f"{result_id} {os.environ.get('CHAOS_WORKER', '?')} {os.getpid()} {time.time():.3f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@action("chaos.mark", label="Chaos: mark the start, then wait", supports_cancel=True)
def mark(ctx, path: str, seconds: float = 0.0) -> str:
    """Records the start, then waits ``seconds`` (a kill ends the wait at once)."""
    record_start(ctx.result_id, path)
    if seconds:
        ctx.sleep(seconds)
    return "marked"


@action("chaos.spin", label="Chaos: mark the start, then spin", supports_cancel=False)
def spin(ctx, path: str, seconds: float = 60.0) -> str:
    """Records the start, then loops in pure Python that never looks for a kill."""
    record_start(ctx.result_id, path)
    deadline = time.monotonic() + seconds
    turns = 0
    while time.monotonic() < deadline:
        turns += 1
    return f"spun {turns} times"
