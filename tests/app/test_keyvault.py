"""Key Vault through the real DefaultAzureCredential and SecretClient, against local servers: how the Twilio secrets
are read, and what each failure answers and logs.

What went wrong is told to make_call's caller (who holds a function key); the anonymous webhooks answer only
503 service_unavailable (tests/app/test_webhooks.py)."""

from __future__ import annotations

import re
import threading
from collections import Counter

import pytest

from devtools.ports import free_port
from shared import credentials, keyvault
from shared.errors import ApiError
from testing.standins import Fault, KeyVaultStandIn
from tests.support import ACCOUNT_SID, AUTH_TOKEN, error_of, fixture, post_json, signed_post

THROTTLED = Fault(status=429, body={"error": {"code": "Throttled"}}, headers={"Retry-After": "0"})
UNAVAILABLE = Fault(status=503, body={"error": {"code": "ServiceUnavailable"}})
CALL = {"to": "+15558675310", "from": "+15017122661"}


# --- reading the secrets ---------------------------------------------------------------------------------------------


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


# --- failures, as make_call answers them -----------------------------------------------------------------------------


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
    attempts = Counter(r.path for r in vault.received if "Authorization" in r.headers)
    # azure-core retries a status error 3 times (retry_status), below the 4 retries of any kind (retry_total).
    assert attempts == {"/secrets/twilio-account-sid/": 4, "/secrets/twilio-auth-token/": 4}


def test_a_vaults_retries_of_every_kind_together_stop_at_4(vault: KeyVaultStandIn) -> None:
    """Two dropped connections and three 503s: each kind is within azure-core's own limit of 3, so only the
    total of 4 retries stops the fifth failure from being tried again."""
    vault.fail_next(Fault(drop=True), Fault(drop=True), UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)

    with pytest.raises(ApiError) as raised:
        keyvault.read_secrets(vault.url, ["twilio-account-sid"])

    assert raised.value.inner == {"key_vault_status": 503}
    assert len([r for r in vault.received if "Authorization" in r.headers]) == 5


def test_a_vault_that_stops_answering_is_given_up_on_after_two_tries(vault: KeyVaultStandIn) -> None:
    """Each try waits 5 s for an answer, and no try starts once 8 s have passed; one answer, 20 s late, would
    have read the secret."""
    vault.fail_next(*[Fault(delay=20)] * 5)

    with pytest.raises(ApiError) as raised:
        keyvault.read_secrets(vault.url, ["twilio-account-sid"])

    assert raised.value.message == f"Key Vault {vault.url} could not be reached to read 'twilio-account-sid'."
    assert len([r for r in vault.received if "Authorization" in r.headers]) == 2


def test_no_managed_identity_answers_503_saying_so(vault: KeyVaultStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("IDENTITY_HEADER", "wrong-header")
    env.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")

    response = post_json("make_call", CALL)

    assert response.status_code == 503
    assert "managed identity" in error_of(response)["message"]


# --- failures, as read_secrets raises and logs them ------------------------------------------------------------------


NAMES = ("twilio-account-sid", "twilio-auth-token")


def read_failure(vault: KeyVaultStandIn) -> ApiError:
    with pytest.raises(ApiError) as raised:
        keyvault.read_secrets(vault.url, NAMES)
    return raised.value


@pytest.fixture
def no_identity(vault: KeyVaultStandIn, env: pytest.MonkeyPatch) -> None:
    """The app's identity endpoint refuses it: no managed identity is enabled for it."""
    env.setenv("IDENTITY_HEADER", "wrong-header")
    env.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")


@pytest.mark.usefixtures("no_identity")
def test_no_managed_identity_names_the_first_secret_as_the_target(vault: KeyVaultStandIn) -> None:
    assert read_failure(vault).target == "twilio-account-sid"


@pytest.mark.usefixtures("no_identity")
def test_no_managed_identity_answers_asking_whether_it_is_enabled(vault: KeyVaultStandIn) -> None:
    assert read_failure(vault).message == (
        f"The app could not authenticate to Key Vault {vault.url} to read 'twilio-account-sid'"
        " (is its managed identity enabled?)."
    )


@pytest.mark.usefixtures("no_identity")
def test_no_managed_identity_is_logged_naming_the_vault_and_the_error(
    vault: KeyVaultStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    read_failure(vault)

    assert {r.getMessage() for r in caplog.records if r.name == keyvault.__name__} == {
        f"No token for Key Vault {vault.url}: ClientAuthenticationError"
    }


def test_an_empty_secret_answers_503_naming_it(vault: KeyVaultStandIn) -> None:
    vault.secrets["twilio-auth-token"] = ""

    error = read_failure(vault)

    assert (error.status, error.code, error.target) == (503, "credentials_unavailable", "twilio-auth-token")
    assert error.message == f"Key Vault secret 'twilio-auth-token' in {vault.url} is empty."


def test_a_forbidden_read_answers_naming_the_role_to_grant(vault: KeyVaultStandIn) -> None:
    forbidden = Fault(status=403, body={"error": {"code": "Forbidden"}})
    vault.fail_next(forbidden, forbidden)  # both reads: which reaches the vault first is not fixed

    assert read_failure(vault).message == (
        f"Key Vault {vault.url} refused to let the app read 'twilio-account-sid'"
        " (grant its identity the Key Vault Secrets User role)."
    )


def test_a_vault_that_stays_down_answers_with_its_last_status(vault: KeyVaultStandIn) -> None:
    vault.fail_next(*[UNAVAILABLE] * 50)

    error = read_failure(vault)

    assert (error.target, error.message) == (
        "twilio-account-sid",
        f"Key Vault {vault.url} could not be read for 'twilio-account-sid' (503).",
    )


@pytest.fixture
def unreachable_vault(vault: KeyVaultStandIn, env: pytest.MonkeyPatch) -> str:
    """KEY_VAULT_URL names a loopback port where nothing listens."""
    url = f"https://127.0.0.1:{free_port()}"
    env.setenv("KEY_VAULT_URL", url)
    return url


def test_an_unreachable_vault_answers_naming_it_and_the_secret(unreachable_vault: str) -> None:
    with pytest.raises(ApiError) as raised:
        keyvault.read_secrets(unreachable_vault, NAMES)

    assert (raised.value.target, raised.value.message) == (
        "twilio-account-sid",
        f"Key Vault {unreachable_vault} could not be reached to read 'twilio-account-sid'.",
    )


def test_an_unreachable_vault_is_logged_naming_it_and_the_error(
    unreachable_vault: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ApiError):
        keyvault.read_secrets(unreachable_vault, NAMES)

    assert {r.getMessage() for r in caplog.records if r.name == keyvault.__name__} == {
        f"Key Vault {unreachable_vault} unreachable: ServiceRequestError"
    }


@pytest.mark.parametrize(
    ("faults", "missing", "status"),
    [
        ([Fault(status=403, body={"error": {"code": "Forbidden"}})] * 2, False, 403),
        ([], True, 404),
        ([Fault(status=500, body={"error": {"code": "InternalError"}})] * 10, False, 500),
    ],
    ids=["forbidden", "missing", "failing"],
)
def test_a_vault_answer_carries_the_vault_status_as_inner_error(
    vault: KeyVaultStandIn, faults: list[Fault], missing: bool, status: int
) -> None:
    """What a caller (or the number-wiring command) needs to tell access not granted yet from a missing secret."""
    vault.fail_next(*faults)
    if missing:
        vault.secrets.clear()

    assert read_failure(vault).inner == {"key_vault_status": status}


def test_an_unreachable_vault_has_no_vault_status(unreachable_vault: str) -> None:
    with pytest.raises(ApiError) as raised:
        keyvault.read_secrets(unreachable_vault, NAMES)

    assert raised.value.inner is None


@pytest.mark.usefixtures("no_identity")
def test_each_secret_is_read_and_logged_on_a_thread_named_for_key_vault(
    vault: KeyVaultStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    read_failure(vault)

    threads = {r.threadName for r in caplog.records if r.name == keyvault.__name__}
    assert threads
    assert all(re.fullmatch(r"keyvault_\d+", name or "") for name in threads), threads
