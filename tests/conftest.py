"""Shared fixtures: a real Celery worker process on the configured broker and database.

The suite runs on the embedded default (SQLite + kombu's filesystem broker) or,
with DATABASE_URL and CELERY_BROKER_URL set, on PostgreSQL and Redis. When
those variables are set and the service is unreachable, tests fail loudly.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from jobs.models import Domain, DomainMembership
from tests.helpers import make_member, wait_for_status  # noqa: F401  (wait_for_status: re-exported for tests)

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(settings.VAR_DIR) / "test-artifacts"


def database_url() -> str:
    """The URL of the test database, for processes started by the tests."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


class WorkerProcess:
    """A real ``celery -A jobs_project worker`` started by the tests."""

    def __init__(self, name: str = "w1", queues: str | None = None, concurrency: int = 2,
                 env: dict[str, str] | None = None, purge: bool = True, pool: str = "prefork") -> None:
        self.name = name
        self.pool = pool
        self.purge = purge
        self.queues = queues or settings.CELERY_TASK_DEFAULT_QUEUE
        self.concurrency = concurrency
        self.extra_env = env or {}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"worker-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> WorkerProcess:
        env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "jobs_project.settings_test",
               **self.extra_env}
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "jobs_project", "worker", "-l", "info", "-P", self.pool,
             "-c", str(self.concurrency), "-Q", self.queues, "-n", f"{self.name}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat", *(["--purge"] if self.purge else [])],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"worker {self.name} exited at start-up:\n{self.log()}")
            if " ready." in self.log():
                return self
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"worker {self.name} not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def pool_pids(self) -> list[int]:
        output = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in output.split()]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """One worker for the whole session; tests using it need transactional DB access."""
    worker = WorkerProcess().start()
    yield worker
    worker.stop()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "root-password")


@pytest.fixture
def acme():
    """The domain "Acme Corp" (slug ``acme``)."""
    return Domain.objects.create(name="Acme Corp", slug="acme")


@pytest.fixture
def globex():
    """The domain "Globex" (slug ``globex``)."""
    return Domain.objects.create(name="Globex", slug="globex")


@pytest.fixture
def member():
    """``member("ann", domain, role)``: a staff user with no Django permissions, only that membership."""

    def create(username: str, domain: Domain, role: str):
        return make_member(username, (domain, role), staff=True)

    return create


@pytest.fixture
def operator(acme):
    """The user "operator" (not staff): an operator of Acme, for the API tests."""
    return make_member("operator", (acme, DomainMembership.OPERATOR))


class BeatProcess:
    """A real ``celery -A jobs_project beat`` (it fires the schedules and runs the reaper's sweep)."""

    def __init__(self, tmp_dir: Path, env: dict[str, str] | None = None, name: str = "beat") -> None:
        self.tmp_dir = tmp_dir / name
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.extra_env = env or {}
        self.log_path = ARTIFACTS / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> BeatProcess:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "jobs_project.settings_test",
               **self.extra_env}
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "jobs_project", "beat", "-l", "info",
             "-s", str(self.tmp_dir / "beat-schedule"), "--pidfile="],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


@pytest.fixture
def beat(tmp_path, celery_worker):
    """Celery beat sweeping for lost runs every second (it runs the sweep itself, never through a queue)."""
    process = BeatProcess(tmp_path, env={"JOBS_REAPER_INTERVAL_SECONDS": "1"}).start()
    yield process
    process.stop()


@pytest.fixture
def beats(tmp_path):
    """Start beat processes by name (several race for the same slots); all are stopped after the test."""
    started: list[BeatProcess] = []

    def start(name: str) -> BeatProcess:
        process = BeatProcess(tmp_path, name=name).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def worker_factory(django_db_setup):
    """Start extra workers (own names and queues); all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(name: str, queues: str, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(name=name, queues=queues, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
