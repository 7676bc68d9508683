"""What became of each call and text, kept in the `outcomes` table and served at /api/calls/{sid} and
/api/messages/{sid}.

A sid's rows share its partition: the row make_call or send_sms writes when Twilio accepts the call or text
(which makes the sid this app's own), then one row per status callback. Rows are only ever inserted, so a
callback costs one insert, a retried one (same I-Twilio-Idempotency-Token) is refused by the store itself, and
a GET costs one query. The current status is the one furthest along Twilio's lifecycle, whatever order the
callbacks arrived in.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.errors import ApiError
from shared.public_url import function_url
from shared.responses import json_response
from shared.settings import STORAGE, Settings, get_settings
from shared.twilio_errors import MEANINGS

if TYPE_CHECKING:
    from shared.outbound import Outcome

logger = logging.getLogger(__name__)

TABLE = "outcomes"
CREATED = "created"  # the RowKey of a sid's first row
EVENT = "event-"  # the start of each status callback's RowKey
RETRY_HEADER = "I-Twilio-Idempotency-Token"  # the same on each retry of one callback
MAX_WAIT = 20
# How long ?wait pauses between two reads: each pause is longer than the last, up to the longest.
FIRST_PAUSE, BACKOFF, LONGEST_PAUSE = 0.25, 1.5, 2.0
RETRY_AFTER = "5"
_WAIT = re.compile("[0-9]{1,4}")


class Kind:
    """Calls or texts: how Twilio names their fields, and the order of their statuses.

    A plain class: a NamedTuple or a dataclass compiles each field's annotation when the module loads."""

    def __init__(
        self,
        *,
        noun: str,
        function: str,
        route: str,
        sid: str,
        sid_shape: str,
        sid_field: str,
        status_field: str,
        lifecycle: Mapping[str, int],
        final: frozenset[str],
        stored: tuple[str, ...],
        reported: Mapping[str, str],
    ) -> None:
        self.noun = noun
        self.function = function  # the function that places or sends them
        self.route = route  # served at /api/<route>/{sid}
        self.sid = re.compile(sid)
        self.sid_shape = sid_shape
        self.sid_field = sid_field
        self.status_field = status_field
        self.lifecycle = lifecycle  # each status's place in Twilio's lifecycle
        self.final = final
        self.stored = stored  # Twilio's fields that explain an outcome, kept when a callback carries them
        self.reported = reported  # those served as they are, by their name in the answer (ErrorCode: "error")


_CALL_FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
_MESSAGE_FINAL = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})
_NUMBERS = frozenset({"CallDuration", "SipResponseCode"})

CALLS = Kind(
    noun="call",
    function="make_call",
    route="calls",
    sid="CA[0-9a-fA-F]{32}",
    sid_shape="CA and 32 hex digits",
    sid_field="CallSid",
    status_field="CallStatus",
    lifecycle={"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, **dict.fromkeys(_CALL_FINAL, 4)},
    final=_CALL_FINAL,
    stored=("CallDuration", "ErrorCode", "SipResponseCode", "AnsweredBy"),
    reported={"duration": "CallDuration", "sip_response_code": "SipResponseCode", "answered_by": "AnsweredBy"},
)
MESSAGES = Kind(
    noun="message",
    function="send_sms",
    route="messages",
    sid="(SM|MM)[0-9a-fA-F]{32}",
    sid_shape="SM or MM and 32 hex digits",
    sid_field="MessageSid",
    status_field="MessageStatus",
    # A text is read (WhatsApp, RCS) only once delivered.
    lifecycle={
        "accepted": 0,
        "scheduled": 0,
        "queued": 0,
        "sending": 1,
        "sent": 2,
        **dict.fromkeys(_MESSAGE_FINAL - {"read"}, 3),
        "read": 4,
    },
    final=_MESSAGE_FINAL,
    stored=("ErrorCode", "ErrorMessage"),
    reported={},
)


class _Event:
    __slots__ = ("at", "fields", "received", "status")

    def __init__(self, status: str, at: datetime, received: datetime, fields: Mapping[str, str]) -> None:
        self.status = status
        self.at = at  # when Twilio says it happened, else when the app heard of it
        self.received = received
        self.fields = fields


# --- written: the first row, then each status callback ---------------------------------------------------------------


def record_created(kind: Kind, outcome: Outcome, settings: Settings) -> None:
    """A call placed or a text sent (a fresh 201, not a replay): the row that makes its sid this app's own.

    A failure is logged and the 201 stands: the call or text exists whether or not its outcome can be kept."""
    if outcome.replayed or outcome.status != 201:
        return
    if not settings.storage_configured:
        _warn_not_stored()
        return
    answer = outcome.body
    now = datetime.now(UTC)
    row = {
        "PartitionKey": answer["sid"],
        "RowKey": CREATED,
        "Function": kind.function,
        "To": answer["to"],
        "From": answer["from"],
        "Status": answer["status"],
        "Created": now,
    }
    _insert(row, f"the {kind.noun} {answer['sid']}")


def record_event(kind: Kind, form: Mapping[str, str], token: str | None) -> bool:
    """Keep a status callback's event; False for a retry of one already kept (so that it is logged once).

    Twilio's Timestamp says when a call's event happened; a text's callbacks carry none, so theirs is the time
    the callback arrived. A failure to store is logged and the callback still answered, so Twilio does not
    retry it for ever."""
    sid = form.get(kind.sid_field, "")
    if not kind.sid.fullmatch(sid):
        logger.warning("Did not keep a %s status callback without a valid %s", kind.noun, kind.sid_field)
        return True
    if not get_settings().storage_configured:
        _warn_not_stored()
        return True
    received = datetime.now(UTC)
    row = {
        "PartitionKey": sid,
        "RowKey": EVENT + _event_key(form, token),
        "Status": form.get(kind.status_field, ""),
        "At": _reported_time(form) or received,
        "Received": received,
        **{name: form[name] for name in kind.stored if form.get(name)},
    }
    return _insert(row, f"a status callback of {sid}") is not False


def _event_key(form: Mapping[str, str], token: str | None) -> str:
    """Twilio's idempotency token, which a retry carries unchanged; without one (an older or a local sender),
    the callback's own fields, which a retry repeats. Hashed: a RowKey cannot hold every character."""
    source = token or "&".join(f"{name}={value}" for name, value in sorted(form.items()))
    return hashlib.sha256(source.encode()).hexdigest()


def _reported_time(form: Mapping[str, str]) -> datetime | None:
    try:
        reported = email.utils.parsedate_to_datetime(form.get("Timestamp", ""))
    except (TypeError, ValueError):
        return None
    return reported if reported.tzinfo is not None else reported.replace(tzinfo=UTC)


def _insert(row: dict[str, Any], what: str) -> bool | None:
    """True once inserted; False when the row was already there; None when the store failed (logged)."""
    from azure.core.exceptions import AzureError, ResourceExistsError

    from shared import storage

    try:
        storage.table(TABLE).create_entity(row)
    except ResourceExistsError:
        logger.info("Already kept %s: not kept twice", what)
        return False
    except (AzureError, ApiError) as error:
        logger.error("Could not keep %s in the outcomes table (%s)", what, type(error).__name__)
        return None
    return True


@functools.cache
def _warn_not_stored() -> None:
    logger.warning("No storage is configured (AzureWebJobsStorage): outcomes of calls and texts are not kept")


# --- retention -------------------------------------------------------------------------------------------------------


def expired(settings: Settings, now: datetime) -> tuple[str, dict[str, Any]]:
    """The rows past OUTCOME_RETENTION_DAYS, for the daily sweep to delete: the filter and parameters of
    TableClient.query_entities. Rows are never updated, so each one's Timestamp is when it was written."""
    return "Timestamp lt @cutoff", {"cutoff": now - timedelta(days=settings.outcome_retention_days)}


# --- served: GET /api/calls/{sid} and /api/messages/{sid} ------------------------------------------------------------


def linked(kind: Kind, answer: dict[str, Any], base: str) -> dict[str, Any]:
    """Twilio's answer with `status_url`, where the call or text can be followed, under the same base as the
    links given to Twilio. Part of the answer an Idempotency-Key replays, so a replay links to it too."""
    return {**answer, "status_url": function_url(base, f"{kind.route}/{answer['sid']}")}


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
