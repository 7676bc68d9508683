"""Calls and texts as the sandbox keeps them: Twilio's JSON for each, and the sandbox's own view
of what happened to it."""

from __future__ import annotations

import email.utils
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtools.sandbox.webhooks import API_VERSION, voice_params

ERRORS = {
    11200: "HTTP retrieval failure",
    11205: "HTTP connection failure",
    12100: "Document parse failure",
    21205: "Url parameter is required.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    30003: "Unreachable destination handset",
}


class TwilioError(Exception):
    """An error Twilio records against a call or a text: its code, and what went wrong."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{ERRORS[code]}: {detail}")
        self.code = code

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self)}


def now() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None) -> str | None:
    return None if moment is None else email.utils.format_datetime(moment)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _formatted(number: str) -> str:
    """As Twilio shows a number: North American ones nationally, others in E.164."""
    match = re.fullmatch(r"\+1(\d{3})(\d{3})(\d{4})", number)
    return f"({match[1]}) {match[2]}-{match[3]}" if match else number


def _segments(body: str) -> int:
    single, part = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / part)


@dataclass(frozen=True)
class Event:
    at: datetime
    name: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"at": _iso(self.at), "name": self.name, "detail": self.detail}


@dataclass(frozen=True)
class Said:
    """One <Say>: what the callee hears, and how."""

    text: str
    voice: str | None
    language: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"text": self.text, "voice": self.voice, "language": self.language}


@dataclass(kw_only=True)
class Resource:
    """What calls and texts share: who, status, the events so far, and how to reach the app."""

    sid: str
    account_sid: str
    to: str
    from_: str
    status: str
    direction: str
    status_callback: str | None = None
    status_callback_method: str = "POST"
    auth_token: str = field(default="", repr=False)  # the account's: it signs every webhook
    created: datetime = field(default_factory=now)
    updated: datetime = field(default_factory=now)
    error: TwilioError | None = None
    events: list[Event] = field(default_factory=list)

    def note(self, name: str, detail: str) -> None:
        self.updated = now()
        self.events.append(Event(self.updated, name, detail))

    def view(self) -> dict[str, Any]:
        """The sandbox's view: the resource, its events, and what failed."""
        return {
            "sid": self.sid,
            "from": self.from_,
            "to": self.to,
            "status": self.status,
            "direction": self.direction,
            "created": _iso(self.created),
            "error": None if self.error is None else self.error.as_json(),
            "events": [event.as_json() for event in self.events],
        }

    def _base_json(self, collection: str) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated),
            "direction": self.direction,
            "from": self.from_,
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "to": self.to,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/{collection}/{self.sid}.json",
        }


@dataclass(kw_only=True)
class Call(Resource):
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    status_callback_events: tuple[str, ...] = ("completed",)
    started: datetime | None = None
    ended: datetime | None = None
    duration: int | None = None
    said: list[Said] = field(default_factory=list)
    sequence: int = 0

    def resource(self) -> dict[str, Any]:
        """Twilio's JSON for the call."""
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return self._base_json("Calls") | {
            "answered_by": None,
            "caller_name": None,
            "duration": None if self.duration is None else str(self.duration),
            "end_time": rfc2822(self.ended),
            "forwarded_from": None,
            "from_formatted": _formatted(self.from_),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "queue_time": "0",
            "start_time": rfc2822(self.started),
            "subresource_uris": {name: f"{base}/{name.title()}.json" for name in ("events", "notifications")},
            "to_formatted": _formatted(self.to),
            "trunk_sid": None,
        }

    def view(self) -> dict[str, Any]:
        said = [item.as_json() for item in self.said]
        return super().view() | {"url": self.url, "method": self.method, "duration": self.duration, "said": said}

    def webhook_params(self, status: str) -> dict[str, str]:
        return voice_params(
            self.account_sid,
            call_sid=self.sid,
            caller=self.from_,
            called=self.to,
            direction=self.direction,
            status=status,
        )


@dataclass(kw_only=True)
class Message(Resource):
    body: str
    sent: datetime | None = None
    in_reply_to: str | None = None

    def resource(self) -> dict[str, Any]:
        """Twilio's JSON for the message."""
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return self._base_json("Messages") | {
            "body": self.body,
            "date_sent": rfc2822(self.sent),
            "error_code": None if self.error is None else self.error.code,
            "error_message": None if self.error is None else str(self.error),
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(_segments(self.body)),
            "subresource_uris": {"media": f"{base}/Media.json"},
        }

    def view(self) -> dict[str, Any]:
        return super().view() | {"body": self.body, "in_reply_to": self.in_reply_to}

    def webhook_params(self) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": self.from_,
            "MessageSid": self.sid,
            "MessageStatus": self.status,
            "SmsSid": self.sid,
            "SmsStatus": self.status,
            "To": self.to,
        }
        return params | ({"ErrorCode": str(self.error.code)} if self.error else {})


@dataclass
class Resources:
    """Every call and text of the sandbox, in the order they were created, under one lock
    (the REST API, the views and each play-out read and change them from their own threads)."""

    calls: dict[str, Call] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
