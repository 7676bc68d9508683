"""Deleting the rows of the app's state that no request reads any more: Idempotency-Keys past their
24 hours, limit counters of windows that have ended, and outcomes past OUTCOME_RETENTION_DAYS. Each
table's owner says which rows those are (`idempotency.expired_rows`, `limits.past_windows`,
`outcomes.expired`); this module deletes them, in batches.

A batch is one Table transaction of up to 100 deletes in one partition, the most one may hold: a
round trip per 100 rows rather than per row, and each within the storage's short per-request
timeout. Every delete holds only if its row is unchanged since the query read it (ETag), so a key
claimed again, or a counter that took a slot in a new window, meanwhile is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared import idempotency, limits, outcomes
from shared.errors import ApiError
from shared.settings import get_settings

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

logger = logging.getLogger(__name__)

BATCH = 100  # the most operations a Table transaction holds
# Each table, and the query that finds its rows no request reads any more, as of a time.
SWEPT: tuple[tuple[str, Callable[[datetime], tuple[str, dict[str, Any]]]], ...] = (
    (idempotency.TABLE, idempotency.expired_rows),
    (limits.TABLE, limits.past_windows),
    (outcomes.TABLE, lambda now: outcomes.expired(get_settings(), now)),
)
# A row changed or deleted since the query read it: its batch is deleted row by row, keeping it.
# A tuple, compared with ==: the SDK may give the code as its string enum, which a set would hash by name.
_CHANGED = ("UpdateConditionNotSatisfied", "ResourceNotFound")


def sweep(now: datetime) -> None:
    """Delete each table's stale rows, one INFO line per table; a table that fails is logged at ERROR
    and its rows wait for the next run, which finds them again."""
    from azure.core.exceptions import AzureError

    if not get_settings().storage_configured:
        logger.warning("No storage is configured (AzureWebJobsStorage): nothing to sweep")
        return
    for name, stale in SWEPT:
        query, parameters = stale(now)
        try:
            deleted = delete_rows(name, query, parameters)
        except (AzureError, ApiError) as error:
            logger.error("Could not sweep table %s (%s); its rows wait for the next run", name, type(error).__name__)
        else:
            logger.info("Deleted %d stale rows from table %s", deleted, name)


def delete_rows(name: str, query: str, parameters: dict[str, Any]) -> int:
    """Delete the rows of table `name` that `query` finds, one page at a time; how many were deleted."""
    from shared import storage

    table = storage.table(name)
    # The keys alone: the rest of a row (an outcome's fields) would cross the network only to be dropped.
    found = table.query_entities(query, parameters=parameters, select=["PartitionKey", "RowKey"])
    return sum(_delete(table, batch) for batch in _batches(found))


def _batches(entities: Iterable[TableEntity]) -> Iterable[list[TableEntity]]:
    """Runs of at most BATCH entities of one partition; a query returns a partition's rows together."""
    batch: list[TableEntity] = []
    for entity in entities:
        if batch and (len(batch) == BATCH or entity["PartitionKey"] != batch[0]["PartitionKey"]):
            yield batch
            batch = []
        batch.append(entity)
    if batch:
        yield batch


def _delete(table: TableClient, batch: list[TableEntity]) -> int:
    from azure.core import MatchConditions
    from azure.data.tables import TableTransactionError, TransactionOperation

    # IfNotModified: the SDK sends the ETag each entity was read with, so a row written since stays.
    unchanged = {"match_condition": MatchConditions.IfNotModified}
    try:
        table.submit_transaction([(TransactionOperation.DELETE, entity, unchanged) for entity in batch])
    except TableTransactionError as error:
        if getattr(error, "error_code", None) not in _CHANGED:
            raise
        return sum(_delete_one(table, entity) for entity in batch)
    return len(batch)


def _delete_one(table: TableClient, entity: TableEntity) -> int:
    """1 if the row was deleted, 0 if it changed since it was read (the SDK ignores one already gone)."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    try:
        table.delete_entity(entity, match_condition=MatchConditions.IfNotModified)
    except ResourceModifiedError:
        return 0
    return 1
