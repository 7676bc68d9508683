"""Contract tests: the app's Twilio requests, checked by Prism against Twilio's own OpenAPI description."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import function_app
from devtools.host import SANDBOX_ROUTE, LocalHost
from devtools.invoke import replay_call
from devtools.sandbox import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, Prism, SandboxGateway
from tests.servers import free_port, serving
from tests.support import body_json, error_of, post_json

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def prism() -> Iterator[Prism]:
    server = Prism(port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def gateway(prism: Prism) -> SandboxGateway:
    return SandboxGateway(prism.url)


@pytest.fixture
def host(gateway: SandboxGateway, env: pytest.MonkeyPatch) -> Iterator[str]:
    """The app as `make run` serves it: functions under /api, the Twilio sandbox under /_sandbox."""
    app = DispatcherMiddleware(LocalHost(function_app.app, "api"), {SANDBOX_ROUTE: gateway})
    with serving(app) as url:
        env.setenv("TWILIO_API_BASE_URL", f"{url}{SANDBOX_ROUTE}/twilio")
        env.setenv("TWILIO_ACCOUNT_SID", SANDBOX_ACCOUNT_SID)
        env.setenv("TWILIO_AUTH_TOKEN", SANDBOX_AUTH_TOKEN)
        yield url


def test_prism_accepts_the_call_the_app_places(host: str, gateway: SandboxGateway) -> None:
    document = {"to": "+15558675310", "from": "+15017122661", "message": "Hi", "voice": "alice", "language": "en-US"}
    response = post_json("make_call", document)

    assert response.status_code == 201
    assert re.fullmatch(r"CA[0-9a-fA-F]{32}", body_json(response)["sid"])
    assert gateway.forwarded == 1


def test_prism_accepts_the_message_the_app_sends(host: str, gateway: SandboxGateway) -> None:
    response = post_json("send_sms", {"to": "+15558675310", "from": "+15017122661", "body": "Hi from Azure"})

    assert response.status_code == 201
    assert re.fullmatch(r"SM[0-9a-fA-F]{32}", body_json(response)["sid"])


def test_prism_refuses_what_twilio_would_refuse(host: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", "not-an-account-sid")
    response = post_json("send_sms", {"to": "+15558675310", "from": "+15017122661", "body": "Hi"})

    assert 400 <= response.status_code < 500
    assert error_of(response)["code"] == "twilio_rejected"


def test_a_caller_mistake_stops_at_the_app(host: str, gateway: SandboxGateway) -> None:
    response = post_json("make_call", {"to": "555-CALL-NOW", "from": "+15017122661"})

    assert response.status_code == 400
    assert gateway.forwarded == 0


def test_the_invoker_replays_twilio_fetching_the_call_voice_url(host: str) -> None:
    placed = requests.post(
        f"{host}/api/make_call",
        json={"to": "+15558675310", "from": "+15017122661", "message": "Hello from Azure"},
        timeout=30,
    )
    assert placed.status_code == 201

    heard = replay_call(host, SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)

    assert heard.status_code == 200
    assert heard.text.endswith("<Response><Say>Hello from Azure</Say></Response>")


def test_make_run_serves_the_app_on_the_sandbox_end_to_end() -> None:
    port, prism_port = free_port(), free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "KEY_VAULT"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.host", "--port", str(port), "--prism-port", str(prism_port)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait_until_up(base, process)
        placed = requests.post(f"{base}/api/make_call", json={"to": "+15558675310", "from": "+15017122661"}, timeout=30)
        assert placed.status_code == 201
        invoked = subprocess.run(
            [sys.executable, "-m", "devtools.invoke", "call", "--base-url", base],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert invoked.returncode == 0, invoked.stderr
        assert invoked.stdout.splitlines()[0] == "HTTP 200 text/xml; charset=utf-8"
        assert "<Say>Hello Monkey!</Say>" in invoked.stdout
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"make_call: [GET,POST] {base}/api/make_call" in output
    assert f"TWILIO_AUTH_TOKEN={SANDBOX_AUTH_TOKEN}" in output
    assert not _listening(prism_port), "Prism must stop with the host"


def _wait_until_up(base: str, process: subprocess.Popen[str], timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(f"{base}/api/none", timeout=1)
            return True
        except requests.ConnectionError:
            time.sleep(0.2)
    return False


def _listening(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except requests.ConnectionError:
        return False
