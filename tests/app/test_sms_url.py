"""sms_url: the reply to an incoming text, only for requests Twilio signed."""

from __future__ import annotations

import pytest

from tests.support import error_of, fixture, invoke, signed_post, text

XML = '<?xml version="1.0" encoding="UTF-8"?>'


pytestmark = pytest.mark.usefixtures("credentials_in_env")


def test_sms_url_replies_with_the_default_message() -> None:
    response = signed_post("sms_url", fixture("incoming_sms"))

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert text(response) == (
        f"{XML}<Response><Message>Hey, thanks for the ping! Twilio and Azure rock!</Message></Response>"
    )


def test_sms_url_replies_with_the_sms_reply_setting_escaped(env: pytest.MonkeyPatch) -> None:
    env.setenv("SMS_REPLY", "Got it <3 & thanks")
    response = signed_post("sms_url", fixture("incoming_sms"))

    assert text(response) == f"{XML}<Response><Message>Got it &lt;3 &amp; thanks</Message></Response>"


def test_sms_url_rejects_an_unsigned_text() -> None:
    response = invoke("sms_url", body=b"Body=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert response.status_code == 403
    assert error_of(response)["code"] == "invalid_signature"


def test_sms_url_rejects_a_tampered_body() -> None:
    original = fixture("incoming_sms")
    response = signed_post("sms_url", {**original, "Body": "forged"}, signed_form=original)

    assert response.status_code == 403


def test_sms_url_without_credentials_answers_503_naming_nothing(env: pytest.MonkeyPatch) -> None:
    env.delenv("TWILIO_AUTH_TOKEN")
    response = signed_post("sms_url", fixture("incoming_sms"))

    assert response.status_code == 503
    assert error_of(response) == {
        "code": "service_unavailable",
        "message": "The service is temporarily unavailable; try again later.",
        "target": None,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [("TWILIO_FROM_NUMBER", "MyBrand"), ("ALLOWED_DESTINATIONS", ","), ("PER_INSTANCE_CONCURRENCY", "0")],
)
def test_sms_url_answers_even_when_an_outbound_setting_is_wrong(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)

    assert signed_post("sms_url", fixture("incoming_sms")).status_code == 200
