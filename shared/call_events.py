"""Status events of calls and texts as structured log lines, so a failed call or an undelivered text shows in
Application Insights. Each line is `<function> Name=value ...`, in a fixed order: queries parse it."""

from __future__ import annotations

import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)

FIELDS = ("CallSid", "CallStatus", "CallDuration", "ErrorCode", "SipResponseCode")
MESSAGE_FIELDS = ("MessageSid", "MessageStatus", "ErrorCode")
_FAILED = {"busy", "failed", "no-answer", "canceled", "undelivered"}


def log_call_event(form: Mapping[str, str]) -> None:
    _log("call_status", FIELDS, form)


def log_message_event(form: Mapping[str, str]) -> None:
    _log("message_status", MESSAGE_FIELDS, form)


def _log(function: str, fields: tuple[str, ...], form: Mapping[str, str]) -> None:
    """A warning when the call or text did not get through, or Twilio reported an error code. The fields are
    in the line itself: Azure keeps a Python record's message, never its `extra` (docs/monitoring.md)."""
    event = {name: form.get(name, "") for name in fields}
    failed = event[fields[1]] in _FAILED or bool(event["ErrorCode"])
    logger.log(
        logging.WARNING if failed else logging.INFO,
        f"{function} " + " ".join(f"{name}=%s" for name in fields),
        *event.values(),
    )
