"""The Twilio sandbox as `make run` wires it: the app's Twilio requests checked by Prism against
Twilio's own OpenAPI description, then answered and played out by the sandbox's REST API."""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from werkzeug.wrappers import Request, Response

from devtools.azurite import Azurite
from devtools.invoke import replay_call
from devtools.ports import accepting, free_port
from devtools.sandbox.prism import PassThrough, Prism
from devtools.sandbox.run import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from devtools.sandbox.webhooks import LocalRoute
from tests.devtools.sandbox_support import RunningSandbox, settled, view
from tests.host_process import NO_EMULATOR, start_host, stop_host, wait_until_up
from tests.servers import serving
from tests.support import error_of, eventually, post_json

CALL = {"to": "+15558675310", "from": "+15017122661", "message": "Hello from Azure"}
README = Path(__file__).resolve().parents[2] / "README.md"
DOCS = README.parent / "docs"
QUICKSTART_BASE = "http://127.0.0.1:7071"


def place_call(host: str, **fields: str) -> requests.Response:
    return requests.post(f"{host}/api/make_call", json=CALL | fields, timeout=30)


# --- Twilio's contract, checked by Prism -----------------------------------------------------------------------------


@pytest.mark.processes
def test_prism_accepts_the_call_the_app_places(host: str, sandbox: RunningSandbox) -> None:
    before = sandbox.sandbox.pass_through.forwarded
    response = place_call(host, voice="alice", language="en-US")

    assert response.status_code == 201
    assert re.fullmatch(r"CA[0-9a-f]{32}", response.json()["sid"])
    assert sandbox.sandbox.pass_through.forwarded == before + 1


@pytest.mark.processes
def test_prism_accepts_the_message_the_app_sends(host: str) -> None:
    response = requests.post(
        f"{host}/api/send_sms", json={"to": "+15558675310", "from": "+15017122661", "body": "Hi from Azure"}, timeout=30
    )

    assert response.status_code == 201
    assert re.fullmatch(r"SM[0-9a-f]{32}", response.json()["sid"])


@pytest.mark.processes
def test_prism_refuses_what_twilio_would_refuse(host: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", "not-an-account-sid")
    response = post_json("send_sms", {"to": "+15558675310", "from": "+15017122661", "body": "Hi"})

    assert 400 <= response.status_code < 500
    assert error_of(response)["code"] == "twilio_rejected"


@pytest.mark.processes
def test_what_prism_refuses_never_reaches_the_stand_in(sandbox: RunningSandbox) -> None:
    calls = len(sandbox.sandbox.resources.calls)
    response = sandbox.rest("POST", "Calls.json", data={"From": "+15017122661", "Url": "http://127.0.0.1:9/"})

    assert response.status_code == 422
    assert len(sandbox.sandbox.resources.calls) == calls


@pytest.mark.processes
def test_prism_refuses_a_request_without_credentials(sandbox: RunningSandbox) -> None:
    calls = len(sandbox.sandbox.resources.calls)
    response = requests.post(
        f"{sandbox.api}/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Calls.json",
        data={"To": "+15558675310", "From": "+15017122661", "Url": "http://127.0.0.1:9/"},
        timeout=30,
    )

    assert response.status_code == 401
    assert len(sandbox.sandbox.resources.calls) == calls


@Request.application
def _off_twilios_description(request: Request) -> Response:
    """An upstream answering a created call with a number for its SID, which Twilio's spec forbids."""
    return Response(json.dumps({"sid": 5}), 201, mimetype="application/json")


@pytest.mark.processes
def test_prism_refuses_an_answer_off_twilios_description() -> None:
    with serving(_off_twilios_description) as upstream:
        checking = Prism(port=free_port(), upstream=upstream).start()
        try:
            response = requests.post(
                f"{checking.url}/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Calls.json",
                data={"To": "+15558675310", "From": "+15017122661", "Url": "http://127.0.0.1:9/"},
                auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN),
                timeout=30,
            )
        finally:
            checking.stop()

    assert response.status_code == 500
    assert "sid" in response.headers["sl-violations"]


@pytest.mark.processes
def test_a_caller_mistake_stops_at_the_app(host: str, sandbox: RunningSandbox) -> None:
    before = sandbox.sandbox.pass_through.forwarded
    response = place_call(host, to="555-CALL-NOW")

    assert response.status_code == 400
    assert sandbox.sandbox.pass_through.forwarded == before


# --- the call plays out: Twilio's side, simulated --------------------------------------------------------------------


@pytest.mark.processes
def test_a_call_the_app_places_plays_out_to_completed(host: str) -> None:
    placed = place_call(host).json()

    call = settled(host, "calls", placed["sid"])

    assert call["status"] == "completed"
    assert call["said"] == [{"text": "Hello from Azure", "voice": None, "language": None}]


@pytest.mark.processes
def test_call_status_logs_every_event_of_a_call_the_app_places(host: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shared.call_events")
    sid = place_call(host).json()["sid"]

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"call_status CallSid={sid}")]

    assert eventually(lambda: len(logged()) == 4)
    assert [line.split()[2] for line in logged()] == [
        "CallStatus=initiated",
        "CallStatus=ringing",
        "CallStatus=in-progress",
        "CallStatus=completed",
    ]


@pytest.mark.processes
def test_the_invoker_replays_twilio_fetching_the_call_voice_url(host: str) -> None:
    sid = place_call(host).json()["sid"]

    heard = replay_call(LocalRoute(host), SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, sid)

    assert heard.status_code == 200
    assert heard.text.endswith("<Response><Say>Hello from Azure</Say></Response>")


# --- the sandbox keeps its own counsel: no web page uses its pass-through, and it requests only the app -------------


ELSEWHERE = "http://elsewhere.example"  # a web page's origin, which is not the app's
MESSAGES = f"2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages.json"
PREFLIGHT = {
    "Origin": ELSEWHERE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization",
}


@pytest.mark.processes
def test_a_preflight_from_another_origin_gets_no_cors_grant(sandbox: RunningSandbox) -> None:
    preflight = requests.options(f"{sandbox.api}/{MESSAGES}", headers=PREFLIGHT, timeout=30)

    assert [name for name in preflight.headers if name.lower().startswith("access-control-allow")] == []


@pytest.mark.processes
def test_the_pass_through_refuses_options_with_405_as_the_docs_say(sandbox: RunningSandbox) -> None:
    answer = requests.options(f"{sandbox.api}/{MESSAGES}", timeout=30)

    assert (answer.status_code, answer.json()["error"]["code"]) == (405, "method_not_allowed")
    assert answer.headers["Allow"] == "GET, POST, DELETE"
    assert "| 405 | `method_not_allowed` |" in documented("api.md")
    assert "`OPTIONS` with 405 `method_not_allowed`" in documented("local-development.md")


@pytest.mark.processes
def test_prisms_answers_reach_no_one_with_a_cors_header(sandbox: RunningSandbox) -> None:
    answer = sandbox.rest("GET", "Messages.json")

    assert answer.status_code == 200
    assert [name for name in answer.headers if name.lower().startswith("access-control-")] == []


@pytest.mark.processes
def test_prisms_own_port_reaches_nothing_in_the_sandbox(sandbox: RunningSandbox) -> None:
    text = {"To": CALL["to"], "From": CALL["from"], "Body": "sent past the pass-through"}
    credentials = (SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)

    answer = requests.post(f"{sandbox.sandbox.prism.url}/{MESSAGES}", data=text, auth=credentials, timeout=30)

    assert (answer.status_code, answer.json()["code"]) == (403, 20403)
    assert text["Body"] not in sandbox.rest("GET", "Messages.json").text


@pytest.mark.processes
def test_a_key_a_caller_sends_is_replaced_by_the_pass_throughs_own(sandbox: RunningSandbox) -> None:
    text = {"To": CALL["to"], "From": CALL["from"], "Body": "Hi"}

    answer = sandbox.rest("POST", "Messages.json", data=text, headers={"X-Sandbox-Key": "a guess"})

    assert answer.status_code == 201


@pytest.mark.processes
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Host": "elsewhere.example"}, "local_only"),
        ({"X-Forwarded-For": "203.0.113.7"}, "local_only"),
        ({"Origin": ELSEWHERE}, "cross_origin_request"),
        ({"Sec-Fetch-Site": "cross-site"}, "cross_origin_request"),
    ],
)
def test_the_pass_through_on_its_own_port_answers_this_machines_tools_only(
    sandbox: RunningSandbox, headers: dict[str, str], code: str
) -> None:
    text = {"To": CALL["to"], "From": CALL["from"], "Body": f"refused with {code}"}

    answer = sandbox.rest("POST", "Messages.json", data=text, headers=headers)

    assert (answer.status_code, answer.json()["error"]["code"]) == (403, code)
    assert text["Body"] not in sandbox.rest("GET", "Messages.json").text
    assert "pass-through, on its own port as under `/_sandbox`, answers a tunnel" in documented("local-development.md")


@pytest.mark.processes
def test_the_docs_name_the_error_a_call_to_a_url_not_the_apps_ends_with(host: str, sandbox: RunningSandbox) -> None:
    form = {"To": CALL["to"], "From": CALL["from"], "Url": f"http://127.0.0.1:{free_port()}/voice"}
    sid = sandbox.rest("POST", "Calls.json", data=form).json()["sid"]

    error = settled(host, "calls", sid)["error"]

    name = error["message"].partition(":")[0]
    assert f"`failed` with {error['code']} ({name})" in documented("local-development.md")


def documented(page: str) -> str:
    """A docs page with its lines run together, so that a phrase reads the same however it is wrapped."""
    return " ".join((DOCS / page).read_text(encoding="utf-8").split())


APP = LocalRoute("http://127.0.0.1:7071", "https://abc.tunnel.example")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:7071/api/voice_url?message=Hi",
        "http://127.0.0.1:7071",
        "http://localhost:7071/api/call_status",
        "http://LocalHost:7071/api/call_status",
        "http://[::1]:7071/api/sms_url",
        "https://abc.tunnel.example/api/voice_url?message=Hi",
    ],
)
def test_urls_under_the_apps_address_or_public_base_url_are_the_apps(url: str) -> None:
    assert APP.owns(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:7072/api/voice_url",
        "http://127.0.0.1:70710/api/voice_url",
        "http://127.0.0.1:7071@elsewhere.example/api/voice_url",
        "http://127.0.0.1:7071\\@elsewhere.example/api/voice_url",
        "http://127.0.0.1:7071#@elsewhere.example/api/voice_url",
        "https://127.0.0.1:7071/api/voice_url",
        "http://10.0.0.5:7071/api/voice_url",
        "http://169.254.169.254/metadata/instance",
        "https://abc.tunnel.example.elsewhere.example/api/voice_url",
        "http://abc.tunnel.example/api/voice_url",
    ],
)
def test_urls_elsewhere_are_not_the_apps(url: str) -> None:
    assert not APP.owns(url)


# --- what became of each call and text, read back from the app --------------------------------------------------------


@pytest.fixture
def kept(azurite: Azurite, env: pytest.MonkeyPatch) -> None:
    """The app keeps its outcomes in Azurite, as under `make run`."""
    env.setenv("AzureWebJobsStorage", azurite.connection_string)


def followed(created: requests.Response) -> dict[str, Any]:
    """The outcome a 201 links to, once final (the sandbox plays a call or text out within a second or two)."""
    assert created.status_code == 201
    answer: dict[str, Any] = requests.get(created.headers["Location"], params={"wait": "20"}, timeout=60).json()
    return answer


@pytest.mark.processes
@pytest.mark.usefixtures("kept")
@pytest.mark.parametrize(
    ("to", "status", "error"),
    [
        ("+15558675310", "delivered", None),
        ("+15005550013", "undelivered", {"code": 30003, "meaning": "Unreachable destination handset"}),
    ],
)
def test_a_text_sent_through_the_local_host_ends_with_its_delivery_status_at_its_outcome(
    host: str, to: str, status: str, error: dict[str, Any] | None
) -> None:
    answer = followed(
        requests.post(f"{host}/api/send_sms", json={"to": to, "from": "+15017122661", "body": "Hi"}, timeout=30)
    )

    assert (answer["status"], answer["final"], answer["error"]) == (status, True, error)
    assert [event["status"] for event in answer["events"]] == ["queued", "sent", status]


@pytest.mark.processes
@pytest.mark.usefixtures("kept")
@pytest.mark.parametrize(
    ("to", "events", "sip_response_code"),
    [
        ("+15558675310", ["queued", "initiated", "ringing", "in-progress", "completed"], None),
        ("+15005550011", ["queued", "initiated", "busy"], 486),
        ("+15005550012", ["queued", "initiated", "ringing", "no-answer"], 487),
        ("+15005550013", ["queued", "initiated", "failed"], 404),
    ],
)
def test_a_call_placed_through_the_local_host_ends_with_its_outcome(
    host: str, to: str, events: list[str], sip_response_code: int | None
) -> None:
    answer = followed(place_call(host, to=to))

    assert [event["status"] for event in answer["events"]] == events
    assert (answer["status"], answer["final"], answer["sip_response_code"]) == (events[-1], True, sip_response_code)


# --- a sandbox that has stopped: nothing was sent, and the app says so -----------------------------------------------


def test_the_pass_through_answers_502_when_prism_is_not_running() -> None:
    gateway = PassThrough(f"http://127.0.0.1:{free_port()}")
    with serving(gateway) as url:
        response = requests.post(
            f"{url}/twilio/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Calls.json",
            data={"To": "+15558675310"},
            timeout=10,
        )

    assert response.status_code == 502
    assert response.json()["message"].endswith("is not running; nothing was sent.")


@pytest.mark.processes
def test_make_call_says_nothing_was_sent_once_prism_has_exited(env: pytest.MonkeyPatch) -> None:
    dying = Prism(port=free_port()).start()
    try:
        endpoint = dying.front(PassThrough(dying.url))
        env.setenv("TWILIO_API_BASE_URL", f"{endpoint}/twilio")
        env.setenv("TWILIO_ACCOUNT_SID", SANDBOX_ACCOUNT_SID)
        env.setenv("TWILIO_AUTH_TOKEN", SANDBOX_AUTH_TOKEN)
        assert dying.process is not None
        dying.process.kill()
        assert eventually(lambda: not accepting("127.0.0.1", urlsplit(endpoint).port or 0))

        response = post_json("make_call", {"to": "+15558675310", "from": "+15017122661"})
    finally:
        dying.stop()

    assert response.status_code == 502
    assert error_of(response) == {
        "code": "twilio_unreachable",
        "message": "Twilio could not be reached; nothing was sent.",
        "target": None,
    }


# --- the README's Quickstart and docs/local-development.md, on `make run`'s own processes ----------------------------


@pytest.mark.processes
def test_make_run_plays_a_call_out_and_call_status_logs_it() -> None:
    port, prism_port = free_port(), free_port()
    process = start_host("--port", str(port), "--prism-port", str(prism_port))
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_up(port, process)
        sid = place_call(base).json()["sid"]
        assert eventually(lambda: view(base, "calls", sid)["events"][-1]["detail"].startswith("completed: "))
    finally:
        output = stop_host(process)

    line = f"INFO shared.call_events: call_status CallSid={sid} CallStatus=completed CallDuration=1"
    line += " ErrorCode= SipResponseCode="
    assert re.search(rf"^\[[^\]]+\] {re.escape(line)}$", output, re.MULTILINE)


@pytest.mark.processes
def test_the_quickstart_curl_sends_a_text_on_make_run() -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    args, promised, status = readme_curl("send_sms")
    port = free_port()
    process = start_host("--port", str(port), "--prism-port", str(free_port()))
    try:
        assert wait_until_up(port, process)
        here = [arg.replace(QUICKSTART_BASE, f"http://127.0.0.1:{port}") for arg in args[1:]]
        sent = subprocess.run(
            [curl, *here, "--write-out", "\n%{http_code}"], capture_output=True, text=True, timeout=60, check=True
        )
    finally:
        stop_host(process)

    body, _, code = sent.stdout.rpartition("\n")
    assert int(code) == status
    local = {name: value.replace(QUICKSTART_BASE, f"http://127.0.0.1:{port}") for name, value in promised.items()}
    assert as_promised(json.loads(body), local)


def readme_curl(function: str) -> tuple[list[str], dict[str, str], int]:
    """The Quickstart's curl for `function`: its words, and the answer and status its comment promises."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    (block,) = [block for block in blocks if f"curl -s -X POST {QUICKSTART_BASE}/api/{function} " in block]
    command, _, comment = block.partition("\n# ")
    promise = re.fullmatch(r"(\{.*\})\s+\((\d{3})\)\n", comment)
    assert promise is not None, comment
    return shlex.split(command.replace("\\\n", " ")), json.loads(promise[1]), int(promise[2])


def as_promised(answer: dict[str, str], promised: dict[str, str]) -> bool:
    """Each value as the README shows it, where "SM…" stands for any value that starts with SM."""
    return answer.keys() == promised.keys() and all(
        answer[name].startswith(value[:-1]) if value.endswith("…") else answer[name] == value
        for name, value in promised.items()
    )


@pytest.mark.processes
def test_make_run_serves_the_pass_through_under_sandbox_twilio() -> None:
    port = free_port()
    process = start_host("--port", str(port), "--prism-port", str(free_port()), environ=NO_EMULATOR)
    try:
        assert wait_until_up(port, process)
        response = requests.get(
            f"http://127.0.0.1:{port}/_sandbox/twilio/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Calls.json",
            auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN),
            timeout=30,
        )
    finally:
        stop_host(process)

    assert response.status_code == 200
    assert response.json()["calls"] == []
