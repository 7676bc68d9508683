"""Outcomes: each status callback kept once in the `outcomes` table, and served at GET /api/calls/{sid} and
/api/messages/{sid}, against Azurite."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import ACCOUNT_NAME, Azurite
from shared.outcomes import RETRY_HEADER, TABLE, expired
from shared.settings import ConfigurationError, Settings
from testing.standins import TwilioStandIn
from tests.app.state_support import Mishap, TableProxy, keyed, table
from tests.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FUNCTIONS,
    body_json,
    error_of,
    eventually,
    fixture,
    function_url,
    invoke,
    logged,
    signed_post,
)

CALL = {"to": "+15558675310", "message": "Your table is ready"}
TEXT = {"to": "+15558675310", "body": "Your code is 1234"}
FROM = "+15017122661"  # the `twilio` fixture's TWILIO_FROM_NUMBER
OUTCOME_FUNCTIONS = {"calls": "call_outcome", "messages": "message_outcome"}


def place_call() -> str:
    response = keyed("make_call", CALL, None)
    assert response.status_code == 201
    sid: str = body_json(response)["sid"]
    return sid


def send_text() -> str:
    response = keyed("send_sms", TEXT, None)
    assert response.status_code == 201
    sid: str = body_json(response)["sid"]
    return sid


def call_event(name: str, sid: str, token: str | None = None) -> func.HttpResponse:
    """The status callback of fixture `name`, for the call `sid`, signed as Twilio posts it (with its retry token)."""
    headers = {} if token is None else {RETRY_HEADER: token}
    return signed_post("call_status", {**fixture(name), "CallSid": sid}, headers=headers)


def text_event(name: str, sid: str, token: str | None = None) -> func.HttpResponse:
    headers = {} if token is None else {RETRY_HEADER: token}
    return signed_post("message_status", {**fixture(name), "MessageSid": sid, "SmsSid": sid}, headers=headers)


def outcome(route: str, sid: str, query: str = "") -> func.HttpResponse:
    """GET /api/<route>/<sid>, as a caller with the function key sends it."""
    return invoke(OUTCOME_FUNCTIONS[route], "GET", url=function_url(f"{route}/{sid}", query))


def rows(storage: Azurite, sid: str) -> list[str]:
    """The RowKeys of a sid's rows in the outcomes table."""
    return [
        row["RowKey"] for row in table(storage, TABLE).query_entities("PartitionKey eq @sid", parameters={"sid": sid})
    ]


# --- the first row: make_call and send_sms make a sid this app's own -------------------------------------------------


def test_a_placed_call_is_served_with_who_when_and_its_first_status(twilio: TwilioStandIn, storage: Azurite) -> None:
    before = datetime.now(UTC)
    sid = place_call()
    answer = body_json(outcome("calls", sid))

    created = datetime.fromisoformat(answer.pop("created"))
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC)
    assert answer == {
        "sid": sid,
        "to": CALL["to"],
        "from": FROM,
        "status": "queued",
        "final": False,
        "duration": None,
        "sip_response_code": None,
        "answered_by": None,
        "error": None,
        "events": [{"status": "queued", "at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z")}],
    }


def test_a_sent_text_is_served_with_who_and_its_first_status(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = send_text()
    answer = body_json(outcome("messages", sid))

    assert {name: answer[name] for name in ("sid", "to", "from", "status", "final", "error")} == {
        "sid": sid,
        "to": TEXT["to"],
        "from": FROM,
        "status": "queued",
        "final": False,
        "error": None,
    }
    assert [event["status"] for event in answer["events"]] == ["queued"]


@pytest.mark.parametrize(
    ("function", "document", "route"), [("make_call", CALL, "calls"), ("send_sms", TEXT, "messages")]
)
def test_a_201_links_to_its_outcome_in_status_url_and_location(
    twilio: TwilioStandIn, storage: Azurite, function: str, document: dict[str, str], route: str
) -> None:
    created = keyed(function, document, None)
    answer = body_json(created)

    assert answer["status_url"] == function_url(f"{route}/{answer['sid']}")
    assert ("Location", answer["status_url"]) in created.headers.items()  # spelled as HTTP spells it
    followed = invoke(OUTCOME_FUNCTIONS[route], "GET", url=answer["status_url"])
    assert (followed.status_code, body_json(followed)["sid"]) == (200, answer["sid"])


def test_a_replayed_201_links_to_the_same_outcome(twilio: TwilioStandIn, storage: Azurite) -> None:
    first = keyed("make_call", CALL, "order-1234")
    replayed = keyed("make_call", CALL, "order-1234")

    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert body_json(replayed)["status_url"] == body_json(first)["status_url"]
    assert replayed.headers["Location"] == first.headers["Location"]


# --- status callbacks: kept once, whatever order they arrive in ------------------------------------------------------


def test_a_retried_callback_adds_no_second_row(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()

    for _ in range(2):
        assert call_event("call_status_completed", sid, token="idem-token-1").status_code == 204

    assert len(rows(storage, sid)) == 2  # the first row and one event
    assert [event["status"] for event in body_json(outcome("calls", sid))["events"]] == ["queued", "completed"]


def test_a_retried_callback_without_a_token_adds_no_second_row(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = send_text()

    for _ in range(2):
        assert text_event("message_status_delivered", sid).status_code == 204

    assert len(rows(storage, sid)) == 2


def test_two_events_with_their_own_tokens_are_both_kept(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()
    call_event("call_status_ringing", sid, token="idem-token-1")
    call_event("call_status_completed", sid, token="idem-token-2")

    assert len(rows(storage, sid)) == 3


def test_a_retried_callback_is_logged_once(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    sid = place_call()
    caplog.set_level(logging.INFO, logger="shared.call_events")

    lines = []
    for _ in range(2):
        call_event("call_status_completed", sid, token="idem-token-1")
        lines.append(len([r for r in caplog.records if r.name == "shared.call_events"]))

    assert lines == [1, 1]  # logged as it first arrives, not again on its retry


def test_a_retried_callback_is_logged_as_already_kept(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    sid = place_call()
    call_event("call_status_completed", sid, token="idem-token-1")
    caplog.set_level(logging.INFO, logger="shared.outcomes")

    call_event("call_status_completed", sid, token="idem-token-1")

    assert logged(caplog, "shared.outcomes") == [("INFO", f"Already kept a status callback of {sid}: not kept twice")]


def test_a_call_keeps_the_status_furthest_along_whatever_the_arrival_order(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    sid = place_call()
    for name in ("call_status_completed", "call_status_in_progress", "call_status_ringing"):
        call_event(name, sid)

    answer = body_json(outcome("calls", sid))

    assert (answer["status"], answer["final"]) == ("completed", True)
    assert [(event["status"], event["at"]) for event in answer["events"][1:]] == [
        ("ringing", "2026-11-23T08:00:00.000Z"),
        ("in-progress", "2026-11-23T08:00:02.000Z"),
        ("completed", "2026-11-23T08:00:12.000Z"),
    ]


@pytest.mark.parametrize(
    ("timestamp", "at"),
    [
        ("Mon, 23 Nov 2026 09:00:12 +0100", "2026-11-23T08:00:12.000Z"),  # an offset is kept, then turned to UTC
        ("Mon, 23 Nov 2026 08:00:12 -0000", "2026-11-23T08:00:12.000Z"),  # RFC 5322's "UTC, no zone known"
    ],
)
@pytest.mark.usefixtures("zone_ahead_of_utc")  # a time without a zone is UTC, not the machine's local time
def test_an_events_timestamp_is_read_in_its_own_zone(
    twilio: TwilioStandIn, storage: Azurite, timestamp: str, at: str
) -> None:
    sid = place_call()
    signed_post("call_status", {**fixture("call_status_completed"), "CallSid": sid, "Timestamp": timestamp})

    (completed,) = [e for e in body_json(outcome("calls", sid))["events"] if e["status"] == "completed"]

    assert completed["at"] == at


def test_a_status_twilio_may_add_later_comes_before_every_known_one(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()
    signed_post("call_status", {**fixture("call_status_ringing"), "CallSid": sid, "CallStatus": "rerouted"})

    answer = body_json(outcome("calls", sid))

    assert answer["status"] == "queued"
    assert [event["status"] for event in answer["events"]] == ["queued", "rerouted"]


def test_of_two_events_at_one_time_and_status_the_one_heard_last_explains_the_outcome(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    sid = place_call()
    for token, code in (("idem-token-1", "13224"), ("idem-token-2", "21217")):  # the second's row sorts first
        completed = {**fixture("call_status_completed"), "CallSid": sid, "ErrorCode": code}
        signed_post("call_status", completed, headers={RETRY_HEADER: token})

    answer = body_json(outcome("calls", sid))

    assert answer["error"]["code"] == 21217


def test_events_at_one_time_are_listed_in_lifecycle_order(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()
    for status in ("in-progress", "ringing"):
        signed_post("call_status", {**fixture("call_status_ringing"), "CallSid": sid, "CallStatus": status})

    answer = body_json(outcome("calls", sid))

    assert [event["status"] for event in answer["events"]] == ["queued", "ringing", "in-progress"]


@pytest.mark.usefixtures("zone_ahead_of_utc")
def test_an_outcomes_times_are_utc_whatever_the_machines_zone(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()
    call_event("call_status_completed", sid)

    answer = body_json(outcome("calls", sid))

    assert answer["events"][-1]["at"] == "2026-11-23T08:00:12.000Z"
    assert answer["created"].endswith("Z")


def test_a_text_keeps_delivered_when_sent_arrives_after_it(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = send_text()
    text_event("message_status_delivered", sid)
    text_event("message_status_sent", sid)

    assert body_json(outcome("messages", sid))["status"] == "delivered"


def test_a_completed_call_reports_its_duration_sip_code_and_who_answered(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    sid = place_call()
    for name in ("call_status_ringing", "call_status_in_progress", "call_status_completed"):
        call_event(name, sid)

    answer = body_json(outcome("calls", sid))

    assert {name: answer[name] for name in ("duration", "sip_response_code", "answered_by", "error")} == {
        "duration": 12,
        "sip_response_code": 200,
        "answered_by": "human",
        "error": None,
    }


def test_an_unknown_error_code_is_reported_alone(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()
    call_event("call_status_failed", sid)

    answer = body_json(outcome("calls", sid))

    assert (answer["status"], answer["error"], answer["sip_response_code"]) == ("failed", {"code": 32009}, 500)


def test_an_undelivered_text_reports_its_error_code_with_twilios_meaning(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    sid = send_text()
    text_event("message_status_undelivered", sid)

    answer = body_json(outcome("messages", sid))

    assert (answer["status"], answer["final"]) == ("undelivered", True)
    assert answer["error"] == {
        "code": 30003,
        "meaning": "Unreachable destination handset",
        "message": "Unreachable destination handset",
    }


@pytest.mark.usefixtures("zone_ahead_of_utc")
def test_a_texts_events_are_timed_when_they_arrive_in_utc_whatever_the_machines_zone(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    """Twilio's message callbacks carry no Timestamp."""
    sid = send_text()
    before = datetime.now(UTC)
    text_event("message_status_delivered", sid)
    after = datetime.now(UTC)

    (delivered,) = [e for e in body_json(outcome("messages", sid))["events"] if e["status"] == "delivered"]
    assert before - timedelta(milliseconds=1) <= datetime.fromisoformat(delivered["at"]) <= after


def test_a_callback_without_a_valid_sid_is_not_kept_but_still_logged(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    assert (
        signed_post("call_status", {**fixture("call_status_completed"), "CallSid": "CA-not-a-sid"}).status_code == 204
    )

    assert logged(caplog, "shared.outcomes") == [
        ("WARNING", "Did not keep a call status callback without a valid CallSid")
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "shared.call_events"] == [
        "call_status CallSid=CA-not-a-sid CallStatus=completed CallDuration=12 ErrorCode= SipResponseCode=200"
    ]


def test_a_callback_without_a_status_is_kept_with_an_empty_one(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()
    form = {name: value for name, value in fixture("call_status_completed").items() if name != "CallStatus"}
    signed_post("call_status", {**form, "CallSid": sid})

    answer = outcome("calls", sid)

    assert answer.status_code == 200
    assert [event["status"] for event in body_json(answer)["events"]] == ["queued", ""]


@pytest.mark.usefixtures("credentials_in_env", "unreachable_storage")
@pytest.mark.parametrize(
    ("name", "form"), [("call_status", "call_status_busy"), ("message_status", "message_status_sent")]
)
def test_a_callback_the_store_cannot_keep_is_logged_and_still_answered_204(
    caplog: pytest.LogCaptureFixture, name: str, form: str
) -> None:
    caplog.set_level(logging.INFO)

    assert signed_post(name, fixture(form)).status_code == 204

    (failure,) = [r for r in caplog.records if r.name == "shared.outcomes"]
    sid = fixture(form)["CallSid" if name == "call_status" else "MessageSid"]
    assert (failure.levelno, failure.getMessage()) == (
        logging.ERROR,
        f"Could not keep a status callback of {sid} in the outcomes table (StateUnavailableError)",
    )
    assert len([r for r in caplog.records if r.name == "shared.call_events"]) == 1  # the event is still logged


@pytest.mark.parametrize(("function", "noun"), [("make_call", "call"), ("send_sms", "message")])
def test_a_201_whose_outcome_cannot_be_kept_is_logged_naming_its_sid(
    twilio: TwilioStandIn, table_proxy: TableProxy, caplog: pytest.LogCaptureFixture, function: str, noun: str
) -> None:
    table_proxy.upon("POST", TABLE, then=Mishap(status=500))

    response = keyed(function, CALL if function == "make_call" else TEXT, None)

    assert response.status_code == 201
    sid = body_json(response)["sid"]
    assert logged(caplog, "shared.outcomes") == [
        ("ERROR", f"Could not keep the {noun} {sid} in the outcomes table (HttpResponseError)")
    ]


def test_a_status_callback_costs_one_table_round_trip(twilio: TwilioStandIn, table_round_trips: list[str]) -> None:
    sid = place_call()  # creates the table
    table_round_trips.clear()

    call_event("call_status_ringing", sid)

    assert table_round_trips == [f"POST /{ACCOUNT_NAME}/{TABLE}"]


def test_a_placed_call_costs_one_table_round_trip_for_its_outcome(
    twilio: TwilioStandIn, table_round_trips: list[str]
) -> None:
    place_call()  # creates the tables
    table_round_trips.clear()

    place_call()

    assert [trip for trip in table_round_trips if f"/{TABLE}" in trip] == [f"POST /{ACCOUNT_NAME}/{TABLE}"]


def test_an_outcome_costs_one_query(twilio: TwilioStandIn, table_round_trips: list[str]) -> None:
    sid = place_call()
    table_round_trips.clear()

    assert outcome("calls", sid).status_code == 200
    assert table_round_trips == [f"GET /{ACCOUNT_NAME}/{TABLE}()"]


def test_what_is_stored_is_who_when_and_twilios_fields_never_the_text_or_a_secret(
    twilio: TwilioStandIn, storage: Azurite
) -> None:
    sid = send_text()
    text_event("message_status_undelivered", sid, token="idem-token-1")

    stored = sorted(
        table(storage, TABLE).query_entities("PartitionKey eq @sid", parameters={"sid": sid}),
        key=lambda row: str(row["RowKey"]),
    )
    first, event = stored
    assert {name: first[name] for name in ("RowKey", "Function", "To", "From", "Status")} == {
        "RowKey": "created",
        "Function": "send_sms",
        "To": TEXT["to"],
        "From": FROM,
        "Status": "queued",
    }
    assert event["RowKey"] == "event-" + hashlib.sha256(b"idem-token-1").hexdigest()
    assert {name: event[name] for name in ("Status", "ErrorCode", "ErrorMessage")} == {
        "Status": "undelivered",
        "ErrorCode": "30003",
        "ErrorMessage": "Unreachable destination handset",
    }
    text = json.dumps([{name: str(value) for name, value in row.items()} for row in stored])
    for secret in (TEXT["body"], ACCOUNT_SID, AUTH_TOKEN):
        assert secret not in text


# --- refusals ---------------------------------------------------------------------------------------------------------


def test_a_sid_this_app_did_not_place_answers_404(twilio: TwilioStandIn, storage: Azurite) -> None:
    response = outcome("calls", "CA" + "0" * 32)

    assert response.status_code == 404
    assert error_of(response) == {
        "code": "not_found",
        "message": f"This app placed or sent no call CA{'0' * 32}.",
        "target": "sid",
    }


def test_a_sid_known_only_from_its_callbacks_answers_404(twilio: TwilioStandIn, storage: Azurite) -> None:
    """Another app's call on the same account: its callbacks may reach this one, its outcome is not served."""
    sid = fixture("call_status_completed")["CallSid"]
    assert call_event("call_status_completed", sid).status_code == 204

    assert outcome("calls", sid).status_code == 404


@pytest.mark.parametrize(
    ("route", "sid"),
    [
        ("calls", "CA123"),
        ("calls", "CA" + "g" * 32),
        ("calls", "SM" + "0" * 32),
        ("messages", "CA" + "0" * 32),
        ("messages", "SM" + "0" * 33),
    ],
)
def test_a_malformed_sid_answers_400(twilio: TwilioStandIn, storage: Azurite, route: str, sid: str) -> None:
    response = outcome(route, sid)

    shape = {"calls": "A call SID is CA and 32 hex digits.", "messages": "A message SID is SM or MM and 32 hex digits."}
    assert response.status_code == 400
    assert error_of(response) == {"code": "invalid_parameter", "message": shape[route], "target": "sid"}


@pytest.mark.parametrize("wait", ["21", "-1", "1.5", "soon"])
def test_a_wait_outside_0_to_20_seconds_answers_400(twilio: TwilioStandIn, storage: Azurite, wait: str) -> None:
    response = outcome("calls", place_call(), f"wait={wait}")

    assert response.status_code == 400
    assert error_of(response) == {
        "code": "invalid_parameter",
        "message": "'wait' must be a whole number of seconds from 0 to 20.",
        "target": "wait",
    }


def test_an_outcome_without_storage_answers_503_naming_the_setting(twilio: TwilioStandIn) -> None:
    response = outcome("calls", place_call())

    assert response.status_code == 503
    assert error_of(response) == {
        "code": "state_unavailable",
        "message": "Outcomes are kept in the app's storage, which is not configured (AzureWebJobsStorage).",
        "target": "AzureWebJobsStorage",
    }


def test_without_storage_outcomes_are_not_kept_with_one_warning(
    twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        sid = place_call()
        assert call_event("call_status_completed", sid).status_code == 204

    assert [r.getMessage() for r in caplog.records if r.name == "shared.outcomes"] == [
        "No storage is configured (AzureWebJobsStorage): outcomes of calls and texts are not kept"
    ]


@pytest.mark.usefixtures("unreachable_storage")
def test_an_outcome_with_the_store_down_answers_503_with_retry_after() -> None:
    response = outcome("messages", "SM" + "0" * 32)

    assert response.status_code == 503
    assert (error_of(response)["code"], error_of(response)["message"]) == (
        "state_unavailable",
        "The app's storage (Table storage) could not be reached; try again shortly.",
    )
    assert ("Retry-After", "5") in response.headers.items()  # spelled as HTTP spells it


@pytest.mark.usefixtures("unreachable_storage")
def test_an_outcome_the_store_cannot_read_is_logged_with_its_sid_and_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sid = "SM" + "0" * 32

    outcome("messages", sid)

    assert logged(caplog, "shared.outcome_answers") == [
        ("WARNING", f"Could not read the outcome of {sid} (StateUnavailableError)")
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(sorted(OUTCOME_FUNCTIONS)),
    sid=st.sampled_from(["CA" + "0" * 32, "SM" + "0" * 32]) | st.text(max_size=40),
    wait=st.sampled_from(["0", "20", "21"]) | st.text(max_size=6),
)
def test_generated_outcome_requests_get_clear_answers(route: str, sid: str, wait: str) -> None:
    """Without storage, a well-formed request answers 503 at once; any other, 400."""
    req = func.HttpRequest(
        "GET", function_url(f"{route}/x"), params={"wait": wait}, route_params={"sid": sid}, body=b""
    )

    response = FUNCTIONS[OUTCOME_FUNCTIONS[route]].call(req)

    assert response.status_code in {400, 503}
    assert error_of(response)["target"] in {"sid", "wait", "AzureWebJobsStorage"}


# --- ?wait: a long poll that holds no worker thread ------------------------------------------------------------------


def test_the_outcome_functions_run_on_the_event_loop() -> None:
    """An `async def` handler is run on the worker's event loop; a plain one would hold a thread while it waits."""
    assert all(inspect.iscoroutinefunction(FUNCTIONS[name].handler) for name in OUTCOME_FUNCTIONS.values())


def test_wait_answers_as_soon_as_a_final_event_lands(twilio: TwilioStandIn, table_round_trips: list[str]) -> None:
    sid = place_call()
    table_round_trips.clear()

    def complete_once_read() -> None:
        assert eventually(lambda: f"GET /{ACCOUNT_NAME}/{TABLE}()" in table_round_trips)
        call_event("call_status_completed", sid)

    completer = threading.Thread(target=complete_once_read)
    completer.start()
    started = time.monotonic()
    answer = outcome("calls", sid, "wait=20")
    waited = time.monotonic() - started
    completer.join()

    assert (answer.status_code, body_json(answer)["status"]) == (200, "completed")
    assert waited < 20  # answered when the event landed, not at the end of the wait


def test_wait_answers_the_status_so_far_once_its_seconds_have_passed(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()
    answers: list[func.HttpResponse] = []
    started = time.monotonic()
    waiting = threading.Thread(target=lambda: answers.append(outcome("calls", sid, "wait=1")), daemon=True)
    waiting.start()
    waiting.join(timeout=60)

    assert answers, "the wait did not end"
    assert body_json(answers[0])["status"] == "queued"
    assert time.monotonic() - started >= 1


def test_a_wait_reads_the_store_with_growing_pauses_not_in_a_busy_loop(
    twilio: TwilioStandIn, table_round_trips: list[str]
) -> None:
    sid = place_call()
    table_round_trips.clear()

    outcome("calls", sid, "wait=3")

    # Pauses of 0.25 s, then 1.5 times longer each, up to 2 s: six reads in 3 s, fewer on a busy machine.
    assert 2 <= table_round_trips.count(f"GET /{ACCOUNT_NAME}/{TABLE}()") <= 8


# --- retention -------------------------------------------------------------------------------------------------------


def test_rows_past_the_retention_are_the_ones_the_sweep_finds(twilio: TwilioStandIn, storage: Azurite) -> None:
    sid = place_call()
    call_event("call_status_completed", sid)
    settings = Settings(outcome_retention_days_setting="30")
    outcomes = table(storage, TABLE)

    def found(now: datetime) -> list[str]:
        query, parameters = expired(settings, now)
        return [row["RowKey"] for row in outcomes.query_entities(query, parameters=parameters)]

    assert found(datetime.now(UTC) + timedelta(days=29)) == []
    assert sorted(found(datetime.now(UTC) + timedelta(days=31))) == sorted(rows(storage, sid))


def test_outcomes_are_kept_30_days_unless_set_otherwise() -> None:
    assert Settings().outcome_retention_days == 30
    assert Settings(outcome_retention_days_setting="7").outcome_retention_days == 7
    assert Settings(outcome_retention_days_setting="1").outcome_retention_days == 1
    assert Settings(outcome_retention_days_setting="3650").outcome_retention_days == 3650


@pytest.mark.parametrize("value", ["0", "-1", "thirty", "1.5", "3651", "99999999"])
def test_outcome_retention_days_outside_1_to_3650_or_not_whole_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _ = Settings(outcome_retention_days_setting=value).outcome_retention_days

    assert (refused.value.target, refused.value.message) == (
        "OUTCOME_RETENTION_DAYS",
        "Setting OUTCOME_RETENTION_DAYS must be a whole number of days from 1 to 3650.",
    )


@pytest.mark.parametrize("code", ["²", "30003x"])
def test_a_code_that_is_not_a_number_is_answered_as_null(twilio: TwilioStandIn, storage: Azurite, code: str) -> None:
    sid = place_call()
    signed_post(
        "call_status", {**fixture("call_status_failed"), "CallSid": sid, "ErrorCode": code, "CallDuration": code}
    )

    answer = outcome("calls", sid)

    assert answer.status_code == 200
    assert (body_json(answer)["error"], body_json(answer)["duration"]) == (None, None)
