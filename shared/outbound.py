"""Placing calls and sending texts: everything is checked before Twilio is asked.

Plain values in (parameters, settings, key, callback base), an Outcome out: the function
folders read the request and build the HTTP answer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from shared import credentials, params, phone_numbers
from shared.errors import ApiError
from shared.public_url import function_url
from shared.settings import ConfigurationError, Settings

logger = logging.getLogger(__name__)

MAX_MESSAGE = 1_000
MAX_SMS_BODY = 1_600
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


class Call(NamedTuple):
    to: str
    from_: str
    message: str
    voice: str | None
    language: str | None

    @classmethod
    def from_params(cls, values: Mapping[str, str], settings: Settings) -> Call:
        return cls(
            to=_destination(values, settings),
            from_=_sender(values, settings),
            message=params.text(values, "message", max_length=MAX_MESSAGE, default=settings.voice_message),
            voice=params.token(values, "voice"),
            language=params.token(values, "language"),
        )


class Sms(NamedTuple):
    to: str
    from_: str
    body: str

    @classmethod
    def from_params(cls, values: Mapping[str, str], settings: Settings) -> Sms:
        return cls(
            to=_destination(values, settings),
            from_=_sender(values, settings),
            body=params.text(values, "body", max_length=MAX_SMS_BODY),
        )


class Outcome(NamedTuple):
    """What make_call or send_sms answers; `replayed`: the answer stored for an earlier request with the same key.

    A NamedTuple like Call and Sms: this module is imported on every cold start.
    """

    status: int
    body: Any
    replayed: bool = False


def deliver(
    function: str, request: Call | Sms, key: str | None, settings: Settings, send: Callable[[], dict[str, Any]]
) -> Outcome:
    """Send a checked call or text under the shared limits and the caller's Idempotency-Key, if any.

    A keyed request marks its key "sending" once everything else is settled (the limits, the
    credentials), just before Twilio is asked. One that may have reached Twilio is remembered with
    its answer (201, or 502/504 whose outcome is unknown); one refused before releases its key.
    """
    from shared import idempotency, limits  # on first use: their dataclasses weigh on the cold import

    _ = settings.per_instance_concurrency  # the Twilio client's: a mistake answers 503 before anything is counted
    if key is None:
        limits.take_slot(request.to, settings)
        return Outcome(201, send())
    claimed = idempotency.begin(function, key, idempotency.fingerprint(request), settings)
    if isinstance(claimed, idempotency.Replay):
        log_keyed_answer(function, key, claimed.status, claimed.body, replay=True)
        return Outcome(claimed.status, claimed.body, replayed=True)
    try:
        limits.take_slot(request.to, settings)
        credentials.current()  # read now, so that a vault that fails leaves the key free rather than "sending"
        claimed.sending()
        answer = send()
    except ApiError as error:
        claimed.settle(error)
        if error.outcome_unknown:
            log_keyed_answer(function, key, error.status, None, replay=False)
        raise
    claimed.record(201, answer)
    log_keyed_answer(function, key, 201, answer, replay=False)
    return Outcome(201, answer)


def log_keyed_answer(function: str, key: str, status: int, body: Any, *, replay: bool) -> None:
    """One line per answer a key holds, so that Application Insights can follow a key's requests to their sid.

    The key is named by its SHA-256, as in Table storage: it is the caller's text, never logged as such.
    """
    sid = body.get("sid", "") if isinstance(body, dict) else ""
    logger.info(
        "idempotency_key Function=%s KeyHash=%s Replay=%s Status=%d Sid=%s",
        function,
        hashlib.sha256(key.encode()).hexdigest(),
        "true" if replay else "false",
        status,
        sid,
    )


def place_call(call: Call, base: str) -> dict[str, Any]:
    """Ask Twilio to dial; when the callee answers, Twilio fetches voice_url under `base` for what to say."""
    from shared.twilio_client import call_twilio

    say = {"message": call.message, "voice": call.voice, "language": call.language}
    voice_url = function_url(base, "voice_url", {k: v for k, v in say.items() if v})
    status_url = function_url(base, "call_status")
    created = call_twilio(
        lambda client: client.calls.create(
            to=call.to,
            from_=call.from_,
            url=voice_url,
            method="POST",
            status_callback=status_url,
            status_callback_event=CALL_EVENTS,
            status_callback_method="POST",
        ),
        outcome="whether the call was placed",
    )
    logger.info("Placed call %s (%s)", created.sid, created.status)
    return {"sid": created.sid, "status": created.status, "to": created.to, "from": created._from}


def send_sms(sms: Sms, base: str) -> dict[str, Any]:
    """Ask Twilio to send the text; it posts each change of the text's status to message_status under `base`."""
    from shared.twilio_client import call_twilio

    status_url = function_url(base, "message_status")
    sent = call_twilio(
        lambda client: client.messages.create(to=sms.to, from_=sms.from_, body=sms.body, status_callback=status_url),
        outcome="whether the message was sent",
    )
    logger.info("Sent message %s (%s)", sent.sid, sent.status)
    return {"sid": sent.sid, "status": sent.status, "to": sent.to, "from": sent.from_}


def _sender(values: Mapping[str, str], settings: Settings) -> str:
    """The caller's `from`, else TWILIO_FROM_NUMBER, whose mistakes are the owner's: 503, not 400."""
    if values.get("from", "").strip():
        return phone_numbers.parse(values, "from")
    configured = settings.from_number
    if configured is None:
        raise ApiError(400, "missing_parameter", "'from' is required (or set TWILIO_FROM_NUMBER).", target="from")
    try:
        return phone_numbers.normalize(configured, "TWILIO_FROM_NUMBER")
    except ApiError:
        raise ConfigurationError("TWILIO_FROM_NUMBER", "must be an E.164 number such as +14155550100") from None


def _destination(values: Mapping[str, str], settings: Settings) -> str:
    from shared.destinations import check_destination  # the phone metadata, on first use

    number = phone_numbers.parse(values, "to")
    check_destination(number, settings)
    return number
