"""Who ``core.http`` may call: the outbound policy (issue 13, "no network tool for operators").

A job's allowed hosts are the setting ``JOBS_HTTP_ALLOWED_HOSTS`` plus its domain's
``Domain.http_allowed_hosts`` (one entry a line, edited by system administrators only).
An entry is a host name (``api.example.com``), a wildcard (``*.example.com``: the names
under it, not itself), an IP address or a CIDR network (``10.0.0.0/8``), each with an
optional ``:port`` (``[::1]:8080`` for IPv6).

- ``JOBS_HTTP_ALLOWED_HOSTS`` empty (the default): any public address, plus the entries.
  Not empty: only the entries (of the setting and of the job's domain).
- Loopback, private, link-local, shared, unspecified, multicast and reserved addresses
  (also written as IPv4-mapped, 6to4, Teredo, NAT64 or IPv4-compatible IPv6) are refused
  unless an entry names them: their IP or network, or the exact host name. A wildcard
  never reaches a non-public address (anybody who controls a name under it could point it
  at 127.0.0.1).
- Every address a name resolves to is checked, and the connection goes to a checked
  address (``pinned_opener``), so DNS rebinding cannot swap it; every redirect hop is
  checked again. Proxies from the environment are not used: the proxy would resolve and
  connect to the destination itself, out of this policy's sight.
"""
from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
AddressInfo = tuple  # one row of socket.getaddrinfo
T = TypeVar("T")

HOW_TO_ALLOW = "a system administrator can allow it in JOBS_HTTP_ALLOWED_HOSTS or the domain's allowed hosts"
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class DestinationNotAllowed(Exception):
    """The outbound policy refuses this destination; the message says which address and why."""

    def __init__(self, host: str, address: str, reason: str, redirected_to: str | None = None) -> None:
        self.host, self.address, self.reason, self.redirected_to = host, address, reason, redirected_to
        shown = host if host == address else f"{host} ({address})"
        super().__init__(f"{shown} is not an allowed destination ({reason}); {HOW_TO_ALLOW}")


# Entries ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AllowedHost:
    """One entry of an allow-list: exactly one of ``name``, ``suffix`` (a wildcard) or ``network``."""

    text: str
    name: str | None = None
    suffix: str | None = None  # ".example.com" for "*.example.com"
    network: IPNetwork | None = None
    port: int | None = None

    def names(self, host: str, port: int) -> bool:
        return self.name is not None and self.name == host and self._port_ok(port)

    def covers_name(self, host: str, port: int) -> bool:
        return self.suffix is not None and host.endswith(self.suffix) and self._port_ok(port)

    def contains(self, address: IPAddress, port: int) -> bool:
        return (self.network is not None and address.version == self.network.version
                and address in self.network and self._port_ok(port))

    def _port_ok(self, port: int) -> bool:
        return self.port is None or self.port == port


def parse_entry(text: str) -> AllowedHost:
    """``text`` as an entry; ValueError says what is wrong with it."""
    raw = text.strip()
    if "://" in raw or raw.count("/") > 1:
        raise ValueError(f"{raw!r} is not a host name, *.wildcard, IP address or CIDR network (no scheme or path)")
    host, port = _split_port(raw)
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        pass
    else:
        return AllowedHost(raw, network=_plain_network(network), port=port)
    wildcard = host.startswith("*.")
    name = _host_name(host[2:] if wildcard else host, raw)
    return AllowedHost(raw, suffix=f".{name}", port=port) if wildcard else AllowedHost(raw, name=name, port=port)


def _split_port(raw: str) -> tuple[str, int | None]:
    if raw.startswith("["):
        host, bracket, rest = raw[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{raw!r} is not a valid entry: write an IPv6 address with a port as [::1]:8080")
        return host, _port(rest[1:], raw) if rest else None
    if raw.count(":") == 1:
        host, _, port = raw.partition(":")
        return host, _port(port, raw)
    return raw, None


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{raw!r} has an invalid port (a number from 1 to 65535)")
    return int(text)


def _host_name(text: str, raw: str) -> str:
    try:
        name = text.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        name = ""
    if not name or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"{raw!r} is not a host name, *.wildcard, IP address or CIDR network")
    return name


def _plain_network(network: IPNetwork) -> IPNetwork:
    """An IPv4-mapped single address (``::ffff:10.0.0.1``) as the IPv4 address it is."""
    if network.version == 6 and network.num_addresses == 1 and network.network_address.ipv4_mapped:
        return ipaddress.IPv4Network(network.network_address.ipv4_mapped)
    return network


def parse_entries(lines: Iterable[str], source: str) -> tuple[AllowedHost, ...]:
    """Every non-blank line (``#`` starts a comment) as an entry; ValueError names ``source`` and the line."""
    entries = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            entries.append(parse_entry(text))
        except ValueError as exc:
            raise ValueError(f"{source}, line {number}: {exc}") from None
    return tuple(entries)


def validate_allowed_hosts_text(text: str) -> None:
    """Validator of ``Domain.http_allowed_hosts``: one entry a line."""
    try:
        parse_entries(str(text or "").splitlines(), "allowed hosts")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


# Addresses --------------------------------------------------------------------------------------------------------

def non_public_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public internet address ("loopback", "private", ...); None when it is."""
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback"
    if address.version == 6 and (address.ipv4_mapped or address in _NAT64 or address in _IPV4_COMPATIBLE):
        return non_public_kind(_embedded_ipv4(address))  # the IPv4 address is where it goes
    embedded = _embedded_ipv4(address)
    if embedded is not None and (kind := non_public_kind(embedded)):
        return kind
    for kind, flag in (("link-local", address.is_link_local), ("multicast", address.is_multicast),
                       ("private", address.is_private), ("reserved", address.is_reserved)):
        if flag:
            return kind
    return None if address.is_global else "not a public address"


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64, IPv4-compatible), if any."""
    if address.version == 4:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _plain_address(address: IPAddress) -> IPAddress:
    return (address.ipv4_mapped or address) if address.version == 6 else address


def _address_of(sockaddr_host: str) -> IPAddress:
    return ipaddress.ip_address(sockaddr_host.split("%", 1)[0])


# The policy -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutboundPolicy:
    """The entries in force and whether unlisted public addresses may be called."""

    entries: tuple[AllowedHost, ...] = ()
    public_allowed: bool = True

    def refusal(self, host: str, port: int, address: IPAddress) -> str | None:
        """Why connecting to ``address`` (which ``host`` resolved to) on ``port`` is refused; None when allowed."""
        host = host.lower().rstrip(".")
        plain = _plain_address(address)
        if any(entry.contains(plain, port) or entry.names(host, port) for entry in self.entries):
            return None
        kind = non_public_kind(address)
        if kind:
            return kind
        if self.public_allowed or any(entry.covers_name(host, port) for entry in self.entries):
            return None
        return "not in the allowed hosts"

    def vetted_addresses(self, host: str, port: int) -> list[AddressInfo]:
        """``host``'s addresses for a TCP connection, each allowed; DestinationNotAllowed if any is not.

        Every address must pass, so a name that also resolves to 127.0.0.1 is refused outright.
        socket.gaierror when the name does not resolve.
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for info in infos:
            address = _address_of(info[4][0])
            reason = self.refusal(host, port, address)
            if reason:
                raise DestinationNotAllowed(host, str(address), reason)
        return infos


def policy_for(domain_slug: str | None) -> OutboundPolicy:
    """The policy of a job of this domain (None or "": a global job run by installation)."""
    configured = parse_entries(settings.JOBS_HTTP_ALLOWED_HOSTS, "JOBS_HTTP_ALLOWED_HOSTS")
    return OutboundPolicy(configured + _domain_entries(domain_slug), public_allowed=not configured)


def _domain_entries(domain_slug: str | None) -> tuple[AllowedHost, ...]:
    if not domain_slug:
        return ()
    from .models import Domain

    text = Domain.objects.filter(slug=domain_slug).values_list("http_allowed_hosts", flat=True).first()
    return parse_entries((text or "").splitlines(), f"the allowed hosts of the domain {domain_slug}")


_in_force: ContextVar[OutboundPolicy | None] = ContextVar("outbound_policy", default=None)


@contextlib.contextmanager
def applying(policy: OutboundPolicy) -> Iterator[None]:
    """Makes ``policy`` the one ``policy_in_force`` answers (pre-flight checks have no run context)."""
    token = _in_force.set(policy)
    try:
        yield
    finally:
        _in_force.reset(token)


def under(policy: OutboundPolicy, func: Callable[[], T]) -> Callable[[], T]:
    """``func`` to call with ``policy`` in force, e.g. in a thread of its own (which starts with no policy)."""
    def run() -> T:
        with applying(policy):
            return func()
    return run


def policy_in_force() -> OutboundPolicy:
    """The policy set by ``applying``; else the installation's own (the domain's entries only add to it)."""
    return _in_force.get() or policy_for(None)


# Connecting to vetted addresses only ------------------------------------------------------------------------------

def connect(infos: list[AddressInfo], timeout: float | None,
            source_address: tuple[str, int] | None = None) -> socket.socket:
    """A TCP connection to the first of ``infos`` (vetted addresses) that accepts; the last error otherwise."""
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
        else:
            return sock
    raise error or OSError("the host name resolved to no address")


class _Pinned:
    """Connects to an address the policy vetted, not to whatever the name resolves to a moment later.

    http.client calls ``_create_connection`` from ``connect``; TLS (SNI, certificate name) and the Host
    header keep using the host name.
    """

    def __init__(self, *args, policy: OutboundPolicy, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._policy = policy
        self._create_connection = self._connect_vetted

    def _connect_vetted(self, address: tuple[str, int], timeout: float | None,
                        source_address: tuple[str, int] | None = None) -> socket.socket:
        host, port = address
        return connect(self._policy.vetted_addresses(host, port), timeout, source_address)


class PinnedHTTPConnection(_Pinned, http.client.HTTPConnection):
    pass


class PinnedHTTPSConnection(_Pinned, http.client.HTTPSConnection):
    pass


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self._policy = policy

    def http_open(self, req: urllib.request.Request):
        return self.do_open(partial(PinnedHTTPConnection, policy=self._policy), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self._policy = policy

    def https_open(self, req: urllib.request.Request):
        return self.do_open(partial(PinnedHTTPSConnection, policy=self._policy), req, context=self._context)


class _CheckedRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Refuses a redirect to a destination not allowed, naming the redirect (the connection checks again)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        parts = urllib.parse.urlsplit(newurl)
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                self._policy.vetted_addresses(parts.hostname, port)
            except DestinationNotAllowed as exc:
                fp.close()
                raise DestinationNotAllowed(exc.host, exc.address, exc.reason, redirected_to=newurl) from None
            except OSError:
                pass  # does not resolve: the connection says so
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def pinned_opener(policy: OutboundPolicy) -> urllib.request.OpenerDirector:
    """http and https only (no file:, ftp: or data:, even after a redirect), no environment proxies,
    every connection and redirect checked against ``policy``."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.UnknownHandler(), _PinnedHTTPHandler(policy),
                    _PinnedHTTPSHandler(policy), urllib.request.HTTPDefaultErrorHandler(),
                    _CheckedRedirectHandler(policy), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener
