"""voice_url: the TwiML a call hears, only for requests Twilio signed."""

from __future__ import annotations

import pytest

from tests.support import (
    error_of,
    fixture,
    function_url,
    invoke,
    signed_get,
    signed_post,
    text,
)

XML = '<?xml version="1.0" encoding="UTF-8"?>'


pytestmark = pytest.mark.usefixtures("credentials_in_env")


def test_voice_url_says_hello_monkey_by_default() -> None:
    response = signed_post("voice_url", fixture("voice_call"))

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert text(response) == f"{XML}<Response><Say>Hello Monkey!</Say></Response>"


def test_voice_url_says_the_message_voice_and_language_from_its_signed_url() -> None:
    url = function_url("voice_url", {"message": "Ahoy & <welcome>", "voice": "Polly.Joanna", "language": "en-US"})
    response = signed_post("voice_url", fixture("voice_call"), url=url)

    assert text(response) == (
        f'{XML}<Response><Say language="en-US" voice="Polly.Joanna">Ahoy &amp; &lt;welcome&gt;</Say></Response>'
    )


def test_voice_url_uses_the_voice_message_setting(env: pytest.MonkeyPatch) -> None:
    env.setenv("VOICE_MESSAGE", "Thanks for calling")
    response = signed_post("voice_url", fixture("voice_call"))

    assert text(response) == f"{XML}<Response><Say>Thanks for calling</Say></Response>"


def test_voice_url_answers_a_signed_get() -> None:
    response = signed_get("voice_url", {**fixture("voice_call"), "message": "Hi"})

    assert response.status_code == 200
    assert text(response) == f"{XML}<Response><Say>Hi</Say></Response>"


def test_voice_url_rejects_a_missing_signature() -> None:
    response = invoke("voice_url", body=b"CallSid=CA1", headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert response.status_code == 403
    assert error_of(response)["code"] == "invalid_signature"
    assert b"<Response>" not in response.get_body()


def test_voice_url_rejects_tampered_signature() -> None:
    signed = fixture("voice_call")
    response = signed_post("voice_url", signed, headers={"X-Twilio-Signature": "AAAA" + "=" * 24})

    assert response.status_code == 403
    assert error_of(response)["target"] == "X-Twilio-Signature"


def test_voice_url_rejects_a_tampered_parameter() -> None:
    url = function_url("voice_url", {"message": "Hello"})
    tampered = function_url("voice_url", {"message": "Send money"})
    response = signed_post("voice_url", fixture("voice_call"), url=tampered, signed_url=url)

    assert response.status_code == 403
    assert b"Send money" not in response.get_body()


def test_voice_url_rejects_a_signature_for_another_url() -> None:
    response = signed_post("voice_url", fixture("voice_call"), signed_url="https://elsewhere.example.com/api/voice_url")

    assert response.status_code == 403


def test_voice_url_rejects_a_signature_made_with_another_token() -> None:
    response = signed_post("voice_url", fixture("voice_call"), token="not-the-auth-token")

    assert response.status_code == 403


def test_voice_url_refuses_an_overlong_message_even_when_signed() -> None:
    response = signed_get("voice_url", {"message": "x" * 1001})

    assert response.status_code == 400
    assert error_of(response)["target"] == "message"
