"""Every test starts from a clean process state: no app settings, no cached credentials or clients. The fixtures
here serve more than one of tests/app, tests/devtools and tests/deploy; each folder's conftest.py holds its own."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devtools.azurite import Azurite
from devtools.ports import free_port
from testing.process_state import clear_caches, is_setting
from testing.standins import KeyVaultStandIn, TwilioStandIn
from tests.support import ACCOUNT_SID, AUTH_TOKEN


@pytest.fixture(autouse=True)
def clean_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if is_setting(name):
            monkeypatch.delenv(name)
    clear_caches()
    yield
    clear_caches()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite's Table service on a free port, one for the test session."""
    server = Azurite(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Set app settings for one test (read on first use, like in Azure)."""
    return monkeypatch


@pytest.fixture
def credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twilio credentials as plain app settings, for tests that need no Key Vault and no REST call."""
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioStandIn]:
    """Twilio's REST API on a local port, with the app configured to use it."""
    server = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN).start()
    monkeypatch.setenv("TWILIO_API_BASE_URL", server.url)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15017122661")
    monkeypatch.setenv("TWILIO_HTTP_TIMEOUT", "2")
    yield server
    server.stop()


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyVaultStandIn]:
    """Key Vault (HTTPS) and the managed identity endpoint on local ports, holding the Twilio secrets."""
    server = KeyVaultStandIn({"twilio-account-sid": ACCOUNT_SID, "twilio-auth-token": AUTH_TOKEN}).start()
    for name, value in server.environ().items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()
