"""Limits on calls and texts, shared by every instance: per destination per hour, and per UTC day.

Counters live in Table storage and are taken with optimistic concurrency (ETags), so two
instances can never both take the last slot. Each counter row carries its window (the hour
or the day): a row from an earlier window counts as empty, and rows never multiply with time.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import ApiError
from shared.phone_numbers import masked
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.data.tables import TableClient

logger = logging.getLogger(__name__)

TABLE = "limits"
PARTITION = "counters"  # one partition, so that a request takes all its slots in one transaction
APP_ROW = "app"
# Transactions lost to concurrent requests before one settles: each round, one of them wins.
_ATTEMPTS = 16
_LOST_RACE = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied"})


@dataclass(frozen=True)
class _Counter:
    row: str
    window: str
    limit: int
    ends: datetime
    setting: str
    target: str | None
    what: str


def take_slot(number: str, settings: Settings) -> None:
    """Count one call or text to `number`, or refuse it (429) when a limit is reached."""
    counters = _counters(number, settings, datetime.now(UTC))
    if not counters:
        return
    if not settings.storage_configured:
        _warn_limits_off()
        return
    from shared.storage import StateUnavailableError

    try:
        _take(counters, number)
    except StateUnavailableError:
        if not settings.limits_fail_open:
            raise
        logger.warning("Limits not applied to a request to %s: storage unavailable (LIMITS_FAIL_OPEN)", masked(number))


def _counters(number: str, settings: Settings, now: datetime) -> list[_Counter]:
    counters = []
    hourly, daily = settings.destination_hourly_limit, settings.daily_limit
    if hourly is not None:
        hour = now.replace(minute=0, second=0, microsecond=0)
        counters.append(
            _Counter(
                row="to-" + hashlib.sha256(number.encode()).hexdigest(),
                window=hour.strftime("%Y%m%d%H"),
                limit=hourly,
                ends=hour + timedelta(hours=1),
                setting="DESTINATION_HOURLY_LIMIT",
                target="to",
                what="calls and texts to this number this hour",
            )
        )
    if daily is not None:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        counters.append(
            _Counter(
                row=APP_ROW,
                window=day.strftime("%Y%m%d"),
                limit=daily,
                ends=day + timedelta(days=1),
                setting="DAILY_LIMIT",
                target=None,
                what="calls and texts today (UTC)",
            )
        )
    return counters


def _take(counters: Sequence[_Counter], number: str) -> None:
    from shared import storage

    table = storage.table(TABLE)
    rows = " or ".join(f"RowKey eq @row{i}" for i in range(len(counters)))
    parameters = {"partition": PARTITION, **{f"row{i}": counter.row for i, counter in enumerate(counters)}}
    for _ in range(_ATTEMPTS):
        with storage.reachable("taking a slot under the limits"):
            found = {
                entity["RowKey"]: entity
                for entity in table.query_entities(f"PartitionKey eq @partition and ( {rows} )", parameters=parameters)
            }
            writes: list[_Write] = []
            for counter in counters:
                entity = found.get(counter.row)
                used = int(entity["Count"]) if entity is not None and entity["Window"] == counter.window else 0
                if used >= counter.limit:
                    raise _exceeded(counter, number)
                taken = {"PartitionKey": PARTITION, "RowKey": counter.row, "Window": counter.window, "Count": used + 1}
                writes.append(_Write(taken, None if entity is None else entity.metadata["etag"]))
            if _written(table, writes):
                return
    raise storage.StateUnavailableError("is too busy to count this request under the limits")


@dataclass(frozen=True)
class _Write:
    entity: dict[str, Any]
    etag: str | None  # None: the counter does not exist yet


def _written(table: TableClient, writes: Sequence[_Write]) -> bool:
    """Write every counter or none; False when another request changed one since it was read.

    A lone counter is written directly: a transaction costs the store more than one operation.
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
    from azure.data.tables import TableTransactionError, TransactionOperation, UpdateMode

    unchanged: dict[str, Any] = {"mode": UpdateMode.REPLACE, "match_condition": MatchConditions.IfNotModified}
    try:
        if len(writes) > 1:
            table.submit_transaction(
                [
                    (TransactionOperation.CREATE, w.entity)
                    if w.etag is None
                    else (TransactionOperation.UPDATE, w.entity, {**unchanged, "etag": w.etag})
                    for w in writes
                ]
            )
        elif writes[0].etag is None:
            table.create_entity(writes[0].entity)
        else:
            table.update_entity(writes[0].entity, etag=writes[0].etag, **unchanged)
    except (ResourceExistsError, ResourceModifiedError):
        return False
    except TableTransactionError as error:
        if getattr(error, "error_code", None) not in _LOST_RACE:
            raise
        return False
    return True


def _exceeded(counter: _Counter, number: str) -> ApiError:
    retry_after = max(1, math.ceil((counter.ends - datetime.now(UTC)).total_seconds()))
    logger.warning("Refused a request to %s: %s reached (%d)", masked(number), counter.setting, counter.limit)
    return ApiError(
        429,
        "limit_exceeded",
        f"The limit of {counter.limit} {counter.what} is reached ({counter.setting}); try again later.",
        target=counter.target,
        headers={"Retry-After": str(retry_after)},
    )


@functools.cache
def _warn_limits_off() -> None:
    logger.warning(
        "No storage is configured (AzureWebJobsStorage): DESTINATION_HOURLY_LIMIT and DAILY_LIMIT are not applied"
    )


def past_windows(now: datetime) -> tuple[str, dict[str, Any]]:
    """The counters whose window has ended, as a Table query: `_take` counts each as zero, so deleting
    one changes no count. Windows are spelled as `_counters` spells them, the app's by the UTC day and
    every other counter by the hour, and such a string sorts as its time does."""
    utc = now.astimezone(UTC)
    ended = "( RowKey eq @app and Window lt @day ) or ( RowKey ne @app and Window lt @hour )"
    parameters = {
        "partition": PARTITION,
        "app": APP_ROW,
        "day": utc.strftime("%Y%m%d"),
        "hour": utc.strftime("%Y%m%d%H"),
    }
    return f"PartitionKey eq @partition and ( {ended} )", parameters
