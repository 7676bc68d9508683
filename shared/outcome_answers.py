"""The outcome of a call or text as served at GET /api/calls/{sid} and /api/messages/{sid}: read from the
`outcomes` table (shared.outcomes), its status the one furthest along Twilio's lifecycle, and with ?wait=N,
answered once it is final."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared.errors import ApiError
from shared.outcomes import CREATED, EVENT, TABLE, Kind
from shared.responses import json_response
from shared.settings import STORAGE, get_settings
from shared.twilio_errors import MEANINGS

logger = logging.getLogger(__name__)

MAX_WAIT = 20
# How long ?wait pauses between two reads: each pause is longer than the last, up to the longest.
FIRST_PAUSE, BACKOFF, LONGEST_PAUSE = 0.25, 1.5, 2.0
RETRY_AFTER = "5"
_WAIT = re.compile("[0-9]{1,4}")
_NUMBERS = frozenset({"CallDuration", "SipResponseCode"})


class _Event:
    __slots__ = ("at", "fields", "received", "status")

    def __init__(self, status: str, at: datetime, received: datetime, fields: Mapping[str, str]) -> None:
        self.status = status
        self.at = at  # when Twilio says it happened, else when the app heard of it
        self.received = received
        self.fields = fields


async def serve(kind: Kind, req: func.HttpRequest) -> func.HttpResponse:
    """The outcome; with ?wait=N, once it is final or N seconds have passed. Between two reads the handler
    awaits a timer and each read runs on a thread of its own, so a wait holds no worker thread."""
    sid = _sid(kind, req.route_params.get("sid", ""))
    wait = _wait(req.params.get("wait", "0"))
    if not get_settings().storage_configured:
        raise ApiError(
            503,
            "state_unavailable",
            f"Outcomes are kept in the app's storage, which is not configured ({STORAGE}).",
            target=STORAGE,
        )
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + wait, FIRST_PAUSE
    while True:
        found = await asyncio.to_thread(read, kind, sid)
        if found is None:
            raise ApiError(404, "not_found", f"This app placed or sent no {kind.noun} {sid}.", target="sid")
        left = deadline - loop.time()
        if found["final"] or left <= 0:
            return json_response(found)
        await asyncio.sleep(min(pause, left))
        pause = min(pause * BACKOFF, LONGEST_PAUSE)


def read(kind: Kind, sid: str) -> dict[str, Any] | None:
    """The outcome of one of this app's calls or texts, in one query; None for a sid it did not place or send."""
    from azure.core.exceptions import AzureError

    from shared import storage

    try:
        rows = list(storage.table(TABLE).query_entities("PartitionKey eq @sid", parameters={"sid": sid}))
    except (AzureError, storage.StateUnavailableError) as error:
        logger.warning("Could not read the outcome of %s (%s)", sid, type(error).__name__)
        raise ApiError(
            503,
            "state_unavailable",
            "The app's storage (Table storage) could not be reached; try again shortly.",
            headers={"Retry-After": RETRY_AFTER},
        ) from None
    return resource(kind, sid, rows)


def resource(kind: Kind, sid: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The answer from a sid's rows: the first row's who and when, the furthest status, and the events."""
    rows = list(rows)
    created = next((row for row in rows if row["RowKey"] == CREATED), None)
    if created is None:
        return None
    first = _Event(created["Status"], created["Created"], created["Created"], {})
    events = sorted(
        (
            _Event(row["Status"], row["At"], row["Received"], {name: row[name] for name in kind.stored if name in row})
            for row in rows
            if row["RowKey"].startswith(EVENT)
        ),
        key=lambda event: (event.at, _place(kind, event.status), event.received),
    )
    timeline = [first, *events]
    current = max(timeline, key=lambda event: _progress(kind, event))
    fields = _latest_fields(kind, timeline)
    return {
        "sid": sid,
        "to": created["To"],
        "from": created["From"],
        "created": _iso(created["Created"]),
        "status": current.status,
        "final": current.status in kind.final,
        **{name: _value(twilio_name, fields.get(twilio_name)) for name, twilio_name in kind.reported.items()},
        "error": _error(fields),
        "events": [{"status": event.status, "at": _iso(event.at)} for event in timeline],
    }


def _place(kind: Kind, status: str) -> int:
    """A status's place in the lifecycle; one Twilio may add later comes before every known one."""
    return kind.lifecycle.get(status, -1)


def _progress(kind: Kind, event: _Event) -> tuple[int, datetime, datetime]:
    return _place(kind, event.status), event.at, event.received


def _latest_fields(kind: Kind, timeline: list[_Event]) -> dict[str, str]:
    """Each explaining field from the furthest event that carries it."""
    fields: dict[str, str] = {}
    for event in sorted(timeline, key=lambda event: _progress(kind, event)):
        fields.update(event.fields)
    return fields


def _value(name: str, value: str | None) -> int | str | None:
    if value is None or name not in _NUMBERS:
        return value
    return int(value) if _is_number(value) else None


def _error(fields: Mapping[str, str]) -> dict[str, Any] | None:
    """Twilio's error code with its meaning where it is a common one, and a text's ErrorMessage if any."""
    code = fields.get("ErrorCode", "")
    if not _is_number(code):
        return None
    error: dict[str, Any] = {"code": int(code)}
    if int(code) in MEANINGS:
        error["meaning"] = MEANINGS[int(code)]
    if fields.get("ErrorMessage"):
        error["message"] = fields["ErrorMessage"]
    return error


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes characters such as "²" that int() refuses."""
    return text.isascii() and text.isdigit()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sid(kind: Kind, sid: str) -> str:
    if not kind.sid.fullmatch(sid):
        raise ApiError(400, "invalid_parameter", f"A {kind.noun} SID is {kind.sid_shape}.", target="sid")
    return sid


def _wait(raw: str) -> int:
    if not _WAIT.fullmatch(raw) or int(raw) > MAX_WAIT:
        raise ApiError(
            400, "invalid_parameter", f"'wait' must be a whole number of seconds from 0 to {MAX_WAIT}.", target="wait"
        )
    return int(raw)
