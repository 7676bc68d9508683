"""The local host over real HTTP, behaving as the Functions host does in Azure: routes, methods,
what a function receives and answers, the Host check, and `python -m devtools.host` itself."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
import pytest
import requests
from twilio.request_validator import RequestValidator

import function_app
from devtools.host import _storage_configured, load_local_settings, own_url
from devtools.invoke import main as invoke_main
from devtools.ports import accepting, free_port, port_taken
from devtools.sandbox.prism import PassThrough
from devtools.sandbox.run import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FROM_NUMBER
from devtools.sandbox.webhooks import send_signed, sms_params, status_params, voice_params
from devtools.wsgi import LocalHost
from testing.process_state import without_settings
from testing.standins import TwilioStandIn
from tests.host_process import (
    NO_EMULATOR,
    REAL_TWILIO,
    moved_to,
    run_host,
    start_host,
    stop_host,
    taken_port,
    wait_until_up,
)
from tests.servers import serving
from tests.support import ACCOUNT_SID, AUTH_TOKEN, eventually

ROOT = Path(__file__).resolve().parents[2]
SITE = "mysite.azurewebsites.net"

echo_app = func.FunctionApp()


@echo_app.route(route="echo", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """Sends back what a function receives, to show what the host hands over."""
    seen = {"url": req.url, "params": dict(req.params), "headers": dict(req.headers)}
    return func.HttpResponse(json.dumps(seen), mimetype="application/json")


@echo_app.route(route="things/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def thing(req: func.HttpRequest) -> func.HttpResponse:
    """An `async def` function with a route parameter: sends back its route parameters once it has awaited."""
    await asyncio.sleep(0)
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


@pytest.fixture
def standin_host(twilio: TwilioStandIn) -> Iterator[str]:
    """The app on the local host, its Twilio REST calls answered by the `twilio` fixture's stand-in."""
    with serving(LocalHost(function_app.app, "api")) as url:
        yield url


@pytest.fixture
def echo_host() -> Iterator[str]:
    with serving(LocalHost(echo_app, "api")) as url:
        yield url


# --- the app over HTTP, and webhooks signed as the invoker signs them ------------------------------------------------


def test_banner_lists_every_function_like_func_start() -> None:
    banner = LocalHost(function_app.app, "api").banner("http://127.0.0.1:7071")

    assert "make_call: [GET,POST] http://127.0.0.1:7071/api/make_call" in banner
    assert "send_sms: [POST] http://127.0.0.1:7071/api/send_sms" in banner
    assert "call_status: [POST] http://127.0.0.1:7071/api/call_status" in banner
    assert "call_outcome: [GET] http://127.0.0.1:7071/api/calls/{sid}" in banner


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_make_call_over_http(standin_host: str, twilio: TwilioStandIn, method: str) -> None:
    response = requests.request(method, f"{standin_host}/api/make_call", params={"to": "+15558675310"}, timeout=10)

    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["sid"].startswith("CA")
    assert twilio.creations()[0].field("Url").startswith(f"{standin_host}/api/voice_url?")


def test_send_sms_over_http(standin_host: str) -> None:
    response = requests.post(f"{standin_host}/api/send_sms", json={"to": "+15558675310", "body": "Hi"}, timeout=10)

    assert response.status_code == 201
    assert response.json()["sid"].startswith("SM")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_voice_url_signed_by_the_invoker(standin_host: str, method: str) -> None:
    response = send_signed(
        f"{standin_host}/api/voice_url?message=Hi%20there", voice_params(ACCOUNT_SID), AUTH_TOKEN, method
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response.text.endswith("<Response><Say>Hi there</Say></Response>")


def test_sms_url_signed_by_the_invoker(standin_host: str) -> None:
    response = send_signed(f"{standin_host}/api/sms_url", sms_params(ACCOUNT_SID, "Hello"), AUTH_TOKEN)

    assert response.status_code == 200
    assert "<Message>Hey, thanks for the ping! Twilio and Azure rock!</Message>" in response.text


def test_call_status_signed_by_the_invoker(standin_host: str) -> None:
    response = send_signed(f"{standin_host}/api/call_status", status_params(ACCOUNT_SID, "failed"), AUTH_TOKEN)

    assert response.status_code == 204


def test_an_unsigned_webhook_is_refused(standin_host: str) -> None:
    response = requests.post(f"{standin_host}/api/sms_url", data={"Body": "hi"}, timeout=10)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert "<Response>" not in response.text


# --- routes and methods, as in Azure: only what a function declares --------------------------------------------------


def test_host_answers_404_to_head(standin_host: str, twilio: TwilioStandIn) -> None:
    response = requests.head(f"{standin_host}/api/make_call", params={"to": "+15558675310"}, timeout=10)

    assert response.status_code == 404
    assert "Allow" not in response.headers
    assert twilio.creations() == []


def test_an_undeclared_method_is_404_naming_the_declared_ones(standin_host: str) -> None:
    response = requests.get(f"{standin_host}/api/send_sms", timeout=10)

    assert response.status_code == 404
    assert "Allow" not in response.headers
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "/api/send_sms answers POST only, not GET.",
        "target": "method",
    }


def test_an_unknown_route_is_404(standin_host: str) -> None:
    response = requests.post(f"{standin_host}/api/place_call", timeout=10)

    assert response.status_code == 404
    assert response.json()["error"]["target"] == "url"


def test_routes_match_whatever_their_case(standin_host: str, twilio: TwilioStandIn) -> None:
    response = requests.post(f"{standin_host}/API/MAKE_CALL", json={"to": "+15558675310"}, timeout=10)

    assert response.status_code == 201
    assert len(twilio.creations()) == 1


def test_function_keys_are_not_required_locally(standin_host: str) -> None:
    response = requests.post(f"{standin_host}/api/make_call", json={"to": "+15558675310"}, timeout=10)

    assert response.status_code == 201


# --- what a function receives and answers, as between the Functions host and the Python worker -----------------------


def test_repeated_query_parameters_reach_the_function_joined_with_commas(echo_host: str) -> None:
    seen = requests.get(f"{echo_host}/api/echo?to=%2B1555&to=%2B1666", timeout=10).json()

    assert seen["params"] == {"to": "+1555,+1666"}


def test_empty_query_values_never_reach_the_function(echo_host: str) -> None:
    seen = requests.get(f"{echo_host}/api/echo?to=&message=hi&voice&to=", timeout=10).json()

    assert seen["params"] == {"message": "hi"}


def test_query_names_differing_in_case_are_one_parameter(echo_host: str) -> None:
    seen = requests.get(f"{echo_host}/api/echo?To=a&to=b", timeout=10).json()

    assert seen["params"] == {"To": "a,b"}


def test_repeated_headers_reach_the_function_joined_with_commas(echo_host: str) -> None:
    seen = _get_json(f"{echo_host}/api/echo", [("X-Tag", "a"), ("X-Tag", "b")])

    assert seen["headers"]["x-tag"] == "a,b"


def test_the_function_sees_the_url_as_sent(echo_host: str) -> None:
    seen = _get_json(f"{echo_host}/api/echo?b=2&a=%7e+x&c=%2F")

    assert seen["url"] == f"{echo_host}/api/echo?b=2&a=%7e+x&c=%2F"


def test_an_async_function_gets_its_route_parameters_whatever_the_case_of_the_route(echo_host: str) -> None:
    response = requests.get(f"{echo_host}/api/THINGS/Ab-1", timeout=10)

    assert (response.status_code, response.json()) == (200, {"name": "Ab-1"})


@pytest.mark.parametrize("path", ["/api/things", "/api/things/a/b"])
def test_a_route_parameter_takes_exactly_one_segment(echo_host: str, path: str) -> None:
    response = requests.get(f"{echo_host}{path}", timeout=10)

    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_json_answers_carry_no_charset(standin_host: str) -> None:
    response = requests.post(f"{standin_host}/api/send_sms", json={"to": "+15558675310", "body": "Hi"}, timeout=10)

    assert response.headers["Content-Type"] == "application/json"


# --- the Host check: a page cannot reach the host through DNS rebinding -----------------------------------------------


def test_host_answers_421_to_a_foreign_host_name(standin_host: str, twilio: TwilioStandIn) -> None:
    response = requests.post(
        f"{standin_host}/api/make_call", json={"to": "+15558675310"}, headers={"Host": "rebound.example"}, timeout=10
    )

    assert response.status_code == 421
    assert response.json()["error"]["code"] == "misdirected_request"
    assert response.json()["error"]["target"] == "Host"
    assert twilio.creations() == []


def test_host_guards_the_sandbox_too() -> None:
    app = LocalHost(echo_app, "api", mounts={"/_sandbox": PassThrough(f"http://127.0.0.1:{free_port()}")})
    with serving(app) as url:
        response = requests.get(f"{url}/_sandbox/calls", headers={"Host": "rebound.example"}, timeout=10)

    assert response.status_code == 421


@pytest.mark.parametrize("name", ["localhost:7071", "LOCALHOST", "127.0.0.1:1", "[::1]:7071", "[::1]"])
def test_host_answers_loopback_names_with_any_port(echo_host: str, name: str) -> None:
    response = requests.get(f"{echo_host}/api/echo", headers={"Host": name}, timeout=10)

    assert response.status_code == 200


def test_host_answers_the_name_it_is_given() -> None:
    with serving(LocalHost(echo_app, "api", allowed_hosts=["devbox.lan"])) as url:
        response = requests.get(f"{url}/api/none", headers={"Host": "devbox.lan:7071"}, timeout=10)

    assert response.status_code == 404


# --- App Service's front-end, emulated: the URL the app sees in Azure ------------------------------------------------


def test_a_webhook_signed_for_the_site_passes_the_emulated_front_end(twilio: TwilioStandIn) -> None:
    with serving(LocalHost(function_app.app, "api", app_service_frontend=True)) as url:
        response = _post_signed_for_the_site(url)

    assert response.status_code == 200
    assert response.text.endswith("<Response><Say>Hi there</Say></Response>")


def test_forwarded_headers_change_nothing_without_the_front_end(standin_host: str) -> None:
    response = _post_signed_for_the_site(standin_host)

    assert response.status_code == 403


def test_the_emulated_front_end_gives_the_site_as_host() -> None:
    with serving(LocalHost(echo_app, "api", app_service_frontend=True)) as url:
        seen = requests.get(
            f"{url}/api/echo?x=1", headers={"X-Forwarded-Proto": "https", "DISGUISED-HOST": SITE}, timeout=10
        ).json()

    assert seen["url"] == f"https://{SITE}/api/echo?x=1"
    assert seen["headers"]["host"] == SITE


# --- local.settings.json, and the invoker on the command line --------------------------------------------------------


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


def test_the_invoker_cli_adds_parameters_and_prints_the_twiml(
    standin_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = invoke_main(["voice_url", "--base-url", standin_host, "--method", "GET", "--param", "message=Ahoy"])

    assert exit_code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "HTTP 200 text/xml; charset=utf-8"
    assert printed[1].endswith("<Response><Say>Ahoy</Say></Response>")


def test_the_invoker_cli_sends_the_status_it_is_given(standin_host: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shared.call_events")

    assert invoke_main(["call_status", "--base-url", standin_host, "--status", "failed"]) == 0
    assert [r.getMessage().split()[2] for r in caplog.records if r.name == "shared.call_events"] == [
        "CallStatus=failed"
    ]


def test_the_invoker_cli_posts_a_text_itself_where_no_sandbox_runs(
    standin_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke_main(["sms_url", "--base-url", standin_host, "--body", "Hi there"]) == 0
    assert "<Message>Hey, thanks for the ping! Twilio and Azure rock!</Message>" in capsys.readouterr().out


# --- `python -m devtools.host`, as `make run` starts it --------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.parametrize(
    "given", [{}, {"TWILIO_ACCOUNT_SID": ACCOUNT_SID}, {"TWILIO_AUTH_TOKEN": AUTH_TOKEN}], ids=["none", "sid", "token"]
)
def test_real_twilio_mode_needs_real_credentials(given: dict[str, str]) -> None:
    # Set empty, so that a local.settings.json cannot fill them.
    unset = {"TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": "", "KEY_VAULT_URL": ""}
    code, output = run_host("--port", "0", environ={**unset, **given, "TWILIO_SANDBOX": "false"})

    assert code == 2
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or KEY_VAULT_URL" in output


@pytest.mark.processes
def test_real_twilio_mode_starts_with_a_key_vault_url_alone() -> None:
    port = free_port()
    settings = {
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "",
        "KEY_VAULT_URL": "https://myvault.vault.azure.net/",
        "PREFETCH_SECRETS": "false",  # the vault is never read: no request reaches Azure
    }
    process = start_host("--port", str(port), environ={**settings, **NO_EMULATOR, "TWILIO_SANDBOX": "false"})
    try:
        assert wait_until_up(port, process)
    finally:
        stop_host(process)


@pytest.mark.processes
def test_a_taken_app_port_starts_nothing() -> None:
    prism_port = free_port()
    with taken_port() as port:
        code, output = run_host("--port", str(port), "--prism-port", str(prism_port))

    assert code == 1
    assert moved_to(output, f"Port {port} (the app) is", "PORT", "--port") > [port]
    assert not accepting("127.0.0.1", prism_port)


@pytest.mark.processes
def test_a_taken_sandbox_port_starts_nothing() -> None:
    with taken_port() as prism_port:
        code, output = run_host("--port", str(free_port()), "--prism-port", str(prism_port))

    assert code == 1
    assert moved_to(output, f"Port {prism_port} (the Twilio sandbox) is", "PRISM_PORT", "--prism-port") > [prism_port]


@pytest.mark.processes
def test_every_taken_port_is_named_in_one_line_with_free_ones_to_pick() -> None:
    with taken_port() as port, taken_port() as prism_port, taken_port() as azurite_port:
        ports = ("--port", str(port), "--prism-port", str(prism_port), "--azurite-port", str(azurite_port))
        code, output = run_host(*ports)
        named = f"Ports {port} (the app), {prism_port} (the Twilio sandbox), {azurite_port} (the storage emulator) are"
        picked = moved_to(
            output, named, "PORT", "--port", "PRISM_PORT", "--prism-port", "AZURITE_PORT", "--azurite-port"
        )

    assert code == 1
    assert not any(port_taken("127.0.0.1", free) for free in picked)
    assert len({port, prism_port, azurite_port, *picked}) == 6


@pytest.mark.processes
def test_the_host_answers_the_public_base_url_name_behind_a_tunnel() -> None:
    port = free_port()
    process = start_host("--port", str(port), environ={**REAL_TWILIO, "PUBLIC_BASE_URL": "https://abc.tunnel.example"})
    try:
        assert wait_until_up(port, process)
        response = requests.get(f"http://127.0.0.1:{port}/api/none", headers={"Host": "abc.tunnel.example"}, timeout=10)
    finally:
        stop_host(process)

    assert response.status_code == 404


@pytest.mark.processes
def test_an_unsigned_webhook_on_make_run_is_told_of_the_invoker() -> None:
    port = free_port()
    real_twilio = {"TWILIO_SANDBOX": "false", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    process = start_host("--port", str(port), environ={**real_twilio, **NO_EMULATOR})
    try:
        assert wait_until_up(port, process)
        response = requests.post(f"http://127.0.0.1:{port}/api/sms_url", data={"Body": "hi"}, timeout=10)
    finally:
        stop_host(process)

    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        "The request has no X-Twilio-Signature header."
        " To send one signed as Twilio does: .venv/bin/python -m devtools.invoke sms_url"
    )


@pytest.mark.processes
def test_the_host_answers_requests_addressed_to_its_host_option() -> None:
    address, port = "127.0.0.2", free_port()
    process = start_host("--host", address, "--port", str(port), environ={**REAL_TWILIO, **NO_EMULATOR})
    try:
        assert wait_until_up(port, process, host=address)
        response = requests.get(f"http://{address}:{port}/api/none", timeout=10)
    finally:
        stop_host(process)

    assert response.status_code == 404


@pytest.mark.processes
def test_the_local_host_serves_the_app_on_the_sandbox_end_to_end() -> None:
    port, prism_port = free_port(), free_port()
    process = start_host("--port", str(port), "--prism-port", str(prism_port))
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_up(port, process)
        placed = requests.post(f"{base}/api/make_call", json={"to": "+15558675310", "from": "+15017122661"}, timeout=30)
        assert placed.status_code == 201
        invoked = subprocess.run(
            [sys.executable, "-m", "devtools.invoke", "call", "--base-url", base],
            cwd=ROOT,
            env=without_settings(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert invoked.returncode == 0, invoked.stderr
        assert invoked.stdout.splitlines()[0] == "HTTP 200 text/xml; charset=utf-8"
        assert "<Say>Hello Monkey!</Say>" in invoked.stdout
    finally:
        output = stop_host(process)
    printed = [
        "Storage emulator: http://127.0.0.1:",
        f"Twilio sandbox: http://127.0.0.1:{prism_port} (the app's Twilio REST calls go there",
        f"Sandbox credentials: TWILIO_ACCOUNT_SID={SANDBOX_ACCOUNT_SID} TWILIO_AUTH_TOKEN={SANDBOX_AUTH_TOKEN}"
        f" TWILIO_FROM_NUMBER={SANDBOX_FROM_NUMBER}",
        f"make_call: [GET,POST] {base}/api/make_call",
    ]
    assert all(line in output for line in printed)
    assert sorted(printed, key=output.index) == printed


@pytest.mark.processes
def test_make_run_prints_no_sandbox_credentials_when_some_are_configured() -> None:
    port = free_port()
    configured = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    process = start_host("--port", str(port), "--prism-port", str(free_port()), environ={**configured, **NO_EMULATOR})
    try:
        assert wait_until_up(port, process)
    finally:
        output = stop_host(process)

    assert "Twilio sandbox: " in output
    assert "Sandbox credentials" not in output
    assert AUTH_TOKEN not in output


@pytest.mark.processes
@pytest.mark.parametrize(
    ("overrides", "ports"),
    [
        ([], ("7071", "4010", "10002")),
        (["PORT=7072", "PRISM_PORT=4011", "AZURITE_PORT=10003"], ("7072", "4011", "10003")),
    ],
    ids=["defaults", "moved"],
)
def test_make_run_serves_on_the_documented_ports(overrides: list[str], ports: tuple[str, str, str]) -> None:
    planned = make_plan("run", *overrides)

    app, prism, azurite = ports
    assert (
        f".venv/bin/python -m devtools.host --port {app} --prism-port {prism} --azurite-port {azurite} --note-address"
        in planned
    )


@pytest.mark.processes
def test_the_invoker_sends_to_the_address_make_run_noted(
    tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    noted, port = tmp_path / "address", free_port()
    settings = {**REAL_TWILIO, **NO_EMULATOR, "VOICE_MESSAGE": "Found where make run said"}
    process = start_host("--port", str(port), "--note-address", str(noted), environ=settings)
    try:
        assert wait_until_up(port, process)
        assert eventually(noted.exists)
        env.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        code = invoke_main(["voice_url", "--address-file", str(noted)])
    finally:
        stop_host(process)

    assert code == 0
    assert "<Say>Found where make run said</Say>" in capsys.readouterr().out


@pytest.mark.processes
def test_a_host_listening_on_every_address_notes_a_loopback_one(tmp_path: Path) -> None:
    noted, port = tmp_path / "address", free_port()
    every_interface = "0.0.0.0"  # noqa: S104 (what the test is about)
    settings = {**REAL_TWILIO, **NO_EMULATOR}
    process = start_host("--host", every_interface, "--port", str(port), "--note-address", str(noted), environ=settings)
    try:
        assert wait_until_up(port, process)
        assert eventually(noted.exists)
        address = noted.read_text(encoding="utf-8").strip()
        answer = requests.get(f"{address}/api/calls/CA00000000000000000000000000000000", timeout=10)
    finally:
        stop_host(process)

    assert address == f"http://127.0.0.1:{port}"
    assert answer.json()["error"]["code"] == "state_unavailable"  # past the loopback check: no storage here


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:7071"),  # noqa: S104 (a name the test turns into a URL)
        ("::", "http://[::1]:7071"),
        ("::1", "http://[::1]:7071"),
        ("127.0.0.2", "http://127.0.0.2:7071"),
        ("localhost", "http://localhost:7071"),
    ],
)
def test_the_hosts_own_url_names_an_address_this_machine_reaches_every_function_at(host: str, url: str) -> None:
    assert own_url(host, 7071) == url


@pytest.mark.processes
def test_the_noted_address_goes_when_the_host_stops(tmp_path: Path) -> None:
    noted, port = tmp_path / "address", free_port()
    process = start_host("--port", str(port), "--note-address", str(noted), environ={**REAL_TWILIO, **NO_EMULATOR})
    try:
        assert wait_until_up(port, process)
        assert eventually(noted.exists)
        assert noted.read_text(encoding="utf-8") == f"http://127.0.0.1:{port}\n"
    finally:
        stop_host(process)

    assert not noted.exists()


def test_the_invokers_help_says_where_it_sends_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        invoke_main(["--help"])

    described = " ".join(capsys.readouterr().out.split())
    assert "--base-url URL where the app listens (default: where `make run` serves it, else http://127.0.0.1:7071)" in (
        described
    )


@pytest.mark.processes
def test_the_log_holds_no_colour_codes_when_it_is_not_a_terminal() -> None:
    port = free_port()
    process = start_host("--port", str(port), environ={**REAL_TWILIO, **NO_EMULATOR})
    try:
        assert wait_until_up(port, process)
        requests.get(f"http://127.0.0.1:{port}/api/none", timeout=10)  # a 404, which werkzeug colours
    finally:
        output = stop_host(process)

    assert '"GET /api/none HTTP/1.1" 404' in output
    assert "\x1b[" not in output


@pytest.mark.processes
def test_the_log_is_in_colour_on_a_terminal() -> None:
    port = free_port()
    terminal, host_side = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.host", "--port", str(port)],
        cwd=ROOT,
        env={**without_settings(os.environ), **REAL_TWILIO, **NO_EMULATOR},
        stdout=host_side,
        stderr=host_side,
    )
    os.close(host_side)
    shown: list[bytes] = []
    reader = threading.Thread(target=_read_terminal, args=(terminal, shown), daemon=True)
    reader.start()
    try:
        assert wait_until_up(port, process)
        requests.get(f"http://127.0.0.1:{port}/api/none", timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        os.close(terminal)

    assert b"\x1b[33mGET /api/none HTTP/1.1\x1b[0m" in b"".join(shown)


# --- what `make` says before it sets up ------------------------------------------------------------------------------


# Each set-up: its stamp, the file whose change makes it due, and the command that takes the time.
SET_UPS = {
    ".venv": (".venv/.installed", "requirements.txt", "-m pip install"),
    ".venv-infra": (".venv-infra/.installed", "requirements-infra.txt", "-m pip install"),
    "the Twilio sandbox": (
        "devtools/twilio-sandbox/node_modules/.installed",
        "devtools/twilio-sandbox/package-lock.json",
        "-m devtools.npm",
    ),
    "the storage emulator": (
        "devtools/storage-emulator/node_modules/.installed",
        "devtools/storage-emulator/package-lock.json",
        "-m devtools.npm",
    ),
    "the KQL analyzer": (
        "tests/deploy/kql/node_modules/.installed",
        "tests/deploy/kql/package-lock.json",
        "-m devtools.npm",
    ),
}


@pytest.mark.processes
@pytest.mark.parametrize(
    ("goal", "what"),
    [
        ("run", ".venv"),
        ("run", "the Twilio sandbox"),
        ("run", "the storage emulator"),
        ("test", ".venv-infra"),
        ("test", "the KQL analyzer"),
    ],
)
def test_make_says_what_it_sets_up_and_about_how_long_before_it_starts(goal: str, what: str) -> None:
    stamp, changed, install = SET_UPS[what]
    planned = make_plan(goal, f"--what-if={changed}")

    said = next(i for i, line in enumerate(planned) if line.startswith(f'echo "Setting up {what}: '))
    assert re.search(r"\(about \d+ MB, [^)]*minutes?\)", planned[said])
    assert any(install in line for line in planned[said + 1 : planned.index(f"touch {stamp}")])


@pytest.mark.processes
@pytest.mark.parametrize("goal", ["run", "test"])
def test_make_says_nothing_of_set_up_once_it_is_done(goal: str) -> None:
    planned = make_plan(goal, *(f"--old-file={stamp}" for stamp, _, _ in SET_UPS.values()))

    assert not [line for line in planned if "Setting up" in line]


# --- Prism stops with the host ---------------------------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_prism_stops_with_the_host(stop_signal: signal.Signals) -> None:
    port, prism_port = free_port(), free_port()
    process = start_host("--port", str(port), "--prism-port", str(prism_port))
    try:
        assert wait_until_up(port, process)
        assert accepting("127.0.0.1", prism_port)
    finally:
        stop_host(process, stop_signal)

    assert process.returncode == 0
    assert not accepting("127.0.0.1", prism_port)


# --- helpers ---------------------------------------------------------------------------------------------------------


def make_plan(*args: str) -> list[str]:
    """The commands `make` would run, without running them."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # As typed in a fresh shell: not the variables of an outer `make test PYTHON=python3.13`, which picks another venv.
    environ = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHON"}}
    return subprocess.run(
        [make, "--dry-run", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()


def _read_terminal(terminal: int, shown: list[bytes]) -> None:
    """What a terminal shows of the host's output, until the host has closed it."""
    with contextlib.suppress(OSError):  # EIO once the host has exited
        while chunk := os.read(terminal, 4096):
            shown.append(chunk)


def _post_signed_for_the_site(base: str) -> requests.Response:
    """voice_url as Twilio calls it in Azure: signed for the site's https URL, arriving through
    the front-end, which ends TLS and names the site in headers."""
    path = "/api/voice_url?message=Hi%20there"
    form = voice_params(ACCOUNT_SID)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"https://{SITE}{path}", form)
    headers = {"X-Twilio-Signature": signature, "X-Forwarded-Proto": "https", "DISGUISED-HOST": SITE}
    return requests.post(f"{base}{path}", data=form, headers=headers, timeout=10)


def _get_json(url: str, headers: Iterable[tuple[str, str]] = ()) -> Any:
    """A GET sent byte for byte as given, repeated headers included (requests would merge
    them, and re-encode the URL)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.putrequest("GET", parts._replace(scheme="", netloc="").geturl())
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


# --- which storage keeps `make run` from starting Azurite ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("UseDevelopmentStorage=true", False),
        ("UseDevelopmentStorage=true;", False),
        ("usedevelopmentstorage=TRUE;DevelopmentStorageProxyUri=http://127.0.0.1", False),
        ("DefaultEndpointsProtocol=https;AccountName=myappstore;AccountKey=a2V5", True),
    ],
)
def test_only_a_storage_other_than_the_emulator_keeps_make_run_from_starting_azurite(value: str, named: bool) -> None:
    assert _storage_configured({"AzureWebJobsStorage": value}) is named
