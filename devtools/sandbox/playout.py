"""What Twilio does once a call or a text exists, played out within about a second: a call's signed
status callbacks and the TwiML it fetches from the call's Url, a text's delivery, and a text arriving
at the app's number with the replies its TwiML asks for."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

import requests

from devtools.sandbox.resources import Call, Message, Resources, Said, TwilioError, now, rfc2822
from devtools.sandbox.webhooks import WEBHOOK_TIMEOUT, LocalRoute, send_signed, sid

STEP = 0.1  # seconds between two progress events of a call or a text
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


class _StoppedError(Exception):
    """The sandbox is stopping: the play-out ends where it is."""


class Player:
    """Plays each call and text out on a thread of its own. Webhooks are signed with the auth
    token the resource was created with (the password of its basic auth), as Twilio signs them
    with the account's, and sent where `route` says, to the app's URLs only."""

    def __init__(self, resources: Resources, route: LocalRoute, step: float = STEP) -> None:
        self.resources = resources
        self.route = route
        self.step = step
        self._lock = resources.lock
        self._closed = threading.Event()
        self._players: list[threading.Thread] = []

    def place(self, call: Call) -> dict[str, Any]:
        """Keep a call placed through the REST API and start it; Twilio's JSON for it as created."""
        call.note("queued", f"placed through the REST API, from {call.from_} to {call.to}")
        with self._lock:
            self.resources.calls[call.sid] = call
            created = call.resource()
        self._play(self._play_call, call)
        return created

    def send(self, message: Message, how: str) -> dict[str, Any]:
        """Keep a text and start its delivery; Twilio's JSON for it as created."""
        message.note("queued", f"{how}, from {message.from_} to {message.to}")
        with self._lock:
            self.resources.messages[message.sid] = message
            created = message.resource()
        self._play(self._play_message, message)
        return created

    def receive(self, inbound: Message, url: str, method: str, params: Mapping[str, str]) -> requests.Response:
        """A text arriving at the app's number: Twilio posts it to the number's SMS URL, signed,
        and sends each <Message> of the TwiML answer back to the sender. The app's answer, or
        the TwilioError of a webhook that could not be sent."""
        inbound.note("received", f"from {inbound.from_} to {inbound.to}")
        with self._lock:
            self.resources.messages[inbound.sid] = inbound
        try:
            answer = self._fetch(url, method, params, inbound.auth_token)
        except TwilioError as error:
            self._failed(inbound, error)
            raise
        with self._lock:
            inbound.note("TwiML", f"{method} {url} answered {answer.status_code}")
        try:
            root = _answered_twiml(answer, f"{method} {url}")
        except TwilioError as error:
            self._failed(inbound, error)
            return answer
        for reply in root.iter("Message"):
            self.send(
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
        return answer

    def close(self) -> None:
        """Stop every play-out, and wait for those sending a webhook."""
        self._closed.set()
        for player in self._players:
            player.join(WEBHOOK_TIMEOUT)

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
            call.started = now()
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
        """Fetch the call's TwiML (or take it inline) and keep what the callee hears."""
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
            call.ended = now()
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
                "Timestamp": rfc2822(call.updated) or "",
                **extra,
            }
            wanted = call.status_callback is not None and event in call.status_callback_events
            if wanted:
                call.sequence += 1
        if wanted:
            self._callback(call, params, call_status)

    def _play_message(self, message: Message) -> None:
        self._pause()
        with self._lock:
            message.sent = now()
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
        """Only the app's own URLs are requested, so that whoever can create a call or a text cannot
        have the sandbox reach anything else on the machine or beyond. Any other URL ends as one
        Twilio cannot connect to, such as one on a private address or localhost: 11205, HTTP
        connection failure (https://www.twilio.com/docs/api/errors/11205)."""
        if not self.route.owns(url):
            raise TwilioError(11205, f"{method} {url}: not the app's URL, so not requested")
        try:
            return send_signed(url, params, token, method, self.route)
        except requests.RequestException as error:
            raise TwilioError(11200, f"{method} {url}: {type(error).__name__}") from None

    def _failed(self, resource: Call | Message, error: TwilioError) -> None:
        with self._lock:
            resource.error = error
            resource.note("failed", str(error))
