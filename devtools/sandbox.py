"""The Twilio sandbox: Twilio's contract checked by Prism, Twilio's behaviour simulated behind it.

Prism serves Twilio's own OpenAPI description of the REST API. It refuses any request that
breaks Twilio's contract (a missing To, a malformed SID, no credentials) and forwards the valid
ones to the stand-in (devtools.twilio_sim), whose answers it checks against the spec in turn.
Without a stand-in, Prism answers from the spec's examples.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from devtools.npm import npm_ci
from devtools.twilio_sim import LocalRoute, TwilioSim

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

SANDBOX_DIR = Path(__file__).resolve().parent / "twilio-sandbox"
SPEC = SANDBOX_DIR / "node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json"
PRISM = SANDBOX_DIR / "node_modules/.bin/prism"

# Documented in the README: the credentials the app uses against the sandbox when none are given.
SANDBOX_ACCOUNT_SID = "AC00000000000000000000000000000000"
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"
SANDBOX_FROM_NUMBER = "+15017122661"


def install() -> None:
    """Install the pinned Prism and Twilio spec once (npm ci from the committed lock file)."""
    if PRISM.exists() and SPEC.exists():
        return
    npm_ci(SANDBOX_DIR, "the Twilio sandbox")


@dataclass
class Prism:
    """Prism on Twilio's spec: a proxy checking requests and answers when given an `upstream`
    URL (with --errors, a violation either way is answered as an error), else a mock."""

    host: str = "127.0.0.1"
    port: int = 4010
    upstream: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 120.0) -> Prism:
        install()
        if _listening(self.host, self.port):
            raise RuntimeError(f"Port {self.port} is taken; is another sandbox running? (--prism-port)")
        # A session of its own: a terminal's Ctrl+C or hang-up reaches whoever started Prism,
        # which stops it, rather than Prism alone.
        mode = ["proxy", "--errors", str(SPEC), self.upstream] if self.upstream else ["mock", str(SPEC)]
        self.process = subprocess.Popen(
            [str(PRISM), *mode, "--host", self.host, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Prism exited with {self.process.returncode}; is port {self.port} free?")
            if _listening(self.host, self.port):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Prism did not start listening on {self.url} within {timeout:g} s")

    def front(self, app: WSGIApplication) -> str:
        """Serve `app` on a loopback port of its own for as long as Prism runs; return its URL.

        Once Prism has exited, that port refuses connections, as an unreachable Twilio does, so
        the app's Twilio client knows that nothing was sent; a 502 would leave the outcome unknown.
        """
        assert self.process is not None, "start Prism first"
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        threading.Thread(target=self._close_on_exit, args=(self.process, server), daemon=True).start()
        return f"http://127.0.0.1:{server.port}"

    def _close_on_exit(self, process: subprocess.Popen[bytes], server: BaseWSGIServer) -> None:
        code = process.wait()
        server.shutdown()
        server.server_close()
        if not self._stopping:
            logger.error(
                "The Twilio sandbox (Prism on %s) exited with %s: the app's Twilio requests are refused,"
                " and nothing is sent, until it is restarted.",
                self.url,
                code,
            )

    def stop(self) -> None:
        self._stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class SandboxGateway:
    """What the app's Twilio client talks to in the sandbox: a pass-through to Prism, under
    /twilio; every other path is the sandbox's `views` (the stand-in's pages).

    It sends Twilio's repeated form keys (StatusCallbackEvent=a&StatusCallbackEvent=b, as
    Twilio and its SDK write arrays) in the Key[] form that Prism reads as an array
    (stoplightio/prism#2473); every value is still checked. When Prism cannot be reached,
    it answers 502 saying that nothing was sent.
    """

    def __init__(self, upstream: str, spec: Path = SPEC, views: WSGIApplication | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.array_fields = _form_array_fields(spec)
        self.views = views
        self.forwarded = 0
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._map = Map([Rule("/twilio/<path:path>", endpoint="twilio")])

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            _, args = self._map.bind_to_environ(environ).match()
        except HTTPException as error:
            if self.views is not None:
                return self.views(environ, start_response)
            return error(environ, start_response)
        return self._forward(Request(environ), args["path"])(environ, start_response)

    def _forward(self, request: Request, path: str) -> Response:
        with self._lock:
            self.forwarded += 1
        form = parse_qsl(request.get_data(as_text=True), keep_blank_values=True)
        body = urlencode([(f"{k}[]" if k in self.array_fields else k, v) for k, v in form]) if form else b""
        try:
            answer = self._session.request(
                request.method,
                f"{self.upstream}/{path}",
                params=list(request.args.items(multi=True)),
                data=body,
                headers={k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}},
                timeout=30,
            )
        except requests.ConnectionError:
            message = f"The Twilio sandbox (Prism on {self.upstream}) is not running; nothing was sent."
            return Response(json.dumps({"message": message, "status": 502}), 502, mimetype="application/json")
        excluded = {"content-encoding", "content-length", "transfer-encoding", "connection"}
        headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in excluded]
        return Response(answer.content, status=answer.status_code, headers=headers)


class Sandbox:
    """The Twilio sandbox as `make run` starts it: the stand-in on a loopback port, Prism on
    Twilio's spec in front of it, and the pass-through the app talks to, which also serves
    the stand-in's views. `route` says where the stand-in sends the app's webhooks."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4010, route: LocalRoute | None = None) -> None:
        self.sim = TwilioSim(route)
        self.prism = Prism(host, port)
        self.gateway = SandboxGateway(self.prism.url, views=self.sim.views)
        self._upstream: BaseWSGIServer | None = None

    def start(self) -> str:
        """Start the stand-in and Prism; the base URL of Twilio's REST API for the app."""
        self._upstream = make_server("127.0.0.1", 0, self.sim.api, threaded=True, request_handler=_Unlogged)
        threading.Thread(target=self._upstream.serve_forever, daemon=True).start()
        self.prism.upstream = f"http://127.0.0.1:{self._upstream.port}"
        self.prism.start()
        return f"{self.prism.front(self.gateway)}/twilio"

    def stop(self) -> None:
        self.prism.stop()
        self.sim.close()
        if self._upstream is not None:
            self._upstream.shutdown()
            self._upstream.server_close()


class _Unlogged(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: the pass-through's log line already names each request Prism forwards."""


def _form_array_fields(spec: Path) -> frozenset[str]:
    document = json.loads(spec.read_text(encoding="utf-8"))
    names = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            form = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
            for name, schema in form.get("schema", {}).get("properties", {}).items():
                if schema.get("type") == "array":
                    names.add(name)
    return frozenset(names)


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
