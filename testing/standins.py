"""Local servers that answer as Twilio's REST API, Azure Key Vault and the managed identity
endpoint do, and fail as they fail: status codes, delays, dropped connections.

Tests and the benchmark point the app at these over real HTTP(S); nothing in the app is patched.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import trustme

from devtools.sandbox.answers import list_page, twilio_error

# Seconds a stand-in takes to answer each request: a fixed figure, or a spread between two bounds.
Delay = float | tuple[float, float]
# Each request's place in a spread: the golden ratio's multiples modulo 1 cover [0, 1) evenly from the first few
# requests on, where random draws would leave a few dozen of them bunched by chance.
_GOLDEN = (5**0.5 - 1) / 2


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of the normal answer."""

    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]]

    def field(self, name: str) -> str:
        return self.form[name][0]

    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme != "Basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user, password


class StandIn:
    """A threaded HTTP(S) server on a free loopback port, with a script of faults to play."""

    def __init__(self, tls: ssl.SSLContext | None = None, delay: Delay = 0.0) -> None:
        self.received: list[Received] = []
        self.faults: deque[Fault] = deque()
        self.connections = 0  # that carried a request: a stray connect, as a port probe makes, is not counted
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it was answering at once
        self.delay = delay
        # When set, the requests a subclass names wait here for each other: it breaks if they come one after another.
        self.together: threading.Barrier | None = None
        self._spread = 0.0
        self._lock = threading.Lock()
        self._server = _Server(self, tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True
        )

    @property
    def url(self) -> str:
        scheme = "https" if self._server.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def pause(self) -> None:
        """Take as long to answer as the remote service would, before answering at all."""
        delay = self.delay
        if isinstance(delay, tuple):
            with self._lock:
                self._spread = (self._spread + _GOLDEN) % 1
                low, high = delay
                delay = low + (high - low) * self._spread
        if delay:
            time.sleep(delay)

    def meet(self) -> None:
        if self.together is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.together.wait()

    def applies_faults(self, request: Received) -> bool:
        return True

    def answer(self, request: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: a burst of new connections would overflow it, some refused
    # and others retried after a second, where a real service accepts them all.
    request_queue_size = 128

    def __init__(self, owner: StandIn, tls: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.tls = tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients that time out or give up close the connection mid-answer on purpose."""

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # answer at once, not after a delayed ACK
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    carried_a_request = False  # one handler per connection

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read what was received, not a log."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        owner = self.server.owner
        if not self.carried_a_request:
            self.carried_a_request = True
            owner.count_connection()
        owner.enter()
        try:
            self._answer(owner)
        finally:
            owner.leave()

    def _answer(self, owner: StandIn) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        parts = urlsplit(self.path)
        request = Received(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=dict(self.headers.items()),
            form=parse_qs(body, keep_blank_values=True),
        )
        owner.record(request)
        owner.pause()
        fault = owner.next_fault() if owner.applies_faults(request) else None
        if fault is not None:
            time.sleep(fault.delay)
            if fault.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
        status, payload, headers = owner.answer(request)
        if fault is not None and fault.status is not None:
            status, payload, headers = fault.status, fault.body or {}, fault.headers
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class TwilioStandIn(StandIn):
    """Twilio's REST API for calls, messages and phone numbers: basic auth checked, Twilio's error bodies.
    With `together` set, each call or message created waits for the others."""

    CREATE = re.compile(r"^/2010-04-01/Accounts/(AC\w+)/(Calls|Messages)\.json$")
    NUMBERS = re.compile(r"^/2010-04-01/Accounts/(AC\w+)/IncomingPhoneNumbers(?:/(PN\w+))?\.json$")

    def __init__(self, account_sid: str, auth_token: str, delay: Delay = 0.0) -> None:
        super().__init__(delay=delay)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers: dict[str, dict[str, Any]] = {}  # the account's IncomingPhoneNumbers, by SID
        self.sids: list[str] = []  # of the calls and messages created, in order

    def creations(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST" and self.CREATE.match(r.path)]

    def add_number(self, phone_number: str, **fields: str | None) -> dict[str, Any]:
        """Put a phone number on the account, with Twilio's defaults for a number nobody configured."""
        sid = "PN" + secrets.token_hex(16)
        number: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "phone_number": phone_number,
            "friendly_name": phone_number,
            "api_version": "2010-04-01",
            "voice_url": None,
            "voice_method": "POST",
            "sms_url": "",
            "sms_method": "POST",
            "status_callback": "",
            "status_callback_method": "POST",
            "voice_application_sid": "",
            "sms_application_sid": "",
            "trunk_sid": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json",
            **fields,
        }
        self.numbers[sid] = number
        return number

    def number_updates(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST" and self.NUMBERS.match(r.path)]

    def answer(self, request: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        if request.basic_auth() != (self.account_sid, self.auth_token):
            return 401, twilio_error(20003, "Authenticate", 401), {}
        numbers = self.NUMBERS.match(request.path)
        if numbers is not None and numbers[1] == self.account_sid:
            return self._numbers(request, numbers[2])
        match = self.CREATE.match(request.path)
        if request.method != "POST" or match is None or match[1] != self.account_sid:
            return 404, twilio_error(20404, f"The requested resource {request.path} was not found", 404), {}
        prefix, status = ("CA", "queued") if match[2] == "Calls" else ("SM", "queued")
        resource = {
            "sid": prefix + secrets.token_hex(16),
            "account_sid": self.account_sid,
            "status": status,
            "to": request.field("To"),
            "from": request.field("From"),
            "api_version": "2010-04-01",
        }
        self.sids.append(resource["sid"])
        self.meet()
        return 201, resource, {}

    def _numbers(self, request: Received, sid: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        if sid is None and request.method == "GET":
            return 200, self._number_page(request), {}
        if sid in self.numbers and request.method == "POST":
            number = self.numbers[sid]
            for name, values in request.form.items():
                field_name = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # VoiceUrl: voice_url
                if field_name in number:
                    number[field_name] = values[0]
            return 200, number, {}
        return 404, twilio_error(20404, f"The requested resource {request.path} was not found", 404), {}

    def _number_page(self, request: Received) -> dict[str, Any]:
        """One page of the list; PhoneNumber matches partially, with * for any digit, as Twilio's does."""
        query = {name: values[0] for name, values in request.query.items()}
        pattern = re.compile(re.escape(query.get("PhoneNumber", "")).replace(r"\*", r"\d"))
        found = [n for n in self.numbers.values() if pattern.search(n["phone_number"])]
        return list_page(found, "incoming_phone_numbers", request.path, query)


class IdentityStandIn(StandIn):
    """The App Service managed identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER)."""

    def __init__(self) -> None:
        super().__init__()
        self.header = secrets.token_hex(8)

    def answer(self, request: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        if request.headers.get("X-IDENTITY-HEADER") != self.header:
            return 401, {"error": "unauthorized"}, {}
        resource = request.query.get("resource", [""])[0]
        token = {
            "access_token": "identity-token-" + secrets.token_hex(8),
            "expires_on": str(int(time.time()) + 3600),
            "resource": resource,
            "token_type": "Bearer",
        }
        return 200, token, {}

    def environ(self) -> dict[str, str]:
        return {"IDENTITY_ENDPOINT": f"{self.url}/msi/token", "IDENTITY_HEADER": self.header}


class KeyVaultStandIn(StandIn):
    """Key Vault's GET /secrets/{name}, over HTTPS, with its 401 bearer challenge. With `together` set,
    each secret read waits for the others."""

    SECRET = re.compile(r"^/secrets/([\w-]+)/?([\w-]*)$")

    def __init__(self, secrets_: dict[str, str], delay: Delay = 0.0) -> None:
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as bundle:
            bundle.write(ca.cert_pem.bytes())
        self.ca_bundle = Path(bundle.name)
        super().__init__(tls=context, delay=delay)
        self.secrets = dict(secrets_)
        self.fetches: Counter[str] = Counter()
        self.identity = IdentityStandIn()

    def start(self) -> Self:
        self.identity.start()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        self.identity.stop()
        self.ca_bundle.unlink(missing_ok=True)

    def applies_faults(self, request: Received) -> bool:
        return "Authorization" in request.headers

    def answer(self, request: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            # The SDK accepts a challenge whose resource domain ends the vault's host: 0.0.1 for 127.0.0.1.
            port = urlsplit(self.url).port
            challenge = (
                'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000",'
                f' resource="https://0.0.1:{port}"'
            )
            return 401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, {"WWW-Authenticate": challenge}
        match = self.SECRET.match(request.path)
        if request.method != "GET" or match is None or match[1] not in self.secrets:
            name = match[1] if match else request.path
            missing = {"code": "SecretNotFound", "message": f"A secret with (name/id) {name} was not found"}
            return 404, {"error": missing}, {}
        name = match[1]
        self.fetches[name] += 1
        self.meet()
        version = match[2] or "0123456789abcdef0123456789abcdef"
        secret = {
            "value": self.secrets[name],
            "id": f"{self.url}/secrets/{name}/{version}",
            "attributes": {"enabled": True, "created": 1700000000, "updated": 1700000000},
        }
        return 200, secret, {}

    def environ(self) -> dict[str, str]:
        return {"KEY_VAULT_URL": self.url, "REQUESTS_CA_BUNDLE": str(self.ca_bundle), **self.identity.environ()}
