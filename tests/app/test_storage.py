"""Where the app finds its Table storage, as the Functions host finds AzureWebJobsStorage, and how it fails."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient

import shared.storage
from devtools.azurite import ACCOUNT_NAME, Azurite
from testing.standins import Fault, KeyVaultStandIn, Received, StandIn, TwilioStandIn
from tests.app.state_support import CALL, Answer, TableProxy, as_storage, keyed, sent_at_once, table_error
from tests.support import body_json, error_of, fixture, logged, signed_post


def test_the_tables_are_created_on_first_use(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, "first-use")

    service = TableServiceClient.from_connection_string(storage.connection_string)
    assert sorted(t.name for t in service.list_tables()) == ["idempotency", "limits", "outcomes"]


def test_a_store_that_is_down_answers_503_state_unavailable_with_retry_after(
    twilio: TwilioStandIn, unreachable_storage: None
) -> None:
    response = keyed("make_call", CALL, None)

    # dict(): the header's name as the host sends it, not a lookup whatever its case.
    assert (response.status_code, body_json(response), dict(response.headers)["Retry-After"]) == (
        503,
        {
            "error": {
                "code": "state_unavailable",
                "message": "The app's state store (Table storage) could not be reached; nothing was sent."
                " Try again shortly.",
                "target": None,
            }
        },
        "5",
    )
    assert twilio.received == []


@pytest.mark.usefixtures("unreachable_storage")
def test_a_table_that_cannot_be_created_is_logged_naming_it(
    twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    keyed("make_call", CALL, "key-1")

    assert ("WARNING", "Table storage failed while creating table idempotency: ServiceRequestError") in logged(
        caplog, "shared.storage"
    )


def test_a_malformed_connection_string_answers_503_naming_it(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=nokey")
    response = keyed("make_call", CALL, None)

    assert response.status_code == 503
    assert error_of(response) == {
        "code": "configuration_error",
        "message": "Setting AzureWebJobsStorage does not name a usable storage account (see its Table service).",
        "target": "AzureWebJobsStorage",
    }
    assert twilio.received == []


@pytest.fixture
def identity_based_storage(vault: KeyVaultStandIn, env: pytest.MonkeyPatch) -> KeyVaultStandIn:
    """The vault stand-in (HTTPS, as a bearer token needs) plays a Table endpoint reached with the app's identity:
    it records what reaches it, then refuses it."""
    env.delenv("KEY_VAULT_URL")
    env.setenv("AzureWebJobsStorage__tableServiceUri", vault.url)
    env.setenv("AzureWebJobsStorage__credential", "managedidentity")
    env.setenv("AzureWebJobsStorage__clientId", "00000000-0000-0000-0000-0000000000c1")
    return vault


def test_identity_based_storage_uses_the_apps_managed_identity(
    twilio: TwilioStandIn, identity_based_storage: KeyVaultStandIn
) -> None:
    vault = identity_based_storage
    response = keyed("make_call", CALL, None)

    assert response.status_code == 503
    (token_request,) = vault.identity.received
    assert token_request.query["resource"] == ["https://storage.azure.com"]
    assert token_request.query["client_id"] == ["00000000-0000-0000-0000-0000000000c1"]
    assert vault.received[0].headers["Authorization"].startswith("Bearer identity-token-")
    assert twilio.received == []


def test_identity_based_storage_that_stops_answering_is_given_up_on_after_2_seconds(
    twilio: TwilioStandIn, identity_based_storage: KeyVaultStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """The first request, a table's creation, is a POST, which is not tried again: it waits 2 s for an answer
    and times out, where the vault stand-in's refusal, 20 s late, would have answered it."""
    store = identity_based_storage
    store.fail_next(Fault(delay=20))

    response = keyed("make_call", CALL, None)

    assert (response.status_code, error_of(response)["code"]) == (503, "state_unavailable")
    assert logged(caplog, "shared.storage") == [
        ("WARNING", "Table storage failed while creating table limits: ServiceResponseTimeoutError")
    ]
    assert twilio.received == []


def test_an_account_name_means_its_public_table_endpoint(env: pytest.MonkeyPatch) -> None:
    env.setenv("AzureWebJobsStorage__accountName", "myappstore")

    assert shared.storage._client("idempotency").url.startswith("https://myappstore.table.core.windows.net")


@pytest.mark.parametrize("name", ["idempotency", "limits"])
def test_a_table_deleted_between_two_requests_is_created_again_and_the_request_goes_ahead(
    twilio: TwilioStandIn, storage: Azurite, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert keyed("make_call", CALL, "first").status_code == 201  # the app now holds both tables as created
    service = TableServiceClient.from_connection_string(storage.connection_string)
    service.delete_table(name)

    with caplog.at_level(logging.WARNING):
        response = keyed("make_call", CALL, "second")

    assert (response.status_code, response.headers.get("Idempotent-Replayed")) == (201, None)
    assert name in {t.name for t in service.list_tables()}
    assert logged(caplog, "shared.storage") == [("WARNING", f"Table {name} had gone missing; creating it again")]
    assert len(twilio.creations()) == 2


class GoneStore(StandIn):
    """A Table endpoint whose tables are gone again as soon as they are created: each table creation finds one,
    and every request on an entity finds none."""

    def answer(self, request: Received) -> Answer:
        if request.path.endswith("/Tables"):
            return 409, table_error("TableAlreadyExists"), {}
        return 404, table_error("TableNotFound"), {}


def test_a_table_missing_again_once_created_again_answers_503_and_twilio_is_not_asked(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch
) -> None:
    with as_storage(GoneStore(), env) as store:
        response = keyed("make_call", CALL, "a-key")

    assert (response.status_code, error_of(response)["code"]) == (503, "state_unavailable")
    assert ["/Tables" in r.path for r in store.received] == [True, False, True, False]
    assert twilio.received == []


class SilentStore(StandIn):
    """A Table endpoint that accepts connections and never answers, until the test ends."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def answer(self, request: Received) -> Answer:
        self.released.wait()
        return 503, {}, {}


@pytest.fixture
def silent_store(env: pytest.MonkeyPatch) -> Iterator[SilentStore]:
    with as_storage(SilentStore(), env) as store:
        yield store
        store.released.set()


def test_a_store_that_never_answers_is_given_up_on_with_503(twilio: TwilioStandIn, silent_store: SilentStore) -> None:
    response = keyed("make_call", CALL, None)

    assert response.status_code == 503
    assert error_of(response)["code"] == "state_unavailable"
    assert len(silent_store.received) >= 1
    assert twilio.received == []


@pytest.mark.usefixtures("credentials_in_env")
@pytest.mark.parametrize(("name", "form"), [("voice_url", "voice_call"), ("sms_url", "incoming_sms")])
def test_the_twiml_webhooks_never_touch_the_storage(silent_store: SilentStore, name: str, form: str) -> None:
    assert signed_post(name, fixture(form)).status_code == 200
    assert silent_store.received == []


# --- first use: tables created once per instance, however many requests need them at once -------------------


class TableStore(StandIn):
    """A Table endpoint that creates any table and finds no limit counter yet, so each request takes
    its slot. Faults play on table creations only: a store slow, or failing, to create one."""

    def applies_faults(self, request: Received) -> bool:
        return _creates_a_table(request)

    def answer(self, request: Received) -> Answer:
        if request.method == "GET":
            return 200, {"value": []}, {}
        return 201, {}, {"ETag": "W/\"datetime'created'\""}

    def table_creations(self) -> list[str]:
        """The name of each table whose creation was asked for, in order."""
        return [json.loads(next(iter(r.form)))["TableName"] for r in self.received if _creates_a_table(r)]


def _creates_a_table(request: Received) -> bool:
    return request.method == "POST" and request.path.endswith("/Tables")


@pytest.fixture
def table_store(env: pytest.MonkeyPatch) -> Iterator[TableStore]:
    with as_storage(TableStore(), env) as store:
        yield store


def burst(size: int) -> list[int]:
    """`size` make_call requests sent at once to a cold instance; their statuses."""
    with sent_at_once(size, lambda: keyed("make_call", CALL, None).status_code) as answers:
        pass
    return answers


def test_a_burst_of_first_requests_shares_one_table_creation(twilio: TwilioStandIn, table_store: TableStore) -> None:
    """The creation answers late, as a loaded store may: the burst meets it under way, and waits for it."""
    table_store.fail_next(Fault(delay=0.5))

    assert burst(6) == [201] * 6
    assert table_store.table_creations() == ["limits", "outcomes"]


def test_a_failed_table_creation_is_tried_again_by_the_next_request(
    twilio: TwilioStandIn, table_store: TableStore
) -> None:
    table_store.fail_next(Fault(status=403, body=table_error("AuthorizationFailure")))

    assert [keyed("make_call", CALL, None).status_code for _ in range(2)] == [503, 201]
    assert table_store.table_creations() == ["limits", "limits", "outcomes"]


def test_a_burst_on_a_store_that_never_answers_waits_on_one_table_creation(
    twilio: TwilioStandIn, silent_store: SilentStore
) -> None:
    """Each request waits no longer than the one attempt under way: none tries again after it fails."""
    assert burst(6) == [503] * 6
    assert len(silent_store.received) == 1
    assert twilio.received == []


def test_a_burst_that_finds_a_table_gone_creates_it_again_once(
    twilio: TwilioStandIn, storage: Azurite, table_proxy: TableProxy
) -> None:
    assert keyed("make_call", CALL, None).status_code == 201  # the app now holds the limits table as created
    TableServiceClient.from_connection_string(storage.connection_string).delete_table("limits")
    table_proxy.sent.clear()

    assert burst(6) == [201] * 6
    assert table_proxy.sent.count(f"POST /{ACCOUNT_NAME}/Tables") == 1
