"""Thousands of generated requests: only clear answers, never a 500, and a 201 only for an allowed number."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import azure.functions as func
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testing.standins import TwilioStandIn
from tests.support import PUBLIC_HOST, body_json, error_of, fixture, function_url, invoke, signed_post

ALLOWED = {201, 400, 403, 413, 415}
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
PREMIUM = {phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST}
NAMES = st.sampled_from(["to", "from", "message", "voice", "language", "body", "x"])
NUMBERS = (
    st.sampled_from(
        [
            "+15558675310",
            "+447700900123",
            "+1 (555) 867-5310",
            "+14155550100",
            "+15062345678",
            "+18762101234",
            "+19002345678",
            "+449012345678",
            "+33612345678",
            "+80012345678",
            "+0",
            "",
        ]
    )
    | st.text()
)
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
# Text with a lone surrogate, which JSON carries as a \ud800 escape.
WITH_SURROGATE = st.tuples(st.text(max_size=8), st.characters(categories=["Cs"]), st.text(max_size=8)).map("".join)
ODD_PARAMS = st.fixed_dictionaries(
    {"to": NUMBERS},
    optional={"from": NUMBERS | WITH_SURROGATE, "message": WITH_SURROGATE | TEXTS, "body": WITH_SURROGATE | TEXTS},
) | st.dictionaries(NAMES | WITH_SURROGATE, JSON_VALUES, max_size=3)
NESTED = st.integers(1, 30_000).map(lambda depth: b"[" * depth) | st.integers(1, 8_000).map(
    lambda depth: b'{"to":' * depth + b'"+14155550100"' + b"}" * depth
)
FORWARDED = st.sampled_from(
    ["https", "http", "HTTPS", "https://evil.example/#", "evil.example", "evil.example:443", "[", "host:99999", ""]
) | st.text(max_size=40)
FORWARDED_HEADERS = st.fixed_dictionaries({}, optional={"X-Forwarded-Host": FORWARDED, "X-Forwarded-Proto": FORWARDED})


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
    env.setenv("ALLOWED_DESTINATIONS", "US,CA,+44")
    env.setenv("TRUST_FORWARDED_HEADERS", "true")


def _assert_clear(response: func.HttpResponse, sandbox: TwilioStandIn) -> None:
    """A JSON error the caller can act on, or a 201 for an allowed number, with callbacks to the app."""
    assert response.status_code in ALLOWED
    if response.status_code != 201:
        error_of(response)
        return
    sent = sandbox.received[-1]
    to = sent.field("To")
    assert E164.fullmatch(to)
    assert body_json(response)["to"] == to
    number = phonenumbers.parse(to)
    assert to.startswith("+44") or phonenumbers.region_code_for_number(number) in {"US", "CA"}
    assert phonenumbers.number_type(number) not in PREMIUM
    if sent.path.endswith("/Calls.json"):
        assert sent.field("Url").startswith(f"{PUBLIC_HOST}/api/voice_url")
        assert sent.field("StatusCallback") == f"{PUBLIC_HOST}/api/call_status"


# No deadline and no too_slow check: on a loaded machine, generating nested JSON can take long; what is
# asserted is each answer, never how fast it came.
SETTINGS = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(name=st.sampled_from(["make_call", "send_sms"]), query=PARAMS)
def test_generated_query_strings_get_clear_answers(sandbox: TwilioStandIn, name: str, query: dict[str, str]) -> None:
    _assert_clear(invoke(name, "POST", url=function_url(name, urlencode(query))), sandbox)


@SETTINGS
@given(
    name=st.sampled_from(["make_call", "send_sms"]),
    content_type=CONTENT_TYPES,
    body=PARAMS.map(lambda p: json.dumps(p).encode())
    | PARAMS.map(lambda p: urlencode(p).encode())
    | st.dictionaries(NAMES, JSON_VALUES).map(lambda p: json.dumps(p).encode())
    | st.binary(max_size=200),
)
def test_generated_bodies_get_clear_answers(sandbox: TwilioStandIn, name: str, content_type: str, body: bytes) -> None:
    _assert_clear(invoke(name, body=body, headers={"Content-Type": content_type}), sandbox)


@SETTINGS
@given(
    name=st.sampled_from(["make_call", "send_sms"]),
    body=ODD_PARAMS.map(lambda p: json.dumps(p).encode()) | NESTED,
)
def test_generated_json_with_lone_surrogates_or_deep_nesting_gets_clear_answers(
    sandbox: TwilioStandIn, name: str, body: bytes
) -> None:
    _assert_clear(invoke(name, body=body, headers={"Content-Type": "application/json"}), sandbox)


@SETTINGS
@given(params=PARAMS, forwarded=FORWARDED_HEADERS)
def test_generated_forwarded_headers_never_steer_callbacks(
    sandbox: TwilioStandIn, params: dict[str, str], forwarded: dict[str, str]
) -> None:
    body = json.dumps(params).encode()
    _assert_clear(invoke("make_call", body=body, headers={"Content-Type": "application/json", **forwarded}), sandbox)


@SETTINGS
@given(name=st.sampled_from(["voice_url", "sms_url", "call_status"]), forwarded=FORWARDED_HEADERS)
def test_generated_forwarded_headers_on_webhooks_get_clear_answers(
    sandbox: TwilioStandIn, name: str, forwarded: dict[str, str]
) -> None:
    response = signed_post(name, fixture("call_status_completed"), token=sandbox.auth_token, headers=forwarded)

    assert response.status_code in {200, 204, 403}
    if response.status_code == 403:
        assert error_of(response)["code"] == "invalid_signature"


def test_a_destination_outside_allowed_destinations_is_refused(sandbox: TwilioStandIn) -> None:
    before = len(sandbox.received)
    response = invoke("send_sms", url=function_url("send_sms", {"to": "+33612345678", "body": "Hi"}))

    assert response.status_code == 403
    assert error_of(response)["code"] == "destination_not_allowed"
    assert len(sandbox.received) == before
