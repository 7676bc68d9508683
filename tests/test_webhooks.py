"""Signature checks as they must hold in production: proxies, ports, GET, JSON bodies, token rotation."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from twilio.request_validator import RequestValidator

from devtools.standins import KeyVaultStandIn
from tests.support import AUTH_TOKEN, error_of, fixture, invoke, signed_post

INTERNAL = "http://10.0.0.5:8080/api/sms_url"


@pytest.mark.usefixtures("credentials_in_env")
def test_webhook_checks_the_public_url_behind_a_proxy(env: pytest.MonkeyPatch) -> None:
    env.setenv("PUBLIC_BASE_URL", "https://sms.example.com")
    public = "https://sms.example.com/api/sms_url"

    assert signed_post("sms_url", fixture("incoming_sms"), url=INTERNAL, signed_url=public).status_code == 200
    assert signed_post("sms_url", fixture("incoming_sms"), url=INTERNAL, signed_url=INTERNAL).status_code == 403


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


def test_forged_signatures_re_read_the_token_at_most_once_a_minute(vault: KeyVaultStandIn) -> None:
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
