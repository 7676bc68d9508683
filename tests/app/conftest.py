"""The app's Table storage for its tests: Azurite (tests/conftest.py), and the ways a test sees or breaks it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from devtools.azurite import ACCOUNT_NAME, Azurite, connection_string
from devtools.ports import free_port
from testing.standins import TwilioStandIn
from tests.app.state_support import HeldTwilio, TableProxy


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
def table_proxy(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[TableProxy]:
    """Azurite behind a TableProxy, named by AzureWebJobsStorage as the app's Table storage."""
    proxy = TableProxy(storage).start()
    monkeypatch.setenv("AzureWebJobsStorage", connection_string(f"{proxy.url}/{ACCOUNT_NAME}"))
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def table_round_trips(table_proxy: TableProxy) -> list[str]:
    """Each request the app sends to its Table storage, as `METHOD path`."""
    return table_proxy.sent


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


@pytest.fixture
def zone_ahead_of_utc() -> Iterator[None]:
    """The process's local time nine hours ahead of UTC, as TZ (or WEBSITE_TIME_ZONE) may set it in Azure:
    at 21:00 UTC it is already the next day there."""
    with pytest.MonkeyPatch.context() as zone:
        zone.setenv("TZ", "JST-9")
        time.tzset()
        try:
            yield
        finally:
            zone.undo()
            time.tzset()


@pytest.fixture
def clear_of_the_hour_turn() -> None:
    """For a test that counts several requests in one window, which the clock hour (and UTC day) turning would
    split: one that would start in an hour's last 30 seconds waits for the next hour."""
    now = datetime.now(UTC)
    left = (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - now).total_seconds()
    if left < 30:
        time.sleep(left + 0.1)
