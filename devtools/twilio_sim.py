"""Twilio's side of calls and texts, for the sandbox: a stateful stand-in behind Prism.

Prism checks every request against Twilio's OpenAPI description and forwards only the valid
ones here. This answers them as Twilio does (its JSON, 201 on create, 404 for an unknown SID),
then plays each resource out as Twilio would, within about a second: a call's signed status
callbacks and the TwiML it fetches from the call's Url, a text's delivery. What happened is
kept for the sandbox's own views: /calls, /messages (JSON) and / (a page).
"""

from __future__ import annotations

import email.utils
import html
import json
import math
import re
import secrets
import string
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from testing.standins import twilio_error

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

API_VERSION = "2010-04-01"
CALLER = "+15558675310"
TWILIO_NUMBER = "+15017122661"
TWILIO_API = "https://api.twilio.com"  # the server in Twilio's spec
PAGE = Path(__file__).resolve().parent / "sandbox_page.html"
STEP = 0.1  # seconds between two progress events of a call or a text
WEBHOOK_TIMEOUT = 15.0  # what Twilio gives a webhook to answer
# Destinations whose calls are not answered, in the style of Twilio's magic test numbers
# (+1 500 555 numbers are valid US numbers, so ALLOWED_DESTINATIONS=US lets them through).
# A text to the "failed" one is undelivered. Documented in the README.
OUTCOMES = {"+15005550011": "busy", "+15005550012": "no-answer", "+15005550013": "failed"}
# How each unanswered outcome ends: the SIP response Twilio reports, and why.
_UNANSWERED = {
    "busy": ("486", "the line was busy"),
    "no-answer": ("487", "nobody answered"),
    "failed": ("404", "the number could not be reached"),
}
ERRORS = {
    11200: "HTTP retrieval failure",
    12100: "Document parse failure",
    21205: "Url parameter is required.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    30003: "Unreachable destination handset",
}


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def voice_params(
    account_sid: str,
    *,
    call_sid: str | None = None,
    caller: str = CALLER,
    called: str = TWILIO_NUMBER,
    direction: str = "inbound",
    status: str = "ringing",
) -> dict[str, str]:
    """The parameters of every voice webhook Twilio sends: the TwiML fetch and status callbacks."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call_sid or sid("CA"),
        "CallStatus": status,
        "Called": called,
        "Caller": caller,
        "Direction": direction,
        "From": caller,
        "To": called,
    }


@dataclass(frozen=True)
class LocalRoute:
    """Where a webhook for the app is sent. Behind a tunnel, the app gives Twilio URLs under
    PUBLIC_BASE_URL and checks signatures against them: such a URL is signed as it is, but
    sent to the app's local address, so that nothing needs the tunnel to be up."""

    local_base: str
    public_base: str = ""

    @classmethod
    def from_environ(cls, local_base: str, environ: Mapping[str, str]) -> LocalRoute:
        """PUBLIC_BASE_URL as the app reads it: stripped, without a trailing slash."""
        return cls(local_base.rstrip("/"), environ.get("PUBLIC_BASE_URL", "").strip().rstrip("/"))

    def public(self, path: str) -> str:
        """The URL the app gives Twilio for `path`, and checks signatures against."""
        return (self.public_base or self.local_base) + path

    def target(self, url: str) -> str:
        rest = url[len(self.public_base) :]
        if self.public_base and url.startswith(self.public_base) and rest[:1] in {"", "/", "?"}:
            return self.local_base + rest
        return url


def send_signed(
    url: str, params: Mapping[str, str], auth_token: str, method: str = "POST", route: LocalRoute | None = None
) -> requests.Response:
    """Sign as Twilio does: the full URL, plus the form fields for a POST (a GET carries them
    in its query string). The request goes where `route` says the app listens."""
    form = dict(params)
    if method == "GET":
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(form)}" if form else url
        form = {}
    signature = RequestValidator(auth_token).compute_signature(url, form)
    headers = {"User-Agent": "TwilioProxy/1.1", "X-Twilio-Signature": signature}
    target = route.target(url) if route else url
    return requests.request(method, target, data=form or None, headers=headers, timeout=WEBHOOK_TIMEOUT)


class TwilioError(Exception):
    """An error Twilio records against a call or a text: its code, and what went wrong."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{ERRORS[code]}: {detail}")
        self.code = code

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self)}


def parse_twiml(text: str) -> ET.Element:
    """The <Response> of a TwiML document; anything else is Twilio's 12100."""
    try:
        # The app's own TwiML, on the developer's machine; expat bounds entity expansion.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as error:
        raise TwilioError(12100, f"not XML ({error})") from None
    if root.tag != "Response":
        raise TwilioError(12100, f"the root element is <{root.tag}>, not <Response>")
    return root


def _answered_twiml(answer: requests.Response, request: str) -> ET.Element:
    if not answer.ok:
        raise TwilioError(11200, f"{request} answered {answer.status_code}")
    return parse_twiml(answer.text)


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc2822(moment: datetime | None) -> str | None:
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
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    error: TwilioError | None = None
    events: list[Event] = field(default_factory=list)

    def note(self, name: str, detail: str) -> None:
        self.updated = _now()
        self.events.append(Event(self.updated, name, detail))

    def record(self) -> dict[str, Any]:
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
            "date_created": _rfc2822(self.created),
            "date_updated": _rfc2822(self.updated),
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
            "end_time": _rfc2822(self.ended),
            "forwarded_from": None,
            "from_formatted": _formatted(self.from_),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "queue_time": "0",
            "start_time": _rfc2822(self.started),
            "subresource_uris": {name: f"{base}/{name.title()}.json" for name in ("events", "notifications")},
            "to_formatted": _formatted(self.to),
            "trunk_sid": None,
        }

    def record(self) -> dict[str, Any]:
        said = [item.as_json() for item in self.said]
        return super().record() | {"url": self.url, "method": self.method, "duration": self.duration, "said": said}

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
            "date_sent": _rfc2822(self.sent),
            "error_code": None if self.error is None else self.error.code,
            "error_message": None if self.error is None else str(self.error),
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(_segments(self.body)),
            "subresource_uris": {"media": f"{base}/Media.json"},
        }

    def record(self) -> dict[str, Any]:
        return super().record() | {"body": self.body, "in_reply_to": self.in_reply_to}

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


class _StoppedError(Exception):
    """The sandbox is stopping: the play-out ends where it is."""


Handler = Callable[..., Response]


class TwilioSim:
    """The stand-in. `api` is Twilio's REST API for Prism to forward to; `views` are the
    sandbox's own pages, which the local host serves under /_sandbox.

    Webhooks are signed with the auth token the resource was created with (the password of
    its basic auth), as Twilio signs them with the account's, and sent where `route` says.
    """

    ROOT = f"/{API_VERSION}/Accounts/<account>"

    def __init__(self, route: LocalRoute | None = None, step: float = STEP) -> None:
        self.route = route
        self.step = step
        self.calls: dict[str, Call] = {}
        self.messages: dict[str, Message] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._players: list[threading.Thread] = []
        self._api = Map(
            [
                Rule(f"{self.ROOT}/Calls.json", methods=["GET"], endpoint=self._list_calls),
                Rule(f"{self.ROOT}/Calls.json", methods=["POST"], endpoint=self._create_call),
                Rule(f"{self.ROOT}/Calls/<sid>.json", methods=["GET"], endpoint=self._get_call),
                Rule(f"{self.ROOT}/Messages.json", methods=["GET"], endpoint=self._list_messages),
                Rule(f"{self.ROOT}/Messages.json", methods=["POST"], endpoint=self._create_message),
                Rule(f"{self.ROOT}/Messages/<sid>.json", methods=["GET"], endpoint=self._get_message),
            ]
        )
        self._views = Map(
            [
                Rule("/", methods=["GET"], endpoint=self._page),
                Rule("/calls", methods=["GET"], endpoint=self._call_records),
                Rule("/calls/<sid>", methods=["GET"], endpoint=self._call_record),
                Rule("/messages", methods=["GET"], endpoint=self._message_records),
                Rule("/messages/inbound", methods=["POST"], endpoint=self._inbound),
                Rule("/messages/<sid>", methods=["GET"], endpoint=self._message_record),
            ]
        )

    def api(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, matched = self._api.bind_to_environ(environ).match()
        except HTTPException:
            # Not simulated: Prism then answers from the spec's examples, as it does without an upstream.
            return Response(status=501)(environ, start_response)
        handler: Handler = endpoint
        args = dict(matched)
        if not self._authorized(request, args.pop("account")):
            return _json(twilio_error(20003, "Authenticate", 401), 401)(environ, start_response)
        return handler(request, **args)(environ, start_response)

    def views(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            endpoint, args = self._views.bind_to_environ(environ).match()
        except HTTPException as error:
            return error(environ, start_response)
        handler: Handler = endpoint
        return handler(Request(environ), **args)(environ, start_response)

    def close(self) -> None:
        """Stop every play-out, and wait for those sending a webhook."""
        self._closed.set()
        for player in self._players:
            player.join(WEBHOOK_TIMEOUT)

    @staticmethod
    def _authorized(request: Request, account: str) -> bool:
        auth = request.authorization
        return auth is not None and auth.username == account and bool(auth.password)

    # Twilio's REST API.

    def _create_call(self, request: Request) -> Response:
        form = request.form
        if not form.get("Url") and not form.get("Twiml"):
            return _twilio_error(21205, 400)
        auth = request.authorization
        assert auth is not None
        call = Call(
            sid=sid("CA"),
            account_sid=auth.username or "",
            auth_token=auth.password or "",
            to=form.get("To", ""),
            from_=form.get("From", ""),
            status="queued",
            direction="outbound-api",
            url=form.get("Url") or None,
            method=form.get("Method") or "POST",
            twiml=form.get("Twiml") or None,
            status_callback=form.get("StatusCallback") or None,
            status_callback_method=form.get("StatusCallbackMethod") or "POST",
            status_callback_events=tuple(_values(form, "StatusCallbackEvent")) or ("completed",),
        )
        call.note("queued", f"placed through the REST API, from {call.from_} to {call.to}")
        with self._lock:
            self.calls[call.sid] = call
            created = call.resource()
        self._play(self._play_call, call)
        return _json(created, 201)

    def _create_message(self, request: Request) -> Response:
        form = request.form
        if not form.get("Body") and not form.get("MediaUrl"):
            return _twilio_error(21602, 400)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _twilio_error(21603, 400)
        auth = request.authorization
        assert auth is not None
        message = Message(
            sid=sid("SM"),
            account_sid=auth.username or "",
            auth_token=auth.password or "",
            to=form.get("To", ""),
            from_=form.get("From", ""),
            body=form.get("Body", ""),
            status="queued",
            direction="outbound-api",
            status_callback=form.get("StatusCallback") or None,
            status_callback_method=form.get("StatusCallbackMethod") or "POST",
        )
        return _json(self._send(message, "sent through the REST API"), 201)

    def _get_call(self, request: Request, sid: str) -> Response:
        return self._get(self.calls, sid, request.path)

    def _get_message(self, request: Request, sid: str) -> Response:
        return self._get(self.messages, sid, request.path)

    def _get(self, resources: Mapping[str, Call] | Mapping[str, Message], sid: str, path: str) -> Response:
        with self._lock:
            found = resources.get(sid)
            if found is not None:
                return _json(found.resource())
        return _json(twilio_error(20404, f"The requested resource {path} was not found", 404), 404)

    def _list_calls(self, request: Request) -> Response:
        wanted = {"To": "to", "From": "from", "Status": "status"}
        with self._lock:
            calls = [call.resource() for call in reversed(self.calls.values())]
        return _json(_page(request, "Calls", _matching(calls, request, wanted)))

    def _list_messages(self, request: Request) -> Response:
        with self._lock:
            messages = [message.resource() for message in reversed(self.messages.values())]
        return _json(_page(request, "Messages", _matching(messages, request, {"To": "to", "From": "from"})))

    # What Twilio does next.

    def _play(self, script: Callable[[Any], None], resource: Call | Message) -> None:
        player = threading.Thread(target=self._run, args=(script, resource), daemon=True)
        self._players = [p for p in self._players if p.is_alive()] + [player]
        player.start()

    @staticmethod
    def _run(script: Callable[[Any], None], resource: Call | Message) -> None:
        try:
            script(resource)
        except _StoppedError:
            return

    def _pause(self) -> None:
        if self._closed.wait(self.step):
            raise _StoppedError

    def _play_call(self, call: Call) -> None:
        outcome = OUTCOMES.get(call.to)
        self._progress(call, "initiated", "initiated", f"dialing {call.to}")
        if outcome not in {"busy", "failed"}:
            self._progress(call, "ringing", "ringing", f"{call.to} is ringing")
        if outcome is not None:
            sip, why = _UNANSWERED[outcome]
            self._end(call, outcome, f"{why} (SIP {sip})", SipResponseCode=sip)
            return
        with self._lock:
            call.started = _now()
        self._progress(call, "answered", "in-progress", "answered")
        try:
            said = self._say(call)
        except TwilioError as error:
            with self._lock:
                call.error = error
            self._end(call, "failed", str(error), ErrorCode=str(error.code))
            return
        duration = max(1, round(sum(len(item.text) for item in said) / 15))  # about 15 characters a second
        with self._lock:
            call.duration = duration
        self._end(call, "completed", f"hung up after {duration} s")

    def _say(self, call: Call) -> list[Said]:
        """Fetch the call's TwiML (or take it inline) and record what the callee hears."""
        if call.twiml is not None:
            root = parse_twiml(call.twiml)
        else:
            assert call.url is not None
            request = f"{call.method} {call.url}"
            answer = self._fetch(call.url, call.method, call.webhook_params("in-progress"), call.auth_token)
            with self._lock:
                call.note("TwiML", f"{request} answered {answer.status_code}")
            root = _answered_twiml(answer, request)
        said = [
            Said("".join(verb.itertext()).strip(), verb.get("voice"), verb.get("language"))
            for verb in root
            if verb.tag == "Say"
        ]
        with self._lock:
            call.said.extend(said)
            for item in said:
                call.note("said", item.text)
        return said

    def _end(self, call: Call, status: str, detail: str, **extra: str) -> None:
        with self._lock:
            call.ended = _now()
            call.duration = call.duration or 0
        self._progress(call, "completed", status, detail, CallDuration=str(call.duration), **extra)

    def _progress(self, call: Call, event: str, call_status: str, detail: str, **extra: str) -> None:
        """One step of a call: its status, then the status callback if that event was asked for."""
        self._pause()
        with self._lock:
            call.status = "queued" if call_status == "initiated" else call_status
            call.note(call_status, detail)
            params = call.webhook_params(call_status) | {
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(call.sequence),
                "Timestamp": _rfc2822(call.updated) or "",
                **extra,
            }
            wanted = call.status_callback is not None and event in call.status_callback_events
            if wanted:
                call.sequence += 1
        if wanted:
            self._callback(call, params, call_status)

    def _send(self, message: Message, how: str) -> dict[str, Any]:
        message.note("queued", f"{how}, from {message.from_} to {message.to}")
        with self._lock:
            self.messages[message.sid] = message
            created = message.resource()
        self._play(self._play_message, message)
        return created

    def _play_message(self, message: Message) -> None:
        self._pause()
        with self._lock:
            message.sent = _now()
        self._deliver(message, "sent", "handed to the carrier")
        self._pause()
        if OUTCOMES.get(message.to) == "failed":
            with self._lock:
                message.error = TwilioError(30003, f"{message.to} did not take the message")
            return self._deliver(message, "undelivered", str(message.error))
        return self._deliver(message, "delivered", f"delivered to {message.to}")

    def _deliver(self, message: Message, status: str, detail: str) -> None:
        with self._lock:
            message.status = status
            message.note(status, detail)
            params = message.webhook_params()
        if message.status_callback is not None:
            self._callback(message, params, status)

    def _callback(self, resource: Call | Message, params: Mapping[str, str], status: str) -> None:
        assert resource.status_callback is not None
        request = f"{resource.status_callback_method} {resource.status_callback}"
        try:
            answer = self._fetch(resource.status_callback, resource.status_callback_method, params, resource.auth_token)
            outcome = f"answered {answer.status_code}"
        except TwilioError as error:
            outcome = str(error)
        with self._lock:
            resource.note("status callback", f"{status}: {request} {outcome}")

    def _fetch(self, url: str, method: str, params: Mapping[str, str], token: str) -> requests.Response:
        try:
            return send_signed(url, params, token, method, self.route)
        except requests.RequestException as error:
            raise TwilioError(11200, f"{method} {url}: {type(error).__name__}") from None

    # The sandbox's own views.

    def _call_records(self, request: Request) -> Response:
        with self._lock:
            return _json([call.record() for call in self.calls.values()])

    def _message_records(self, request: Request) -> Response:
        with self._lock:
            return _json([message.record() for message in self.messages.values()])

    def _call_record(self, request: Request, sid: str) -> Response:
        return self._record(self.calls, sid)

    def _message_record(self, request: Request, sid: str) -> Response:
        return self._record(self.messages, sid)

    def _record(self, resources: Mapping[str, Call] | Mapping[str, Message], sid: str) -> Response:
        with self._lock:
            found = resources.get(sid)
            if found is not None:
                return _json(found.record())
        return _json({"message": f"Nothing in the sandbox has the SID {sid}."}, 404)

    def _page(self, request: Request) -> Response:
        with self._lock:
            page = render_page([*self.calls.values(), *self.messages.values()])
        return Response(page, mimetype="text/html")

    def _inbound(self, request: Request) -> Response:
        """A text arriving at the app's number: Twilio posts it to the number's SMS URL, signed,
        and sends each <Message> of the TwiML answer back to the sender. Answers with the app's
        answer, as it came."""
        auth = request.authorization
        document = request.get_json(silent=True)
        if auth is None or not auth.username or not auth.password:
            return _json({"message": "Basic auth with the account SID and auth token, to sign the webhook."}, 401)
        if not _inbound_document(document):
            return _json({"message": 'Expected {"url": "...", "method": "POST", "params": {...}}.'}, 400)
        params: dict[str, str] = document["params"]
        url: str = document["url"]
        method: str = document.get("method", "POST")
        inbound = Message(
            sid=params.get("MessageSid") or sid("SM"),
            account_sid=auth.username,
            auth_token=auth.password,
            to=params.get("To", ""),
            from_=params.get("From", ""),
            body=params.get("Body", ""),
            status="received",
            direction="inbound",
        )
        inbound.note("received", f"from {inbound.from_} to {inbound.to}")
        with self._lock:
            self.messages[inbound.sid] = inbound
        try:
            answer = self._fetch(url, method, params, inbound.auth_token)
        except TwilioError as error:
            self._failed(inbound, error)
            return _json({"message": str(error)}, 502)
        with self._lock:
            inbound.note("TwiML", f"{method} {url} answered {answer.status_code}")
        try:
            root = _answered_twiml(answer, f"{method} {url}")
        except TwilioError as error:
            self._failed(inbound, error)
        else:
            for reply in root.iter("Message"):
                self._send(
                    Message(
                        sid=sid("SM"),
                        account_sid=inbound.account_sid,
                        to=reply.get("to") or inbound.from_,
                        from_=reply.get("from") or inbound.to,
                        body=(reply.findtext("Body") or "".join(reply.itertext())).strip(),
                        status="queued",
                        direction="outbound-reply",
                        in_reply_to=inbound.sid,
                    ),
                    f"the reply to {inbound.sid}",
                )
        return Response(answer.content, answer.status_code, content_type=answer.headers.get("Content-Type"))

    def _failed(self, resource: Call | Message, error: TwilioError) -> None:
        with self._lock:
            resource.error = error
            resource.note("failed", str(error))


def _inbound_document(document: Any) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(document, dict)
        and isinstance(document.get("url"), str)
        and document.get("method", "POST") in {"GET", "POST"}
        and isinstance(document.get("params"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in document["params"].items())
    )


def _values(form: MultiDict[str, str], name: str) -> list[str]:
    """Twilio's repeated keys, also in the Key[] form the pass-through writes for Prism."""
    return form.getlist(name) + form.getlist(f"{name}[]")


def _matching(items: list[dict[str, Any]], request: Request, filters: Mapping[str, str]) -> list[dict[str, Any]]:
    wanted = {key: request.args[name] for name, key in filters.items() if name in request.args}
    return [item for item in items if all(item[key] == value for key, value in wanted.items())]


def _page(request: Request, collection: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One page of a list, newest first, with Twilio's paging fields. Twilio writes their URIs
    relative to its API, but its spec says they are absolute URIs, and Prism holds it to that:
    they are written under the spec's server."""
    size = min(max(_number(request.args.get("PageSize"), 50), 1), 1000)
    page = max(_number(request.args.get("Page"), 0), 0)
    start = page * size
    chunk = items[start : start + size]
    uri = f"{TWILIO_API}{request.path}"

    def link(number: int) -> str:
        return f"{uri}?PageSize={size}&Page={number}"

    return {
        collection.lower(): chunk,
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": link(0),
        "next_page_uri": link(page + 1) if start + size < len(items) else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": link(page - 1) if page else None,
        "start": start,
        "uri": link(page),
    }


def _number(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _json(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document), status, mimetype="application/json")


def _twilio_error(code: int, status: int) -> Response:
    return _json(twilio_error(code, ERRORS[code], status), status)


# The page: calls and texts as a timeline, newest first.


def render_page(resources: list[Call | Message]) -> str:
    items = sorted(resources, key=lambda resource: resource.created, reverse=True)
    timeline = "\n".join(_article(item) for item in items) or '<p class="empty">No call or text yet.</p>'
    return string.Template(PAGE.read_text(encoding="utf-8")).substitute(timeline=timeline)


def _article(resource: Call | Message) -> str:
    e = html.escape
    kind = "call" if isinstance(resource, Call) else "text"
    title = f"{'Call' if kind == 'call' else 'Text'} from {resource.from_} to {resource.to}"
    parts = [
        f'<article class="{kind} {e(resource.status)}" id="{e(resource.sid)}">',
        f'<h2>{e(title)} <span class="status">{e(resource.status)}</span></h2>',
        f'<p class="meta">{e(resource.sid)} · {e(resource.direction)} · {_clock(resource.created)}</p>',
    ]
    if isinstance(resource, Message):
        parts.append(f'<blockquote class="body">{e(resource.body)}</blockquote>')
    else:
        parts += [f'<blockquote class="said">{e(item.text)}{_voice(item)}</blockquote>' for item in resource.said]
    if resource.error is not None:
        parts.append(f'<p class="error">Failed: {resource.error.code} {e(str(resource.error))}</p>')
    parts.append('<ol class="events">')
    parts += [
        f"<li><time>{_clock(event.at)}</time> <b>{e(event.name)}</b> {e(event.detail)}</li>"
        for event in resource.events
    ]
    parts.append("</ol></article>")
    return "\n".join(parts)


def _voice(said: Said) -> str:
    how = ", ".join(value for value in (said.voice, said.language) if value)
    return f" <small>({html.escape(how)})</small>" if how else ""


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]
