"""Prism on Twilio's own OpenAPI description of the REST API, and the pass-through in front of it.

Prism refuses any request that breaks Twilio's contract (a missing To, a malformed SID, no
credentials) and forwards the valid ones to the sandbox's REST API (`rest`), whose answers it
checks against the spec in turn. Without an upstream, Prism answers from the spec's examples.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from devtools import processes
from devtools.npm import npm_ci
from devtools.ports import accepting
from devtools.sandbox.rest import KEY_HEADER
from devtools.wsgi import from_elsewhere, other_origin
from shared.errors import ApiError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

PACKAGES = Path(__file__).resolve().parent.parent / "twilio-sandbox"
SPEC = PACKAGES / "node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json"
PRISM = PACKAGES / "node_modules/.bin/prism"
TWILIO_METHODS = "GET, POST, DELETE"  # every method in Twilio's spec


def install() -> None:
    """Install the pinned Prism and Twilio spec once (npm ci from the committed lock file)."""
    if PRISM.exists() and SPEC.exists():
        return
    npm_ci(PACKAGES, "the Twilio sandbox")


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
        if accepting(self.host, self.port):
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
            if accepting(self.host, self.port):
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
        processes.stop(self.process)


class PassThrough:
    """What the app's Twilio client talks to in the sandbox: a pass-through to Prism, under
    /twilio; every other path is the sandbox's `views`.

    It sends Twilio's repeated form keys (StatusCallbackEvent=a&StatusCallbackEvent=b, as
    Twilio and its SDK write arrays) in the Key[] form that Prism reads as an array
    (stoplightio/prism#2473); every value is still checked. When Prism cannot be reached,
    it answers 502 saying that nothing was sent.

    No web page on another origin may use it: Prism grants every origin CORS access, credentials
    included, and the sandbox's credentials are no secret. So the pass-through answers a preflight
    itself (`_no_preflight`), drops every Access-Control-* header from Prism's answers, and adds
    the `key` without which the sandbox's REST API answers nothing. On its own port, as under the
    local host, it answers only this machine: no tunnel, other machine or page on another origin.
    """

    def __init__(
        self, upstream: str, spec: Path = SPEC, views: WSGIApplication | None = None, key: str | None = None
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.key = key
        self.array_fields = _form_array_fields(spec)
        self.views = views
        self.forwarded = 0
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._map = Map([Rule("/twilio/<path:path>", endpoint="twilio")])

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        refused = _refusal(request)
        if refused is not None:
            return refused(environ, start_response)
        try:
            _, args = self._map.bind_to_environ(environ).match()
        except HTTPException as error:
            if self.views is not None:
                return self.views(environ, start_response)
            return error(environ, start_response)
        if request.method == "OPTIONS":
            return _no_preflight()(environ, start_response)
        return self._forward(request, args["path"])(environ, start_response)

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
                headers=self._headers(request),
                timeout=30,
            )
        except requests.ConnectionError:
            message = f"The Twilio sandbox (Prism on {self.upstream}) is not running; nothing was sent."
            return Response(json.dumps({"message": message, "status": 502}), 502, mimetype="application/json")
        excluded = {"content-encoding", "content-length", "transfer-encoding", "connection"}
        headers = [
            (k, v)
            for k, v in answer.headers.items()
            if k.lower() not in excluded and not k.lower().startswith("access-control-")
        ]
        return Response(answer.content, status=answer.status_code, headers=headers)

    def _headers(self, request: Request) -> dict[str, str]:
        dropped = {"host", "content-length", KEY_HEADER.lower()}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        if self.key is not None:
            headers[KEY_HEADER] = self.key
        return headers


def _refusal(request: Request) -> Response | None:
    """403 to a request from elsewhere than this machine's own tools, or from a page on another origin."""
    elsewhere = from_elsewhere(request)
    if elsewhere is not None:
        message = "The Twilio sandbox answers this machine only, never a tunnel or another machine."
        return _error(ApiError(403, "local_only", message, target="url"), elsewhere)
    page = other_origin(request)
    if page is not None:
        message = "The Twilio sandbox does not answer a web page on another origin."
        return _error(ApiError(403, "cross_origin_request", message, target="Origin"), page)
    return None


def _error(error: ApiError, why: str) -> Response:
    logger.warning("The Twilio sandbox refused a request: it %s", why)
    return Response(json.dumps(error.body()), error.status, mimetype="application/json")


def _no_preflight() -> Response:
    """405 to OPTIONS, which only a browser's CORS preflight sends here. A browser goes on only
    after a preflight answered 2xx, so this refusal holds whatever headers the answer carries;
    a 204 without Access-Control-Allow-Origin would hold only for as long as none slipped in."""
    error = ApiError(
        405,
        "method_not_allowed",
        "The Twilio sandbox's pass-through does not answer OPTIONS: it serves the app's Twilio client, not web pages.",
        target="method",
    )
    return Response(json.dumps(error.body()), 405, headers={"Allow": TWILIO_METHODS}, mimetype="application/json")


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
