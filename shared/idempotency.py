"""Idempotency-Key: a retried make_call or send_sms answers what the first answered, without asking Twilio again.

Keys are per function and live in Table storage, so they hold across instances. A request claims
its key ("pending"), marks it "sending" just before Twilio is asked, then records the answer
("done"). Only a request that may have reached Twilio is remembered (its 201, or its 502/504 whose
outcome is unknown); one refused before is released, so a corrected retry with the same key goes
ahead, and a pending claim whose release was lost is taken over once its lease has run out.

Every write is conditional on the ETag the request last saw, and carries a token of the request's
own: a write whose answer was lost is recognised by its token when the row is read again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import ApiError
from shared.params import IDEMPOTENCY_KEY as HEADER
from shared.settings import STORAGE, Settings

if TYPE_CHECKING:
    from azure.data.tables import TableEntity

    from shared.storage import Table

logger = logging.getLogger(__name__)

TABLE = "idempotency"
KEEP = timedelta(hours=24)
# A claim that has not reached "sending" within this long is taken over by a retry with its key: its
# request was refused before Twilio and its release was lost, or its instance stopped. If that request
# is only slow, it finds the claim taken when it comes to mark it "sending", and never asks Twilio.
CLAIM_LEASE = timedelta(seconds=30)
# A claim marked "sending" and older than this will never be answered: the front end gives up on an
# HTTP request after 230 s, so no request still runs. Whether Twilio acted on it is unknown.
LEASE = timedelta(minutes=5)
IN_PROGRESS_RETRY_AFTER = "1"
_PENDING, _SENDING, _DONE = "pending", "sending", "done"
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


class Claim:
    """This request holds the key: it marks it "sending" before Twilio is asked, then records the answer or
    releases the key."""

    def __init__(self, table: Table, entity: dict[str, Any], etag: str) -> None:
        self._table = table
        self._entity = entity
        self._etag = etag
        self._lost = False  # another request took the key over: nothing of it is this request's to release

    def sending(self) -> None:
        """Twilio may be asked from now on, so no retry takes the key over: 409 until the answer is recorded.

        A claim another request took over meanwhile answers 409 too, and this request never asks Twilio.
        """
        from shared import storage

        with storage.reachable("marking an Idempotency-Key as sending"):
            written = self._write(_SENDING)
        if self._lost:
            raise in_progress()
        if not written:
            raise storage.StateUnavailableError(f"could not mark this {HEADER} as sending")

    def settle(self, error: ApiError) -> None:
        """After a failure: remember an answer whose outcome is unknown, else free the key for a retry."""
        if error.outcome_unknown:
            self.record(error.status, error.body())
        else:
            self.release()

    def record(self, status: int, body: Any) -> None:
        """Remember the answer. If the store will not take it, retries get 409, then outcome_unknown (502):
        the sid, if any, is then only in this ERROR line."""
        from azure.core.exceptions import AzureError

        sid = body.get("sid") if isinstance(body, dict) else None
        answer = f"{status}, sid {sid}" if sid else str(status)
        try:
            written = self._write(_DONE, Status=status, Body=json.dumps(body, ensure_ascii=False))
        except AzureError as error:
            failure = type(error).__name__
        else:
            if written:
                return
            failure = "taken over" if self._lost else "not written"
        logger.error("Could not record the answer (%s) to an Idempotency-Key (%s)", answer, failure)

    def release(self) -> None:
        """Forget the key: nothing reached Twilio, so a retry with it may go ahead. If the store will not
        delete it, a retry takes a pending claim over after CLAIM_LEASE."""
        from azure.core.exceptions import AzureError

        if self._lost:
            return
        partition, row = self._entity["PartitionKey"], self._entity["RowKey"]
        try:
            if self._table.delete(partition, row, self._etag):
                return
            found = self._table.get(partition, row)
            if found is None or not self._ours(found) or self._table.delete(partition, row, self._table.etag(found)):
                return
            failure = "not deleted"
        except AzureError as error:
            failure = type(error).__name__
        logger.error("Could not release an Idempotency-Key (%s)", failure)

    def _write(self, state: str, **fields: Any) -> bool:
        """Write the claim in `state`; False when that failed, with `_lost` set when another request holds
        the key now.

        When the write fails, the row read again tells why: this request's own write whose answer was
        lost (it stands), the claim changed under it (written once more), or another request's.
        """
        entity = {**self._entity, "State": state, **fields}
        partition, row = entity["PartitionKey"], entity["RowKey"]
        etag = self._table.replace(entity, self._etag)
        if etag is None:
            found = self._table.get(partition, row)
            if found is None or not self._ours(found):
                self._lost = True
                return False
            found_etag = self._table.etag(found)
            etag = found_etag if found["State"] == state else self._table.replace(entity, found_etag)
            if etag is None:
                return False
        self._entity, self._etag = entity, etag
        return True

    def _ours(self, found: TableEntity) -> bool:
        token: str = self._entity["Token"]
        return found.get("Token") == token


def begin(function: str, key: str, request_fingerprint: str, settings: Settings) -> Claim | Replay:
    """Claim the key for this request, or learn what its first request answered."""
    from shared import storage

    if not settings.storage_configured:
        raise ApiError(
            503,
            "state_unavailable",
            f"{HEADER} needs the app's storage, which is not configured (AzureWebJobsStorage); nothing was sent.",
            target=STORAGE,
        )
    table = storage.Table(TABLE)
    row = hashlib.sha256(key.encode()).hexdigest()
    token = secrets.token_hex(8)
    for _ in range(_ATTEMPTS):
        now = datetime.now(UTC)
        entity = {
            "PartitionKey": function,
            "RowKey": row,
            "Fingerprint": request_fingerprint,
            "State": _PENDING,
            "Created": now,
            "Token": token,
        }
        with storage.reachable("claiming an Idempotency-Key"):
            etag = table.create(entity)
            if etag is not None:
                return Claim(table, entity, etag)
            found = table.get(function, row)
            if found is None:
                continue  # released meanwhile, or this request's claim was lost before it landed
            if found.get("Token") == token:  # this request's claim, whose answer was lost
                return Claim(table, dict(found), table.etag(found))
            if not _expired(found, now):
                return _first_answer(found, request_fingerprint, now)
            etag = table.replace(entity, table.etag(found))
            if etag is not None:
                return Claim(table, entity, etag)
    raise storage.StateUnavailableError("is too busy to settle who holds this Idempotency-Key")


def _expired(found: TableEntity, now: datetime) -> bool:
    """A claim a new request may take over: kept its 24 hours, or left pending past its lease."""
    age: timedelta = now - found["Created"]
    return age >= KEEP or (found["State"] == _PENDING and age >= CLAIM_LEASE)


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
    if found["State"] == _PENDING or now - found["Created"] < LEASE:
        raise in_progress()
    unknown = ApiError(
        502,
        "outcome_unknown",
        f"The first request with this {HEADER} may have reached Twilio, but its answer was not recorded:"
        " the call or text may have gone through. Check before retrying with a new key.",
    )
    return Replay(unknown.status, unknown.body())


def in_progress() -> ApiError:
    return ApiError(
        409,
        "request_in_progress",
        f"A request with this {HEADER} is still in progress; retry to get its answer.",
        target=HEADER,
        headers={"Retry-After": IN_PROGRESS_RETRY_AFTER},
    )


def expired_rows(now: datetime) -> tuple[str, dict[str, Any]]:
    """The keys first used more than KEEP ago, as a Table query: `begin` treats each as unused, so
    deleting one changes no answer."""
    return "Created lt @kept_since", {"kept_since": now - KEEP}
