"""Thousands of generated requests to make_call and send_sms: only clear answers, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.standins import TwilioStandIn
from tests.support import error_of, function_url, invoke

ALLOWED = {201, 400, 403, 413, 415}
NAMES = st.sampled_from(["to", "from", "message", "voice", "language", "body", "x"])
NUMBERS = st.sampled_from(["+15558675310", "+447700900123", "+1 (555) 867-5310", "+33612345678", "+0", ""]) | st.text()
TEXTS = st.text(min_size=1, max_size=40) | st.text(min_size=990, max_size=1700)
TOKENS = st.sampled_from(["alice", "Polly.Joanna", "en-US", "x y", "<b>"]) | st.text(max_size=70)
PARAMS = st.fixed_dictionaries(
    {},
    optional={"to": NUMBERS, "from": NUMBERS, "message": TEXTS, "voice": TOKENS, "language": TOKENS, "body": TEXTS},
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "", "application/json; charset=utf-8"]
)
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20), st.lists, max_leaves=5)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn("AC" + "0" * 32, "fuzz-token").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def configured(sandbox: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_API_BASE_URL", sandbox.url)
    env.setenv("TWILIO_ACCOUNT_SID", sandbox.account_sid)
    env.setenv("TWILIO_AUTH_TOKEN", sandbox.auth_token)
    env.setenv("TWILIO_FROM_NUMBER", "+15017122661")
    env.setenv("ALLOWED_DESTINATIONS", "+1,+44")


def _assert_clear(status: int, response_body: bytes) -> None:
    assert status in ALLOWED
    if status != 201:
        json.loads(response_body)


SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(name=st.sampled_from(["make_call", "send_sms"]), query=PARAMS)
def test_generated_query_strings_get_clear_answers(name: str, query: dict[str, str]) -> None:
    response = invoke(name, "POST", url=function_url(name, urlencode(query)))
    _assert_clear(response.status_code, response.get_body())


@SETTINGS
@given(
    name=st.sampled_from(["make_call", "send_sms"]),
    content_type=CONTENT_TYPES,
    body=PARAMS.map(lambda p: json.dumps(p).encode())
    | PARAMS.map(lambda p: urlencode(p).encode())
    | st.dictionaries(NAMES, JSON_VALUES).map(lambda p: json.dumps(p).encode())
    | st.binary(max_size=200),
)
def test_generated_bodies_get_clear_answers(name: str, content_type: str, body: bytes) -> None:
    response = invoke(name, body=body, headers={"Content-Type": content_type})
    _assert_clear(response.status_code, response.get_body())


def test_a_destination_outside_allowed_destinations_is_refused(sandbox: TwilioStandIn) -> None:
    before = len(sandbox.received)
    response = invoke("send_sms", url=function_url("send_sms", {"to": "+33612345678", "body": "Hi"}))

    assert response.status_code == 403
    assert error_of(response)["code"] == "destination_not_allowed"
    assert len(sandbox.received) == before
