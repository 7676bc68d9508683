"""The app's one Azure credential: Key Vault and Table storage share its token cache.

Imported where first needed: azure.identity weighs on every cold start.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


_LOCK = threading.Lock()


def credential(managed_identity_client_id: str | None = None) -> TokenCredential:
    """DefaultAzureCredential, told which user-assigned identity to use when a setting names one.

    AZURE_CLIENT_ID is the identity DefaultAzureCredential picks anyway, so a client ID equal to it
    (as in Azure, where both name the app's identity) shares the one credential.
    """
    client_id = managed_identity_client_id or os.environ.get("AZURE_CLIENT_ID", "").strip() or None
    with _LOCK:  # the secrets prefetch, the first requests and the storage client must share one token cache
        return _credential(client_id)


@functools.cache
def _credential(client_id: str | None) -> TokenCredential:
    return _new_credential(client_id)


def _new_credential(client_id: str | None) -> TokenCredential:
    """Built apart from the cache around it, so that mutation testing reaches it."""
    from azure.identity import DefaultAzureCredential

    # None said outright: the system-assigned identity, even where AZURE_CLIENT_ID holds only spaces.
    return DefaultAzureCredential(managed_identity_client_id=client_id)
