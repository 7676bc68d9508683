"""What became of each call and text, kept in the `outcomes` table and served at /api/calls/{sid} and
/api/messages/{sid}.

A sid's rows share its partition: the row make_call or send_sms writes when Twilio accepts the call or text
(which makes the sid this app's own), then one row per status callback. Rows are only ever inserted, so a
callback costs one insert, a retried one (same I-Twilio-Idempotency-Token) is refused by the store itself, and
a GET costs one query. The current status is the one furthest along Twilio's lifecycle, whatever order the
callbacks arrived in.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import ApiError
from shared.public_url import function_url
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from shared.outbound import Outcome

logger = logging.getLogger(__name__)

TABLE = "outcomes"
CREATED = "created"  # the RowKey of a sid's first row
EVENT = "event-"  # the start of each status callback's RowKey
RETRY_HEADER = "I-Twilio-Idempotency-Token"  # the same on each retry of one callback


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
    ) -> None:  # pragma: no mutate block (it runs only as the module loads, before a mutant is turned on)
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


# --- linked from the 201 ---------------------------------------------------------------------------------------------


def linked(kind: Kind, answer: dict[str, Any], base: str) -> dict[str, Any]:
    """Twilio's answer with `status_url`, where the call or text can be followed, under the same base as the
    links given to Twilio. Part of the answer an Idempotency-Key replays, so a replay links to it too."""
    return {**answer, "status_url": function_url(base, f"{kind.route}/{answer['sid']}")}
