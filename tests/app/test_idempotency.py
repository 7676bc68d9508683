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
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devtools.azurite import Azurite
from devtools.ports import free_port
from devtools.sandbox.answers import twilio_error
from shared import idempotency
from shared.errors import ApiError
from shared.outbound import Call, deliver
from shared.settings import Settings, get_settings
from testing.process_state import clear_caches
from testing.standins import Fault, Received, StandIn, TwilioStandIn
from tests.app.state_support import (
    ANSWER_LOST,
    CALL,
    DROPPED,
    SMS,
    Answer,
    Gate,
    HeldTwilio,
    Mishap,
    TableProxy,
    as_storage,
    keyed,
    sent_at_once,
    table,
    table_error,
)
from tests.servers import unaccepting_port
from tests.support import ACCOUNT_SID, AUTH_TOKEN, body_json, error_of, eventually, function_url, invoke, logged

KEY = "order-1234-call"
DOCS = Path(__file__).resolve().parents[2] / "docs"
MALFORMED = {
    "error": {
        "code": "invalid_idempotency_key",
        "message": "Idempotency-Key must be 1 to 255 printable ASCII characters.",
        "target": "Idempotency-Key",
    }
}
REPEATED = {
    "error": {
        "code": "invalid_idempotency_key",
        "message": "Send one Idempotency-Key header, with no comma in the key: a repeated header arrives joined"
        " with commas.",
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
OUTCOME_UNKNOWN = {
    "error": {
        "code": "outcome_unknown",
        "message": "The first request with this Idempotency-Key may have reached Twilio, but its answer was not"
        " recorded: the call or text may have gone through. Check before retrying with a new key.",
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
    with sent_at_once(6, lambda: keyed("send_sms", SMS, KEY).status_code) as answers:
        try:
            assert held_twilio.arrived.wait(30)
            # While the first is held at Twilio, every other request must be answered, and only with 409.
            assert eventually(lambda: len(answers) == 5, timeout=30)
        finally:
            held_twilio.gate.set()

    assert len(held_twilio.creations()) == 1
    assert answers == [409, 409, 409, 409, 409, 201]


# --- which keys are accepted -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["", " \t ", "x" * 256, "caf\u00e9", "tab\there", "del\x7f", "form-feed\x0c"],
    ids=["empty", "blank", "256 characters", "not ascii", "a tab", "a delete", "a form feed"],
)
def test_a_malformed_key_answers_400(twilio: TwilioStandIn, storage: Azurite, key: str) -> None:
    response = keyed("make_call", CALL, key)

    assert (response.status_code, body_json(response)) == (400, MALFORMED)
    assert twilio.received == []


@pytest.mark.parametrize("key", ["x", "!" + " !~" * 84 + "~!"], ids=["1 character", "255 characters"])
def test_a_key_of_1_to_255_printable_characters_is_accepted(twilio: TwilioStandIn, storage: Azurite, key: str) -> None:
    assert keyed("make_call", CALL, key).status_code == 201


def test_spaces_around_a_key_are_not_part_of_it(twilio: TwilioStandIn, storage: Azurite) -> None:
    first = keyed("make_call", CALL, "ws-key")
    again = keyed("make_call", CALL, " ws-key \t")

    assert (again.headers.get("Idempotent-Replayed"), body_json(again)) == ("true", body_json(first))
    assert len(twilio.creations()) == 1


@pytest.mark.parametrize("joined", ["ws-key,ws-key", "ws-key, ws-key", "a,b", ",ws-key"])
def test_a_key_header_sent_twice_which_arrives_joined_with_a_comma_answers_400(
    twilio: TwilioStandIn, storage: Azurite, joined: str
) -> None:
    response = keyed("make_call", CALL, joined)

    assert (response.status_code, body_json(response)) == (400, REPEATED)
    assert twilio.received == []


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


@pytest.mark.parametrize(
    ("refusal", "why"),
    [(Mishap(status=500), "HttpResponseError"), (DROPPED, "not deleted")],
    ids=["the store fails", "every delete lost"],
)
def test_a_release_the_store_does_not_carry_out_is_logged_with_why(
    twilio: TwilioStandIn,
    table_proxy: TableProxy,
    caplog: pytest.LogCaptureFixture,
    refusal: Mishap,
    why: str,
) -> None:
    twilio.fail_next(Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)))
    table_proxy.upon("DELETE", "idempotency", then=refusal)

    refused = keyed("make_call", CALL, KEY)

    assert refused.status_code == 400
    assert ("ERROR", f"Could not release an Idempotency-Key ({why})") in logged(caplog, "shared.idempotency")


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


def test_an_outcome_unknown_answer_is_logged_with_the_key_hash_and_no_sid(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    twilio.fail_next(Fault(status=500))
    caplog.set_level(logging.INFO, logger="shared.outbound")

    assert keyed("make_call", CALL, KEY).status_code == 502

    key_hash = hashlib.sha256(KEY.encode()).hexdigest()
    assert logged(caplog, "shared.outbound") == [
        ("INFO", f"idempotency_key Function=make_call KeyHash={key_hash} Replay=false Status=502 Sid=")
    ]


def test_a_replayed_outcome_unknown_answer_is_logged_with_no_sid(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    twilio.fail_next(Fault(status=500))
    keyed("make_call", CALL, KEY)
    caplog.set_level(logging.INFO, logger="shared.outbound")

    assert keyed("make_call", CALL, KEY).status_code == 502

    key_hash = hashlib.sha256(KEY.encode()).hexdigest()
    assert logged(caplog, "shared.outbound") == [
        ("INFO", f"idempotency_key Function=make_call KeyHash={key_hash} Replay=true Status=502 Sid=")
    ]


def test_send_sms_logs_a_keyed_text_with_the_key_hash_and_the_sid(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.outbound")

    assert keyed("send_sms", SMS, KEY).status_code == 201

    key_hash = hashlib.sha256(KEY.encode()).hexdigest()
    assert logged(caplog, "shared.outbound")[-1] == (
        "INFO",
        f"idempotency_key Function=send_sms KeyHash={key_hash} Replay=false Status=201 Sid={twilio.sids[0]}",
    )


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


def test_a_claim_left_sending_for_over_5_minutes_answers_that_twilio_may_have_been_asked(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(minutes=5, seconds=10), State="sending")

    again = keyed("make_call", CALL, KEY)

    assert (again.status_code, body_json(again), again.headers["Idempotent-Replayed"]) == (
        502,
        OUTCOME_UNKNOWN,
        "true",
    )
    assert len(twilio.creations()) == 1


def test_a_claim_sending_for_under_5_minutes_is_still_in_progress(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(minutes=4, seconds=50), State="sending")

    again = keyed("make_call", CALL, KEY)

    # dict(): the header's name as the host sends it, not a lookup whatever its case.
    assert (again.status_code, body_json(again), dict(again.headers)["Retry-After"]) == (409, IN_PROGRESS, "1")
    assert len(twilio.creations()) == 1


def test_a_claim_pending_for_under_30_seconds_is_still_in_progress(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(seconds=29), State="pending")

    again = keyed("make_call", CALL, KEY)

    assert (again.status_code, body_json(again)) == (409, IN_PROGRESS)
    assert len(twilio.creations()) == 1


def test_a_claim_pending_for_30_seconds_is_taken_over_and_twilio_asked(twilio: TwilioStandIn, storage: Azurite) -> None:
    """Pending: the claim never reached Twilio, so nothing was sent under it."""
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(seconds=30), State="pending")

    again = keyed("make_call", CALL, KEY)

    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, None)
    assert len(twilio.creations()) == 2


def test_a_pending_claim_past_its_lease_is_taken_over_even_for_another_request(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    keyed("make_call", CALL, KEY)
    _age(storage, "make_call", timedelta(seconds=31), State="pending")

    corrected = keyed("make_call", {**CALL, "message": "Your table is ready at last"}, KEY)

    assert corrected.status_code == 201
    assert len(twilio.creations()) == 2


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

    # Nothing of the first request's answer is left beside the new claim, marked sending while Twilio answers.
    assert (entity["State"], sorted(entity)) == (
        "sending",
        ["Created", "Fingerprint", "PartitionKey", "RowKey", "State", "Token"],
    )


# --- without a key, and what a key costs in Table round trips --------------------------------------------------------


def test_without_a_key_every_request_reaches_twilio(twilio: TwilioStandIn, storage: Azurite) -> None:
    keyed("make_call", CALL, None)
    keyed("make_call", CALL, None)

    assert len(twilio.creations()) == 2


def test_a_key_costs_a_request_three_table_round_trips(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, table_round_trips: list[str]
) -> None:
    env.setenv("DESTINATION_HOURLY_LIMIT", "0")  # the limits' own round trips are counted in test_limits.py
    assert keyed("make_call", CALL, "first").status_code == 201  # creates the table
    table_round_trips.clear()

    assert keyed("make_call", CALL, "second").status_code == 201
    # Claimed, marked sending, answer recorded (the outcome's own trip: in test_outcomes.py).
    keys = [trip.split(" ")[0] for trip in table_round_trips if "/idempotency" in trip]
    assert keys == ["POST", "PUT", "PUT"], table_round_trips


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
    twilio: TwilioStandIn, table_proxy: TableProxy, caplog: pytest.LogCaptureFixture
) -> None:
    table_proxy.upon(None, "idempotency", then=DROPPED)

    with caplog.at_level(logging.INFO):
        response = keyed("make_call", CALL, KEY)

    assert (response.status_code, error_of(response)["code"]) == (503, "state_unavailable")
    assert logged(caplog, "shared.storage") == [
        ("WARNING", "Table storage failed while claiming an Idempotency-Key: ServiceResponseError")
    ]
    assert twilio.received == []


def test_a_store_failing_while_a_key_is_marked_as_sending_is_logged_and_nothing_is_sent(
    twilio: TwilioStandIn, table_proxy: TableProxy, caplog: pytest.LogCaptureFixture
) -> None:
    table_proxy.upon("PUT", "idempotency", then=Mishap(status=500))

    with caplog.at_level(logging.INFO):
        response = keyed("make_call", CALL, KEY)

    assert (response.status_code, error_of(response)["code"]) == (503, "state_unavailable")
    assert ("WARNING", "Table storage failed while marking an Idempotency-Key as sending: HttpResponseError") in logged(
        caplog, "shared.storage"
    )
    assert twilio.received == []


def test_an_answer_the_store_will_not_record_is_logged_with_its_status_and_why(
    twilio: TwilioStandIn, table_proxy: TableProxy, caplog: pytest.LogCaptureFixture
) -> None:
    twilio.fail_next(Fault(status=500))
    table_proxy.upon("PUT", "idempotency", Mishap(), then=Mishap(status=500))  # marked sending, then not recorded

    assert keyed("make_call", CALL, KEY).status_code == 502

    assert ("ERROR", "Could not record the answer (502) to an Idempotency-Key (HttpResponseError)") in logged(
        caplog, "shared.idempotency"
    )


def _rewrite_while_twilio_answers(held_twilio: HeldTwilio, storage: Azurite, **fields: Any) -> func.HttpResponse:
    """A make_call whose claim is rewritten with `fields` while Twilio holds its request."""
    held_twilio.gate.clear()
    answers: list[func.HttpResponse] = []
    in_flight = threading.Thread(target=lambda: answers.append(keyed("make_call", CALL, KEY)))
    in_flight.start()
    try:
        assert held_twilio.arrived.wait(30)
        _age(storage, "make_call", timedelta(0), **fields)  # rewritten: the claim's etag no longer matches
    finally:
        held_twilio.gate.set()
        in_flight.join()
    return answers[0]


def test_a_claim_rewritten_while_twilio_answered_is_still_recorded(
    held_twilio: HeldTwilio, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        first = _rewrite_while_twilio_answers(held_twilio, storage)
    again = keyed("make_call", CALL, KEY)

    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true")
    assert body_json(again) == body_json(first)
    assert logged(caplog, "shared.idempotency") == []


def test_a_claim_rewritten_while_twilio_refused_is_still_released(
    held_twilio: HeldTwilio, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    held_twilio.fail_next(Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)))
    with caplog.at_level(logging.INFO):
        refused = _rewrite_while_twilio_answers(held_twilio, storage)
    retried = keyed("make_call", CALL, KEY)

    assert (refused.status_code, retried.status_code, retried.headers.get("Idempotent-Replayed")) == (400, 201, None)
    assert logged(caplog, "shared.idempotency") == []


def test_a_claim_taken_over_while_twilio_answered_is_logged_as_an_error_with_the_sid_and_the_answer_stands(
    held_twilio: HeldTwilio, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        first = _rewrite_while_twilio_answers(held_twilio, storage, Token="another-request")

    assert first.status_code == 201
    sid = body_json(first)["sid"]
    assert logged(caplog, "shared.idempotency") == [
        ("ERROR", f"Could not record the answer (201, sid {sid}) to an Idempotency-Key (taken over)")
    ]


def test_a_claim_taken_over_while_twilio_refused_is_left_to_its_new_holder(
    held_twilio: HeldTwilio, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    held_twilio.fail_next(Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)))
    with caplog.at_level(logging.INFO):
        refused = _rewrite_while_twilio_answers(held_twilio, storage, Token="another-request")

    assert refused.status_code == 400
    (entity,) = table(storage, "idempotency").list_entities()
    assert entity["Token"] == "another-request"
    assert logged(caplog, "shared.idempotency") == []


# --- a store that loses, drops or delays chosen requests (Azurite behind a TableProxy) ------------------------------


def _stored(storage: Azurite) -> list[dict[str, Any]]:
    return [dict(entity) for entity in table(storage, "idempotency").list_entities()]


def _release_lost(proxy: TableProxy, storage: Azurite) -> None:
    """(a) The limits cannot be read, so nothing is sent, and the key's release is lost too."""
    proxy.upon("GET", "limits", then=DROPPED)
    proxy.upon("DELETE", "idempotency", then=DROPPED)


def _claim_and_its_reading_lost(proxy: TableProxy, storage: Azurite) -> None:
    """(b) The claim is written but its answer is lost, and so is every reading of it."""
    proxy.upon("POST", "idempotency", ANSWER_LOST)
    proxy.upon("GET", "idempotency", then=DROPPED)


def _everything_late(proxy: TableProxy, storage: Azurite) -> None:
    """(c) Every request on the key arrives after the app gave up on it (2 s): the claim lands later."""
    proxy.upon(None, "idempotency", then=Mishap(delay=3))


STUCK = [_release_lost, _claim_and_its_reading_lost, _everything_late]
STUCK_IDS = ["(a) limits and release lost", "(b) claim's answer and reading lost", "(c) everything late"]


def _nothing_sent(proxy: TableProxy, storage: Azurite, stuck: Any) -> func.HttpResponse:
    """A make_call answered 503 "nothing was sent" that leaves its claim behind."""
    stuck(proxy, storage)
    first = keyed("make_call", CALL, KEY)
    proxy.clear()
    assert eventually(lambda: len(_stored(storage)) == 1)  # a late claim lands after its request answered
    return first


@pytest.mark.parametrize("stuck", STUCK, ids=STUCK_IDS)
def test_a_key_left_claimed_by_a_request_that_sent_nothing_is_taken_over_after_30_seconds(
    twilio: TwilioStandIn, storage: Azurite, table_proxy: TableProxy, stuck: Any
) -> None:
    first = _nothing_sent(table_proxy, storage, stuck)
    _age(storage, "make_call", timedelta(seconds=30))

    retried = keyed("make_call", CALL, KEY)

    assert (first.status_code, error_of(first)["code"]) == (503, "state_unavailable")
    assert "nothing was sent" in error_of(first)["message"]
    assert (retried.status_code, retried.headers.get("Idempotent-Replayed")) == (201, None)
    assert len(twilio.creations()) == 1


@pytest.mark.parametrize("stuck", STUCK, ids=STUCK_IDS)
def test_a_key_left_claimed_by_a_request_that_sent_nothing_is_in_progress_for_30_seconds(
    twilio: TwilioStandIn, storage: Azurite, table_proxy: TableProxy, stuck: Any
) -> None:
    _nothing_sent(table_proxy, storage, stuck)
    _age(storage, "make_call", timedelta(seconds=29))

    retried = keyed("make_call", CALL, KEY)

    assert (retried.status_code, body_json(retried)) == (409, IN_PROGRESS)
    assert twilio.received == []


def test_a_claim_whose_answer_was_lost_is_recognised_as_the_requests_own(
    twilio: TwilioStandIn, table_proxy: TableProxy
) -> None:
    table_proxy.upon("POST", "idempotency", ANSWER_LOST)
    first = keyed("make_call", CALL, KEY)
    again = keyed("make_call", CALL, KEY)

    assert first.status_code == 201
    assert (again.headers.get("Idempotent-Replayed"), body_json(again)) == ("true", body_json(first))
    assert len(twilio.creations()) == 1


def test_a_mark_as_sending_whose_answer_was_lost_is_recognised_and_twilio_asked_once(
    twilio: TwilioStandIn, table_proxy: TableProxy
) -> None:
    """The SDK tries the lost write again and meets its own change (412)."""
    table_proxy.upon("PUT", "idempotency", ANSWER_LOST)

    assert keyed("make_call", CALL, KEY).status_code == 201
    assert len(twilio.creations()) == 1


def test_a_key_the_store_would_not_mark_as_sending_answers_503_and_is_freed(
    twilio: TwilioStandIn, table_proxy: TableProxy
) -> None:
    table_proxy.upon("PUT", "idempotency", then=DROPPED)
    refused = keyed("make_call", CALL, KEY)
    table_proxy.clear()
    retried = keyed("make_call", CALL, KEY)

    assert (refused.status_code, error_of(refused)["message"]) == (
        503,
        "The app's state store (Table storage) could not mark this Idempotency-Key as sending; nothing was sent."
        " Try again shortly.",
    )
    assert (retried.status_code, retried.headers.get("Idempotent-Replayed")) == (201, None)
    assert len(twilio.creations()) == 1


def test_a_mark_as_sending_that_landed_unseen_while_the_store_kept_failing_answers_retries_like_a_sent_request(
    twilio: TwilioStandIn, storage: Azurite, table_proxy: TableProxy
) -> None:
    """What the retry cannot tell apart: nothing was sent, yet the key says it may have been."""
    table_proxy.upon("PUT", "idempotency", ANSWER_LOST, then=DROPPED)
    table_proxy.upon("GET", "idempotency", then=DROPPED)
    table_proxy.upon("DELETE", "idempotency", then=DROPPED)
    first = keyed("make_call", CALL, KEY)
    table_proxy.clear()
    _age(storage, "make_call", timedelta(minutes=5))

    retried = keyed("make_call", CALL, KEY)

    assert (first.status_code, error_of(first)["code"]) == (503, "state_unavailable")
    assert (retried.status_code, body_json(retried)) == (502, OUTCOME_UNKNOWN)
    assert twilio.received == []


def test_a_request_whose_claim_was_taken_over_before_it_was_sending_answers_409_and_never_asks_twilio(
    twilio: TwilioStandIn, storage: Azurite, table_proxy: TableProxy
) -> None:
    held = Gate()
    table_proxy.upon("PUT", "idempotency", Mishap(gate=held))  # its mark as sending
    answers: list[func.HttpResponse] = []
    slow = threading.Thread(target=lambda: answers.append(keyed("make_call", CALL, KEY)))
    slow.start()
    try:
        assert held.arrived.wait(30)
        _age(storage, "make_call", timedelta(0), Token="the-retry-that-took-it-over")
    finally:
        held.opened.set()
        slow.join()

    assert (answers[0].status_code, body_json(answers[0])) == (409, IN_PROGRESS)
    assert twilio.received == []


def test_retries_at_once_on_a_claim_past_its_lease_take_it_over_once(
    held_twilio: HeldTwilio, storage: Azurite, table_proxy: TableProxy
) -> None:
    _nothing_sent(table_proxy, storage, _release_lost)
    _age(storage, "make_call", timedelta(seconds=31))
    held_twilio.gate.clear()
    with sent_at_once(4, lambda: keyed("make_call", CALL, KEY).status_code) as answers:
        try:
            assert held_twilio.arrived.wait(30)
            assert eventually(lambda: len(answers) == 3, timeout=30)
        finally:
            held_twilio.gate.set()

    assert answers == [409, 409, 409, 201]
    assert len(held_twilio.creations()) == 1


def test_a_takeover_based_on_an_old_reading_loses_to_the_one_that_landed_first(
    twilio: TwilioStandIn, storage: Azurite, table_proxy: TableProxy
) -> None:
    _nothing_sent(table_proxy, storage, _release_lost)
    _age(storage, "make_call", timedelta(seconds=31))
    held = Gate()
    table_proxy.upon("PUT", "idempotency", Mishap(gate=held))  # the first retry's takeover
    late: list[func.HttpResponse] = []
    first_retry = threading.Thread(target=lambda: late.append(keyed("make_call", CALL, KEY)))
    first_retry.start()
    try:
        assert held.arrived.wait(30)
        second_retry = keyed("make_call", CALL, KEY)
    finally:
        held.opened.set()
        first_retry.join()

    assert second_retry.status_code == 201
    assert (late[0].status_code, late[0].headers.get("Idempotent-Replayed")) == (201, "true")
    assert len(twilio.creations()) == 1


def test_a_request_whose_credentials_fail_leaves_its_key_to_be_taken_over_when_its_release_is_lost(
    twilio: TwilioStandIn, storage: Azurite, table_proxy: TableProxy, env: pytest.MonkeyPatch
) -> None:
    """Credentials are read before the key is marked sending, so the key is still only pending."""
    env.delenv("TWILIO_AUTH_TOKEN")
    table_proxy.upon("DELETE", "idempotency", then=DROPPED)
    refused = keyed("make_call", CALL, KEY)
    table_proxy.clear()
    env.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    clear_caches()
    _age(storage, "make_call", timedelta(seconds=30))

    retried = keyed("make_call", CALL, KEY)

    assert (refused.status_code, error_of(refused)["code"]) == (503, "credentials_unavailable")
    assert (retried.status_code, retried.headers.get("Idempotent-Replayed")) == (201, None)


# (d) Twilio created the call, then its answer could not be recorded at first. Each try the SDK makes of the
# record (three) is dropped before it reaches Azurite; the mark as sending before it goes through.
RECORD_DROPPED = [Mishap(), DROPPED, DROPPED, DROPPED]


def test_a_201_whose_record_was_dropped_is_recorded_on_a_second_try(
    twilio: TwilioStandIn, table_proxy: TableProxy, caplog: pytest.LogCaptureFixture
) -> None:
    table_proxy.upon("PUT", "idempotency", *RECORD_DROPPED)
    with caplog.at_level(logging.INFO):
        first = keyed("make_call", CALL, KEY)
    again = keyed("make_call", CALL, KEY)

    assert first.status_code == 201
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true")
    assert body_json(again) == body_json(first)
    assert logged(caplog, "shared.idempotency") == []


def test_a_201_that_cannot_be_recorded_is_logged_as_an_error_with_its_sid_and_the_answer_stands(
    twilio: TwilioStandIn, table_proxy: TableProxy, caplog: pytest.LogCaptureFixture
) -> None:
    table_proxy.upon("PUT", "idempotency", Mishap(), then=DROPPED)
    with caplog.at_level(logging.INFO):
        first = keyed("make_call", CALL, KEY)

    assert first.status_code == 201
    sid = body_json(first)["sid"]
    assert logged(caplog, "shared.idempotency") == [
        ("ERROR", f"Could not record the answer (201, sid {sid}) to an Idempotency-Key (not written)")
    ]


@pytest.mark.parametrize(
    ("age", "expected"),
    [(timedelta(minutes=4, seconds=50), (409, IN_PROGRESS)), (timedelta(minutes=5), (502, OUTCOME_UNKNOWN))],
    ids=["under 5 minutes", "after 5 minutes"],
)
def test_a_201_that_cannot_be_recorded_answers_retries_409_then_that_twilio_may_have_been_asked(
    twilio: TwilioStandIn,
    storage: Azurite,
    table_proxy: TableProxy,
    age: timedelta,
    expected: tuple[int, dict[str, Any]],
) -> None:
    table_proxy.upon("PUT", "idempotency", Mishap(), then=DROPPED)
    assert keyed("make_call", CALL, KEY).status_code == 201
    table_proxy.clear()
    _age(storage, "make_call", age)

    again = keyed("make_call", CALL, KEY)

    assert (again.status_code, body_json(again)) == expected
    assert len(twilio.creations()) == 1


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
    contested.script.extend([EXISTS, GONE, CREATED, UPDATED, UPDATED])

    response = keyed("make_call", CALL, KEY)

    assert response.status_code == 201
    assert [r.method for r in contested.received if "/idempotency" in r.path] == ["POST", "GET", "POST", "PUT", "PUT"]
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


# --- what the docs say of it -----------------------------------------------------------------------------------------


def _prose(page: str) -> str:
    """The page's words, however its lines wrap."""
    return " ".join((DOCS / page).read_text(encoding="utf-8").split())


def test_the_reliability_page_quotes_the_answer_that_twilio_may_have_been_asked() -> None:
    assert f'That `502` says: "{OUTCOME_UNKNOWN["error"]["message"]}"' in _prose("reliability.md")


def test_the_reliability_page_gives_the_leases_the_app_keeps() -> None:
    page = _prose("reliability.md")

    assert f"`409 request_in_progress` until {idempotency.CLAIM_LEASE.seconds} seconds after the claim" in page
    assert f"`409` until {idempotency.LEASE.seconds // 60} minutes after the claim" in page


def test_the_error_table_quotes_the_answer_to_a_key_header_sent_twice() -> None:
    assert f'(`a,b`): "{REPEATED["error"]["message"]}"' in _prose("api.md")
