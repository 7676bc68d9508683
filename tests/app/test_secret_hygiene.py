"""No secret value in any log line, response or exception text, through every fault the app meets."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import azure.functions as func
import pytest

from devtools.ports import free_port
from devtools.sandbox.answers import twilio_error
from testing.process_state import clear_caches
from testing.standins import Fault, KeyVaultStandIn, TwilioStandIn
from tests.support import fixture, post_json, signed_post

SID = "AC" + "5ec7e7" * 5 + "aa"
TOKEN = "s3cr3t-auth-token-do-not-leak"
ROTATED = "r0tated-auth-token-do-not-leak"
CALL = {"to": "+15558675310"}
SMS = {"to": "+15558675310", "body": "Hi"}
CALLS = f"/2010-04-01/Accounts/{SID}/Calls.json"


@pytest.fixture
def world(env: pytest.MonkeyPatch) -> Iterator[tuple[KeyVaultStandIn, TwilioStandIn]]:
    vault = KeyVaultStandIn({"twilio-account-sid": SID, "twilio-auth-token": TOKEN}).start()
    twilio = TwilioStandIn(SID, TOKEN).start()
    for name, value in vault.environ().items():
        env.setenv(name, value)
    env.setenv("TWILIO_API_BASE_URL", twilio.url)
    env.setenv("TWILIO_FROM_NUMBER", "+15017122661")
    env.setenv("TWILIO_HTTP_TIMEOUT", "0.3")
    yield vault, twilio
    twilio.stop()
    vault.stop()


def _scenarios(vault: KeyVaultStandIn, twilio: TwilioStandIn) -> list[Callable[[], func.HttpResponse]]:
    def cold(*faults: Fault) -> Callable[[], func.HttpResponse]:
        def run() -> func.HttpResponse:
            clear_caches()
            vault.faults.clear()
            vault.fail_next(*faults)
            return signed_post("sms_url", fixture("incoming_sms"), token=vault.secrets.get("twilio-auth-token", TOKEN))

        return run

    def twilio_fault(fault: Fault, path: str = "make_call", times: int = 1) -> Callable[[], func.HttpResponse]:
        def run() -> func.HttpResponse:
            twilio.fail_next(*[fault] * times)
            return post_json(path, CALL if path == "make_call" else SMS)

        return run

    def unreachable() -> func.HttpResponse:
        os.environ["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{free_port()}"
        clear_caches()
        try:
            return post_json("make_call", CALL)
        finally:
            os.environ["TWILIO_API_BASE_URL"] = twilio.url
            clear_caches()

    def rotate() -> func.HttpResponse:
        twilio.auth_token = vault.secrets["twilio-auth-token"] = ROTATED
        return post_json("make_call", CALL)

    return [
        cold(),
        cold(Fault(status=403, body={"error": {"code": "Forbidden"}})),
        cold(*[Fault(status=503, body={})] * 20),
        cold(Fault(drop=True)),
        lambda: (vault.secrets.pop("twilio-auth-token"), cold()())[1],
        lambda: (vault.secrets.update({"twilio-auth-token": TOKEN}), cold()())[1],
        lambda: post_json("make_call", CALL),
        lambda: post_json("send_sms", SMS),
        twilio_fault(Fault(delay=1.0)),
        twilio_fault(Fault(status=500, body=twilio_error(20500, "Internal Server Error", 500))),
        twilio_fault(Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)), "send_sms"),
        twilio_fault(
            Fault(status=429, body=twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "0"}), times=3
        ),
        twilio_fault(Fault(drop=True), "send_sms"),
        twilio_fault(Fault(status=404, body=twilio_error(20404, f"The requested resource {CALLS} was not found", 404))),
        unreachable,
        rotate,
        lambda: signed_post("sms_url", fixture("incoming_sms"), token="forged"),
        lambda: signed_post("voice_url", fixture("voice_call"), token=ROTATED),
    ]


def test_no_secret_reaches_a_log_line_or_a_response(
    world: tuple[KeyVaultStandIn, TwilioStandIn], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = [scenario() for scenario in _scenarios(*world)]

    statuses = {r.status_code for r in responses}
    assert statuses >= {200, 201, 400, 403, 429, 502, 503, 504}
    answers = [r.get_body().decode() + repr(dict(r.headers)) for r in responses]
    debug = [r.getMessage() + (r.exc_text or "") + repr(r.__dict__) for r in caplog.records]
    shown = [r.getMessage() + (r.exc_text or "") for r in caplog.records if r.levelno >= logging.INFO]
    for secret in (TOKEN, ROTATED):
        assert not [text for text in answers + debug if secret in text]
    assert not [text for text in answers + shown if SID in text]
