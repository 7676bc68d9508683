"""The local host over real HTTP: every route and method of the indexed app, signed webhooks, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import function_app
from devtools.host import LocalHost, load_local_settings
from devtools.invoke import main as invoke_main
from devtools.invoke import send_signed, sms_params, status_params, voice_params
from devtools.standins import TwilioStandIn
from tests.servers import serving
from tests.support import ACCOUNT_SID, AUTH_TOKEN

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def host(twilio: TwilioStandIn) -> Iterator[str]:
    with serving(LocalHost(function_app.app, "api")) as url:
        yield url


def test_banner_lists_every_function_like_func_start() -> None:
    banner = LocalHost(function_app.app, "api").banner("http://127.0.0.1:7071")

    assert "make_call: [GET,POST] http://127.0.0.1:7071/api/make_call" in banner
    assert "send_sms: [POST] http://127.0.0.1:7071/api/send_sms" in banner
    assert "call_status: [POST] http://127.0.0.1:7071/api/call_status" in banner


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_make_call_over_http(host: str, twilio: TwilioStandIn, method: str) -> None:
    response = requests.request(method, f"{host}/api/make_call", params={"to": "+15558675310"}, timeout=10)

    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["sid"].startswith("CA")
    assert twilio.creations()[0].field("Url").startswith(f"{host}/api/voice_url?")


def test_send_sms_over_http(host: str) -> None:
    response = requests.post(f"{host}/api/send_sms", json={"to": "+15558675310", "body": "Hi"}, timeout=10)

    assert response.status_code == 201
    assert response.json()["sid"].startswith("SM")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_voice_url_signed_by_the_invoker(host: str, method: str) -> None:
    response = send_signed(f"{host}/api/voice_url?message=Hi%20there", voice_params(ACCOUNT_SID), AUTH_TOKEN, method)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response.text.endswith("<Response><Say>Hi there</Say></Response>")


def test_sms_url_signed_by_the_invoker(host: str) -> None:
    response = send_signed(f"{host}/api/sms_url", sms_params(ACCOUNT_SID, "Hello"), AUTH_TOKEN)

    assert response.status_code == 200
    assert "<Message>Hey, thanks for the ping! Twilio and Azure rock!</Message>" in response.text


def test_call_status_signed_by_the_invoker(host: str) -> None:
    response = send_signed(f"{host}/api/call_status", status_params(ACCOUNT_SID, "failed"), AUTH_TOKEN)

    assert response.status_code == 204


def test_an_unsigned_webhook_is_refused(host: str) -> None:
    response = requests.post(f"{host}/api/sms_url", data={"Body": "hi"}, timeout=10)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert "<Response>" not in response.text


def test_a_wrong_method_is_refused_with_the_allowed_ones(host: str) -> None:
    response = requests.get(f"{host}/api/send_sms", timeout=10)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_unknown_route_is_404(host: str) -> None:
    response = requests.post(f"{host}/api/place_call", timeout=10)

    assert response.status_code == 404
    assert response.json()["error"]["target"] == "url"


def test_function_keys_are_not_required_locally(host: str) -> None:
    response = requests.post(f"{host}/api/make_call", json={"to": "+15558675310"}, timeout=10)

    assert response.status_code == 201


def test_local_settings_values_fill_the_environment_without_overriding_it(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(
        json.dumps({"IsEncrypted": False, "Values": {"SMS_REPLY": "From file", "VOICE_MESSAGE": "File"}})
    )
    env.setenv("VOICE_MESSAGE", "From environment")
    env.delenv("SMS_REPLY", raising=False)  # restored after the test, whatever the file sets

    load_local_settings(settings)

    assert os.environ["SMS_REPLY"] == "From file"
    assert os.environ["VOICE_MESSAGE"] == "From environment"


def test_real_twilio_mode_needs_real_credentials() -> None:
    unset = {
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "",
        "KEY_VAULT_URL": "",
    }  # a local.settings.json can't fill them
    environ = {**os.environ, **unset}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.host", "--port", "0"],
        cwd=ROOT,
        env={**environ, "TWILIO_SANDBOX": "false"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or KEY_VAULT_URL" in result.stderr


def test_the_invoker_cli_adds_parameters_and_prints_the_twiml(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = invoke_main(["voice_url", "--base-url", host, "--method", "GET", "--param", "message=Ahoy"])

    assert exit_code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "HTTP 200 text/xml; charset=utf-8"
    assert printed[1].endswith("<Response><Say>Ahoy</Say></Response>")
