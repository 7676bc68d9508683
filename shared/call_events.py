"""Call status events as structured log lines, so a failed call shows in Application Insights."""

from __future__ import annotations

import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)

FIELDS = ("CallSid", "CallStatus", "CallDuration", "ErrorCode", "SipResponseCode")
_FAILED = {"busy", "failed", "no-answer", "canceled"}


def log_call_event(form: Mapping[str, str]) -> None:
    event = {name: form.get(name, "") for name in FIELDS}
    failed = event["CallStatus"] in _FAILED or bool(event["ErrorCode"])
    logger.log(
        logging.WARNING if failed else logging.INFO,
        "call_status " + " ".join(f"{name}=%s" for name in FIELDS),
        *event.values(),
        extra={"call_event": event},
    )
