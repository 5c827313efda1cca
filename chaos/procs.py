"""Processes of the chaos suite: Celery workers and beats, and the services it restarts.

Every Celery process runs in its own session (process group), so stopping or
SIGKILLing one reaches its pool children too. ``stop_all`` ends every process
this module started; ``ensure_services`` starts PostgreSQL and Redis again if a
scenario left one of them down.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REDIS_PORT = 6379
PG_DSN = "postgres://postgres@127.0.0.1:5432/postgres"
# Exactly how CI starts Redis (no persistence: a restart loses every message it held).
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(REDIS_PORT),
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]

_started: list[CeleryProcess] = []


class CeleryProcess:
    """``celery -A jobs_project <command>`` in its own process group, its output in a log file."""

    ready_text = ""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = {**env, "CHAOS_WORKER": name}
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryProcess:
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "jobs_project", *self.args],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _started.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited at start-up; see {self.log_path}:\n{self.log()[-2000:]}")
            if self.ready_text in self.log():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:g} s; see {self.log_path}")

    def children(self) -> list[int]:
        output = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in output.split()]

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        # Whatever is left of the group (a pool child that outlived its parent) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


class Worker(CeleryProcess):
    ready_text = " ready."

    def __init__(self, name: str, queues: str, concurrency: int, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(name, [
            "worker", "-l", "info", "-P", "prefork", "-c", str(concurrency), "-Q", queues, "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ], env, log_dir)


class Beat(CeleryProcess):
    # Logged at its first tick (results.scheduler), once it is connected to the broker and the database.
    ready_text = "Jobs scheduler ticking"

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(name, ["beat", "-l", "info", "-s", str(log_dir / f"{name}-schedule"), "--pidfile="],
                         env, log_dir)


def stop_all() -> None:
    while _started:
        _started.pop().stop()


# --- Redis -----------------------------------------------------------------------


def redis_up() -> bool:
    """One PING on a plain socket (redis-py would retry a refused connection for seconds)."""
    try:
        with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} after {timeout:g} s")
        time.sleep(0.05)


def stop_redis() -> None:
    subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave"], capture_output=True, timeout=30)
    _wait(lambda: not redis_up(), 15, "Redis still answers")


def start_redis() -> None:
    completed = subprocess.run(REDIS_START, capture_output=True, text=True, timeout=30)
    try:
        _wait(redis_up, 15, "Redis not answering")
    except RuntimeError:
        raise RuntimeError(f"redis-server did not start: {completed.stdout}{completed.stderr}") from None


def flush_redis_db(db: int) -> None:
    """Empty our own Redis database (never the others)."""
    import redis

    redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=db, socket_timeout=5).flushdb()


# --- PostgreSQL --------------------------------------------------------------------


def pg_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions:
        raise RuntimeError("no PostgreSQL cluster under /etc/postgresql")
    return versions[-1]


def pg_up() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_DSN, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def pg_ctl(command: str) -> None:
    completed = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", command],
        capture_output=True, text=True, timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"pg_ctlcluster {command} failed: {completed.stdout}{completed.stderr}")


def restart_postgres() -> None:
    pg_ctl("restart")
    _wait(pg_up, 60, "PostgreSQL not answering")


def ensure_services() -> list[str]:
    """Start whichever of PostgreSQL and Redis is down; says what it did."""
    done = []
    if not redis_up():
        start_redis()
        done.append("started Redis again")
    if not pg_up():
        with contextlib.suppress(RuntimeError):
            pg_ctl("start")
        _wait(pg_up, 60, "PostgreSQL not answering")
        done.append("started PostgreSQL again")
    return done
