"""The app's Table storage, shared by every instance: where idempotency keys and limit counters live.

It is found as the Functions host finds its own storage (AzureWebJobsStorage): a connection
string (UseDevelopmentStorage=true for Azurite), or identity-based settings read with the app's
credential. Imported where first needed: azure.data.tables weighs on every cold start.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from concurrent.futures import Future
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables import TableClient

from shared.errors import ApiError
from shared.settings import STORAGE, ConfigurationError, Settings, get_settings

logger = logging.getLogger(__name__)
# The Azure SDKs log every request's headers at INFO: two or more lines per make_call, kept out.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

# A store that is down or silent answers within about this many seconds, retries included:
# make_call and send_sms wait on it before Twilio is asked.
TOTAL_TIMEOUT = 4.0
RETRY_AFTER = "5"
_CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.1,
    "retry_backoff_max": 1,
    "timeout": TOTAL_TIMEOUT,
    "connection_timeout": 1.5,
    "read_timeout": 2,
}
_LOCK = threading.Lock()  # held to find or start a table's creation, never across a request


class StateUnavailableError(ApiError):
    """The store holding keys and limits cannot be used, so nothing is sent (fail closed)."""

    def __init__(self, reason: str = "could not be reached") -> None:
        message = f"The app's state store (Table storage) {reason}; nothing was sent. Try again shortly."
        super().__init__(503, "state_unavailable", message, headers={"Retry-After": RETRY_AFTER})


def reachable(doing: str) -> _Reachable:
    """A storage failure the caller does not handle itself answers 503 state_unavailable."""
    return _Reachable(doing)


class _Reachable(contextlib.AbstractContextManager[None]):
    """A plain class rather than @contextmanager, so that mutation testing reaches its logic."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        if isinstance(error, AzureError):
            logger.warning("Table storage failed while %s: %s", self.doing, type(error).__name__)
            raise StateUnavailableError() from None


def table(name: str) -> TableClient:
    """The table, created on its first use in this process, once however many requests need it then.

    The requests that arrive while it is being created wait for that creation and share its outcome,
    so none waits longer than one attempt; a failure is not kept, and the next request tries again.
    """
    with _LOCK:
        tables = _tables()
        creation = tables.get(name)
        creating = creation is None
        if creation is None:
            creation = tables[name] = Future()
    if creating:
        try:
            creation.set_result(_created(name))
        except BaseException as error:
            with _LOCK:
                del tables[name]
            creation.set_exception(error)
    return creation.result()


@functools.cache
def _tables() -> dict[str, Future[TableClient]]:
    """Each table's client in this process, or its creation under way."""
    return {}


def _created(name: str) -> TableClient:
    """A client of the table's own, used by one request before any other may use it.

    The SDK is not safe for concurrent first requests: they race to open one HTTP session (a request
    can find it without its adapters, a ServiceResponseError), and a client made with
    get_table_client rewires the policies it shares with the others while they send.
    """
    client = _client(name)
    with reachable(f"creating table {name}"), contextlib.suppress(ResourceExistsError):
        client.create_table()
    return client


def _client(name: str) -> TableClient:
    settings = get_settings()
    try:
        if settings.storage_connection_string:
            return TableClient.from_connection_string(settings.storage_connection_string, name, **_CLIENT_OPTIONS)
        from shared.identity import credential

        return TableClient(
            _endpoint(settings), name, credential=credential(settings.storage_client_id), **_CLIENT_OPTIONS
        )
    except ValueError:
        raise ConfigurationError(STORAGE, "does not name a usable storage account (see its Table service)") from None


def _endpoint(settings: Settings) -> str:
    """AzureWebJobsStorage__tableServiceUri, else the account's public Table endpoint."""
    if settings.storage_table_service_uri:
        return settings.storage_table_service_uri
    return f"https://{settings.storage_account_name}.table.core.windows.net"
