"""Idempotency-Key: a retried make_call or send_sms answers what the first answered, without asking Twilio again.

Keys are per function and live in Table storage, so they hold across instances. Only a
request that reached Twilio is remembered (its 201, or its 502/504 whose outcome is unknown);
one refused before is released, so a corrected retry with the same key goes ahead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import ApiError
from shared.params import IDEMPOTENCY_KEY as HEADER
from shared.settings import STORAGE, Settings

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

logger = logging.getLogger(__name__)

TABLE = "idempotency"
KEEP = timedelta(hours=24)
# A claim older than this was abandoned (its instance stopped): the front end gives up on an
# HTTP request after 230 s, so no request still runs. Whether it reached Twilio is unknown.
LEASE = timedelta(minutes=5)
IN_PROGRESS_RETRY_AFTER = "1"
_PENDING, _DONE = "pending", "done"
# Claims lost to concurrent requests before one settles: each round, one of them wins.
_ATTEMPTS = 8


def fingerprint(request: Sequence[str | None]) -> str:
    """The normalized request, hashed: the same call or text however its parameters were sent."""
    return hashlib.sha256(json.dumps(list(request)).encode()).hexdigest()


@dataclass(frozen=True)
class Replay:
    """What the first request with this key answered."""

    status: int
    body: Any


@dataclass(frozen=True)
class Claim:
    """This request holds the key until it records its answer or releases it."""

    table: TableClient
    entity: dict[str, Any]
    etag: str

    def record(self, status: int, body: Any) -> None:
        """Remember the answer; if that fails, retries meet the claim and never dial again."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError
        from azure.data.tables import UpdateMode

        done = {**self.entity, "State": _DONE, "Status": status, "Body": json.dumps(body, ensure_ascii=False)}
        try:
            self.table.update_entity(
                done, mode=UpdateMode.REPLACE, etag=self.etag, match_condition=MatchConditions.IfNotModified
            )
        except AzureError as error:
            logger.error("Could not record the answer to an Idempotency-Key (%s)", type(error).__name__)

    def release(self) -> None:
        """Forget the key: nothing reached Twilio, so a retry with it may go ahead."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError

        try:
            self.table.delete_entity(
                self.entity["PartitionKey"],
                self.entity["RowKey"],
                etag=self.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except AzureError as error:
            logger.error("Could not release an Idempotency-Key (%s)", type(error).__name__)


def begin(function: str, key: str, request_fingerprint: str, settings: Settings) -> Claim | Replay:
    """Claim the key for this request, or learn what its first request answered."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
    from azure.data.tables import UpdateMode

    from shared import storage

    if not settings.storage_configured:
        raise ApiError(
            503,
            "state_unavailable",
            f"{HEADER} needs the app's storage, which is not configured (AzureWebJobsStorage); nothing was sent.",
            target=STORAGE,
        )
    table = storage.table(TABLE)
    row = hashlib.sha256(key.encode()).hexdigest()
    for _ in range(_ATTEMPTS):
        now = datetime.now(UTC)
        entity = {
            "PartitionKey": function,
            "RowKey": row,
            "Fingerprint": request_fingerprint,
            "State": _PENDING,
            "Created": now,
        }
        with storage.reachable("claiming an Idempotency-Key"):
            try:
                return Claim(table, entity, table.create_entity(entity)["etag"])
            except ResourceExistsError:
                pass
            try:
                found = table.get_entity(function, row)
            except ResourceNotFoundError:
                continue  # released meanwhile
            if now - found["Created"] < KEEP:
                return _first_answer(found, request_fingerprint, now)
            try:
                updated = table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=found.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
            return Claim(table, entity, updated["etag"])
    raise storage.StateUnavailableError("is too busy to settle who holds this Idempotency-Key")


def _first_answer(found: TableEntity, request_fingerprint: str, now: datetime) -> Replay:
    if found["Fingerprint"] != request_fingerprint:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used for a different request in the last 24 hours; use a new key.",
            target=HEADER,
        )
    if found["State"] == _DONE:
        return Replay(found["Status"], json.loads(found["Body"]))
    if now - found["Created"] < LEASE:
        raise ApiError(
            409,
            "request_in_progress",
            f"A request with this {HEADER} is still in progress; retry to get its answer.",
            target=HEADER,
            headers={"Retry-After": IN_PROGRESS_RETRY_AFTER},
        )
    return Replay(
        502,
        ApiError(
            502,
            "outcome_unknown",
            f"The first request with this {HEADER} stopped before it finished; whether it reached Twilio is"
            " unknown, check before retrying with a new key.",
        ).body(),
    )


def expired_rows(now: datetime) -> tuple[str, dict[str, Any]]:
    """The keys first used more than KEEP ago, as a Table query: `begin` treats each as unused, so
    deleting one changes no answer."""
    return "Created lt @kept_since", {"kept_since": now - KEEP}
