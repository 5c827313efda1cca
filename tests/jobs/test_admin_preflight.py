"""Pre-flight checks on the Run page are no port scanner (issue 13).

Operators and domain admins get the checks with the job's own values and read only "not ready";
system administrators check the values they type and read why. All checks share 2 seconds.
"""
from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest
from django.urls import reverse

from jobs.models import DomainMembership
from jobs.outbound import HOW_TO_ALLOW
from results.models import JobResult
from tests.helpers import Listener, make_job

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def listener() -> Iterator[Listener]:
    probe = Listener()
    yield probe
    probe.close()


@pytest.fixture
def probe_job(acme):
    """A job whose URL comes from a run-time parameter, as an author may well write it."""
    return make_job("probe", (10, "core.http", {"url": "${param.url}", "timeout": 1}), domain=acme,
                    params=[{"name": "url", "type": "str", "default": f"http://127.0.0.1:{closed_port()}/"}])


def preflight_of(client, job, **typed) -> str:
    """The pre-flight section of the confirmation step after typing ``typed`` on the parameters step."""
    response = client.post(reverse("admin:jobs_job_run", args=[job.pk]), typed)
    html = response.content.decode()
    assert response.status_code == 200 and 'name="step" value="confirm"' in html
    assert not JobResult.objects.exists()
    return re.search(r'<div class="module" id="preflight">.*?</div>', html, re.S).group(0)


@pytest.mark.parametrize("role", [DomainMembership.OPERATOR, DomainMembership.ADMIN])
def test_typed_addresses_are_never_probed_for_members(role, client, member, acme, probe_job, listener, settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]  # even where the policy would let the job call them
    client.force_login(member("mo", acme, role))
    open_answer = preflight_of(client, probe_job, url=f"http://127.0.0.1:{listener.port}/")
    closed_answer = preflight_of(client, probe_job, url=f"http://127.0.0.1:{closed_port()}/")
    assert not listener.connected()
    assert open_answer == closed_answer
    assert "✖ not ready" in open_answer and "127.0.0.1" not in open_answer and "unreachable" not in open_answer


def test_a_system_administrator_checks_the_typed_address_and_reads_why(
        client, admin_user, probe_job, listener, settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    client.force_login(admin_user)
    assert "✔ ready" in preflight_of(client, probe_job, url=f"http://127.0.0.1:{listener.port}/")
    assert listener.connected()
    port = closed_port()
    assert f"127.0.0.1:{port} is unreachable" in preflight_of(client, probe_job, url=f"http://127.0.0.1:{port}/")


def test_the_check_never_connects_to_a_destination_not_allowed(client, admin_user, probe_job, listener, settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = []
    client.force_login(admin_user)
    answer = preflight_of(client, probe_job, url=f"http://127.0.0.1:{listener.port}/")
    assert f"url: 127.0.0.1 is not an allowed destination (loopback); {HOW_TO_ALLOW}".replace("'", "&#x27;") in answer
    assert not listener.connected()


def test_all_checks_together_take_at_most_about_two_seconds(client, admin_user, member, acme):
    job = make_job("slow-checks", (10, "testing.slow_check", {"seconds": 10}),
                   (20, "testing.slow_check", {"seconds": 10}), (30, "testing.slow_check", {"seconds": 0}),
                   domain=acme)
    client.force_login(admin_user)
    started = time.monotonic()
    html = client.get(reverse("admin:jobs_job_run", args=[job.pk])).content.decode()
    assert time.monotonic() - started < 3
    assert html.count("✖ not checked in time") == 2 and html.count("✔ ready") == 1
    client.force_login(member("olga", acme, DomainMembership.OPERATOR))
    started = time.monotonic()
    html = client.get(reverse("admin:jobs_job_run", args=[job.pk])).content.decode()
    assert time.monotonic() - started < 3
    assert html.count("✖ not ready") == 2 and "not checked in time" not in html
