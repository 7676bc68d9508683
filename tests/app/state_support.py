"""What the tests of the app's shared state (idempotency, limits, storage) share: keyed requests, a Twilio
that holds a request in flight, the app's tables read directly, a proxy in front of Azurite that loses chosen
requests, and scripted Table stand-ins put in the app's storage's place."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

import azure.functions as func
import pytest
from azure.data.tables import TableClient, TableServiceClient

from devtools.azurite import ACCOUNT_NAME, Azurite, connection_string
from testing.standins import Received, StandIn, TwilioStandIn
from tests.support import ACCOUNT_SID, AUTH_TOKEN, invoke

CALL = {"to": "+15558675310", "message": "Your table is ready"}
SMS = {"to": "+15558675310", "body": "Your code is 1234"}

Answer = tuple[int, dict[str, Any], dict[str, str]]  # a stand-in's status, JSON body and headers
Store = TypeVar("Store", bound=StandIn)


def keyed(name: str, document: Mapping[str, str], key: str | None, *, form: bool = False) -> func.HttpResponse:
    """A POST with JSON (or a form) and, unless None, an Idempotency-Key."""
    sent = {} if key is None else {"Idempotency-Key": key}
    if form:
        body, content_type = urlencode(document).encode(), "application/x-www-form-urlencoded"
    else:
        body, content_type = json.dumps(document).encode(), "application/json"
    return invoke(name, body=body, headers={"Content-Type": content_type, **sent})


class HeldTwilio(TwilioStandIn):
    """Twilio, holding every request while `gate` is closed: a first request stays in flight."""

    def __init__(self) -> None:
        super().__init__(ACCOUNT_SID, AUTH_TOKEN)
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()

    def answer(self, request: Received) -> Answer:
        self.arrived.set()
        self.gate.wait()
        return super().answer(request)


@contextmanager
def as_storage(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """`store` started, and named by AzureWebJobsStorage as the app's Table storage, until the block ends."""
    store.start()
    monkeypatch.setenv("AzureWebJobsStorage", connection_string(f"{store.url}/{ACCOUNT_NAME}"))
    try:
        yield store
    finally:
        store.stop()


def table_error(code: str) -> dict[str, Any]:
    """The body of a Table service error answering `code`."""
    return {"odata.error": {"code": code, "message": {"lang": "en-US", "value": code}}}


def table(azurite: Azurite, name: str) -> TableClient:
    return TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(name)


@dataclass(frozen=True)
class Mishap:
    """What the TableProxy does to one request instead of passing it on: wait `delay` seconds, or until
    `gate` opens; then forward it to Azurite or not, and pass Azurite's answer back or close the connection,
    or answer `status` itself."""

    forward: bool = True
    answer: bool = True
    delay: float = 0.0
    gate: Gate | None = None
    status: int | None = None  # answered in Azurite's stead, with Table storage's error body


@dataclass(frozen=True)
class Gate:
    """Where a request waits in the TableProxy: `arrived` is set when one does, and it goes on once `opened` is."""

    arrived: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)


DROPPED = Mishap(forward=False, answer=False)  # never reaches Azurite
ANSWER_LOST = Mishap(answer=False)  # Azurite acts on it; its answer never reaches the app


@dataclass
class _Plan:
    method: str | None
    table: str | None
    mishaps: deque[Mishap]
    then: Mishap | None

    def take(self, method: str, table: str) -> Mishap | None:
        if self.method not in (None, method) or self.table not in (None, table):
            return None
        return self.mishaps.popleft() if self.mishaps else self.then


class TableProxy:
    """Azurite behind a real HTTP server on a loopback port: each request the app sends its Table storage is
    recorded (`METHOD path` in `sent`, with its query too in `targets`) and forwarded, unless a test planned a
    Mishap for it."""

    def __init__(self, azurite: Azurite) -> None:
        self.azurite = azurite
        self.sent: list[str] = []
        self.targets: list[str] = []
        self._plans: list[_Plan] = []
        self._lock = threading.Lock()
        self._server = _ProxyServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> TableProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def upon(self, method: str | None, table: str | None, *mishaps: Mishap, then: Mishap | None = None) -> None:
        """Play `mishaps` in turn on the requests `method` (None: any) on `table` (its name as in the path:
        idempotency, limits, $batch, Tables; None: any), then `then` on every later one."""
        with self._lock:
            self._plans.append(_Plan(method, table, deque(mishaps), then))

    def clear(self) -> None:
        """Pass every later request on as it comes."""
        with self._lock:
            self._plans.clear()

    def mishap(self, method: str, target: str) -> Mishap | None:
        path = urlsplit(target).path
        table = path.split("/")[2].split("(", maxsplit=1)[0] if path.count("/") >= 2 else ""
        with self._lock:
            self.sent.append(f"{method} {path}")
            self.targets.append(f"{method} {unquote(target)}")
            for plan in self._plans:
                mishap = plan.take(method, table)
                if mishap is not None:
                    return mishap
        return None

    def forward(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> _Answer:
        connection = http.client.HTTPConnection(self.azurite.host, self.azurite.port, timeout=30)
        try:
            connection.request(method, target, body, headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in {"connection", "transfer-encoding"}]
        return answer.status, answer.reason, kept, data


_Answer = tuple[int, str, list[tuple[str, str]], bytes]


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, proxy: TableProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: the app gives up on a delayed answer and closes the connection, as intended."""


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `sent`."""

    def do_GET(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def do_PUT(self) -> None:
        self._relay()

    def do_DELETE(self) -> None:
        self._relay()

    def do_MERGE(self) -> None:
        self._relay()

    def _relay(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
        mishap = proxy.mishap(self.command, self.path) or Mishap()
        if mishap.gate is not None:
            mishap.gate.arrived.set()
            mishap.gate.opened.wait(60)
        time.sleep(mishap.delay)
        if mishap.status is not None:
            error = b'{"odata.error": {"code": "InternalError", "message": {"value": "down"}}}'
            self._send(mishap.status, "Planted", [("Content-Type", "application/json")], error)
            return
        answer = proxy.forward(self.command, self.path, body, headers) if mishap.forward else None
        if answer is None or not mishap.answer:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(*answer)

    def _send(self, status: int, reason: str, kept: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status, reason)
        for name, value in kept:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def sent_at_once(count: int, send: Callable[[], int]) -> Iterator[list[int]]:
    """`count` requests sent at the same moment, each from a thread of its own (`send` makes one and gives its
    status): the statuses gather in the list as they come, and every thread has ended once the block has."""
    together = threading.Barrier(count)
    answers: list[int] = []

    def one() -> None:
        together.wait()
        answers.append(send())

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        for thread in threads:
            thread.join()
