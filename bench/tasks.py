"""Raw Celery tasks: the baseline every figure is compared with."""
import os
import time
from pathlib import Path

from jobs_project.celery import app


@app.task(name="bench.raw_start", ignore_result=True)
def raw_start(path: str) -> None:
    """Records when the task started (wall clock, same host as the sender)."""
    started = time.time()
    with open(path, "a") as handle:
        handle.write(f"{started}\n")


@app.task(name="bench.raw_sleep", ignore_result=True)
def raw_sleep(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)
