"""send_sms: the message Twilio receives and the caller's mistakes."""

from __future__ import annotations

import logging

import pytest

from shared.errors import ApiError
from shared.outbound import Sms
from shared.settings import Settings
from testing.standins import TwilioStandIn
from tests.support import ACCOUNT_SID, AUTH_TOKEN, body_json, error_of, invoke, logged, post_form, post_json

MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def test_send_sms_sends_the_message_with_twilio(twilio: TwilioStandIn) -> None:
    response = post_json("send_sms", {"to": "+15558675310", "body": "Your code is 1234"})

    assert response.status_code == 201
    (sent,) = twilio.received
    assert (sent.method, sent.path) == ("POST", MESSAGES_PATH)
    assert sent.basic_auth() == (ACCOUNT_SID, AUTH_TOKEN)
    assert sent.form == {
        "To": ["+15558675310"],
        "From": ["+15017122661"],
        "Body": ["Your code is 1234"],
        "StatusCallback": ["https://myapp.azurewebsites.net/api/message_status"],
    }
    assert body_json(response) == {
        "sid": twilio.sids[0],
        "status": "queued",
        "to": "+15558675310",
        "from": "+15017122661",
        "status_url": f"https://myapp.azurewebsites.net/api/messages/{twilio.sids[0]}",
    }


def test_send_sms_reads_a_form_body_with_its_own_from(twilio: TwilioStandIn) -> None:
    response = post_form("send_sms", {"to": "+44 7700 900123", "from": "+15017122662", "body": "Hi"})

    assert response.status_code == 201
    assert twilio.received[0].form["To"] == ["+447700900123"]
    assert twilio.received[0].form["From"] == ["+15017122662"]


def test_send_sms_tells_untyped_json_to_send_it_as_json(twilio: TwilioStandIn) -> None:
    response = invoke("send_sms", body=b'{"to": "+15558675310", "body": "Hi"}')

    assert response.status_code == 400
    assert error_of(response) == {
        "code": "content_type_mismatch",
        "message": "The body looks like JSON but was sent without a Content-Type:"
        " send it with Content-Type: application/json.",
        "target": "Content-Type",
    }
    assert twilio.received == []


def test_send_sms_hints_at_a_plus_left_unencoded_in_a_form(twilio: TwilioStandIn) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = invoke("send_sms", body=b"to=%2B15558675310&from=+15017122661&body=Hi", headers=form)

    assert response.status_code == 400
    assert error_of(response) == {
        "code": "invalid_phone_number",
        "message": "'from' must be an E.164 number such as +14155550100."
        " A '+' sent unencoded in a form or query string arrives as a space: write it as %2B.",
        "target": "from",
    }
    assert twilio.received == []


@pytest.mark.parametrize(
    ("document", "code", "target"),
    [
        ({"to": "+15558675310"}, "missing_parameter", "body"),
        ({"to": "+15558675310", "body": "   "}, "missing_parameter", "body"),
        ({"body": "Hi"}, "missing_parameter", "to"),
        ({"to": "+15558675310", "body": "x" * 1601}, "parameter_too_long", "body"),
        ({"to": "call me", "body": "Hi"}, "invalid_phone_number", "to"),
    ],
)
def test_send_sms_refuses_bad_parameters_before_calling_twilio(
    twilio: TwilioStandIn, document: dict[str, str], code: str, target: str
) -> None:
    response = post_json("send_sms", document)

    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["target"]) == (code, target)
    assert twilio.received == []


def test_send_sms_accepts_a_body_of_1600_characters(twilio: TwilioStandIn) -> None:
    response = post_json("send_sms", {"to": "+15558675310", "body": "x" * 1600})

    assert response.status_code == 201


def test_send_sms_refuses_a_lone_surrogate_naming_the_parameter(twilio: TwilioStandIn) -> None:
    body = b'{"to": "+14155550100", "body": "a\\ud800b"}'
    response = invoke("send_sms", body=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["target"]) == ("invalid_parameter", "body")
    assert twilio.received == []


def test_send_sms_refuses_a_body_over_64_kib(twilio: TwilioStandIn) -> None:
    response = post_form("send_sms", {"to": "+15558675310", "body": "x" * 65_536})

    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert twilio.received == []


def test_send_sms_refuses_a_premium_rate_number_under_an_allowed_prefix(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("ALLOWED_DESTINATIONS", "+44")
    response = post_json("send_sms", {"to": "+449012345678", "body": "Hi"})

    assert response.status_code == 403
    assert error_of(response)["code"] == "destination_not_allowed"
    assert twilio.received == []


def test_send_sms_reaches_premium_numbers_when_allowed(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("ALLOW_PREMIUM_DESTINATIONS", "true")

    assert post_json("send_sms", {"to": "+449012345678", "body": "Hi"}).status_code == 201


def test_send_sms_refuses_the_bahamas_when_only_us_and_canada_are_allowed(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("ALLOWED_DESTINATIONS", "US,CA")
    response = post_json("send_sms", {"to": "+12423456789", "body": "Hi"})

    assert response.status_code == 403
    assert twilio.received == []


@pytest.mark.parametrize(
    ("name", "value", "to"),
    [("ALLOWED_DESTINATIONS", " , ", "+14155550100"), ("TWILIO_FROM_NUMBER", "MyBrand", "+15558675310")],
)
def test_send_sms_with_a_broken_setting_answers_503_naming_it(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, name: str, value: str, to: str
) -> None:
    env.setenv(name, value)
    response = post_json("send_sms", {"to": to, "body": "Hi"})

    assert response.status_code == 503
    assert (error_of(response)["code"], error_of(response)["target"]) == ("configuration_error", name)
    assert twilio.received == []


def test_a_text_takes_its_default_sender_from_the_settings_it_is_given() -> None:
    sms = Sms.from_params({"to": "+15558675310", "body": "Hi"}, Settings(from_number="+15017122661"))

    assert sms.from_ == "+15017122661"


def test_a_text_is_held_to_the_destinations_of_the_settings_it_is_given() -> None:
    with pytest.raises(ApiError) as refused:
        Sms.from_params(
            {"to": "+15558675310", "from": "+15017122661", "body": "Hi"}, Settings(destinations_setting="GB")
        )

    assert (refused.value.status, refused.value.code) == (403, "destination_not_allowed")


def test_send_sms_logs_the_sent_message_with_its_sid_and_status(
    twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.outbound")

    assert post_json("send_sms", {"to": "+15558675310", "body": "Hi"}).status_code == 201

    assert logged(caplog, "shared.outbound") == [("INFO", f"Sent message {twilio.sids[0]} (queued)")]
