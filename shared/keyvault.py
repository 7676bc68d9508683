"""Reading the Twilio secrets from Azure Key Vault with the app's managed identity."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import ApiError

if TYPE_CHECKING:
    from azure.core.pipeline import PipelineRequest
    from azure.core.rest import HttpRequest
    from azure.keyvault.secrets import SecretClient

logger = logging.getLogger(__name__)

# Retries of throttling, 5xx and dropped connections all fit in this many seconds,
# which leaves a cold webhook room inside Twilio's 15-second limit.
TOTAL_TIMEOUT = 8.0


def read_secrets(vault_url: str, names: Sequence[str]) -> dict[str, str]:
    """Read the secrets side by side once the client holds a token.

    A cold client meets Key Vault's challenge and asks the managed identity for a token first: letting
    every read do that at once would cost one challenge and one token request per secret.
    """
    vault = _vault(vault_url)
    first, *rest = names
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="keyvault") as pool:
        futures = {first: pool.submit(_read_secret, vault.client, vault_url, first)}
        futures[first].add_done_callback(lambda _: vault.authorized.set())
        vault.authorized.wait()
        futures.update({name: pool.submit(_read_secret, vault.client, vault_url, name) for name in rest})
        return {name: future.result() for name, future in futures.items()}


@dataclass(frozen=True)
class _Vault:
    client: SecretClient
    authorized: threading.Event  # set once a request has carried a token


@functools.cache
def _vault(vault_url: str) -> _Vault:
    return _new_vault(vault_url)


def _new_vault(vault_url: str) -> _Vault:
    """Built apart from the cache around it, so that mutation testing reaches the token check."""
    authorized = threading.Event()

    def on_request(request: PipelineRequest[HttpRequest]) -> None:
        if "Authorization" in request.http_request.headers:
            authorized.set()

    return _Vault(_client(vault_url, on_request), authorized)


def _client(vault_url: str, on_request: Callable[[PipelineRequest[HttpRequest]], None]) -> SecretClient:
    """Built apart from the cache around it, so that mutation testing reaches its retries and timeouts."""
    from azure.keyvault.secrets import SecretClient

    from shared.identity import credential

    return SecretClient(
        vault_url,
        credential(),
        retry_total=4,
        retry_backoff_factor=0.2,
        retry_backoff_max=2,
        timeout=TOTAL_TIMEOUT,
        connection_timeout=3,
        read_timeout=5,
        raw_request_hook=on_request,
    )


def _read_secret(client: SecretClient, vault_url: str, name: str) -> str:
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )

    try:
        value = (client.get_secret(name).value or "").strip()  # a pasted secret often ends in a newline
    except ResourceNotFoundError:
        raise _unavailable(f"Key Vault {vault_url} has no secret named '{name}'.", name, status=404) from None
    except ClientAuthenticationError as error:
        logger.warning("No token for Key Vault %s: %s", vault_url, type(error).__name__)
        raise _unavailable(
            f"The app could not authenticate to Key Vault {vault_url} to read '{name}'"
            " (is its managed identity enabled?).",
            name,
        ) from None
    except HttpResponseError as error:
        status = error.status_code
        if status == 403:
            message = (
                f"Key Vault {vault_url} refused to let the app read '{name}'"
                " (grant its identity the Key Vault Secrets User role)."
            )
        else:
            message = f"Key Vault {vault_url} could not be read for '{name}' ({status or 'no answer'})."
        raise _unavailable(message, name, status=status) from None
    except AzureError as error:  # connection errors and timeouts
        logger.warning("Key Vault %s unreachable: %s", vault_url, type(error).__name__)
        raise _unavailable(f"Key Vault {vault_url} could not be reached to read '{name}'.", name) from None
    if not value:
        raise _unavailable(f"Key Vault secret '{name}' in {vault_url} is empty.", name)
    return value


def _unavailable(message: str, secret_name: str, *, status: int | None = None) -> ApiError:
    """`key_vault_status` tells a missing secret (404) from access not granted yet (403), and so on."""
    inner = {"key_vault_status": status} if status else None
    return ApiError(503, "credentials_unavailable", message, target=secret_name, inner=inner)
