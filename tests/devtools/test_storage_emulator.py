"""The storage emulator (Azurite) that `make run` starts beside the app, unless AzureWebJobsStorage names a store:
it stops with the host, its port is checked like the others, and it keeps nothing on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from azure.data.tables import TableServiceClient

from devtools.azurite import EMULATOR_DIR, Azurite
from devtools.ports import accepting, free_port
from testing.standins import TwilioStandIn
from tests.host_process import REAL_TWILIO, moved_to, run_host, start_host, stop_host, taken_port, wait_until_up

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]


def test_the_storage_emulator_stops_with_the_host() -> None:
    port, azurite_port = free_port(), free_port()
    process = start_host("--port", str(port), "--azurite-port", str(azurite_port), environ=REAL_TWILIO)
    try:
        assert wait_until_up(port, process)
        assert accepting("127.0.0.1", azurite_port)
    finally:
        output = stop_host(process)

    assert process.returncode == 0
    assert not accepting("127.0.0.1", azurite_port)
    assert f"Storage emulator: http://127.0.0.1:{azurite_port}/devstoreaccount1" in output


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=myappstore;AccountKey=a2V5"),
        ("AzureWebJobsStorage__accountName", "myappstore"),
        ("AzureWebJobsStorage__tableServiceUri", "https://myappstore.table.core.windows.net"),
    ],
)
def test_a_storage_the_user_names_is_used_instead_of_the_emulator(setting: str, value: str) -> None:
    """The emulator's port is taken: a host that started one would stop at once."""
    port = free_port()
    with taken_port() as azurite_port:
        environ = {**REAL_TWILIO, setting: value}
        process = start_host("--port", str(port), "--azurite-port", str(azurite_port), environ=environ)
        try:
            assert wait_until_up(port, process)
        finally:
            output = stop_host(process)

    assert "Storage emulator" not in output


def test_make_run_on_the_settings_example_keeps_its_storage_emulator(twilio: TwilioStandIn) -> None:
    """The documented way to the real Twilio: the example's Values, with a SID, token and Twilio filled in."""
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))["Values"]
    port = free_port()
    process = start_host("--port", str(port), environ={**example, **REAL_TWILIO, "TWILIO_API_BASE_URL": twilio.url})
    try:
        assert wait_until_up(port, process)
        response = requests.post(f"http://127.0.0.1:{port}/api/make_call", json={"to": "+15558675310"}, timeout=60)
    finally:
        output = stop_host(process)

    assert response.status_code == 201
    assert "Storage emulator: http://127.0.0.1:" in output


def test_a_taken_storage_emulator_port_starts_nothing() -> None:
    with taken_port() as azurite_port:
        code, output = run_host("--port", str(free_port()), "--azurite-port", str(azurite_port), environ=REAL_TWILIO)

    assert code == 1
    named = f"Port {azurite_port} (the storage emulator) is"
    assert moved_to(output, named, "AZURITE_PORT", "--azurite-port") > [azurite_port]


def test_the_storage_emulator_keeps_its_tables_in_memory_only() -> None:
    before = set(EMULATOR_DIR.iterdir())
    emulator = Azurite(free_port()).start()
    try:
        TableServiceClient.from_connection_string(emulator.connection_string).create_table("kept")
    finally:
        emulator.stop()

    assert set(EMULATOR_DIR.iterdir()) == before
