"""What reading the Twilio secrets answers, and logs, when Key Vault or the managed identity fails."""

from __future__ import annotations

import re

import pytest

from devtools.ports import free_port
from shared import keyvault
from shared.errors import ApiError
from testing.standins import Fault, KeyVaultStandIn

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
    vault.fail_next(*[Fault(status=503, body={"error": {"code": "ServiceUnavailable"}})] * 50)

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
