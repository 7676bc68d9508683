"""The app's Table storage, shared by every instance: where idempotency keys and limit counters live.

It is found as the Functions host finds its own storage (AzureWebJobsStorage): a connection
string (UseDevelopmentStorage=true for Azurite), or identity-based settings read with the app's
credential. Imported where first needed: azure.data.tables weighs on every cold start.

A write whose answer is lost may still have landed: the SDK retries a PUT and meets its own
change (412), and a POST is not retried at all. So the writes here answer "not written" rather
than fail, and the caller re-reads the row to tell its own write from another request's.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableEntity, TableTransactionError, TransactionOperation, UpdateMode

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
# A transaction that another request's row stood in the way of: one written, changed or deleted first.
_LOST_RACE = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound"})
_UNCHANGED: dict[str, Any] = {"mode": UpdateMode.REPLACE, "match_condition": MatchConditions.IfNotModified}

T = TypeVar("T")


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


class Table:
    """One of the app's tables, by name. Each operation runs on the table's client; a table that has gone
    missing (deleted, or an emulator restarted in memory) is created again and the operation run once more.

    The writes answer "not written" (None or False) when another request's row stands in the way, and
    when the answer was lost (ServiceResponseError): the caller re-reads the row to learn which.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def etag(entity: TableEntity) -> str:
        """The ETag of a row as read: what a write conditional on that reading names."""
        return str(entity.metadata["etag"])

    def create(self, entity: Mapping[str, Any]) -> str | None:
        """Insert the row: its ETag, or None when a row with its keys exists or the answer was lost."""
        try:
            created = self._run(lambda client: client.create_entity(entity))
        except (ResourceExistsError, ServiceResponseError):
            return None
        return str(created["etag"])

    def get(self, partition: str, row: str) -> TableEntity | None:
        try:
            return self._run(lambda client: client.get_entity(partition, row))
        except ResourceNotFoundError:
            return None

    def query(self, query_filter: str, parameters: Mapping[str, Any]) -> list[TableEntity]:
        return self._run(lambda client: list(client.query_entities(query_filter, parameters=dict(parameters))))

    def replace(self, entity: Mapping[str, Any], etag: str) -> str | None:
        """Replace the row if it is unchanged since `etag`: its new ETag, or None when it changed, is gone,
        or the answer was lost."""
        try:
            updated = self._run(lambda client: client.update_entity(entity, etag=etag, **_UNCHANGED))
        except (ResourceModifiedError, ResourceNotFoundError, ServiceResponseError):
            return None
        return str(updated["etag"])

    def delete(self, partition: str, row: str, etag: str) -> bool:
        """Delete the row if it is unchanged since `etag`, or find it gone; False when it changed or the
        answer was lost."""
        unchanged = MatchConditions.IfNotModified
        try:
            self._run(lambda client: client.delete_entity(partition, row, etag=etag, match_condition=unchanged))
        except (ResourceModifiedError, ServiceResponseError):
            return False
        return True

    def write_all(self, rows: Sequence[tuple[Mapping[str, Any], str | None]]) -> bool:
        """Write every row or none, each created (ETag None) or replaced if unchanged since its ETag; False
        when another request wrote or deleted one first, or the answer was lost. A lone row is written directly: a
        transaction costs the store more than one operation."""
        if len(rows) == 1:
            ((entity, etag),) = rows
            return (self.create(entity) if etag is None else self.replace(entity, etag)) is not None
        operations = [
            (TransactionOperation.CREATE, entity)
            if etag is None
            else (TransactionOperation.UPDATE, entity, {**_UNCHANGED, "etag": etag})
            for entity, etag in rows
        ]
        try:
            self._run(lambda client: client.submit_transaction(operations))
        except TableTransactionError as error:
            if _code(error) not in _LOST_RACE:
                raise
            return False
        except ServiceResponseError:
            return False
        return True

    def _run(self, operation: Callable[[TableClient], T]) -> T:
        client = table(self.name)
        try:
            return operation(client)
        except HttpResponseError as error:
            if _code(error) != "TableNotFound":
                raise
        logger.warning("Table %s had gone missing; creating it again", self.name)
        _forget(self.name, client)
        return operation(table(self.name))


def _code(error: HttpResponseError) -> str | None:
    """The Table service's error code, which the SDK leaves undecoded when creating an entity."""
    code = getattr(error, "error_code", None)
    if code is not None:
        return str(getattr(code, "value", code))
    if error.response is None:
        return None
    try:
        body = json.loads(error.response.text())
    except ValueError:
        return None
    found = body.get("odata.error", {}).get("code") if isinstance(body, dict) else None
    return found if isinstance(found, str) else None


def _forget(name: str, client: TableClient) -> None:
    """Forget the table as created, unless another request already did and started its creation again."""
    with _LOCK:
        tables = _tables()
        creation = tables.get(name)
        if creation is not None and creation.done() and creation.exception() is None and creation.result() is client:
            del tables[name]
