"""Contract tests: the app's Twilio requests, checked by Prism against Twilio's own OpenAPI description."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

import function_app
from devtools.host import SANDBOX_ROUTE, LocalHost
from devtools.invoke import replay_call
from devtools.sandbox import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, Prism, SandboxGateway
from tests.servers import free_port, serving
from tests.support import body_json, error_of, eventually, post_json
from tests.test_host import listening


@pytest.fixture
def gateway(prism: Prism) -> SandboxGateway:
    return SandboxGateway(prism.url)


@pytest.fixture
def host(gateway: SandboxGateway, env: pytest.MonkeyPatch) -> Iterator[str]:
    """The app as `make run` serves it: functions under /api, the Twilio sandbox under /_sandbox."""
    with serving(LocalHost(function_app.app, "api", mounts={SANDBOX_ROUTE: gateway})) as url:
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


# A sandbox that has stopped: nothing was sent, and the app says so.


def test_the_pass_through_answers_502_when_prism_is_not_running() -> None:
    gateway = SandboxGateway(f"http://127.0.0.1:{free_port()}")
    with serving(gateway) as url:
        response = requests.post(
            f"{url}/twilio/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Calls.json",
            data={"To": "+15558675310"},
            timeout=10,
        )

    assert response.status_code == 502
    assert response.json()["message"].endswith("is not running; nothing was sent.")


def test_make_call_says_nothing_was_sent_once_prism_has_exited(env: pytest.MonkeyPatch) -> None:
    dying = Prism(port=free_port()).start()
    try:
        endpoint = dying.front(SandboxGateway(dying.url))
        env.setenv("TWILIO_API_BASE_URL", f"{endpoint}/twilio")
        env.setenv("TWILIO_ACCOUNT_SID", SANDBOX_ACCOUNT_SID)
        env.setenv("TWILIO_AUTH_TOKEN", SANDBOX_AUTH_TOKEN)
        assert dying.process is not None
        dying.process.kill()
        assert eventually(lambda: not listening(urlsplit(endpoint).port or 0))

        response = post_json("make_call", {"to": "+15558675310", "from": "+15017122661"})
    finally:
        dying.stop()

    assert response.status_code == 502
    assert error_of(response) == {
        "code": "twilio_unreachable",
        "message": "Twilio could not be reached; nothing was sent.",
        "target": None,
    }
