"""Where the app finds its Table storage, as the Functions host finds AzureWebJobsStorage, and how it fails."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.data.tables import TableServiceClient

import shared.storage
from devtools.azurite import ACCOUNT_NAME, Azurite, connection_string
from devtools.standins import KeyVaultStandIn, Received, StandIn, TwilioStandIn
from tests.servers import serving
from tests.state_support import CALL, SMS, keyed
from tests.support import error_of, fixture, signed_post


def test_the_tables_are_created_on_first_use(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, "first-use")

    service = TableServiceClient.from_connection_string(storage.connection_string)
    assert sorted(t.name for t in service.list_tables()) == ["idempotency", "limits"]


def test_a_malformed_connection_string_answers_503_naming_it(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=nokey")
    response = keyed("make_call", CALL, None)

    assert response.status_code == 503
    assert (error_of(response)["code"], error_of(response)["target"]) == ("configuration_error", "AzureWebJobsStorage")
    assert twilio.received == []


def test_identity_based_storage_uses_the_apps_managed_identity(
    twilio: TwilioStandIn, vault: KeyVaultStandIn, env: pytest.MonkeyPatch
) -> None:
    """The vault stand-in plays a Table endpoint here: it records what reaches it, then refuses it."""
    env.delenv("KEY_VAULT_URL")
    env.setenv("AzureWebJobsStorage__tableServiceUri", vault.url)
    env.setenv("AzureWebJobsStorage__credential", "managedidentity")
    env.setenv("AzureWebJobsStorage__clientId", "00000000-0000-0000-0000-0000000000c1")
    response = keyed("make_call", CALL, None)

    assert response.status_code == 503
    (token_request,) = vault.identity.received
    assert token_request.query["resource"] == ["https://storage.azure.com"]
    assert token_request.query["client_id"] == ["00000000-0000-0000-0000-0000000000c1"]
    assert vault.received[0].headers["Authorization"].startswith("Bearer identity-token-")
    assert twilio.received == []


def test_an_account_name_means_its_public_table_endpoint(env: pytest.MonkeyPatch) -> None:
    env.setenv("AzureWebJobsStorage__accountName", "myappstore")

    assert shared.storage._service().url.startswith("https://myappstore.table.core.windows.net")


class SilentStore(StandIn):
    """A Table endpoint that accepts connections and never answers, until the test ends."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def answer(self, request: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.released.wait()
        return 503, {}, {}


@pytest.fixture
def silent_store(env: pytest.MonkeyPatch) -> Iterator[SilentStore]:
    server = SilentStore().start()
    env.setenv("AzureWebJobsStorage", connection_string(f"{server.url}/{ACCOUNT_NAME}"))
    yield server
    server.released.set()
    server.stop()


def test_a_store_that_never_answers_is_given_up_on_with_503(twilio: TwilioStandIn, silent_store: SilentStore) -> None:
    response = keyed("make_call", CALL, None)

    assert response.status_code == 503
    assert error_of(response)["code"] == "state_unavailable"
    assert len(silent_store.received) >= 1
    assert twilio.received == []


@pytest.mark.usefixtures("credentials_in_env")
@pytest.mark.parametrize(
    ("name", "payload", "status"),
    [("voice_url", "voice_call", 200), ("sms_url", "incoming_sms", 200), ("call_status", "call_status_completed", 204)],
)
def test_the_webhooks_never_touch_the_storage(silent_store: SilentStore, name: str, payload: str, status: int) -> None:
    assert signed_post(name, fixture(payload)).status_code == status
    assert silent_store.received == []


class CountingProxy:
    """A WSGI app passing every request on to the Table endpoint `target`, counting them."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.requests: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["RAW_URI"]
        self.requests.append(f"{method} {path}")
        headers = {name[5:].replace("_", "-"): value for name, value in environ.items() if name.startswith("HTTP_")}
        headers.pop("HOST", None)
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        answer = requests.request(method, self.target + path, data=body, headers=headers, timeout=10)
        passed = [(n, v) for n, v in answer.headers.items() if n.lower() not in _HOP_BY_HOP]
        start_response(f"{answer.status_code} {answer.reason}", [*passed, ("Content-Length", str(len(answer.content)))])
        return [answer.content]


_HOP_BY_HOP = frozenset({"connection", "content-encoding", "content-length", "keep-alive", "transfer-encoding"})


@pytest.fixture
def counted_store(storage: Azurite, env: pytest.MonkeyPatch) -> Iterator[CountingProxy]:
    proxy = CountingProxy(f"http://{storage.host}:{storage.port}")
    with serving(proxy) as url:
        env.setenv("AzureWebJobsStorage", connection_string(f"{url}/{ACCOUNT_NAME}"))
        yield proxy


@pytest.mark.parametrize("daily_limit", ["", "100"], ids=["hourly limit", "hourly and daily limits"])
def test_a_request_costs_two_table_round_trips_and_two_more_with_a_key(
    twilio: TwilioStandIn, counted_store: CountingProxy, env: pytest.MonkeyPatch, daily_limit: str
) -> None:
    env.setenv("DAILY_LIMIT", daily_limit)
    keyed("send_sms", SMS, "warm-up")  # creates the tables, once per process
    costs = {}
    for step, key in [("unkeyed", None), ("keyed", "counted"), ("replayed", "counted")]:
        counted_store.requests.clear()
        assert keyed("send_sms", SMS, key).status_code == 201
        costs[step] = len(counted_store.requests)

    assert costs == {"unkeyed": 2, "keyed": 4, "replayed": 2}
