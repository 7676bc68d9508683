"""The app's Table storage for its tests: Azurite (tests/conftest.py), and the ways a test sees or breaks it."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.azurite import ACCOUNT_NAME, Azurite, connection_string
from devtools.ports import free_port
from testing.standins import TwilioStandIn
from tests.app.state_support import HeldTwilio
from tests.servers import serving


@pytest.fixture
def storage(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    """Table storage with no tables yet (the app creates them), and the app configured to use it."""
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(azurite.connection_string)
    for table in service.list_tables():
        service.delete_table(table.name)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    return azurite


@pytest.fixture
def unreachable_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """AzureWebJobsStorage naming a Table endpoint where nothing listens: a store that is down."""
    monkeypatch.setenv("AzureWebJobsStorage", Azurite(free_port()).connection_string)


@pytest.fixture
def table_round_trips(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Azurite behind a pass-through: each request the app sends to its Table storage, as `METHOD path`."""
    sent: list[str] = []

    def forward(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_") and k != "HTTP_HOST"}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        target = environ["RAW_URI"]
        sent.append(f"{environ['REQUEST_METHOD']} {target.split('?')[0]}")
        connection = http.client.HTTPConnection(storage.host, storage.port, timeout=10)
        try:
            connection.request(environ["REQUEST_METHOD"], target, body, headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in {"connection", "transfer-encoding"}]
        start_response(f"{answer.status} {answer.reason}", kept)
        return [data]

    with serving(forward) as url:
        monkeypatch.setenv("AzureWebJobsStorage", connection_string(f"{url}/{ACCOUNT_NAME}"))
        yield sent


@pytest.fixture
def held_twilio(twilio: TwilioStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldTwilio]:
    """A HeldTwilio in place of the `twilio` fixture's server, with the same settings."""
    server = HeldTwilio().start()
    monkeypatch.setenv("TWILIO_API_BASE_URL", server.url)
    try:
        yield server
    finally:
        server.gate.set()
        server.stop()
