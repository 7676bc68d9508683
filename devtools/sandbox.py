"""The Twilio sandbox: Prism serving Twilio's own OpenAPI description of the REST API.

Prism answers every request the way the spec says Twilio answers it, and refuses any
request that breaks Twilio's contract (a missing To, a malformed SID, no credentials).
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

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
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the Twilio sandbox; install Node.js")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=SANDBOX_DIR, check=True)


@dataclass
class Prism:
    host: str = "127.0.0.1"
    port: int = 4010
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
        self.process = subprocess.Popen(
            [str(PRISM), "mock", "--host", self.host, "--port", str(self.port), str(SPEC)],
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


@dataclass(frozen=True)
class PlacedCall:
    sid: str
    to: str
    from_: str
    url: str
    method: str

    def as_json(self) -> dict[str, str]:
        return {"sid": self.sid, "to": self.to, "from": self.from_, "url": self.url, "method": self.method}


class SandboxGateway:
    """What the app's Twilio client talks to in the sandbox: a pass-through to Prism.

    It remembers the calls placed, so that Twilio's side of a call (fetching its voice
    URL) can be replayed. And it sends Twilio's repeated form keys (StatusCallbackEvent=a
    &StatusCallbackEvent=b, as Twilio and its SDK write arrays) in the Key[] form that
    Prism reads as an array (stoplightio/prism#2473); every value is still checked. When
    Prism cannot be reached, it answers 502 saying that nothing was sent.
    """

    def __init__(self, upstream: str, spec: Path = SPEC) -> None:
        self.upstream = upstream.rstrip("/")
        self.array_fields = _form_array_fields(spec)
        self.calls: list[PlacedCall] = []
        self.forwarded = 0
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._map = Map(
            [Rule("/twilio/<path:path>", endpoint="twilio"), Rule("/calls", methods=["GET"], endpoint="calls")]
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, args = self._map.bind_to_environ(environ).match()
        except HTTPException as error:
            return error(environ, start_response)
        return self._respond(request, endpoint, args)(environ, start_response)

    def _respond(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> Response:
        if endpoint == "calls":
            with self._lock:
                body = [call.as_json() for call in self.calls]
            return Response(json.dumps(body), mimetype="application/json")
        return self._forward(request, args["path"])

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
        if request.method == "POST" and path.endswith("/Calls.json") and answer.status_code == 201:
            self._remember(dict(form), answer.json())
        excluded = {"content-encoding", "content-length", "transfer-encoding", "connection"}
        headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in excluded]
        return Response(answer.content, status=answer.status_code, headers=headers)

    def _remember(self, form: dict[str, str], created: dict[str, Any]) -> None:
        call = PlacedCall(
            sid=str(created.get("sid", "")),
            to=form.get("To", ""),
            from_=form.get("From", ""),
            url=form.get("Url", ""),
            method=form.get("Method", "POST"),
        )
        with self._lock:
            self.calls.append(call)


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
