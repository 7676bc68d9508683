"""The sandbox as `make run` starts it, and the credentials the app uses against it."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, MutableMapping

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from devtools.sandbox.playout import Player
from devtools.sandbox.prism import PassThrough, Prism
from devtools.sandbox.resources import Resources
from devtools.sandbox.rest import RestApi
from devtools.sandbox.views import Views
from devtools.sandbox.webhooks import LocalRoute

# Documented in the README: the credentials the app uses against the sandbox when none are given.
SANDBOX_ACCOUNT_SID = "AC00000000000000000000000000000000"
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"
SANDBOX_FROM_NUMBER = "+15017122661"


class Sandbox:
    """The sandbox's REST API on a loopback port, Prism on Twilio's spec in front of it, and the
    pass-through the app talks to, which also serves the sandbox's views. `route` says where
    the app is: the play-out sends its webhooks there, and fetches no other URL."""

    def __init__(self, host: str, port: int, route: LocalRoute) -> None:
        self.resources = Resources()
        self.player = Player(self.resources, route)
        key = secrets.token_urlsafe(24)
        self.rest = RestApi(self.resources, self.player, key)
        self.views = Views(self.resources, self.player)
        self.prism = Prism(host, port)
        self.pass_through = PassThrough(self.prism.url, views=self.views, key=key)
        self._upstream: BaseWSGIServer | None = None

    def start(self) -> str:
        """Start the REST API and Prism; the base URL of Twilio's REST API for the app."""
        self._upstream = make_server("127.0.0.1", 0, self.rest, threaded=True, request_handler=_Unlogged)
        threading.Thread(target=self._upstream.serve_forever, daemon=True).start()
        self.prism.upstream = f"http://127.0.0.1:{self._upstream.port}"
        self.prism.start()
        return f"{self.prism.front(self.pass_through)}/twilio"

    def stop(self) -> None:
        self.prism.stop()
        self.player.close()
        if self._upstream is not None:
            self._upstream.shutdown()
            self._upstream.server_close()


class _Unlogged(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: the pass-through's log line already names each request Prism forwards."""


def has_credentials(environ: Mapping[str, str]) -> bool:
    return bool(
        environ.get("KEY_VAULT_URL") or (environ.get("TWILIO_ACCOUNT_SID") and environ.get("TWILIO_AUTH_TOKEN"))
    )


def use_sandbox_credentials(environ: MutableMapping[str, str]) -> bool:
    """Fill in sandbox credentials unless real ones (or a Key Vault) are configured."""
    if has_credentials(environ):
        return False
    environ["TWILIO_ACCOUNT_SID"] = SANDBOX_ACCOUNT_SID
    environ["TWILIO_AUTH_TOKEN"] = SANDBOX_AUTH_TOKEN
    environ.setdefault("TWILIO_FROM_NUMBER", SANDBOX_FROM_NUMBER)
    return True
