"""core.http calls only allowed destinations (issue 13: no network tool for operators).

Each attack is a real request from core.http (or the real worker) at a real local socket; a
``Listener`` proves that a refused destination got no connection at all.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Iterator

import pytest
from django.urls import reverse

from jobs import outbound
from jobs.actions import RequestFailed, http_request
from jobs.models import Domain, DomainMembership, Job
from jobs.outbound import OutboundPolicy, non_public_kind, parse_entries, parse_entry
from results.dispatch import start_run, start_runs
from results.models import Status
from tests.helpers import FakeContext, Listener, make_job, wait_for_status
from tests.jobs.test_action_http import Handler, QuietServer

HOW = outbound.HOW_TO_ALLOW


@pytest.fixture
def listener() -> Iterator[Listener]:
    probe = Listener()
    yield probe
    probe.close()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def refusal(host: str, reason: str) -> str:
    return f"url: {host} is not an allowed destination ({reason}); {HOW}"


def refused(host: str, reason: str) -> str:
    return re.escape(refusal(host, reason))


# Attacks on core.http ----------------------------------------------------------------------------------------------

def test_loopback_is_refused_and_nothing_connects(listener, settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = []
    ctx = FakeContext()
    with pytest.raises(RequestFailed, match=f"^{refused('127.0.0.1', 'loopback')}$"):
        http_request(ctx, f"http://127.0.0.1:{listener.port}/", timeout=2)
    assert not listener.connected()


def test_loopback_listed_in_the_setting_is_called(server, settings):
    url, port = server
    settings.JOBS_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    assert http_request(FakeContext(), f"{url}/json").startswith(f"GET {url}/json answered 200")
    settings.JOBS_HTTP_ALLOWED_HOSTS = ["127.0.0.0/8"]
    assert "answered 200" in http_request(FakeContext(), f"{url}/json")


@pytest.mark.django_db
def test_loopback_listed_in_the_domain_is_called_by_its_jobs_only(server, settings, acme, globex):
    url, port = server
    settings.JOBS_HTTP_ALLOWED_HOSTS = []
    acme.http_allowed_hosts = f"# the test server\n127.0.0.1:{port}\n"
    acme.save()
    ours, theirs, global_run = FakeContext(), FakeContext(), FakeContext()
    ours.variables, theirs.variables, global_run.variables = {"domain": "acme"}, {"domain": "globex"}, {"domain": ""}
    assert "answered 200" in http_request(ours, f"{url}/json")
    for ctx in (theirs, global_run):
        with pytest.raises(RequestFailed, match=refused("127.0.0.1", "loopback")):
            http_request(ctx, f"{url}/json")


def test_cloud_metadata_is_refused_without_trying(settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = []
    with pytest.raises(RequestFailed, match=f"^{refused('169.254.169.254', 'link-local')}$"):
        http_request(FakeContext(), "http://169.254.169.254/latest/meta-data/", timeout=30)


def test_a_name_that_resolves_to_loopback_is_refused(listener, settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = []
    with pytest.raises(RequestFailed, match=r"^url: localhost \((127\.0\.0\.1|::1)\) is not an allowed destination "
                                            r"\(loopback\)"):
        http_request(FakeContext(), f"http://localhost:{listener.port}/")
    assert not listener.connected()


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "127.1"])
def test_other_spellings_of_loopback_are_refused(host, listener, settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = []
    with pytest.raises(RequestFailed, match=r"is not an allowed destination \(loopback\)"):
        http_request(FakeContext(), f"http://{host}:{listener.port}/", timeout=2)
    assert not listener.connected()


def test_a_redirect_to_a_destination_not_allowed_is_refused(server, listener, settings):
    url, port = server
    settings.JOBS_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    target = f"http://127.0.0.1:{listener.port}/internal"
    with pytest.raises(RequestFailed, match=re.escape(
            f"GET {url}/redirect?to={target}: redirected to {target}, and 127.0.0.1 is not an allowed destination "
            f"(loopback); {HOW}")):
        http_request(FakeContext(), f"{url}/redirect?to={target}", timeout=2)
    assert not listener.connected()
    with pytest.raises(RequestFailed, match=r"redirected to http://169\.254\.169\.254/, and 169\.254\.169\.254 is "
                                            r"not an allowed destination \(link-local\)"):
        http_request(FakeContext(), f"{url}/redirect?to=http://169.254.169.254/", timeout=2)


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch, listener):
    """DNS rebinding: a second lookup would answer 127.0.0.1; the connection uses the vetted answer only."""
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", listener.port))]])
    looked_up = []

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        return next(answers)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    policy = OutboundPolicy(parse_entries([f"127.0.0.1:{listener.port}"], "test"), public_allowed=False)
    connection = outbound.PinnedHTTPConnection("rebind.example", listener.port, timeout=2, policy=policy)
    connection.connect()
    assert connection.sock.getpeername() == ("127.0.0.1", listener.port) and looked_up == ["rebind.example"]
    connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_the_worker_refuses_a_global_job_calling_loopback(listener):
    job = make_job("http-loopback", (10, "core.http", {"url": f"http://127.0.0.1:{listener.port}/", "timeout": 2}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    assert result.line_results.get().message == f"RequestFailed: url: 127.0.0.1 is not an allowed destination " \
                                                f"(loopback); {HOW}"
    assert not listener.connected()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_each_run_of_a_per_domain_job_has_its_own_domains_allowed_hosts(server, acme, globex, admin_user):
    url, port = server
    Domain.objects.filter(pk=acme.pk).update(http_allowed_hosts=f"127.0.0.1:{port}")
    job = make_job("http-per-domain", (10, "core.http", {"url": f"{url}/json"}), execution=Job.PER_DOMAIN)
    ended = {run.domain.slug: wait_for_status(run.id) for run in start_runs(job, user=admin_user)}
    assert ended["acme"].status == Status.SUCCESS, ended["acme"].message
    assert ended["globex"].status == Status.ERROR
    assert ended["globex"].line_results.get().message == f"RequestFailed: {refusal('127.0.0.1', 'loopback')}"


# The policy itself -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("::127.0.0.1", "loopback"),
    ("2002:7f00:1::", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("::ffff:10.0.0.1", "private"), ("64:ff9b::a00:1", "private"), ("0.0.0.0", "unspecified address"),  # noqa: S104
    ("::", "unspecified address"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("100.64.0.1", "not a public address"), ("8.8.8.8", None), ("::ffff:8.8.8.8", None), ("2606:4700::1111", None),
])
def test_address_kinds(address, kind):
    assert non_public_kind(ipaddress.ip_address(address)) == kind


def test_what_each_kind_of_entry_allows():
    def allowed(entries: list[str], host: str, address: str, port: int = 443, public: bool = False) -> bool:
        policy = OutboundPolicy(parse_entries(entries, "test"), public_allowed=public)
        return policy.refusal(host, port, ipaddress.ip_address(address)) is None

    assert allowed([], "example.com", "93.184.215.14", public=True)
    assert not allowed([], "example.com", "10.0.0.1", public=True)  # an empty list never means internal
    assert not allowed(["api.example.com"], "example.com", "93.184.215.14")  # a list means only what it lists
    assert allowed(["api.example.com"], "API.example.com.", "93.184.215.14")
    assert allowed(["api.internal"], "api.internal", "10.0.0.5")  # an exact name reaches a private address
    assert allowed(["*.example.com"], "a.b.example.com", "93.184.215.14")
    assert not allowed(["*.example.com"], "example.com", "93.184.215.14")
    assert not allowed(["*.example.com"], "evil.example.com", "127.0.0.1")  # a wildcard never reaches loopback
    assert allowed(["10.0.0.0/8"], "anything.internal", "10.9.9.9")
    assert allowed(["127.0.0.1:8080"], "localhost", "127.0.0.1", port=8080)
    assert not allowed(["127.0.0.1:8080"], "localhost", "127.0.0.1", port=8081)
    assert allowed(["[::1]:8080"], "::1", "::1", port=8080)
    assert allowed(["127.0.0.1"], "::ffff:127.0.0.1", "::ffff:127.0.0.1")


@pytest.mark.parametrize(("lines", "message"), [
    (["ok.example.com", "bad host"], "test, line 2: 'bad host' is not a host name, *.wildcard, IP address or CIDR"),
    (["http://example.com"], "(no scheme or path)"),
    (["example.com:99999"], "'example.com:99999' has an invalid port (a number from 1 to 65535)"),
    (["[::1"], "write an IPv6 address with a port as [::1]:8080"),
])
def test_bad_entries_are_named(lines, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_entries(lines, "test")


def test_entries_with_ports_and_networks():
    assert parse_entry("[::1]:8080").port == 8080
    assert str(parse_entry("10.1.2.3/8").network) == "10.0.0.0/8"
    assert parse_entry("*.Example.COM:443").suffix == ".example.com"


def test_a_bad_setting_fails_the_line_naming_it(settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = ["not a host"]
    with pytest.raises(ValueError, match=r"^JOBS_HTTP_ALLOWED_HOSTS, line 1: 'not a host' is not a host name"):
        http_request(FakeContext(), "http://example.com/")


# Who may edit a domain's allowed hosts ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_domain_admin_cannot_set_the_allowed_hosts(client, acme, member):
    client.force_login(member("dora", acme, DomainMembership.ADMIN))
    url = reverse("admin:jobs_domain_change", args=[acme.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="http_allowed_hosts"' not in page.content.decode()
    response = client.post(url, {"name": acme.name, "slug": acme.slug, "http_allowed_hosts": "127.0.0.1",
                                 "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    assert response.status_code == 403
    assert Domain.objects.get(pk=acme.pk).http_allowed_hosts == ""


@pytest.mark.django_db
def test_a_system_administrator_sets_them_and_a_bad_line_is_named(client, admin_user, acme):
    client.force_login(admin_user)
    url = reverse("admin:jobs_domain_change", args=[acme.pk])
    form = {"name": acme.name, "slug": acme.slug, "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}
    page = client.post(url, {**form, "http_allowed_hosts": "api.internal\nnot valid"}).content.decode()
    assert "allowed hosts, line 2: &#x27;not valid&#x27; is not a host name" in page
    assert client.post(url, {**form, "http_allowed_hosts": "api.internal:8443\n10.0.0.0/8"}).status_code == 302
    assert Domain.objects.get(pk=acme.pk).http_allowed_hosts == "api.internal:8443\n10.0.0.0/8"
