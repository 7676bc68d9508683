"""What a refused webhook answers and logs: the exact error bodies of tests/test_webhooks.py's refusals."""

from __future__ import annotations

import hashlib

import pytest
from twilio.request_validator import RequestValidator

from shared import webhooks
from shared.settings import LOCAL_HOST
from tests.support import AUTH_TOKEN, error_of, fixture, function_url, invoke, signed_post

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def refusal(message: str) -> dict[str, str]:
    return {"code": "invalid_signature", "message": message, "target": "X-Twilio-Signature"}


def test_an_unsigned_webhook_is_told_the_header_is_missing() -> None:
    response = invoke("sms_url", body=b"From=%2B15558675310", headers=FORM)

    assert (response.status_code, error_of(response)) == (
        403,
        refusal("The request has no X-Twilio-Signature header."),
    )


def test_an_unsigned_webhook_on_the_local_host_is_told_how_to_send_a_signed_one(env: pytest.MonkeyPatch) -> None:
    env.setenv(LOCAL_HOST, "1")
    response = invoke("call_status", body=b"CallSid=CA1", headers=FORM)

    assert (response.status_code, error_of(response)) == (
        403,
        refusal(
            "The request has no X-Twilio-Signature header."
            " To send one signed as Twilio does: .venv/bin/python -m devtools.invoke call_status"
        ),
    )


@pytest.mark.usefixtures("credentials_in_env")
def test_a_webhook_signed_with_a_shared_key_is_told_to_sign_with_the_auth_token() -> None:
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"}

    response = signed_post("sms_url", fixture("incoming_sms"), headers=settings)

    assert error_of(response) == refusal(
        "Webhooks signed with a shared key are not supported: sign with the account's auth token."
    )


@pytest.mark.usefixtures("credentials_in_env")
def test_a_forged_signature_is_told_it_does_not_match() -> None:
    response = signed_post("sms_url", fixture("incoming_sms"), token="forger")

    assert (response.status_code, error_of(response)) == (
        403,
        refusal("The X-Twilio-Signature does not match this request."),
    )


@pytest.mark.usefixtures("credentials_in_env")
def test_a_forged_signature_is_logged_with_the_url_up_to_its_query(caplog: pytest.LogCaptureFixture) -> None:
    url = function_url("voice_url", "message=Why?&voice=alice")

    signed_post("voice_url", fixture("voice_call"), url=url, token="forger")

    assert [r.getMessage() for r in caplog.records if r.name == webhooks.__name__] == [
        "Refused a webhook with an invalid signature for https://myapp.azurewebsites.net/api/voice_url"
    ]


@pytest.mark.usefixtures("credentials_in_env")
def test_a_json_body_without_body_sha256_is_told_how_to_sign_it() -> None:
    url = function_url("call_status")
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": sign(url)}

    response = invoke("call_status", url=url, body=b'{"CallSid": "CA1"}', headers=headers)

    assert error_of(response) == refusal("A body that is not a form must be signed through bodySHA256 in the URL.")


@pytest.mark.usefixtures("credentials_in_env")
def test_a_json_body_that_is_not_utf_8_is_refused_as_not_matching() -> None:
    body = b'{"CallSid": "CA\xff"}'
    url = function_url("call_status", {"bodySHA256": hashlib.sha256(body).hexdigest()})
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": sign(url)}

    response = invoke("call_status", url=url, body=body, headers=headers)

    assert (response.status_code, error_of(response)["code"]) == (403, "invalid_signature")


@pytest.mark.usefixtures("credentials_in_env")
def test_a_get_webhook_is_checked_against_its_url_alone_whatever_body_it_carries() -> None:
    url = function_url("voice_url", {"message": "Hi"})
    headers = {**FORM, "X-Twilio-Signature": sign(url)}

    response = invoke("voice_url", "GET", url=url, body=b"CallSid=CA1", headers=headers)

    assert response.status_code == 200


def sign(url: str) -> str:
    """The signature Twilio sends for `url` with no form fields."""
    signature: str = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    return signature
