"""make_call: the REST request Twilio receives, where parameters come from, and the caller's mistakes."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from devtools.azurite import Azurite
from shared.outbound import Call
from shared.settings import Settings
from testing.standins import TwilioStandIn
from tests.app.state_support import CALL, keyed
from tests.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    body_json,
    error_of,
    function_url,
    invoke,
    logged,
    post_form,
    post_json,
)

CALLS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


# --- the call Twilio receives ----------------------------------------------------------------------------------------


def test_make_call_places_the_call_with_twilio(twilio: TwilioStandIn) -> None:
    response = post_json("make_call", {"to": "+15558675310", "from": "+15017122661"})

    assert response.status_code == 201
    (sent,) = twilio.received
    assert (sent.method, sent.path) == ("POST", CALLS_PATH)
    assert sent.basic_auth() == (ACCOUNT_SID, AUTH_TOKEN)
    assert sent.field("To") == "+15558675310"
    assert sent.field("From") == "+15017122661"
    assert sent.field("Url") == "https://myapp.azurewebsites.net/api/voice_url?message=Hello+Monkey%21"
    assert sent.field("Method") == "POST"
    assert body_json(response) == {
        "sid": twilio.sids[0],
        "status": "queued",
        "to": "+15558675310",
        "from": "+15017122661",
        "status_url": f"https://myapp.azurewebsites.net/api/calls/{twilio.sids[0]}",
    }


def test_make_call_asks_for_status_callbacks_on_call_status(twilio: TwilioStandIn) -> None:
    post_json("make_call", {"to": "+15558675310"})

    (sent,) = twilio.received
    assert sent.field("StatusCallback") == "https://myapp.azurewebsites.net/api/call_status"
    assert sent.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert sent.field("StatusCallbackMethod") == "POST"


def test_make_call_passes_message_voice_and_language_to_voice_url(twilio: TwilioStandIn) -> None:
    post_json(
        "make_call", {"to": "+15558675310", "message": "Ahoy & welcome", "voice": "Polly.Joanna", "language": "en-US"}
    )

    url = urlsplit(twilio.received[0].field("Url"))
    assert url.path == "/api/voice_url"
    assert parse_qs(url.query) == {"message": ["Ahoy & welcome"], "voice": ["Polly.Joanna"], "language": ["en-US"]}


def test_make_call_uses_public_base_url_for_the_links_it_gives_twilio(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("PUBLIC_BASE_URL", "https://voice.example.com/")
    post_json("make_call", {"to": "+15558675310"})

    assert twilio.received[0].field("Url").startswith("https://voice.example.com/api/voice_url?")
    assert twilio.received[0].field("StatusCallback") == "https://voice.example.com/api/call_status"


# --- where parameters come from: the query string, a form, JSON, the settings ----------------------------------------


def test_make_call_reads_the_query_string(twilio: TwilioStandIn) -> None:
    response = invoke("make_call", "GET", url=function_url("make_call", {"to": "+1 (555) 867-5310", "message": "Hi"}))

    assert response.status_code == 201
    assert twilio.received[0].field("To") == "+15558675310"


def test_make_call_reads_a_form_body(twilio: TwilioStandIn) -> None:
    response = post_form("make_call", {"to": "+15558675310", "from": "+15017122662"})

    assert response.status_code == 201
    assert twilio.received[0].field("From") == "+15017122662"


def test_make_call_tells_json_sent_as_a_form_to_send_it_as_json(twilio: TwilioStandIn) -> None:
    """What `curl -d '{"to": ...}'` sends: JSON under curl's default form type."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = invoke("make_call", body=b'{"to": "+15558675310"}', headers=form)

    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["target"]) == ("content_type_mismatch", "Content-Type")
    assert twilio.received == []


def test_make_call_hints_at_a_plus_left_unencoded_in_the_query_string(twilio: TwilioStandIn) -> None:
    response = invoke("make_call", "GET", url=function_url("make_call", "to=+15558675310"))

    assert response.status_code == 400
    assert error_of(response) == {
        "code": "invalid_phone_number",
        "message": "'to' must be an E.164 number such as +14155550100."
        " A '+' sent unencoded in a form or query string arrives as a space: write it as %2B.",
        "target": "to",
    }
    assert twilio.received == []


def test_make_call_body_wins_over_query(twilio: TwilioStandIn) -> None:
    post_json("make_call", {"to": "+15558675311"}, url=function_url("make_call", {"to": "+15558675310"}))

    assert twilio.received[0].field("To") == "+15558675311"


def test_make_call_message_defaults_to_voice_message_setting(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("VOICE_MESSAGE", "Welcome aboard")
    post_json("make_call", {"to": "+15558675310"})

    assert parse_qs(urlsplit(twilio.received[0].field("Url")).query) == {"message": ["Welcome aboard"]}


def test_a_call_takes_its_default_message_from_the_settings_it_is_given() -> None:
    call = Call.from_params({"to": "+15558675310", "from": "+15017122661"}, Settings(voice_message="Welcome aboard"))

    assert call.message == "Welcome aboard"


# --- the caller's mistakes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "code", "target"),
    [
        ({}, "missing_parameter", "to"),
        ({"to": "5558675310"}, "invalid_phone_number", "to"),
        ({"to": "+05558675310"}, "invalid_phone_number", "to"),
        ({"to": "+1555867531012345"}, "invalid_phone_number", "to"),
        ({"to": "+1555abc5310"}, "invalid_phone_number", "to"),
        ({"to": "+15558675310", "from": "twilio"}, "invalid_phone_number", "from"),
        ({"to": "+15558675310", "message": "x" * 1001}, "parameter_too_long", "message"),
        ({"to": "+15558675310", "voice": "<Polly>"}, "invalid_parameter", "voice"),
        ({"to": "+15558675310", "language": "en US"}, "invalid_parameter", "language"),
        ({"to": 15558675310}, "invalid_parameter", "to"),
    ],
)
def test_make_call_refuses_bad_parameters_before_calling_twilio(
    twilio: TwilioStandIn, document: dict[str, object], code: str, target: str
) -> None:
    response = post_json("make_call", document)

    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["target"]) == (code, target)
    assert twilio.received == []


def test_make_call_accepts_a_message_of_1000_characters(twilio: TwilioStandIn) -> None:
    response = post_json("make_call", {"to": "+15558675310", "message": "x" * 1000})

    assert response.status_code == 201
    assert parse_qs(urlsplit(twilio.received[0].field("Url")).query) == {"message": ["x" * 1000]}


def test_make_call_without_from_or_setting_says_which_setting(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.delenv("TWILIO_FROM_NUMBER")
    response = post_json("make_call", {"to": "+15558675310"})

    assert response.status_code == 400
    assert error_of(response) == {
        "code": "missing_parameter",
        "message": "'from' is required (or set TWILIO_FROM_NUMBER).",
        "target": "from",
    }


def test_make_call_refuses_malformed_json(twilio: TwilioStandIn) -> None:
    response = invoke("make_call", body=b'{"to": ', headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_make_call_refuses_a_json_array(twilio: TwilioStandIn) -> None:
    response = post_json("make_call", ["+15558675310"])

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_make_call_refuses_a_body_type_it_cannot_read(twilio: TwilioStandIn) -> None:
    response = invoke("make_call", body=b"<to>+15558675310</to>", headers={"Content-Type": "application/xml"})

    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_make_call_refuses_a_body_over_64_kib(twilio: TwilioStandIn) -> None:
    response = post_json("make_call", {"to": "+15558675310", "padding": "x" * 65_536})

    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert twilio.received == []


# --- settings missing or broken --------------------------------------------------------------------------------------


def test_make_call_without_credentials_answers_503_naming_the_settings(env: pytest.MonkeyPatch) -> None:
    response = post_json("make_call", {"to": "+15558675310", "from": "+15017122661"})

    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "credentials_unavailable"
    assert "TWILIO_ACCOUNT_SID" in error["message"]
    assert "KEY_VAULT_URL" in error["message"]


def test_make_call_with_a_broken_setting_answers_503_naming_it(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_HTTP_TIMEOUT", "soon")
    response = post_json("make_call", {"to": "+15558675310"})

    assert response.status_code == 503
    assert error_of(response)["target"] == "TWILIO_HTTP_TIMEOUT"


def test_make_call_with_a_bad_from_number_setting_answers_503_naming_it(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("TWILIO_FROM_NUMBER", "MyBrand")
    response = post_json("make_call", {"to": "+15558675310"})

    assert response.status_code == 503
    assert error_of(response) == {
        "code": "configuration_error",
        "message": "Setting TWILIO_FROM_NUMBER must be an E.164 number such as +14155550100.",
        "target": "TWILIO_FROM_NUMBER",
    }
    assert twilio.received == []


# --- the URLs Twilio calls back on -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forwarded",
    [{"X-Forwarded-Host": "evil.example"}, {"X-Forwarded-Proto": "https://evil.example/#"}],
    ids=["host", "proto"],
)
def test_make_call_ignores_forwarded_headers_for_callbacks(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, forwarded: dict[str, str]
) -> None:
    env.setenv("TRUST_FORWARDED_HEADERS", "true")
    body = b'{"to": "+15558675310"}'
    response = invoke("make_call", body=body, headers={"Content-Type": "application/json", **forwarded})

    assert response.status_code == 201
    assert twilio.received[0].field("Url").startswith("https://myapp.azurewebsites.net/api/voice_url?")
    assert twilio.received[0].field("StatusCallback") == "https://myapp.azurewebsites.net/api/call_status"


def test_make_call_calls_back_on_website_hostname_in_azure(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("WEBSITE_HOSTNAME", "myapp.azurewebsites.net")
    post_json("make_call", {"to": "+15558675310"}, url="http://10.0.0.5:8080/api/make_call")

    assert twilio.received[0].field("Url").startswith("https://myapp.azurewebsites.net/api/voice_url?")
    assert twilio.received[0].field("StatusCallback") == "https://myapp.azurewebsites.net/api/call_status"


def test_make_call_prefers_public_base_url_to_website_hostname(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("WEBSITE_HOSTNAME", "myapp.azurewebsites.net")
    env.setenv("PUBLIC_BASE_URL", "https://voice.example.com")
    post_json("make_call", {"to": "+15558675310"})

    assert twilio.received[0].field("StatusCallback") == "https://voice.example.com/api/call_status"


def test_make_call_puts_the_path_of_public_base_url_before_api(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("PUBLIC_BASE_URL", "https://gateway.example.com/twilio")
    post_json("make_call", {"to": "+15558675310"})

    assert twilio.received[0].field("StatusCallback") == "https://gateway.example.com/twilio/api/call_status"


@pytest.mark.parametrize("value", ["https://pub.example:abc", "https://pub.example/?x=1"])
def test_make_call_with_a_malformed_public_base_url_answers_503_naming_it(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, value: str
) -> None:
    env.setenv("PUBLIC_BASE_URL", value)
    response = post_json("make_call", {"to": "+15558675310"})

    assert response.status_code == 503
    assert (error_of(response)["code"], error_of(response)["target"]) == ("configuration_error", "PUBLIC_BASE_URL")
    assert twilio.received == []


# --- hostile bodies --------------------------------------------------------------------------------------------------


def test_make_call_refuses_a_lone_surrogate_naming_the_parameter(twilio: TwilioStandIn) -> None:
    body = b'{"to": "+14155550100", "message": "a\\ud800b"}'
    response = invoke("make_call", body=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["target"]) == ("invalid_parameter", "message")
    assert twilio.received == []


def test_make_call_refuses_a_lone_surrogate_in_a_member_name(twilio: TwilioStandIn) -> None:
    response = invoke("make_call", body=b'{"\\udc00": 1}', headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_make_call_refuses_deeply_nested_json(twilio: TwilioStandIn) -> None:
    response = invoke("make_call", body=b"[" * 1000, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_make_call_refuses_a_declared_content_length_over_64_kib(twilio: TwilioStandIn) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": "65537"}
    response = invoke("make_call", body=b'{"to": "+15558675310"}', headers=headers)

    assert response.status_code == 413
    assert twilio.received == []


# --- the destinations allowed ----------------------------------------------------------------------------------------


def test_make_call_refuses_a_premium_rate_number_without_any_list(twilio: TwilioStandIn) -> None:
    response = post_json("make_call", {"to": "+19002345678"})

    assert response.status_code == 403
    assert (error_of(response)["code"], error_of(response)["target"]) == ("destination_not_allowed", "to")
    assert twilio.received == []


def test_make_call_refuses_jamaica_when_only_us_and_canada_are_allowed(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("ALLOWED_DESTINATIONS", "US,CA")

    assert post_json("make_call", {"to": "+18762101234"}).status_code == 403
    assert post_json("make_call", {"to": "+14155550100"}).status_code == 201
    assert [sent.field("To") for sent in twilio.received] == ["+14155550100"]


@pytest.mark.parametrize("value", [",", "US,XX"])
def test_make_call_with_an_unusable_allowed_destinations_answers_503_naming_it(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, value: str
) -> None:
    env.setenv("ALLOWED_DESTINATIONS", value)
    response = post_json("make_call", {"to": "+14155550100"})

    assert response.status_code == 503
    assert (error_of(response)["code"], error_of(response)["target"]) == ("configuration_error", "ALLOWED_DESTINATIONS")
    assert twilio.received == []


# --- what is logged --------------------------------------------------------------------------------------------------


def test_make_call_logs_the_placed_call_with_its_sid_and_status(
    twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.outbound")

    assert post_json("make_call", {"to": "+15558675310"}).status_code == 201

    assert logged(caplog, "shared.outbound") == [("INFO", f"Placed call {twilio.sids[0]} (queued)")]


# The SHA-256 of "order-1234", in lowercase hex.
ORDER_KEY_HASH = "71983129e5088fcbbb2be5a2e186253aa3ee915c173f42553285baf7100b0059"


def test_make_call_logs_a_keyed_call_with_the_key_hash_and_the_sid(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.outbound")

    assert keyed("make_call", CALL, "order-1234").status_code == 201

    assert logged(caplog, "shared.outbound")[-1] == (
        "INFO",
        f"idempotency_key Function=make_call KeyHash={ORDER_KEY_HASH} Replay=false Status=201 Sid={twilio.sids[0]}",
    )


def test_make_call_logs_a_replayed_answer_at_info_with_the_key_hash_status_and_sid(
    twilio: TwilioStandIn, storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    assert keyed("make_call", CALL, "order-1234").status_code == 201
    caplog.set_level(logging.INFO, logger="shared.outbound")

    assert keyed("make_call", CALL, "order-1234").status_code == 201

    assert logged(caplog, "shared.outbound") == [
        (
            "INFO",
            f"idempotency_key Function=make_call KeyHash={ORDER_KEY_HASH} Replay=true Status=201 Sid={twilio.sids[0]}",
        )
    ]
