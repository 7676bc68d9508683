"""The local host where it meets other machines and web pages: a tunnel or another machine reaches only
Twilio's signed webhooks, a web page on another origin reaches nothing else, a body over the limit is
refused before it is read, and a request target that is not a path reaches no function."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from threading import Thread
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
import pytest
import requests
from twilio.request_validator import RequestValidator

import function_app
from devtools.connection import HostRequestHandler
from devtools.functions import http_functions
from devtools.ports import free_port
from devtools.sandbox.webhooks import voice_params
from devtools.wsgi import LocalHost
from shared.params import MAX_BODY_BYTES
from shared.webhooks import twilio_webhook
from testing.standins import TwilioStandIn
from tests.devtools.sandbox_support import Receiver
from tests.host_process import NO_EMULATOR, REAL_TWILIO, start_host, stop_host, wait_until_up
from tests.servers import serving
from tests.support import ACCOUNT_SID, AUTH_TOKEN, logged

ROOT = Path(__file__).resolve().parents[2]
TUNNEL = "abc.tunnel.example"
TO = "+14155550100"
HUNDRED_MB = 100 * 1024 * 1024

body_app = func.FunctionApp()


@body_app.route(route="body_length", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def body_length(req: func.HttpRequest) -> func.HttpResponse:
    """How many bytes of body the function received."""
    return func.HttpResponse(str(len(req.get_body())))


@body_app.route(route="keyed_webhook", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@twilio_webhook
def keyed_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@pytest.fixture
def sandbox_standin() -> Receiver:
    """What the local host mounts under /_sandbox, recording each request that reaches it."""
    return Receiver()


@pytest.fixture
def app_host(twilio: TwilioStandIn, sandbox_standin: Receiver) -> Iterator[str]:
    """The app as `make run` serves it with PUBLIC_BASE_URL naming a tunnel."""
    host = LocalHost(function_app.app, "api", mounts={"/_sandbox": sandbox_standin}, allowed_hosts=[TUNNEL])
    with serving(host, request_handler=HostRequestHandler) as url:
        yield url


@pytest.fixture
def body_host() -> Iterator[str]:
    with serving(LocalHost(body_app, "api"), request_handler=HostRequestHandler) as url:
        yield url


# --- which functions are webhooks: read from the app, never listed ----------------------------------------------------


def test_the_webhooks_are_the_anonymous_functions_that_check_twilios_signature() -> None:
    assert {f.name for f in http_functions(function_app.app) if f.webhook} == {
        "voice_url",
        "sms_url",
        "call_status",
        "message_status",
    }


def test_a_signed_function_that_takes_a_function_key_is_no_webhook() -> None:
    functions = {f.name: f for f in http_functions(body_app)}

    assert not functions["keyed_webhook"].webhook


def test_an_anonymous_function_that_checks_no_signature_is_no_webhook() -> None:
    functions = {f.name: f for f in http_functions(body_app)}

    assert not functions["body_length"].webhook


# --- through a tunnel, or from another machine: only the signed webhooks ---------------------------------------------


@pytest.mark.parametrize("function", ["make_call", "send_sms"])
def test_a_tunnel_reaches_neither_make_call_nor_send_sms(app_host: str, twilio: TwilioStandIn, function: str) -> None:
    response = requests.post(
        f"{app_host}/api/{function}", json={"to": TO, "body": "Hi"}, headers={"Host": TUNNEL}, timeout=10
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "local_only"
    assert twilio.creations() == []


@pytest.mark.parametrize("route", ["calls/CA" + "0" * 32, "messages/SM" + "0" * 32])
def test_a_tunnel_does_not_reach_an_outcome(app_host: str, route: str) -> None:
    response = requests.get(f"{app_host}/api/{route}", headers={"Host": TUNNEL}, timeout=10)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "local_only")


def test_a_tunnel_does_not_reach_the_sandbox(app_host: str, sandbox_standin: Receiver) -> None:
    response = requests.get(f"{app_host}/_sandbox/calls", headers={"Host": TUNNEL}, timeout=10)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "local_only"
    assert sandbox_standin.hits == []


def test_a_tunnel_reaches_a_signed_webhook(app_host: str) -> None:
    response = _signed_voice_url(app_host, f"http://{TUNNEL}/api/voice_url", {"Host": TUNNEL})

    assert response.status_code == 200
    assert "<Say>Hello Monkey!</Say>" in response.text


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Forwarded-Host", "Forwarded"])
def test_a_tunnel_that_rewrites_host_to_localhost_does_not_reach_make_call(
    app_host: str, twilio: TwilioStandIn, header: str
) -> None:
    port = urlsplit(app_host).port
    headers = {"Host": f"localhost:{port}", header: "for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"}
    response = requests.post(f"{app_host}/api/make_call", json={"to": TO}, headers=headers, timeout=10)

    assert response.status_code == 403
    assert twilio.creations() == []


def test_another_machine_naming_localhost_does_not_reach_make_call(twilio: TwilioStandIn) -> None:
    address = _own_network_address()
    with serving(LocalHost(function_app.app, "api"), host=address) as url:
        response = requests.post(f"{url}/api/make_call", json={"to": TO}, headers={"Host": "localhost"}, timeout=10)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "local_only"
    assert twilio.creations() == []


def test_a_refusal_through_a_tunnel_is_logged_with_its_reason(app_host: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="devtools.wsgi")
    requests.post(f"{app_host}/api/make_call", json={"to": TO}, headers={"Host": TUNNEL}, timeout=10)

    assert logged(caplog, "devtools.wsgi") == [
        (
            "WARNING",
            f"Refused POST /api/make_call: it was addressed to '{TUNNEL}', not to a loopback name, and only"
            " Twilio's signed webhooks are served there",
        )
    ]


def test_the_refusal_names_the_webhooks_a_tunnel_reaches(app_host: str) -> None:
    response = requests.post(f"{app_host}/api/make_call", json={"to": TO}, headers={"Host": TUNNEL}, timeout=10)

    assert response.json()["error"]["message"] == (
        "/api/make_call is served to this machine only. Through a tunnel or from another machine, this host"
        " serves only Twilio's signed webhooks (voice_url, sms_url, call_status, message_status)."
    )


def test_the_421_names_the_settings_to_use_never_the_names_answered(app_host: str) -> None:
    response = requests.get(f"{app_host}/api/make_call", headers={"Host": "rebound.example"}, timeout=10)

    assert response.status_code == 421
    message = response.json()["error"]["message"]
    assert "PUBLIC_BASE_URL" in message
    assert "--host" in message
    assert not [name for name in (TUNNEL, "localhost", "127.0.0.1", "::1") if name in message]


# --- web pages on another origin: refused, except by the webhooks ----------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://127.0.0.1:9"},
        {"Origin": "null"},
    ],
    ids=["cross-site", "same-site", "other-origin", "opaque-origin"],
)
def test_make_call_refuses_a_web_page_on_another_origin(
    app_host: str, twilio: TwilioStandIn, headers: dict[str, str]
) -> None:
    response = requests.get(f"{app_host}/api/make_call", params={"to": TO}, headers=headers, timeout=10)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin_request"
    assert twilio.creations() == []


def test_send_sms_refuses_a_web_page_on_another_origin(app_host: str, twilio: TwilioStandIn) -> None:
    form = {"to": TO, "body": "Hi"}
    headers = {"Origin": "http://127.0.0.1:9", "Sec-Fetch-Site": "same-site"}
    response = requests.post(f"{app_host}/api/send_sms", data=form, headers=headers, timeout=10)

    assert response.status_code == 403
    assert twilio.creations() == []


def test_the_sandbox_refuses_a_web_page_on_another_origin(app_host: str, sandbox_standin: Receiver) -> None:
    response = requests.post(
        f"{app_host}/_sandbox/messages/inbound", data="{}", headers={"Origin": "http://evil.example"}, timeout=10
    )

    assert response.status_code == 403
    assert sandbox_standin.hits == []


def test_the_sandbox_answers_its_own_page(app_host: str, sandbox_standin: Receiver) -> None:
    headers = {"Origin": app_host, "Sec-Fetch-Site": "same-origin"}
    response = requests.get(f"{app_host}/_sandbox/calls", headers=headers, timeout=10)

    assert response.status_code == 204
    assert len(sandbox_standin.hits) == 1


def test_make_call_answers_a_request_from_its_own_origin(app_host: str) -> None:
    headers = {"Origin": app_host, "Sec-Fetch-Site": "same-origin"}
    response = requests.post(f"{app_host}/api/make_call", json={"to": TO}, headers=headers, timeout=10)

    assert response.status_code == 201


def test_a_webhook_answers_whatever_origin_is_named(app_host: str) -> None:
    headers = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    response = _signed_voice_url(app_host, f"{app_host}/api/voice_url", headers)

    assert response.status_code == 200


# --- bodies: bounded before they are read ----------------------------------------------------------------------------


def test_a_body_declared_over_64_kib_is_refused_before_it_is_sent(body_host: str) -> None:
    status, body = _exchange(body_host, _head(body_host, "POST", "/api/body_length", HUNDRED_MB))

    assert status == 413
    assert body["error"]["code"] == "payload_too_large"


def test_100_continue_is_not_sent_for_a_body_declared_over_64_kib(body_host: str) -> None:
    head = _head(body_host, "POST", "/api/body_length", HUNDRED_MB, ("Expect", "100-continue"))

    status, _ = _exchange(body_host, head)

    assert status == 413


def test_100_continue_asks_for_a_body_within_the_limit(body_host: str) -> None:
    parts = urlsplit(body_host)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30) as connection:
        connection.sendall(_head(body_host, "POST", "/api/body_length", 5, ("Expect", "100-continue")))
        interim = connection.recv(1024)
        connection.sendall(b"hello")
        answer = _read_all(connection)

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"\r\n\r\n5")


def test_a_chunked_body_of_64_kib_reaches_the_function(body_host: str) -> None:
    status, answer = _exchange(body_host, _head(body_host, "POST", "/api/body_length"), _chunked(MAX_BODY_BYTES))

    assert (status, answer) == (200, MAX_BODY_BYTES)


def test_a_chunked_body_one_byte_over_64_kib_is_refused(body_host: str) -> None:
    status, answer = _exchange(body_host, _head(body_host, "POST", "/api/body_length"), _chunked(MAX_BODY_BYTES + 1))

    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"


def test_the_host_stops_reading_a_refused_chunked_body(body_host: str) -> None:
    sent = _Counted(_chunked(HUNDRED_MB))

    status, _ = _exchange(body_host, _head(body_host, "POST", "/api/body_length"), sent)

    assert status == 413
    assert sent.bytes < HUNDRED_MB // 4  # what the host read, and what the sockets' buffers held


def test_a_malformed_chunked_body_is_400(body_host: str) -> None:
    status, answer = _exchange(body_host, _head(body_host, "POST", "/api/body_length"), [b"zz\r\nhello\r\n0\r\n\r\n"])

    assert status == 400
    assert answer["error"] == {
        "code": "malformed_request",
        "message": "The body ended before its framing said it would.",
        "target": "body",
    }


def test_a_content_length_that_is_not_a_number_is_400(body_host: str) -> None:
    head = _head(body_host, "POST", "/api/body_length", extra=("Content-Length", "5x"))

    status, answer = _exchange(body_host, head, [b"hello"])

    assert status == 400
    assert answer["error"]["target"] == "Content-Length"


@pytest.mark.processes
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_refusing_a_100_mb_body_keeps_the_host_within_a_few_mb_of_idle(framing: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def refused(size: int) -> int:
        if framing == "chunked":
            return _exchange(base, _head(base, "POST", "/api/voice_url"), _chunked(size))[0]
        return _exchange(base, _head(base, "POST", "/api/voice_url", size), _plain(size))[0]

    process = start_host("--port", str(port), environ={**REAL_TWILIO, **NO_EMULATOR})
    try:
        assert wait_until_up(port, process)
        assert refused(4 * 1024 * 1024) == 413  # once first, so that what a first request loads is loaded
        idle = _reset_peak(process.pid)
        status = refused(HUNDRED_MB)
        peak = _memory_kib(process.pid, "VmHWM")
    finally:
        stop_host(process)

    assert status == 413
    assert peak - idle < 5 * 1024, f"{peak - idle} KiB above idle"


# --- routes and request targets as Azure's front end takes them ------------------------------------------------------


@pytest.mark.parametrize("target", ["/api%2Fmake_call", "/api%2fmake_call", "//api/make_call"])
def test_a_route_with_an_encoded_slash_or_an_empty_segment_is_404(
    app_host: str, twilio: TwilioStandIn, target: str
) -> None:
    status, answer = _exchange(app_host, _head(app_host, "GET", f"{target}?to=%2B14155550100", 0))

    assert status == 404
    assert answer["error"]["code"] == "not_found"
    assert twilio.creations() == []


@pytest.mark.parametrize("netloc", ["evil.example", "{local}"])
def test_an_absolute_form_request_target_is_400(app_host: str, twilio: TwilioStandIn, netloc: str) -> None:
    target = f"http://{netloc.format(local=urlsplit(app_host).netloc)}/api/make_call?to=%2B14155550100"

    status, answer = _exchange(app_host, _head(app_host, "POST", target, 0))

    assert status == 400
    assert answer["error"]["code"] == "malformed_request"
    assert twilio.creations() == []


def test_without_public_base_url_the_links_follow_the_requests_own_host(app_host: str, twilio: TwilioStandIn) -> None:
    own = f"localhost:{urlsplit(app_host).port}"
    requests.post(f"{app_host}/api/make_call", json={"to": TO}, headers={"Host": own}, timeout=10)

    (created,) = twilio.creations()
    assert created.field("Url").startswith(f"http://{own}/api/voice_url?")
    assert created.field("StatusCallback") == f"http://{own}/api/call_status"


# --- the docs --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "malformed_request"),
        (403, "local_only"),
        (403, "cross_origin_request"),
        (404, "not_found"),
        (413, "payload_too_large"),
        (421, "misdirected_request"),
    ],
)
def test_each_refusal_of_the_local_host_is_in_the_error_table(status: int, code: str) -> None:
    rows = (ROOT / "docs" / "api.md").read_text(encoding="utf-8").splitlines()

    assert [row for row in rows if row.startswith(f"| {status} | ") and f"`{code}`" in row.split(" | ")[1]]


def test_the_docs_name_the_functions_a_tunnel_reaches() -> None:
    page = " ".join((ROOT / "docs" / "local-development.md").read_text(encoding="utf-8").split())
    said = re.search(
        r"Through a tunnel or from another machine, it serves only Twilio's signed webhooks \(([^)]*)\)", page
    )

    assert said is not None
    assert set(re.findall(r"`(\w+)`", said[1])) == {f.name for f in http_functions(function_app.app) if f.webhook}


# --- helpers ---------------------------------------------------------------------------------------------------------


def _signed_voice_url(base: str, signed_url: str, headers: dict[str, str]) -> requests.Response:
    """voice_url as Twilio calls it: signed for `signed_url`, the URL Twilio requested, and sent to `base`."""
    form = voice_params(ACCOUNT_SID)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(signed_url, form)
    return requests.post(
        f"{base}/api/voice_url", data=form, headers={**headers, "X-Twilio-Signature": signature}, timeout=10
    )


def _own_network_address() -> str:
    """An address of this machine that is not loopback, as another machine reaches it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP "connection" sends nothing: it picks the outgoing address
        except OSError:
            pytest.skip("this machine has no network address other than loopback")
        address: str = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("this machine has no network address other than loopback")
    return address


def _head(
    base: str, method: str, target: str, length: int | None = None, extra: tuple[str, str] | None = None
) -> bytes:
    """A request's line and headers as sent on the wire: with a Content-Length when `length` is given, else
    chunked, and an `extra` header."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {urlsplit(base).netloc}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if extra is not None:
        lines.append(": ".join(extra))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _plain(size: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    """`size` bytes, a piece at a time: never all of them at once in this process."""
    block = b"x" * piece
    for start in range(0, size, piece):
        yield block[: size - start]


def _chunked(size: int) -> Iterator[bytes]:
    for piece in _plain(size):
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


class _Counted:
    """A body being sent, and how many bytes of it were handed to the socket."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = pieces
        self.bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            yield piece
            self.bytes += len(piece)


def _exchange(base: str, head: bytes, body: Iterable[bytes] = ()) -> tuple[int, Any]:
    """Send a request byte for byte, its body from a thread of its own, reading the answer meanwhile as a
    client that stops at a refusal does; the answer's status, and its body (JSON when it is JSON)."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30) as connection:
        connection.sendall(head)
        sender = Thread(target=_send, args=(connection, body), daemon=True)
        sender.start()
        answer = _read_all(connection)
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)  # ends a send still under way
        sender.join(timeout=30)
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    with contextlib.suppress(ValueError):
        return int(status_line.split()[1]), json.loads(content)
    return int(status_line.split()[1]), content


def _send(connection: socket.socket, body: Iterable[bytes]) -> None:
    with contextlib.suppress(OSError):  # the host closed the connection: it read no further
        for piece in body:
            connection.sendall(piece)


def _read_all(connection: socket.socket) -> bytes:
    received = bytearray()
    with contextlib.suppress(ConnectionResetError):  # the host closed with part of the body unread
        while data := connection.recv(64 * 1024):
            received += data
    return bytes(received)


def _reset_peak(pid: int) -> int:
    """Start the process's peak resident memory (VmHWM) afresh; its resident memory now, in KiB."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        pytest.skip("this system cannot reset a process's peak memory (/proc/<pid>/clear_refs)")
    return _memory_kib(pid, "VmRSS")


def _memory_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    found = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    assert found is not None, status
    return int(found[1])
