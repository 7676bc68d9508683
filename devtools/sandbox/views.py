"""The sandbox's own views, which the local host serves under /_sandbox: what happened to each call
and text as JSON (/calls, /messages), the page (/), and a text arriving at the app's number
(POST /messages/inbound), which the invoker sends."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from devtools.sandbox.answers import json_response
from devtools.sandbox.page import render_page
from devtools.sandbox.playout import Player
from devtools.sandbox.resources import Call, Message, Resources, TwilioError
from devtools.sandbox.webhooks import sid

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Handler = Callable[..., Response]


class Views:
    """The WSGI application of the views."""

    def __init__(self, resources: Resources, player: Player) -> None:
        self.resources = resources
        self.player = player
        self._map = Map(
            [
                Rule("/", methods=["GET"], endpoint=self._page),
                Rule("/calls", methods=["GET"], endpoint=self._calls),
                Rule("/calls/<sid>", methods=["GET"], endpoint=self._call),
                Rule("/messages", methods=["GET"], endpoint=self._messages),
                Rule("/messages/inbound", methods=["POST"], endpoint=self._inbound),
                Rule("/messages/<sid>", methods=["GET"], endpoint=self._message),
            ]
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            endpoint, args = self._map.bind_to_environ(environ).match()
        except HTTPException as error:
            return error(environ, start_response)
        handler: Handler = endpoint
        return handler(Request(environ), **args)(environ, start_response)

    def _calls(self, request: Request) -> Response:
        with self.resources.lock:
            return json_response([call.view() for call in self.resources.calls.values()])

    def _messages(self, request: Request) -> Response:
        with self.resources.lock:
            return json_response([message.view() for message in self.resources.messages.values()])

    def _call(self, request: Request, sid: str) -> Response:
        return self._one(self.resources.calls, sid)

    def _message(self, request: Request, sid: str) -> Response:
        return self._one(self.resources.messages, sid)

    def _one(self, found_in: Mapping[str, Call] | Mapping[str, Message], sid: str) -> Response:
        with self.resources.lock:
            found = found_in.get(sid)
            if found is not None:
                return json_response(found.view())
        return json_response({"message": f"Nothing in the sandbox has the SID {sid}."}, 404)

    def _page(self, request: Request) -> Response:
        with self.resources.lock:
            page = render_page([*self.resources.calls.values(), *self.resources.messages.values()])
        return Response(page, mimetype="text/html")

    def _inbound(self, request: Request) -> Response:
        """A text for the play-out to deliver to the app, signed with the basic auth's token.
        Answers with the app's answer, as it came."""
        auth = request.authorization
        document = request.get_json(silent=True)
        if auth is None or not auth.username or not auth.password:
            return json_response(
                {"message": "Basic auth with the account SID and auth token, to sign the webhook."}, 401
            )
        if not _inbound_document(document):
            return json_response({"message": 'Expected {"url": "...", "method": "POST", "params": {...}}.'}, 400)
        params: dict[str, str] = document["params"]
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
        try:
            answer = self.player.receive(inbound, document["url"], document.get("method", "POST"), params)
        except TwilioError as error:
            return json_response({"message": str(error)}, 502)
        return Response(answer.content, answer.status_code, content_type=answer.headers.get("Content-Type"))


def _inbound_document(document: Any) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(document, dict)
        and isinstance(document.get("url"), str)
        and document.get("method", "POST") in {"GET", "POST"}
        and isinstance(document.get("params"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in document["params"].items())
    )
