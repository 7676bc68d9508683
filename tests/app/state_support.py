"""What the tests of the app's shared state (idempotency, limits, storage) share: keyed requests, a Twilio
that holds a request in flight, the app's tables read directly, and scripted Table stand-ins put in the app's
storage's place."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlencode

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


def forwarded(azurite: Azurite, environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A request to a pass-through in Azurite's place, sent on to Azurite as it came, and its answer sent back."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else None
    headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_") and k != "HTTP_HOST"}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    connection = http.client.HTTPConnection(azurite.host, azurite.port, timeout=10)
    try:
        connection.request(environ["REQUEST_METHOD"], environ["RAW_URI"], body, headers)
        answer = connection.getresponse()
        data = answer.read()
    finally:
        connection.close()
    kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in {"connection", "transfer-encoding"}]
    start_response(f"{answer.status} {answer.reason}", kept)
    return [data]
