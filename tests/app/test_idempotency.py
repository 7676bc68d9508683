"""Idempotency-Key on make_call and send_sms: replays, conflicts, what is remembered and what is released."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from devtools.ports import free_port
from devtools.sandbox.answers import twilio_error
from shared import idempotency
from shared.errors import ApiError
from shared.outbound import Call, deliver
from shared.settings import Settings, get_settings
from testing.process_state import clear_caches
from testing.standins import Fault, Received, StandIn, TwilioStandIn
from tests.app.state_support import CALL, SMS, Answer, HeldTwilio, as_storage, keyed, table, table_error
from tests.servers import unaccepting_port
from tests.support import ACCOUNT_SID, AUTH_TOKEN, body_json, error_of, eventually, function_url, invoke, logged

KEY = "order-1234-call"
MALFORMED = {
    "error": {
        "code": "invalid_idempotency_key",
        "message": "Idempotency-Key must be 1 to 255 printable ASCII characters.",
        "target": "Idempotency-Key",
    }
}
REUSED = {
    "error": {
        "code": "idempotency_key_reused",
        "message": "This Idempotency-Key was used for a different request in the last 24 hours; use a new key.",
        "target": "Idempotency-Key",
    }
}
IN_PROGRESS = {
    "error": {
        "code": "request_in_progress",
        "message": "A request with this Idempotency-Key is still in progress; retry to get its answer.",
        "target": "Idempotency-Key",
    }
}
ABANDONED = {
    "error": {
        "code": "outcome_unknown",
        "message": "The first request with this Idempotency-Key stopped before it finished; whether it reached"
        " Twilio is unknown, check before retrying with a new key.",
        "target": None,
    }
}
# The settings a request read once, which name no storage (the environment may name one).
CALLER = Settings(from_number="+15017122661")
NO_STORAGE = {
    "error": {
        "code": "state_unavailable",
        "message": "Idempotency-Key needs the app's storage, which is not configured (AzureWebJobsStorage);"
        " nothing was sent.",
        "target": "AzureWebJobsStorage",
    }
}


# --- replays, and requests contending for one key --------------------------------------------------------------------


def test_a_repeated_key_answers_the_first_answer_without_asking_twilio_again(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    first = keyed("make_call", CALL, KEY)
    again = keyed("make_call", CALL, KEY)

    assert (first.status_code, again.status_code) == (201, 201)
    assert body_json(again) == body_json(first)
    assert len(twilio.creations()) == 1


def test_only_a_replayed_answer_says_idempotent_replayed(twilio: TwilioStandIn, storage: Azurite) -> None:
    first = keyed("send_sms", SMS, KEY)
    again = keyed("send_sms", SMS, KEY)

    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"


def test_the_same_request_as_a_form_or_a_query_string_is_the_same_request(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    first = keyed("make_call", {"to": "+1 555 867 5310", "message": "Your table is ready"}, KEY)
    as_form = keyed("make_call", CALL, KEY, form=True)
    as_query = invoke("make_call", "GET", url=function_url("make_call", CALL), headers={"Idempotency-Key": KEY})

    assert body_json(as_form) == body_json(as_query) == body_json(first)
    assert len(twilio.creations()) == 1


@pytest.mark.parametrize(
    ("name", "changed"),
    [
        ("make_call", {"to": "+15558675311"}),
        ("make_call", {"from": "+15017122662"}),
        ("make_call", {"message": "Your table is not ready"}),
        ("make_call", {"voice": "Polly.Joanna"}),
        ("make_call", {"language": "en-GB"}),
        ("send_sms", {"to": "+15558675311"}),
        ("send_sms", {"from": "+15017122662"}),
        ("send_sms", {"body": "Your code is 5678"}),
    ],
    ids=lambda value: value if isinstance(value, str) else next(iter(value)),
)
def test_the_same_key_with_other_parameters_answers_422(
    twilio: TwilioStandIn, storage: Azurite, name: str, changed: dict[str, str]
) -> None:
    first = CALL if name == "make_call" else SMS
    keyed(name, first, KEY)
    response = keyed(name, {**first, **changed}, KEY)

    assert (response.status_code, body_json(response)) == (422, REUSED)
    assert len(twilio.creations()) == 1


def test_defaults_filled_in_make_the_same_request(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", {"to": CALL["to"]}, KEY)
    spelled_out = keyed("make_call", {"to": CALL["to"], "from": "+15017122661", "message": "Hello Monkey!"}, KEY)

    assert (spelled_out.status_code, spelled_out.headers.get("Idempotent-Replayed")) == (201, "true")
    assert len(twilio.creations()) == 1


def test_keys_are_per_function(twilio: TwilioStandIn, storage: Azurite) -> None:
    assert keyed("make_call", CALL, KEY).status_code == 201
    assert keyed("send_sms", SMS, KEY).status_code == 201
    assert len(twilio.creations()) == 2


def test_a_key_whose_first_request_is_in_flight_answers_409_with_retry_after(
    held_twilio: HeldTwilio, storage: Azurite
) -> None:
    held_twilio.gate.clear()
    first: list[func.HttpResponse] = []
    in_flight = threading.Thread(target=lambda: first.append(keyed("make_call", CALL, KEY)))
    in_flight.start()
    try:
        assert held_twilio.arrived.wait(30)
        response = keyed("make_call", CALL, KEY)
    finally:
        held_twilio.gate.set()
        in_flight.join()

    assert response.status_code == 409
    assert error_of(response)["code"] == "request_in_progress"
    assert int(response.headers["Retry-After"]) >= 1
    assert first[0].status_code == 201
    assert len(held_twilio.creations()) == 1


def test_concurrent_requests_with_one_key_reach_twilio_once(held_twilio: HeldTwilio, storage: Azurite) -> None:
    held_twilio.gate.clear()
    together = threading.Barrier(6)
    answers: list[int] = []

    def send() -> None:
        together.wait()
        answers.append(keyed("send_sms", SMS, KEY).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        assert held_twilio.arrived.wait(30)
        # While the first is held at Twilio, every other request must be answered, and only with 409.
        assert eventually(lambda: len(answers) == 5, timeout=30)
    finally:
        held_twilio.gate.set()
        for thread in threads:
            thread.join()

    assert len(held_twilio.creations()) == 1
    assert answers == [409, 409, 409, 409, 409, 201]


# --- which keys are accepted -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there", "del\x7f"], ids=repr)
def test_a_malformed_key_answers_400(twilio: TwilioStandIn, storage: Azurite, key: str) -> None:
    response = keyed("make_call", CALL, key)

    assert (response.status_code, body_json(response)) == (400, MALFORMED)
    assert twilio.received == []


@pytest.mark.parametrize("key", ["x", " !~" * 85], ids=["1 character", "255 characters"])
def test_a_key_of_1_to_255_printable_characters_is_accepted(twilio: TwilioStandIn, storage: Azurite, key: str) -> None:
    assert keyed("make_call", CALL, key).status_code == 201


# --- what releases a key, and what keeps it --------------------------------------------------------------------------


def test_a_request_refused_before_twilio_leaves_the_key_free(twilio: TwilioStandIn, storage: Azurite) -> None:
    refused = keyed("make_call", {**CALL, "to": "+19002345678"}, KEY)  # premium rate
    corrected = keyed("make_call", CALL, KEY)

    assert (refused.status_code, corrected.status_code) == (403, 201)
    assert len(twilio.creations()) == 1


def test_a_request_twilio_refused_releases_its_key(twilio: TwilioStandIn, storage: Azurite) -> None:
    twilio.fail_next(Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)))
    refused = keyed("make_call", CALL, KEY)
    retried = keyed("make_call", CALL, KEY)

    assert (refused.status_code, retried.status_code) == (400, 201)
    assert "Idempotent-Replayed" not in retried.headers
    assert len(twilio.creations()) == 2


def test_a_request_that_never_reached_twilio_releases_its_key(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.setenv("TWILIO_API_BASE_URL", f"http://127.0.0.1:{free_port()}")
    unreachable = keyed("make_call", CALL, KEY)
    env.setenv("TWILIO_API_BASE_URL", twilio.url)
    clear_caches()
    retried = keyed("make_call", CALL, KEY)

    assert unreachable.status_code == 502
    assert "nothing was sent" in error_of(unreachable)["message"]
    assert retried.status_code == 201
    assert len(twilio.creations()) == 1


def test_a_request_whose_connection_to_twilio_timed_out_releases_its_key(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.setenv("TWILIO_HTTP_TIMEOUT", "0.1")
    with unaccepting_port() as url:
        env.setenv("TWILIO_API_BASE_URL", url)
        timed_out = keyed("make_call", CALL, KEY)
    env.setenv("TWILIO_API_BASE_URL", twilio.url)
    env.setenv("TWILIO_HTTP_TIMEOUT", "10")
    clear_caches()
    retried = keyed("make_call", CALL, KEY)

    assert timed_out.status_code == 504
    assert "nothing was sent" in error_of(timed_out)["message"]
    assert (retried.status_code, retried.headers.get("Idempotent-Replayed")) == (201, None)


def test_a_request_refused_with_503_after_claiming_its_key_leaves_it_free(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.delenv("TWILIO_AUTH_TOKEN")
    refused = keyed("make_call", CALL, KEY)
    env.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    clear_caches()
    retried = keyed("make_call", CALL, KEY)

    assert (refused.status_code, retried.status_code) == (503, 201)
    assert "Idempotent-Replayed" not in retried.headers
    assert len(twilio.creations()) == 1


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault(status=500), 502), (Fault(drop=True), 502), (Fault(delay=3.0), 504)],
    ids=["twilio 500", "dropped", "timed out"],
)
def test_an_outcome_unknown_answer_is_replayed_without_dialling_again(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch, fault: Fault, status: int
) -> None:
    env.setenv("TWILIO_HTTP_TIMEOUT", "1" if status == 504 else "10")
    twilio.fail_next(fault)
    first = keyed("make_call", CALL, KEY)
    again = keyed("make_call", CALL, KEY)

    assert first.status_code == again.status_code == status
    assert "unknown" in error_of(again)["message"]
    assert body_json(again) == body_json(first)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(twilio.creations()) == 1


# --- how long a key and a claim are kept -----------------------------------------------------------------------------


def _age(storage: Azurite, function: str, age: timedelta, **fields: Any) -> None:
    """Make the one stored key of `function` older, as time would."""
    keys = table(storage, "idempotency")
    (entity,) = keys.query_entities("PartitionKey eq @function", parameters={"function": function})
    keys.upsert_entity({**entity, "Created": datetime.now(UTC) - age, **fields})


def test_a_key_is_remembered_for_24_hours(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(hours=23, minutes=59))

    again = keyed("make_call", CALL, KEY)

    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(twilio.creations()) == 1


def test_a_key_is_forgotten_after_24_hours(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(hours=24, seconds=1))

    again = keyed("make_call", {**CALL, "message": "A new day"}, KEY)

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert len(twilio.creations()) == 2


def test_a_claim_abandoned_in_flight_answers_that_the_outcome_is_unknown(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(minutes=5, seconds=10), State="pending")

    again = keyed("make_call", CALL, KEY)

    assert (again.status_code, body_json(again), again.headers["Idempotent-Replayed"]) == (502, ABANDONED, "true")
    assert len(twilio.creations()) == 1


def test_a_claim_in_flight_for_under_5_minutes_is_still_in_progress(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(minutes=4, seconds=50), State="pending")

    again = keyed("make_call", CALL, KEY)

    # dict(): the header's name as the host sends it, not a lookup whatever its case.
    assert (again.status_code, body_json(again), dict(again.headers)["Retry-After"]) == (409, IN_PROGRESS, "1")
    assert len(twilio.creations()) == 1


def test_a_key_older_than_24_hours_is_overwritten_when_it_comes_back(held_twilio: HeldTwilio, storage: Azurite) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(hours=24, seconds=1))
    held_twilio.arrived.clear()
    held_twilio.gate.clear()
    in_flight = threading.Thread(target=lambda: keyed("make_call", {**CALL, "message": "A new day"}, KEY))
    in_flight.start()
    try:
        assert held_twilio.arrived.wait(30)
        (entity,) = table(storage, "idempotency").list_entities()
    finally:
        held_twilio.gate.set()
        in_flight.join()

    # Nothing of the first request's answer is left beside the new claim.
    assert (entity["State"], sorted(entity)) == (
        "pending",
        ["Created", "Fingerprint", "PartitionKey", "RowKey", "State"],
    )


# --- without a key, and what a key costs in Table round trips --------------------------------------------------------


def test_without_a_key_every_request_reaches_twilio(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, None)
    keyed("make_call", CALL, None)

    assert len(twilio.creations()) == 2


def test_a_key_costs_a_request_two_table_round_trips(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, table_round_trips: list[str]
) -> None:
    env.setenv("DESTINATION_HOURLY_LIMIT", "0")  # the limits' own round trips are counted in test_limits.py
    assert keyed("make_call", CALL, "first").status_code == 201  # creates the table
    table_round_trips.clear()

    assert keyed("make_call", CALL, "second").status_code == 201
    keys = [trip for trip in table_round_trips if "/idempotency" in trip]  # the outcome's, in test_outcomes.py
    assert len(keys) == 2, table_round_trips


def test_a_replay_costs_two_table_round_trips(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, table_round_trips: list[str]
) -> None:
    env.setenv("DESTINATION_HOURLY_LIMIT", "0")
    assert keyed("make_call", CALL, KEY).status_code == 201
    table_round_trips.clear()

    assert keyed("make_call", CALL, KEY).headers["Idempotent-Replayed"] == "true"
    assert len(table_round_trips) == 2, table_round_trips


# --- storage missing or down, and what is stored ---------------------------------------------------------------------


def test_a_key_without_storage_answers_503(twilio: TwilioStandIn) -> None:
    response = keyed("make_call", CALL, KEY)

    assert (response.status_code, body_json(response)) == (503, NO_STORAGE)
    assert twilio.received == []


def test_a_key_is_held_to_the_storage_setting_of_the_settings_it_is_given(storage: Azurite) -> None:
    sent: list[bool] = []

    def send() -> dict[str, Any]:
        sent.append(True)
        return {"sid": "CA1"}

    with pytest.raises(ApiError) as refused:
        deliver("make_call", Call.from_params(CALL, CALLER), KEY, CALLER, send)

    assert (refused.value.status, refused.value.body()) == (503, NO_STORAGE)
    assert sent == []


def test_a_key_with_storage_down_answers_503_and_twilio_is_not_asked(
    twilio: TwilioStandIn, unreachable_storage: None
) -> None:
    response = keyed("send_sms", SMS, KEY)

    assert response.status_code == 503
    assert error_of(response)["code"] == "state_unavailable"
    assert "Retry-After" in response.headers
    assert twilio.received == []


def test_what_is_stored_is_hashes_and_the_answer_never_the_key_text_or_a_secret(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    answer = body_json(keyed("make_call", CALL, KEY))

    (entity,) = table(storage, "idempotency").list_entities()
    stored = json.dumps({name: str(value) for name, value in entity.items()})
    assert (entity["PartitionKey"], entity["RowKey"]) == ("make_call", hashlib.sha256(KEY.encode()).hexdigest())
    assert re.fullmatch("[0-9a-f]{64}", entity["Fingerprint"])
    assert json.loads(entity["Body"]) == answer
    for secret in (KEY, ACCOUNT_SID, AUTH_TOKEN, CALL["message"]):
        assert secret not in stored


# --- what is logged when the store fails or changes underneath a claim -----------------------------------------------


def test_a_store_failing_while_a_key_is_claimed_is_logged_as_a_warning(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    keyed("make_call", CALL, KEY)  # the app now holds the table as created
    TableServiceClient.from_connection_string(storage.connection_string).delete_table("idempotency")

    with caplog.at_level(logging.INFO):
        response = keyed("make_call", CALL, "another-key")

    assert (response.status_code, error_of(response)["code"]) == (503, "state_unavailable")
    assert logged(caplog, "shared.storage") == [
        ("WARNING", "Table storage failed while claiming an Idempotency-Key: ResourceNotFoundError")
    ]
    assert len(twilio.creations()) == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (None, (201, "Could not record the answer to an Idempotency-Key (ResourceModifiedError)")),
        (
            Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)),
            (400, "Could not release an Idempotency-Key (ResourceModifiedError)"),
        ),
    ],
    ids=["recording a 201", "releasing after a 400"],
)
def test_a_claim_changed_while_twilio_answered_is_logged_as_an_error_and_the_answer_stands(
    held_twilio: HeldTwilio,
    storage: Azurite,
    caplog: pytest.LogCaptureFixture,
    fault: Fault | None,
    expected: tuple[int, str],
) -> None:
    if fault is not None:
        held_twilio.fail_next(fault)
    held_twilio.gate.clear()
    answers: list[func.HttpResponse] = []
    in_flight = threading.Thread(target=lambda: answers.append(keyed("make_call", CALL, KEY)))
    with caplog.at_level(logging.INFO):
        in_flight.start()
        try:
            assert held_twilio.arrived.wait(30)
            _age(storage, "make_call", timedelta(0))  # rewritten: the claim's etag no longer matches
        finally:
            held_twilio.gate.set()
            in_flight.join()

    status, line = expected
    assert answers[0].status_code == status
    assert logged(caplog, "shared.idempotency") == [("ERROR", line)]


# --- a store other requests contend in, scripted ---------------------------------------------------------------------


class ContestedStore(StandIn):
    """A Table endpoint whose tables exist, answering each request on an entity with the next of `script`:
    what the store answers while other requests take, release and retake the same key."""

    def __init__(self, *script: Answer) -> None:
        super().__init__()
        self.script = deque(script)

    def answer(self, request: Received) -> Answer:
        if request.path.endswith("/Tables"):
            return 409, table_error("TableAlreadyExists"), {}
        return self.script.popleft()


def _row(fingerprint: str, age: timedelta) -> Answer:
    """A pending row another request wrote `age` ago."""
    etag = f"W/\"datetime'{secrets.token_hex(8)}'\""
    created = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    row = {"odata.etag": etag, "Fingerprint": fingerprint, "State": "pending", "Created@odata.type": "Edm.DateTime"}
    return 200, {**row, "Created": created}, {"ETag": etag}


EXISTS: Answer = 409, table_error("EntityAlreadyExists"), {}
GONE: Answer = 404, table_error("ResourceNotFound"), {}
CHANGED: Answer = 412, table_error("UpdateConditionNotSatisfied"), {}
CREATED: Answer = 201, {}, {"ETag": "W/\"datetime'created'\""}
UPDATED: Answer = 204, {}, {"ETag": "W/\"datetime'updated'\""}


@pytest.fixture
def contested(env: pytest.MonkeyPatch) -> Iterator[ContestedStore]:
    """The app's storage is a ContestedStore (its script added by the test), and no limit applies."""
    env.setenv("DESTINATION_HOURLY_LIMIT", "0")  # the store then answers only for the key
    with as_storage(ContestedStore(), env) as store:
        yield store


def test_a_key_released_before_it_could_be_read_is_claimed_on_the_next_round(
    twilio: TwilioStandIn, contested: ContestedStore
) -> None:
    contested.script.extend([EXISTS, GONE, CREATED, UPDATED])

    response = keyed("make_call", CALL, KEY)

    assert response.status_code == 201
    assert [r.method for r in contested.received if "/idempotency" in r.path] == ["POST", "GET", "POST", "PUT"]
    assert len(twilio.creations()) == 1


def test_a_key_the_store_cannot_settle_answers_503_and_twilio_is_not_asked(
    twilio: TwilioStandIn, contested: ContestedStore
) -> None:
    contested.script.extend([EXISTS, GONE] * 8)

    response = keyed("make_call", CALL, KEY)

    assert (response.status_code, body_json(response), response.headers["Retry-After"]) == (
        503,
        {
            "error": {
                "code": "state_unavailable",
                "message": "The app's state store (Table storage) is too busy to settle who holds this"
                " Idempotency-Key; nothing was sent. Try again shortly.",
                "target": None,
            }
        },
        "5",
    )
    assert twilio.received == []


def test_an_expired_key_another_request_retakes_first_is_in_progress(
    twilio: TwilioStandIn, contested: ContestedStore
) -> None:
    ours = idempotency.fingerprint(Call.from_params(CALL, get_settings()))
    contested.script.extend([EXISTS, _row(ours, timedelta(hours=25)), CHANGED, EXISTS, _row(ours, timedelta(0))])

    response = keyed("make_call", CALL, KEY)

    assert (response.status_code, body_json(response)) == (409, IN_PROGRESS)
    assert twilio.received == []
