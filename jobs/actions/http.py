"""``core.http``: one HTTP request, its answer checked and logged (secret headers masked)."""
from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException, HTTPMessage, RemoteDisconnected
from typing import Literal, TypeVar

from .. import outbound
from ..outbound import DestinationNotAllowed, OutboundPolicy
from ..registry import Cancelled, action
from ..secrets import SENSITIVE_NAME as _SENSITIVE_NAME

T = TypeVar("T")


def server_reachable(url: str, timeout: float = 2.0, policy: OutboundPolicy | None = None) -> str | None:
    """Pre-flight check of core.http: the host is an allowed destination, resolves and accepts a TCP connection.

    Never connects to a destination the outbound policy refuses (by default the policy in force, see
    ``jobs.outbound.applying``).
    """
    try:
        parts = urllib.parse.urlsplit(_http_url(url)[0])  # the host as core.http sends it (IDNA, no brackets)
    except ValueError as exc:
        return str(exc)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = (policy or outbound.policy_in_force()).vetted_addresses(parts.hostname, port)
    except DestinationNotAllowed as exc:
        return f"url: {exc}"
    except socket.gaierror:
        return f"the host name {parts.hostname} could not be resolved"
    try:
        with outbound.connect(addresses, timeout):
            return None
    except TimeoutError:
        return f"{parts.hostname}:{port} did not answer within {timeout:g} s"
    except OSError as exc:
        return f"{parts.hostname}:{port} is unreachable ({exc.strerror or exc})"


# core.http ------------------------------------------------------------------------------------------------------

PREFLIGHT_TIMEOUT = 2.0  # the Run page gives all its checks 2 s together
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
HTTP_MAX_TIMEOUT = 600.0
HTTP_LOG_BODY_CHARS = 2000
_HTTP_READ_BYTES = 4 * HTTP_LOG_BODY_CHARS + 1  # room for the logged characters in any encoding, and a sign of more
_WAIT_STEP = 0.02
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_STATUS_ITEM = re.compile(r"^([1-5])(\d\d|xx)$")
_URL_SAFE = "/%:@!$&'()*+,;=~?[]"
MASK = "***"
# Who the request is for and how it is framed come from the url and the body only: set by hand, they would
# pick another virtual host behind an allowed address, or smuggle a second request into the connection.
_WIRE_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "expect",
                 "keep-alive", "trailer"}


class RequestFailed(Exception):
    """``core.http`` got no acceptable answer; the message says what happened."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    reason: str
    url: str  # where the answer came from, after redirects
    content: bytes  # the start of the body (at most _HTTP_READ_BYTES)
    charset: str
    elapsed: float


def wire_header_refusal(name: str) -> str | None:
    """Why the header ``name`` may not be given by hand (None: it may)."""
    lowered = str(name).lower()
    if lowered in _WIRE_HEADERS or lowered.startswith("proxy-"):
        return (f"{name} may not be set by hand: the url and the body decide where the request goes and how "
                "it is framed (Host, Content-Length, Transfer-Encoding, Connection, TE, Upgrade, Expect, Proxy-*)")
    return None


def headers_problems(parameters: dict) -> list[str]:
    """Save-time check of core.http: the header names written in the line are ones a line may set."""
    headers = parameters.get("headers")
    if not isinstance(headers, dict):
        return []  # a variable: checked when the line runs
    return [f"headers: {refusal}" for name in headers if (refusal := wire_header_refusal(name))]


@action(
    "core.http",
    label="HTTP request",
    help={"url": "An http:// or https:// address. Only allowed destinations are called: any public address "
                 "unless JOBS_HTTP_ALLOWED_HOSTS lists hosts; loopback, private and link-local addresses only when "
                 "a system administrator lists them (JOBS_HTTP_ALLOWED_HOSTS or the domain's allowed hosts).",
          "method": "The HTTP method.",
          "headers": 'A JSON object of name: value, e.g. {"Accept": "application/json"}. '
                     "Values of Authorization, Cookie and names with token or secret are never logged.",
          "body": "Sent as-is; JSON text is sent as application/json unless a Content-Type header is given.",
          "expected_status": "The statuses that count as success: codes and classes, e.g. 200,201 or 2xx.",
          "timeout": "Seconds to wait for the answer (more than 0, at most 600)."},
    idempotent=False,
    external=True,
    supports_cancel=True,
    check=lambda url, timeout=30.0, **_: server_reachable(url, min(float(timeout), PREFLIGHT_TIMEOUT)),
    validate=headers_problems,
)
def http_request(ctx, url: str, method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET",
                 headers: dict | None = None, body: str = "", expected_status: str = "2xx",
                 timeout: float = 30.0) -> str:
    """Send an HTTP request to an allowed destination; no answer, or a status outside ``expected_status``,
    fails the line."""
    method = _http_method(method)
    target, shown = _http_url(url)
    accepted = parse_expected_status(expected_status)
    _check_timeout(timeout)
    to_send = _headers_to_send(_http_headers(headers), body)
    data = body.encode("utf-8") if body else None
    # S310: the scheme is checked (http/https) and the opener has no file:, ftp: or data: handler.
    request = urllib.request.Request(target, data=data, headers=to_send, method=method)  # noqa: S310
    where = f"{method} {shown}"
    policy = outbound.policy_for(getattr(ctx, "variables", {}).get("domain"))
    ctx.log.info(_request_entry(where, to_send, data))
    try:
        answer = call_cancellable(ctx, lambda: _send(request, timeout, policy), timeout)
    except Cancelled:
        ctx.log.warning(f"{where}: request abandoned, the run is being killed")
        raise
    except DestinationNotAllowed as exc:
        raise RequestFailed(_refusal(where, exc)) from None
    except Exception as exc:
        raise RequestFailed(f"{where}: {_failure(exc, timeout)}") from exc
    ctx.log.info(_answer_entry(where, target, answer))
    if not status_accepted(answer.status, accepted):
        raise RequestFailed(f"{where}: answered {answer.status}, expected {expected_status.strip()}")
    return f"{where} answered {answer.status} in {answer.elapsed:.2f} s"


def _http_method(method: str) -> str:
    upper = str(method).strip().upper()
    if upper not in HTTP_METHODS:
        raise ValueError(f"method must be one of {', '.join(HTTP_METHODS)} (got {method!r})")
    return upper


def _http_url(url: str) -> tuple[str, str]:
    """The URL to send (spaces and non-ASCII percent-encoded) and the URL to show (secrets masked)."""
    text = str(url).strip()
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        got = f"the scheme is {parts.scheme!r}" if parts.scheme else "there is no scheme"
        raise ValueError(f"url must start with http:// or https:// ({got} in {text!r})")
    if parts.username is not None or parts.password is not None:
        raise ValueError("url must not contain a user name or password; send them in an Authorization header "
                         f"({_no_userinfo(parts)})")
    try:
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"url has an invalid host or port ({text!r}): {exc}") from None
    if not host:
        raise ValueError(f"url has no host name ({text!r})")
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port is not None else ""
    path = urllib.parse.quote(parts.path or "/", safe=_URL_SAFE)
    query = urllib.parse.quote(parts.query, safe=_URL_SAFE)
    target = urllib.parse.urlunsplit((parts.scheme.lower(), netloc, path, query, ""))
    return target, shown_url(target)


def _no_userinfo(parts: urllib.parse.SplitResult) -> str:
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def shown_url(url: str) -> str:
    """``url`` with the values of secret-looking query parameters masked."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(_SENSITIVE_NAME.search(name) for name, _ in pairs):
        return url
    masked = [(name, MASK if _SENSITIVE_NAME.search(name) else value) for name, value in pairs]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(masked, safe="*")))


def parse_expected_status(text: str) -> list[tuple[int, int]]:
    """``"200,201"`` or ``"2xx,304"`` as inclusive ranges of status codes."""
    ranges = []
    for item in str(text).replace(" ", "").lower().split(","):
        match = _STATUS_ITEM.match(item)
        if not match:
            raise ValueError(f"expected_status must be status codes or classes such as 200,201 or 2xx (got {text!r})")
        low = int(match.group(1)) * 100 if match.group(2) == "xx" else int(item)
        ranges.append((low, low + 99 if match.group(2) == "xx" else low))
    return ranges


def status_accepted(status: int, ranges: list[tuple[int, int]]) -> bool:
    return any(low <= status <= high for low, high in ranges)


def _check_timeout(timeout: float) -> None:
    if not 0 < timeout <= HTTP_MAX_TIMEOUT:
        raise ValueError(f"timeout must be more than 0 and at most {HTTP_MAX_TIMEOUT:g} seconds (got {timeout:g})")


_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _http_headers(headers: dict | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise ValueError('headers must be a JSON object of name: value, e.g. {"Accept": "text/plain"} '
                         f"(got {type(headers).__name__})")
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"headers: {name!r} is not a valid header name")
        refusal = wire_header_refusal(name)
        if refusal:
            raise ValueError(f"headers: {refusal}")
        if not isinstance(value, str):
            raise ValueError(f"headers: the value of {name!r} must be text (got {type(value).__name__})")
        if "\r" in value or "\n" in value:
            raise ValueError(f"headers: the value of {name!r} must be on one line")
        if _HEADER_CONTROL.search(value):
            # RFC 9110 5.5: NUL and other controls are never valid; servers that disagree on them can be smuggled past.
            raise ValueError(f"headers: the value of {name!r} must not contain control characters (such as NUL)")
    return dict(headers)


def _headers_to_send(headers: dict[str, str], body: str) -> dict[str, str]:
    """``headers`` with a Content-Type for a JSON body and a User-Agent, unless given."""
    names = {name.lower() for name in headers}
    added = {}
    if body and "content-type" not in names and _is_json(body):
        added["Content-Type"] = "application/json"
    if "user-agent" not in names:
        added["User-Agent"] = "jobs core.http"
    return {**headers, **added}


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _request_entry(where: str, headers: dict[str, str], data: bytes | None) -> str:
    shown = ", ".join(f"{name}: {MASK if _SENSITIVE_NAME.search(name) else value}" for name, value in headers.items())
    size = f"; body: {len(data)} bytes" if data else ""
    return f"{where} (headers: {shown or 'none'}{size})"


def _answer_entry(where: str, sent_to: str, answer: HttpAnswer) -> str:
    redirected = f" after a redirect to {shown_url(answer.url)}" if answer.url != sent_to else ""
    head = f"{where}: answered {answer.status} {answer.reason}{redirected} in {answer.elapsed:.2f} s"
    return f"{head}\n{body_excerpt(answer.content, answer.charset)}" if answer.content else head


def body_excerpt(content: bytes, charset: str) -> str:
    """The first ``HTTP_LOG_BODY_CHARS`` characters of a body read up to ``_HTTP_READ_BYTES``."""
    if b"\x00" in content:
        return f"({len(content)}{'+' if len(content) >= _HTTP_READ_BYTES else ''} bytes of binary content)"
    try:
        text = content.decode(charset, errors="replace")
    except LookupError:
        text = content.decode("utf-8", errors="replace")
    if len(text) > HTTP_LOG_BODY_CHARS or len(content) >= _HTTP_READ_BYTES:
        return f"{text[:HTTP_LOG_BODY_CHARS]} … [only the first {HTTP_LOG_BODY_CHARS} characters are logged]"
    return text


def _refusal(where: str, exc: DestinationNotAllowed) -> str:
    if exc.redirected_to:
        return f"{where}: redirected to {shown_url(exc.redirected_to)}, and {exc}"
    return f"url: {exc}"


def _send(request: urllib.request.Request, timeout: float, policy: OutboundPolicy) -> HttpAnswer:
    """Runs in its own thread; the socket timeout bounds each wait on the connection."""
    started = time.monotonic()
    try:
        response = outbound.pinned_opener(policy).open(request, timeout=timeout)
    except urllib.error.HTTPError as error:  # an answer with a status urllib calls an error: still an answer
        response = error
    with response:
        content = response.read(_HTTP_READ_BYTES)
        headers: HTTPMessage = response.headers
        return HttpAnswer(status=response.status, reason=response.reason or "", url=response.url, content=content,
                          charset=headers.get_content_charset() or "utf-8", elapsed=time.monotonic() - started)


def call_cancellable(ctx, func: Callable[[], T], timeout: float) -> T:
    """``func()`` in a daemon thread, waited for in small steps; Cancelled on kill, TimeoutError after ``timeout``.

    A thread given up on is left to end by itself: ``func`` must bound its own waits.
    """
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = func()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="call_cancellable", daemon=True)
    deadline = time.monotonic() + timeout
    worker.start()
    while worker.is_alive():
        if ctx.wait_cancelled(_WAIT_STEP):
            raise Cancelled()
        if time.monotonic() >= deadline and worker.is_alive():
            raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _failure(exc: BaseException, timeout: float) -> str:
    """What went wrong, in words, for an exception raised while sending a request."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, str):
        return reason
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, RemoteDisconnected):  # before ConnectionResetError, its parent
        return "the server closed the connection without answering"
    if isinstance(reason, ConnectionResetError):
        return "the connection was reset by the server"
    if isinstance(reason, socket.gaierror):
        return f"the host name could not be resolved ({reason.strerror})"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate was refused: {reason.verify_message}"
    if isinstance(reason, ssl.SSLError):
        return f"TLS failed: {reason.reason or reason}"
    if isinstance(reason, HTTPException):
        return f"not a valid HTTP answer ({type(reason).__name__}: {reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[:1].lower() + reason.strerror[1:]
    return f"{type(reason).__name__}: {reason}"
