"""Which managed identity the app asks for its tokens: the one AZURE_CLIENT_ID names, else the system-assigned one."""

from __future__ import annotations

import threading

import pytest
from azure.core.credentials import TokenCredential

from shared import credentials, identity
from testing.process_state import clear_caches
from testing.standins import KeyVaultStandIn

CLIENT_ID = "00000000-0000-0000-0000-0000000000c2"


def test_azure_client_id_names_the_identity_without_the_spaces_around_it(
    vault: KeyVaultStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("AZURE_CLIENT_ID", f"  {CLIENT_ID} ")
    credentials.current()

    assert [r.query.get("client_id") for r in vault.identity.received] == [[CLIENT_ID]]


@pytest.mark.parametrize("value", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_without_azure_client_id_the_system_assigned_identity_is_asked(
    vault: KeyVaultStandIn, env: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        env.setenv("AZURE_CLIENT_ID", value)
    credentials.current()

    assert [r.query.get("client_id") for r in vault.identity.received] == [None]


def test_threads_asking_at_once_for_the_first_time_share_one_credential() -> None:
    for _ in range(20):  # without the lock, about one try in three made a second credential
        clear_caches()

        assert len({id(credential) for credential in asked_at_once(8)}) == 1


def asked_at_once(threads: int) -> list[TokenCredential]:
    barrier, found = threading.Barrier(threads), []

    def ask() -> None:
        barrier.wait()
        found.append(identity.credential())

    running = [threading.Thread(target=ask) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return found
