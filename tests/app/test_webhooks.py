"""Signature checks as they must hold in production (proxies, ports, GET, JSON bodies, token rotation), and what a
refused webhook is told and what is logged."""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import azure.functions as func
import pytest
from twilio.request_validator import RequestValidator

from shared import webhooks
from shared.settings import LOCAL_HOST
from testing.standins import KeyVaultStandIn
from tests.support import AUTH_TOKEN, error_of, fixture, function_url, invoke, logged, signed_post

INTERNAL = "http://10.0.0.5:8080/api/sms_url"
INTERNAL_VOICE = "http://10.0.0.5:8080/api/voice_url"


# --- what the decorator marks ----------------------------------------------------------------------------------------


def test_a_handler_under_twilio_webhook_is_known_as_a_signed_webhook_and_keeps_its_name() -> None:
    def answer(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("answered")

    wrapped = webhooks.twilio_webhook(answer)

    assert (webhooks.is_twilio_webhook(wrapped), wrapped.__name__) == (True, "answer")
    assert webhooks.is_twilio_webhook(answer) is False


# --- the URL a signature is checked against --------------------------------------------------------------------------


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_checks_the_public_url_behind_a_proxy(env: pytest.MonkeyPatch) -> None:
    env.setenv("PUBLIC_BASE_URL", "https://sms.example.com")
    public = "https://sms.example.com/api/sms_url"

    assert signed_post("sms_url", fixture("incoming_sms"), url=INTERNAL, signed_url=public).status_code == 200
    assert signed_post("sms_url", fixture("incoming_sms"), url=INTERNAL, signed_url=INTERNAL).status_code == 403


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_on_a_custom_domain_is_checked_against_the_url_twilio_requested(env: pytest.MonkeyPatch) -> None:
    env.setenv("WEBSITE_HOSTNAME", "myapp.azurewebsites.net")
    url = "https://voice.example.com/api/sms_url"

    assert signed_post("sms_url", fixture("incoming_sms"), url=url).status_code == 200


@pytest.mark.usefixtures("credentials_in_env")
@pytest.mark.parametrize(
    ("signed", "status"),
    [
        ("https://apim.example.com/twilio/api/voice_url", 200),
        ("https://apim.example.com/api/voice_url", 403),
        ("https://apim.example.com/twilio/voice_url", 403),  # what a gateway rewriting the path would need
    ],
)
def test_webhook_checks_public_base_url_with_its_path_and_api_function_appended(
    env: pytest.MonkeyPatch, signed: str, status: int
) -> None:
    env.setenv("PUBLIC_BASE_URL", "https://apim.example.com/twilio")
    response = signed_post("voice_url", fixture("voice_call"), url=INTERNAL_VOICE, signed_url=signed)

    assert response.status_code == status


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "frontdoor.example.com"}
FRONT_DOOR = "https://frontdoor.example.com/api/sms_url"


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_ignores_forwarded_headers_by_default() -> None:
    response = signed_post("sms_url", fixture("incoming_sms"), url=INTERNAL, signed_url=FRONT_DOOR, headers=FORWARDED)

    assert response.status_code == 403


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_honours_forwarded_headers_when_trusted(env: pytest.MonkeyPatch) -> None:
    env.setenv("TRUST_FORWARDED_HEADERS", "true")
    response = signed_post("sms_url", fixture("incoming_sms"), url=INTERNAL, signed_url=FRONT_DOOR, headers=FORWARDED)

    assert response.status_code == 200


@pytest.mark.usefixtures("credentials_in_env")
@pytest.mark.parametrize(
    ("requested", "signed"),
    [
        ("https://myapp.azurewebsites.net:443/api/sms_url", "https://myapp.azurewebsites.net/api/sms_url"),
        ("https://myapp.azurewebsites.net/api/sms_url", "https://myapp.azurewebsites.net:443/api/sms_url"),
    ],
)
def test_webhook_accepts_the_default_port_present_or_absent(requested: str, signed: str) -> None:
    assert signed_post("sms_url", fixture("incoming_sms"), url=requested, signed_url=signed).status_code == 200


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_checks_the_query_string_byte_for_byte() -> None:
    url = "https://myapp.azurewebsites.net/api/voice_url?message=Hi%20there&voice=alice"
    assert signed_post("voice_url", fixture("voice_call"), url=url).status_code == 200


# --- JSON bodies, shared keys, and a rotated auth token --------------------------------------------------------------


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_accepts_a_json_body_signed_through_body_sha256() -> None:
    body = json.dumps({"CallSid": "CA1", "CallStatus": "completed"})
    url = f"https://myapp.azurewebsites.net/api/call_status?bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}

    assert invoke("call_status", url=url, body=body.encode(), headers=headers).status_code == 204
    tampered = body.replace("completed", "failed").encode()
    assert invoke("call_status", url=url, body=tampered, headers=headers).status_code == 403


def test_webhook_follows_an_auth_token_rotated_in_key_vault(vault: KeyVaultStandIn) -> None:
    assert signed_post("sms_url", fixture("incoming_sms")).status_code == 200

    vault.secrets["twilio-auth-token"] = "rotated-token-2"
    assert signed_post("sms_url", fixture("incoming_sms"), token="rotated-token-2").status_code == 200
    assert signed_post("sms_url", fixture("incoming_sms"), token="rotated-token-2").status_code == 200
    assert vault.fetches["twilio-auth-token"] == 2


def test_forged_signatures_re_read_the_token_once_within_a_minute(vault: KeyVaultStandIn) -> None:
    """The minute itself is crossed with a clock in test_credentials.py."""
    for _ in range(20):
        assert signed_post("sms_url", fixture("incoming_sms"), token="forger").status_code == 403

    assert vault.fetches["twilio-auth-token"] == 2  # the first read, then one re-read


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_refuses_a_json_body_signed_without_body_sha256() -> None:
    url = "https://myapp.azurewebsites.net/api/call_status"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}

    response = invoke("call_status", url=url, body=b'{"CallSid": "CA1"}', headers=headers)

    assert response.status_code == 403
    assert "bodySHA256" in error_of(response)["message"]


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_signed_with_a_shared_key_is_refused_clearly() -> None:
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"}
    response = signed_post("sms_url", fixture("incoming_sms"), headers=settings)

    assert response.status_code == 403
    assert "shared key" in error_of(response)["message"]


def test_concurrent_webhooks_after_a_rotation_all_pass(vault: KeyVaultStandIn) -> None:
    assert signed_post("sms_url", fixture("incoming_sms")).status_code == 200
    vault.secrets["twilio-auth-token"] = "rotated-token-3"
    vault.delay = 0.1

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda _: signed_post("sms_url", fixture("incoming_sms"), token="rotated-token-3").status_code, range(8)
            )
        )

    assert statuses == [200] * 8
    assert vault.fetches["twilio-auth-token"] == 2


# --- malformed forwarded headers, trusted ----------------------------------------------------------------------------


@pytest.mark.usefixtures("credentials_in_env")
@pytest.mark.parametrize("host", ["[", "host:99999", "evil.example/#", "evil.example:443/x", "a b"])
def test_webhook_ignores_a_malformed_forwarded_host(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, host: str
) -> None:
    env.setenv("TRUST_FORWARDED_HEADERS", "true")
    with caplog.at_level(logging.WARNING):
        response = signed_post("sms_url", fixture("incoming_sms"), url=INTERNAL, headers={"X-Forwarded-Host": host})

    assert response.status_code == 200  # checked against the URL as received
    assert "Ignored a malformed X-Forwarded-Host header" in caplog.text


@pytest.mark.usefixtures("credentials_in_env")
@pytest.mark.parametrize("proto", ["https://evil.example/#", "HTTPS", "ftp", "https extra"])
def test_webhook_ignores_a_forwarded_proto_other_than_http_or_https(env: pytest.MonkeyPatch, proto: str) -> None:
    env.setenv("TRUST_FORWARDED_HEADERS", "true")
    response = signed_post("sms_url", fixture("incoming_sms"), url=INTERNAL, headers={"X-Forwarded-Proto": proto})

    assert response.status_code == 200


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_logs_an_ignored_forwarded_header_only_as_a_repr(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("TRUST_FORWARDED_HEADERS", "true")
    with caplog.at_level(logging.WARNING):
        signed_post("sms_url", fixture("incoming_sms"), headers={"X-Forwarded-Host": "evil\nFORGED LOG LINE"})

    assert "'evil\\nFORGED LOG LINE'" in caplog.text
    assert "\nFORGED" not in caplog.text


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_with_trust_and_a_malformed_forwarded_host_never_fails_unsigned(env: pytest.MonkeyPatch) -> None:
    env.setenv("TRUST_FORWARDED_HEADERS", "true")
    headers = {"X-Forwarded-Host": "[", "X-Twilio-Signature": "forged"}

    assert invoke("voice_url", "GET", headers=headers).status_code == 403


# --- refused before any credential is read: size, no signature -------------------------------------------------------


@pytest.mark.parametrize("name", ["voice_url", "sms_url", "call_status", "message_status"])
def test_webhook_refuses_a_body_over_64_kib_before_checking_the_signature(vault: KeyVaultStandIn, name: str) -> None:
    response = signed_post(name, {"Body": "x" * 65_536})

    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert vault.received == []  # no credential was needed to refuse it


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_refuses_a_declared_content_length_over_64_kib() -> None:
    response = signed_post("sms_url", fixture("incoming_sms"), headers={"Content-Length": "8000000"})

    assert response.status_code == 413


@pytest.mark.parametrize("name", ["voice_url", "sms_url", "call_status", "message_status"])
def test_unsigned_webhook_is_refused_before_any_credential_is_read(vault: KeyVaultStandIn, name: str) -> None:
    del vault.secrets["twilio-auth-token"]
    response = invoke(name, body=b"CallSid=CA1", headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert response.status_code == 403
    assert error_of(response)["code"] == "invalid_signature"
    assert vault.received == []


def test_unsigned_webhook_with_nothing_configured_is_refused_without_naming_a_setting() -> None:
    response = invoke("sms_url", body=b"Body=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert response.status_code == 403
    assert "TWILIO" not in response.get_body().decode()


# --- a bare 503 when the signature cannot be checked -----------------------------------------------------------------


UNAVAILABLE = {
    "code": "service_unavailable",
    "message": "The service is temporarily unavailable; try again later.",
    "target": None,
}


def test_signed_webhook_without_the_vault_secret_answers_a_bare_503_and_logs_why(
    vault: KeyVaultStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    del vault.secrets["twilio-auth-token"]
    with caplog.at_level(logging.WARNING):
        response = signed_post("sms_url", fixture("incoming_sms"))

    assert response.status_code == 503
    assert error_of(response) == UNAVAILABLE
    assert f"Key Vault {vault.url} has no secret named 'twilio-auth-token'" in caplog.text


def test_signed_webhook_with_nothing_configured_answers_a_bare_503_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = signed_post("call_status", fixture("call_status_completed"))

    assert response.status_code == 503
    assert error_of(response) == UNAVAILABLE
    assert "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or KEY_VAULT_URL" in caplog.text


@pytest.mark.usefixtures("credentials_in_env")
def test_signed_webhook_with_a_malformed_public_base_url_answers_a_bare_503_and_logs_why(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("PUBLIC_BASE_URL", "https://pub.example:abc")
    with caplog.at_level(logging.WARNING):
        response = signed_post("voice_url", fixture("voice_call"))

    assert response.status_code == 503
    assert error_of(response) == UNAVAILABLE
    (line,) = [message for level, message in logged(caplog, "shared.webhooks") if level == "ERROR"]
    assert line.startswith("Cannot check webhook signatures: Setting PUBLIC_BASE_URL must be an absolute http(s) URL")
    assert line.endswith(" (configuration_error)")


# --- what a refused webhook is told, and what is logged --------------------------------------------------------------


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
