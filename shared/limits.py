"""Limits on calls and texts, shared by every instance: per destination per hour, and per UTC day.

Counters live in Table storage and are taken with optimistic concurrency (ETags), so two
instances can never both take the last slot. Each counter row carries its window (the hour
or the day): a row from an earlier window counts as empty, and rows never multiply with time.
A number is counted as libphonenumber writes it in E.164, however the caller spelled it. Each
write also names the request among the counter's last takers, so a request whose write landed
but whose answer was lost recognises it, and takes one slot, not two.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import ApiError
from shared.phone_numbers import masked
from shared.settings import Settings

logger = logging.getLogger(__name__)

TABLE = "limits"
PARTITION = "counters"  # one partition, so that a request takes all its slots in one transaction
APP_ROW = "app"
# Transactions lost to concurrent requests before one settles: each round, one of them wins.
_ATTEMPTS = 16
# How many of a counter's last takers it names: a request recognises its own write unless this many
# others took a slot on the same counter between its write and its next read (it then takes another).
_TAKERS = 16


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

    table = storage.Table(TABLE)
    token = secrets.token_hex(4)
    rows = " or ".join(f"RowKey eq @row{i}" for i in range(len(counters)))
    parameters = {"partition": PARTITION, **{f"row{i}": counter.row for i, counter in enumerate(counters)}}
    for _ in range(_ATTEMPTS):
        with storage.reachable("taking a slot under the limits"):
            found = {
                entity["RowKey"]: entity
                for entity in table.query(f"PartitionKey eq @partition and ( {rows} )", parameters)
            }
            if all(token in _takers(found.get(counter.row)) for counter in counters):
                return  # this request's write landed, and only its answer was lost
            writes: list[tuple[dict[str, Any], str | None]] = []
            for counter in counters:
                entity = found.get(counter.row)
                window = _window(counter, entity)
                used = int(entity["Count"]) if entity is not None and entity["Window"] == window else 0
                if used >= counter.limit:
                    raise _exceeded(counter, number)
                takers = [*_takers(entity)[1 - _TAKERS :], token]
                taken = {
                    "PartitionKey": PARTITION,
                    "RowKey": counter.row,
                    "Window": window,
                    "Count": used + 1,
                    "Takers": " ".join(takers),
                }
                writes.append((taken, None if entity is None else table.etag(entity)))
            if table.write_all(writes):
                return
    raise storage.StateUnavailableError("is too busy to count this request under the limits")


def _window(counter: _Counter, entity: Mapping[str, Any] | None) -> str:
    """The window a request counts in: its own, or a later one another request already began on the row. As
    the hour turns, a request that read the clock just before it must not start the new hour's count again."""
    return counter.window if entity is None else max(counter.window, str(entity["Window"]))


def _takers(entity: Mapping[str, Any] | None) -> list[str]:
    """The tokens of the last requests that took a slot on the counter, whatever their window: a request
    whose write landed just before the window turned still recognises it."""
    return [] if entity is None else str(entity.get("Takers", "")).split()


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
