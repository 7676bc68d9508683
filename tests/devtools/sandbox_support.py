"""The Twilio sandbox for tests, wired as `make run` wires it, and the means to look at it:
Twilio's REST API through Prism, the sandbox's views, a webhook receiver, and a browser."""

from __future__ import annotations

import contextlib
import html
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from werkzeug.wrappers import Request, Response

import function_app
from devtools.host import SANDBOX_ROUTE
from devtools.ports import free_port
from devtools.sandbox.run import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, Sandbox
from devtools.sandbox.webhooks import LocalRoute
from devtools.wsgi import LocalHost
from tests.servers import serving
from tests.support import eventually

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

CHROMIUM = Path("/usr/bin/chromium")
NO_APP = "http://127.0.0.1:9"  # the discard port, where nothing answers: the app's address until a test serves one
FINAL = frozenset({"completed", "failed", "busy", "no-answer", "delivered", "undelivered", "received"})


@dataclass
class RunningSandbox:
    sandbox: Sandbox
    api: str  # Twilio's REST API for the app: TWILIO_API_BASE_URL

    def rest(self, method: str, resource: str, **kwargs: Any) -> requests.Response:
        """A request to Twilio's REST API, with the sandbox credentials, as the Twilio SDK sends it."""
        url = f"{self.api}/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/{resource}"
        return requests.request(method, url, auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN), timeout=30, **kwargs)


@contextmanager
def running_sandbox() -> Iterator[RunningSandbox]:
    sandbox = Sandbox("127.0.0.1", free_port(), LocalRoute(NO_APP))
    try:
        yield RunningSandbox(sandbox, sandbox.start())
    finally:
        sandbox.stop()


@contextmanager
def app_at(running: RunningSandbox, url: str, public_base: str = "") -> Iterator[None]:
    """The app is at `url` (and `public_base`) for a while: the sandbox's webhooks go there, and nowhere else."""
    player = running.sandbox.player
    before, player.route = player.route, LocalRoute(url, public_base)
    try:
        yield
    finally:
        player.route = before


@contextmanager
def app_with_sandbox(
    running: RunningSandbox, env: pytest.MonkeyPatch, allowed_hosts: tuple[str, ...] = ()
) -> Iterator[str]:
    """The app as `make run` serves it: functions under /api, the sandbox under /_sandbox."""
    host = LocalHost(
        function_app.app, "api", mounts={SANDBOX_ROUTE: running.sandbox.pass_through}, allowed_hosts=allowed_hosts
    )
    env.setenv("TWILIO_API_BASE_URL", running.api)
    env.setenv("TWILIO_ACCOUNT_SID", SANDBOX_ACCOUNT_SID)
    env.setenv("TWILIO_AUTH_TOKEN", SANDBOX_AUTH_TOKEN)
    with serving(host) as url, app_at(running, url):
        yield url


def view(base_url: str, kind: str, sid: str) -> dict[str, Any]:
    """The sandbox's view of a call or a text: GET /_sandbox/calls/<sid> or /_sandbox/messages/<sid>."""
    answer: dict[str, Any] = requests.get(f"{base_url}{SANDBOX_ROUTE}/{kind}/{sid}", timeout=10).json()
    return answer


def settled(base_url: str, kind: str, sid: str) -> dict[str, Any]:
    """The view once the call or text has reached its final status."""
    assert eventually(lambda: view(base_url, kind, sid)["status"] in FINAL)
    return view(base_url, kind, sid)


@dataclass(frozen=True)
class Hit:
    method: str
    url: str  # as requested, which is what Twilio signs
    form: dict[str, str]
    signature: str


@dataclass
class Receiver:
    """The app's side of webhooks, for tests: records what Twilio sends, answers as told."""

    answers: dict[str, tuple[int, str]] = field(default_factory=dict)  # by path: status and TwiML
    hits: list[Hit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        request = Request(environ)
        hit = Hit(
            request.method,
            f"http://{request.host}{environ['REQUEST_URI']}",
            dict(request.form),
            request.headers.get("X-Twilio-Signature", ""),
        )
        with self._lock:
            self.hits.append(hit)
        status, twiml = self.answers.get(request.path, (204, ""))
        return Response(twiml, status, content_type="text/xml")(environ, start_response)

    def at(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.url.split("?")[0].endswith(path)]


def rendered_text(url: str, profile: Path, *flags: str) -> str:
    """The page as a person reads it: Chromium renders it headless, in a fresh profile that
    reaches nothing but the page (and what it loads), with any other `flags`; the text of the
    rendered body comes back, on one line."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed: `make chromium` as root installs it")
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *flags,
        "--dump-dom",
        url,
    ]
    browser = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    try:
        dom, _ = browser.communicate(timeout=60)
    finally:
        # Chromium's helper processes share its session: none outlives the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
        browser.wait()
    body = re.sub(r"(?s)<head>.*</head>|<[^>]+>", " ", dom)
    return " ".join(html.unescape(body).split())
