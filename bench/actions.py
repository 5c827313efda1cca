"""Actions used by the benchmarks (registered through JOBS_ACTION_MODULES=bench.actions)."""
import os
import time
from pathlib import Path

from jobs.registry import action


@action("bench.noop", label="Benchmark no-op")
def noop(ctx) -> None:
    return None


@action("bench.busy", label="Benchmark busy loop (never checks for a kill)")
def busy(ctx, pid_file: str = "") -> None:
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    while True:
        time.monotonic()
