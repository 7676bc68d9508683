"""Twilio's REST API for calls and texts, as the sandbox answers it behind Prism.

Prism checks every request against Twilio's OpenAPI description and forwards only the valid
ones here. This answers them as Twilio does (its JSON, 201 on create, 404 for an unknown SID)
and hands each new call or text to the play-out.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from devtools.sandbox.answers import TWILIO_API, json_response, list_page, twilio_error
from devtools.sandbox.playout import Player
from devtools.sandbox.resources import ERRORS, Call, Message, Resources
from devtools.sandbox.webhooks import API_VERSION, sid

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Handler = Callable[..., Response]

# What the pass-through adds to each request it forwards: the REST API answers nothing else, so that
# nobody reaches the sandbox through Prism's own port, which grants every web page CORS access.
KEY_HEADER = "X-Sandbox-Key"


class RestApi:
    """The WSGI application Prism forwards to. Requests it does not simulate get a 501, which
    Prism answers from the spec's examples, as it does without an upstream. A request without
    the pass-through's `key` gets 403, whatever it asks."""

    ROOT = f"/{API_VERSION}/Accounts/<account>"

    def __init__(self, resources: Resources, player: Player, key: str) -> None:
        self.resources = resources
        self.player = player
        self.key = key
        self._map = Map(
            [
                Rule(f"{self.ROOT}/Calls.json", methods=["GET"], endpoint=self._list_calls),
                Rule(f"{self.ROOT}/Calls.json", methods=["POST"], endpoint=self._create_call),
                Rule(f"{self.ROOT}/Calls/<sid>.json", methods=["GET"], endpoint=self._get_call),
                Rule(f"{self.ROOT}/Messages.json", methods=["GET"], endpoint=self._list_messages),
                Rule(f"{self.ROOT}/Messages.json", methods=["POST"], endpoint=self._create_message),
                Rule(f"{self.ROOT}/Messages/<sid>.json", methods=["GET"], endpoint=self._get_message),
            ]
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if not hmac.compare_digest(request.headers.get(KEY_HEADER, "").encode(), self.key.encode()):
            message = "Only the app's Twilio client, through the pass-through, reaches the Twilio sandbox."
            return json_response(twilio_error(20403, message, 403), 403)(environ, start_response)
        try:
            endpoint, matched = self._map.bind_to_environ(environ).match()
        except HTTPException:
            return Response(status=501)(environ, start_response)
        handler: Handler = endpoint
        args = dict(matched)
        if not _authorized(request, args.pop("account")):
            return json_response(twilio_error(20003, "Authenticate", 401), 401)(environ, start_response)
        return handler(request, **args)(environ, start_response)

    def _create_call(self, request: Request) -> Response:
        form = request.form
        if not form.get("Url") and not form.get("Twiml"):
            return _error(21205, 400)
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
        return json_response(self.player.place(call), 201)

    def _create_message(self, request: Request) -> Response:
        form = request.form
        if not form.get("Body") and not form.get("MediaUrl"):
            return _error(21602, 400)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _error(21603, 400)
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
        return json_response(self.player.send(message, "sent through the REST API"), 201)

    def _get_call(self, request: Request, sid: str) -> Response:
        return self._get(self.resources.calls, sid, request.path)

    def _get_message(self, request: Request, sid: str) -> Response:
        return self._get(self.resources.messages, sid, request.path)

    def _get(self, found_in: Mapping[str, Call] | Mapping[str, Message], sid: str, path: str) -> Response:
        with self.resources.lock:
            found = found_in.get(sid)
            if found is not None:
                return json_response(found.resource())
        return json_response(twilio_error(20404, f"The requested resource {path} was not found", 404), 404)

    def _list_calls(self, request: Request) -> Response:
        with self.resources.lock:
            calls = [call.resource() for call in reversed(self.resources.calls.values())]
        return _listed(request, "calls", calls, {"To": "to", "From": "from", "Status": "status"})

    def _list_messages(self, request: Request) -> Response:
        with self.resources.lock:
            messages = [message.resource() for message in reversed(self.resources.messages.values())]
        return _listed(request, "messages", messages, {"To": "to", "From": "from"})


def _authorized(request: Request, account: str) -> bool:
    auth = request.authorization
    return auth is not None and auth.username == account and bool(auth.password)


def _values(form: MultiDict[str, str], name: str) -> list[str]:
    """Twilio's repeated keys, also in the Key[] form the pass-through writes for Prism."""
    return form.getlist(name) + form.getlist(f"{name}[]")


def _listed(request: Request, key: str, items: list[dict[str, Any]], filters: Mapping[str, str]) -> Response:
    """One page of the items the query's filters match, newest first."""
    wanted = {field: request.args[name] for name, field in filters.items() if name in request.args}
    matching = [item for item in items if all(item[field] == value for field, value in wanted.items())]
    return json_response(list_page(matching, key, request.path, request.args, TWILIO_API))


def _error(code: int, status: int) -> Response:
    return json_response(twilio_error(code, ERRORS[code], status), status)
