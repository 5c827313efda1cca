"""Helpers for tests: building jobs, users and clients, waiting for results, stand-ins for a run's context."""
from __future__ import annotations

import socket
import threading
import time

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from jobs.models import Action, Domain, DomainMembership, Job, JobLine
from jobs.registry import Cancelled
from results.models import TERMINAL, JobResult


def wait_for_status(result_id: int, statuses=TERMINAL, timeout: float = 30.0) -> JobResult:
    """Poll the database until the result reaches one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        result = JobResult.objects.get(id=result_id)
        if result.status in statuses:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"result {result_id} still {result.status!r} after {timeout} s: {result.message}")
        time.sleep(0.05)


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    """``predicate()``'s first true value, polled every 50 ms; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_job(identifier: str = "job", *lines: tuple, **fields) -> Job:
    """``make_job("x", (10, "core.sleep", {"seconds": 0}), ...)``; a 4th item False makes the line inactive."""
    Action.objects.sync_with_registry()
    job = Job.objects.create(identifier=identifier, name=fields.pop("name", identifier.title()), **fields)
    for line in lines:
        line_no, action, parameters = line[:3]
        active = line[3] if len(line) > 3 else True
        JobLine.objects.create(job=job, line_no=line_no, action=Action.objects.get(name=action),
                               parameters=parameters, active=active)
    return job


def make_member(username: str, *memberships: tuple[Domain, str], staff: bool = False):
    """A user ``username`` (password "pw", no Django permissions) with a membership for each ``(domain, role)``.

    ``staff=True`` lets the user into the admin, where the memberships alone decide what they may do.
    """
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw", is_staff=staff)
    for domain, role in memberships:
        DomainMembership.objects.create(user=user, domain=domain, role=role)
    return user


def client_for(user, **kwargs) -> APIClient:
    """An API client logged in (session) as ``user``; ``kwargs`` go to APIClient, e.g. ``enforce_csrf_checks=True``."""
    client = APIClient(**kwargs)
    client.force_login(user)
    return client


def log_in(page, base_url: str) -> None:
    """Log a browser page in to the admin as the ``admin_user`` fixture (root / root-password)."""
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "root-password")
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base_url}/admin/")


class FakeLog:
    """Records what an action logs, as ``(level, message)`` pairs."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []

    def debug(self, message: str) -> None:
        self.entries.append(("DEBUG", str(message)))

    def info(self, message: str) -> None:
        self.entries.append(("INFO", str(message)))

    def warning(self, message: str) -> None:
        self.entries.append(("WARNING", str(message)))

    def error(self, message: str) -> None:
        self.entries.append(("ERROR", str(message)))

    def messages(self, level: str | None = None) -> list[str]:
        return [message for lvl, message in self.entries if level in (None, lvl)]


class FakeContext:
    """What an action needs of the runner's context: a log, the kill flag (``cancel()`` raises it), the run's
    variables and result id."""

    def __init__(self, variables: dict | None = None, result_id: int | None = None) -> None:
        self.variables = variables or {}
        self.result_id = result_id
        self.process_groups: set[int] = set()
        self.log = FakeLog()
        self.user = None  # a run without a user (a schedule's)
        self.warnings: list[str] = []
        self._stop = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def cancel(self) -> None:
        self._stop.set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled()

    def wait_cancelled(self, seconds: float) -> bool:
        return self._stop.wait(max(0.0, seconds))

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.log.warning(message)

    def register_process_group(self, pgid: int) -> None:
        self.process_groups.add(pgid)

    def unregister_process_group(self, pgid: int) -> None:
        self.process_groups.discard(pgid)


class Listener:
    """A listening TCP socket on 127.0.0.1 that nobody answers: ``connected()`` tells whether anybody came."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def connected(self, wait: float = 0.3) -> bool:
        self.sock.settimeout(wait)
        try:
            peer, _ = self.sock.accept()
        except TimeoutError:
            return False
        peer.close()
        return True

    def close(self) -> None:
        self.sock.close()
