"""Key Vault through the real DefaultAzureCredential and SecretClient, against local servers.

What went wrong is told to make_call's caller (who holds a function key); the anonymous
webhooks answer only 503 service_unavailable (tests/test_webhooks.py).
"""

from __future__ import annotations

import threading

import pytest

from shared import credentials
from testing.standins import Fault, KeyVaultStandIn
from tests.support import ACCOUNT_SID, AUTH_TOKEN, error_of, fixture, post_json, signed_post

THROTTLED = Fault(status=429, body={"error": {"code": "Throttled"}}, headers={"Retry-After": "0"})
UNAVAILABLE = Fault(status=503, body={"error": {"code": "ServiceUnavailable"}})
CALL = {"to": "+15558675310", "from": "+15017122661"}


def test_secrets_are_read_with_the_managed_identity(vault: KeyVaultStandIn) -> None:
    assert credentials.current() == credentials.TwilioCredentials(ACCOUNT_SID, AUTH_TOKEN)

    token_requests = vault.identity.received
    assert token_requests
    assert all(r.headers["X-IDENTITY-HEADER"] == vault.identity.header for r in token_requests)
    assert token_requests[0].query["resource"] == [f"https://0.0.1:{vault.url.rsplit(':', 1)[1]}"]
    secret_reads = [r for r in vault.received if "Authorization" in r.headers]
    assert {r.path.rstrip("/") for r in secret_reads} == {"/secrets/twilio-account-sid", "/secrets/twilio-auth-token"}
    assert all(r.headers["Authorization"].startswith("Bearer identity-token-") for r in secret_reads)


def test_secret_names_come_from_settings(vault: KeyVaultStandIn, env: pytest.MonkeyPatch) -> None:
    vault.secrets.update({"sid-2": "AC2", "token-2": "t2"})
    env.setenv("TWILIO_ACCOUNT_SID_SECRET", "sid-2")
    env.setenv("TWILIO_AUTH_TOKEN_SECRET", "token-2")

    assert credentials.current() == credentials.TwilioCredentials("AC2", "t2")


def test_a_secret_pasted_with_a_newline_still_works(vault: KeyVaultStandIn) -> None:
    vault.secrets["twilio-auth-token"] = AUTH_TOKEN + "\n"

    assert signed_post("sms_url", fixture("incoming_sms")).status_code == 200


def test_a_cold_start_asks_for_one_token_then_reads_both_secrets_at_once(vault: KeyVaultStandIn) -> None:
    vault.together = threading.Barrier(2, timeout=5)

    credentials.current()

    assert len([r for r in vault.received if "Authorization" not in r.headers]) == 1
    assert len(vault.identity.received) == 1
    assert sum(vault.fetches.values()) == 2
    assert not vault.together.broken


def test_a_forbidden_vault_answers_503_naming_vault_and_secret(vault: KeyVaultStandIn) -> None:
    vault.fail_next(Fault(status=403, body={"error": {"code": "Forbidden"}}), Fault(status=403, body={}))

    response = post_json("make_call", CALL)

    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "credentials_unavailable"
    assert vault.url in error["message"]
    assert "Key Vault Secrets User" in error["message"]
    assert error["target"] in {"twilio-account-sid", "twilio-auth-token"}


def test_a_missing_secret_answers_503_naming_it(vault: KeyVaultStandIn) -> None:
    del vault.secrets["twilio-auth-token"]

    response = post_json("make_call", CALL)

    assert response.status_code == 503
    assert error_of(response)["target"] == "twilio-auth-token"
    assert "no secret named 'twilio-auth-token'" in error_of(response)["message"]


@pytest.mark.parametrize("fault", [THROTTLED, UNAVAILABLE, Fault(drop=True)], ids=["429", "503", "dropped"])
def test_transient_vault_faults_are_retried(vault: KeyVaultStandIn, fault: Fault) -> None:
    vault.fail_next(fault, fault)

    assert signed_post("sms_url", fixture("incoming_sms")).status_code == 200


def test_a_vault_that_stays_down_answers_503_after_bounded_retries(vault: KeyVaultStandIn) -> None:
    vault.fail_next(*[UNAVAILABLE] * 50)

    response = post_json("make_call", CALL)

    assert response.status_code == 503
    assert "could not be read" in error_of(response)["message"]
    attempts = [r for r in vault.received if "Authorization" in r.headers]
    assert 2 < len(attempts) <= 10


def test_no_managed_identity_answers_503_saying_so(vault: KeyVaultStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("IDENTITY_HEADER", "wrong-header")
    env.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")

    response = post_json("make_call", CALL)

    assert response.status_code == 503
    assert "managed identity" in error_of(response)["message"]
