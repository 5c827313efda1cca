"""core.http against a real local HTTP server: called directly, validated as a line, and run by a real worker."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from jobs import registry
from jobs.actions import RequestFailed, body_excerpt, http_request, parse_expected_status, shown_url
from jobs.models import Action, Domain, Job, JobLine
from jobs.registry import Cancelled
from results import states
from results.dispatch import start_run
from results.models import JobLogEntry, Status
from tests.helpers import FakeContext, make_job, wait_for_status

SLOW_SECONDS = 3.0


class Handler(BaseHTTPRequestHandler):
    """The routes the tests call."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == "/json":
            self.answer(200, json.dumps({"ok": True, "items": [1, 2]}), "application/json")
        elif path == "/created":
            self.answer(201, "created", "text/plain")
        elif path == "/unavailable":
            self.answer(503, "down for maintenance", "text/plain")
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
            self.answer(200, "late", "text/plain")
        elif path == "/echo":
            echoed = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                      "body": body.decode("utf-8")}
            self.answer(200, json.dumps(echoed), "application/json")
        elif path == "/big":
            self.answer(200, "x" * 5000, "text/plain")
        elif path in ("/moved", "/redirect"):
            self.send_response(302)
            self.send_header("Location", parse_qs(urlsplit(self.path).query).get("to", ["/json"])[0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.answer(404, "no such route", "text/plain")

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def answer(self, status: int, text: str, content_type: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up on /slow: nothing to report


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def local_servers_allowed(settings) -> None:
    """The test servers listen on 127.0.0.1, a loopback address core.http calls only when it is listed."""
    settings.JOBS_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def local_domain() -> Domain:
    """A domain whose jobs may call 127.0.0.1 (the worker process does not see the test's settings)."""
    return Domain.objects.create(name="Local", slug="local", http_allowed_hosts="127.0.0.1")


def free_port() -> int:
    """A port on which nothing listens (bound for a moment, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Called directly -------------------------------------------------------------------------------------------------

def test_get_json_logs_the_request_the_status_and_the_body(server):
    ctx = FakeContext()
    message = http_request(ctx, f"{server}/json")
    assert re.fullmatch(rf"GET {server}/json answered 200 in \d+\.\d\d s", message)
    request, answer = ctx.log.messages("INFO")
    assert request.startswith(f"GET {server}/json (headers: ")
    head, body = answer.split("\n", 1)
    assert re.fullmatch(rf"GET {server}/json: answered 200 OK in \d+\.\d\d s", head)
    assert json.loads(body) == {"ok": True, "items": [1, 2]}


def test_expected_status_lists_and_classes(server):
    assert http_request(FakeContext(), f"{server}/created", method="POST", expected_status="200, 201").startswith(
        f"POST {server}/created answered 201")
    assert "answered 503" in http_request(FakeContext(), f"{server}/unavailable", expected_status="5xx")
    with pytest.raises(RequestFailed, match=rf"^PUT {server}/created: answered 201, expected 200$"):
        http_request(FakeContext(), f"{server}/created", method="PUT", expected_status="200")


def test_an_unexpected_status_fails_and_its_body_is_logged(server):
    ctx = FakeContext()
    with pytest.raises(RequestFailed, match=rf"^GET {server}/unavailable: answered 503, expected 2xx$"):
        http_request(ctx, f"{server}/unavailable")
    assert re.fullmatch(rf"GET {server}/unavailable: answered 503 Service Unavailable in \d+\.\d\d s\n"
                        r"down for maintenance", ctx.log.messages()[-1])


def test_a_json_body_is_sent_as_is_with_its_content_type(server):
    ctx = FakeContext()
    body = '{"name": "Ada", "n": 1}'
    http_request(ctx, f"{server}/echo?page=2", method="POST", body=body, headers={"X-Trace": "abc"})
    echoed = json.loads(ctx.log.messages()[-1].split("\n", 1)[1])
    assert echoed["method"] == "POST" and echoed["path"] == "/echo?page=2"
    assert echoed["body"] == body
    assert echoed["headers"]["Content-Type"] == "application/json"
    assert echoed["headers"]["X-Trace"] == "abc"
    assert f"body: {len(body)} bytes" in ctx.log.messages()[0]


def test_a_given_content_type_wins_and_text_is_not_json(server):
    ctx = FakeContext()
    http_request(ctx, f"{server}/echo", method="PATCH", body='{"a": 1}', headers={"content-type": "text/plain"})
    echoed = json.loads(ctx.log.messages()[-1].split("\n", 1)[1])
    assert echoed["headers"]["Content-Type"] == "text/plain" and echoed["body"] == '{"a": 1}'
    ctx = FakeContext()
    http_request(ctx, f"{server}/echo", method="DELETE", body="a=1&b=2")
    echoed = json.loads(ctx.log.messages()[-1].split("\n", 1)[1])
    assert echoed["headers"]["Content-Type"] != "application/json" and echoed["body"] == "a=1&b=2"


def test_secret_header_values_never_reach_the_log(server):
    ctx = FakeContext()
    secrets = {"Authorization": "Bearer s3cr3t-1", "Cookie": "session=s3cr3t-2", "X-Api-Token": "s3cr3t-3",
               "X-Client-Secret": "s3cr3t-4", "X-Session-Password": "s3cr3t-5"}
    http_request(ctx, f"{server}/created", method="POST", headers={**secrets, "X-Visible": "plain"})
    logged = "\n".join(ctx.log.messages())
    assert "s3cr3t" not in logged
    assert "Authorization: ***" in logged and "Cookie: ***" in logged and "X-Api-Token: ***" in logged
    assert "X-Visible: plain" in logged


def test_the_server_gets_the_secret_headers(server):
    ctx = FakeContext()
    http_request(ctx, f"{server}/echo", headers={"Authorization": "Bearer abc"})
    assert json.loads(ctx.log.messages()[-1].split("\n", 1)[1])["headers"]["Authorization"] == "Bearer abc"


def test_secret_query_parameters_are_masked_in_messages(server):
    ctx = FakeContext()
    message = http_request(ctx, f"{server}/json?api_token=s3cr3t&page=1")
    assert "s3cr3t" not in message and "s3cr3t" not in "\n".join(ctx.log.messages())
    assert "api_token=***&page=1" in message
    assert shown_url("http://h/p?a=1") == "http://h/p?a=1"


def test_head_has_no_body_and_redirects_are_followed(server):
    ctx = FakeContext()
    assert "answered 200" in http_request(ctx, f"{server}/json", method="HEAD")
    assert "\n" not in ctx.log.messages()[-1]
    ctx = FakeContext()
    http_request(ctx, f"{server}/moved")
    assert f"after a redirect to {server}/json" in ctx.log.messages()[-1]


def test_only_the_first_2000_characters_of_the_body_are_logged(server):
    ctx = FakeContext()
    http_request(ctx, f"{server}/big")
    body = ctx.log.messages()[-1].split("\n", 1)[1]
    assert body.startswith("x" * 2000) and "x" * 2001 not in body
    assert body.endswith("[only the first 2000 characters are logged]")
    assert body_excerpt(b"\x00\x01binary", "utf-8") == "(8 bytes of binary content)"


def test_no_answer_within_the_timeout_fails(server):
    started = time.monotonic()
    with pytest.raises(RequestFailed, match=rf"^GET {server}/slow: no answer within 0.5 s$"):
        http_request(FakeContext(), f"{server}/slow", timeout=0.5)
    assert time.monotonic() - started < 2


def test_a_kill_abandons_the_request_at_once(server):
    ctx = FakeContext()
    threading.Timer(0.3, ctx.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        http_request(ctx, f"{server}/slow", timeout=30)
    assert time.monotonic() - started < 1.5
    assert ctx.log.messages("WARNING") == [f"GET {server}/slow: request abandoned, the run is being killed"]


def test_connection_refused():
    port = free_port()
    with pytest.raises(RequestFailed, match=rf"^POST http://127.0.0.1:{port}/x: connection refused$"):
        http_request(FakeContext(), f"http://127.0.0.1:{port}/x", method="POST", timeout=5)


def test_an_unknown_host_name():
    with pytest.raises(RequestFailed, match=r"^GET http://no-such-host\.invalid/: "
                                            r"(the host name could not be resolved|no answer within 5 s)"):
        http_request(FakeContext(), "http://no-such-host.invalid", timeout=5)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"url": "ftp://example.com/file"}, "url must start with http:// or https:// (the scheme is 'ftp'"),
    ({"url": "example.com/x"}, "url must start with http:// or https:// (there is no scheme"),
    ({"url": "file:///etc/passwd"}, "the scheme is 'file'"),
    ({"url": "http://"}, "url has no host name"),
    ({"url": "http://example.com:99999/"}, "url has an invalid host or port"),
    ({"url": "http://user:pw@example.com/"}, "url must not contain a user name or password"),
    ({"url": "http://h/", "method": "BREW"}, "method must be one of GET, POST, PUT, PATCH, DELETE, HEAD"),
    ({"url": "http://h/", "expected_status": "ok"}, "expected_status must be status codes or classes"),
    ({"url": "http://h/", "expected_status": "200,"}, "expected_status must be status codes or classes"),
    ({"url": "http://h/", "expected_status": "600"}, "expected_status must be status codes or classes"),
    ({"url": "http://h/", "timeout": 0}, "timeout must be more than 0 and at most 600 seconds (got 0)"),
    ({"url": "http://h/", "timeout": 601}, "timeout must be more than 0 and at most 600 seconds (got 601)"),
    ({"url": "http://h/", "headers": ["Accept"]}, "headers must be a JSON object of name: value"),
    ({"url": "http://h/", "headers": {"X-Count": 3}}, "headers: the value of 'X-Count' must be text (got int)"),
    ({"url": "http://h/", "headers": {"Bad Name": "x"}}, "headers: 'Bad Name' is not a valid header name"),
    ({"url": "http://h/", "headers": {"X-A": "a\r\nX-B: b"}}, "headers: the value of 'X-A' must be on one line"),
    ({"url": "http://h/", "headers": {"X-A": "a\x00b"}}, "headers: the value of 'X-A' must not contain control"),
    ({"url": "http://h/", "headers": {"Cookie": "s=1\x0bx"}},
     "headers: the value of 'Cookie' must not contain control"),
])
def test_bad_input_is_refused_before_anything_is_sent(arguments, message):
    ctx = FakeContext()
    with pytest.raises(ValueError, match=re.escape(message)):
        http_request(ctx, **arguments)
    assert ctx.log.entries == []


WIRE_HEADERS = ["Host", "content-length", "Transfer-Encoding", "Connection", "TE", "Upgrade", "Expect",
                "Proxy-Authorization", "proxy-connection"]


@pytest.mark.parametrize("name", WIRE_HEADERS)
def test_headers_that_choose_the_host_or_frame_the_request_are_refused_when_the_line_runs(name, server):
    """Review 1: a Host header picked another virtual host behind an allowed address; framing headers smuggle."""
    ctx = FakeContext()
    with pytest.raises(ValueError, match=rf"^headers: {name} may not be set by hand: the url and the body decide"):
        http_request(ctx, f"{server}/echo", headers={name: "admin.internal"})
    assert ctx.log.entries == []  # nothing sent


def test_a_host_header_never_reaches_the_server(server):
    ctx = FakeContext()
    with pytest.raises(ValueError, match="Host may not be set by hand"):
        http_request(ctx, f"{server}/echo", headers={"Accept": "text/plain", "Host": "admin.internal"})
    http_request(ctx, f"{server}/echo", headers={"Accept": "text/plain"})
    assert json.loads(ctx.log.messages()[-1].split("\n", 1)[1])["headers"]["Host"] == server.split("//")[1]


@pytest.mark.django_db
@pytest.mark.parametrize("name", [name for name in WIRE_HEADERS if name != "Proxy-Authorization"])  # a secret's rule
def test_such_headers_written_in_a_line_are_refused_when_it_is_saved(name):
    Action.objects.sync_with_registry()
    job = Job.objects.create(identifier="http-host", name="HTTP host")
    line = JobLine(job=job, line_no=10, action=Action.objects.get(name="core.http"),
                   parameters={"url": "http://x/", "headers": {"Accept": "*/*", name: "${param.where}"}})
    errors = line.validation_errors(["where"])["parameters"]
    assert len(errors) == 1 and errors[0].startswith(f"headers: {name} may not be set by hand")


def test_expected_status_parsing():
    assert parse_expected_status("2xx") == [(200, 299)]
    assert parse_expected_status(" 200, 204 ,3XX") == [(200, 200), (204, 204), (300, 399)]


def test_url_is_encoded_for_the_wire(server):
    ctx = FakeContext()
    http_request(ctx, f"  {server}/echo?q=caf\u00e9 au lait  ")
    assert json.loads(ctx.log.messages()[-1].split("\n", 1)[1])["path"] == "/echo?q=caf%C3%A9%20au%20lait"


# Declared parameters and line validation --------------------------------------------------------------------------

def test_registered_with_its_metadata():
    spec = registry.get("core.http")
    assert (spec.external, spec.idempotent, spec.supports_cancel) == (True, False, True)
    assert [p["name"] for p in spec.parameters] == ["url", "method", "headers", "body", "expected_status", "timeout"]
    assert spec.parameter("method")["choices"] == ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    assert spec.parameter("url")["required"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(("parameters", "errors"), [
    ({"url": "ftp://x"}, {}),  # types only: the scheme is checked when the line runs
    ({"url": "https://x", "method": "POST", "headers": {"A": "b"}, "timeout": "2.5"}, {}),
    ({}, {"parameters": ["url: this parameter is required"]}),
    ({"url": "http://x", "method": "BREW"},
     {"parameters": ["method: must be one of: GET, POST, PUT, PATCH, DELETE, HEAD"]}),
    ({"url": "http://x", "timeout": "soon"}, {"parameters": ["timeout: must be a number"]}),
    ({"url": "http://x", "headers": "{not json"}, {"parameters": ["headers: must be valid JSON"]}),
    ({"url": "http://x", "body": {"a": 1}}, {"parameters": ["body: must be text"]}),
])
def test_line_validation_checks_the_types(parameters, errors):
    Action.objects.sync_with_registry()
    job = Job.objects.create(identifier="http-validation", name="HTTP validation")
    line = JobLine(job=job, line_no=10, action=Action.objects.get(name="core.http"), parameters=parameters)
    assert line.validation_errors([]) == errors


# Through the real worker -----------------------------------------------------------------------------------------

def log_of(result_id: int) -> list[str]:
    return list(JobLogEntry.objects.filter(result_id=result_id).order_by("seq").values_list("message", flat=True))


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_a_job_of_requests_runs_on_the_worker(server, local_domain):
    job = make_job("http-ok", (10, "core.http", {"url": f"{server}/json"}),
                   (20, "core.http", {"url": f"{server}/echo", "method": "POST", "body": '{"job": "${job.identifier}"}',
                                      "headers": {"Authorization": "Bearer s3cr3t"}}), domain=local_domain)
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.SUCCESS, result.message
    first, second = result.line_results.order_by("line_no")
    assert re.fullmatch(rf"GET {server}/json answered 200 in \d+\.\d\d s", first.message)
    assert second.message.startswith(f"POST {server}/echo answered 200")
    log = log_of(result.id)
    assert any(m.startswith(f"GET {server}/json: answered 200 OK") and '"ok": true' in m for m in log)
    echoed = next(json.loads(m.split("\n", 1)[1]) for m in log if m.startswith(f"POST {server}/echo: answered"))
    assert echoed["body"] == '{"job": "http-ok"}' and echoed["headers"]["Content-Type"] == "application/json"
    assert any(m.startswith(f"POST {server}/echo (headers: ") and "Authorization: ***" in m for m in log)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_failures_on_the_worker_say_what_happened(server, local_domain):
    port = free_port()
    job = make_job("http-fail", (10, "core.http", {"url": "ftp://x"}),
                   (20, "core.http", {"url": f"{server}/unavailable"}),
                   (30, "core.http", {"url": f"http://127.0.0.1:{port}/x", "method": "POST"}),
                   (40, "core.http", {"url": f"{server}/slow", "timeout": 1}),
                   stops_on_error=False, domain=local_domain)
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    messages = [line.message for line in result.line_results.order_by("line_no")]
    assert messages == [
        "ValueError: url must start with http:// or https:// (the scheme is 'ftp' in 'ftp://x')",
        f"RequestFailed: GET {server}/unavailable: answered 503, expected 2xx",
        f"RequestFailed: POST http://127.0.0.1:{port}/x: connection refused",
        f"RequestFailed: GET {server}/slow: no answer within 1 s",
    ]
    assert result.message == f"Line 10 failed: {messages[0]} (4 lines failed)"


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_a_kill_stops_a_waiting_request_at_once(server, local_domain):
    job = make_job("http-kill", (10, "core.http", {"url": f"{server}/slow"}), (20, "core.sleep", {"seconds": 0}),
                   domain=local_domain)
    result = start_run(job)
    deadline = time.monotonic() + 20
    while not any(m.startswith(f"GET {server}/slow (headers") for m in log_of(result.id)):
        assert time.monotonic() < deadline, "the request was never sent"
        time.sleep(0.05)
    asked = time.monotonic()
    assert states.request_kill(result.id, None).status == "requested"
    ended = wait_for_status(result.id, timeout=10)
    assert ended.status == Status.KILLED
    assert time.monotonic() - asked < SLOW_SECONDS - 0.5  # before the server would have answered
    line = ended.line_results.get()
    assert (line.status, line.message) == (Status.KILLED, "Killed during this line.")
    assert f"GET {server}/slow: request abandoned, the run is being killed" in log_of(result.id)
