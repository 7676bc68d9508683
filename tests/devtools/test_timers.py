"""Timer functions on the local host: run on their NCRONTAB schedule, and on demand through the admin endpoint
as Core Tools serves it (loopback callers only, no web page), which the invoker calls."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest
import requests
from azure.data.tables import TableServiceClient
from werkzeug.test import Client

from devtools.azurite import ACCOUNT_NAME, connection_string
from devtools.invoke import main as invoke_main
from devtools.ports import free_port
from devtools.timers import ADMIN_ROUTE, Timers, next_occurrence
from devtools.wsgi import LocalHost
from shared import idempotency
from tests.host_process import REAL_TWILIO, start_host, stop_host, wait_until_up
from tests.servers import serving
from tests.support import eventually, logged

ROOT = Path(__file__).resolve().parents[2]
timer_app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
# What the timer function was handed, each time it ran.
ran: queue.Queue[func.TimerRequest] = queue.Queue()
failures_left = [0]  # runs that fail before one succeeds
held = threading.Event()  # a run waits until it is set


@timer_app.function_name("tick")
@timer_app.timer_trigger(arg_name="timer", schedule="* * * * * *", run_on_startup=False, use_monitor=False)
def tick(timer: func.TimerRequest) -> None:
    held.wait()
    if failures_left[0]:
        failures_left[0] -= 1
        raise RuntimeError("tick failed")
    ran.put(timer)


@timer_app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.headers.get("x-twilio-signature", "unsigned"))


@pytest.fixture(autouse=True)
def nothing_ran_yet() -> None:
    while not ran.empty():
        ran.get()
    failures_left[0] = 0
    held.set()


@pytest.fixture
def timers() -> Timers:
    return Timers(timer_app)


@pytest.fixture
def host(timers: Timers) -> Iterator[str]:
    """The timer app on the local host, its admin endpoint mounted as `make run` mounts it."""
    with serving(LocalHost(timer_app, "api", mounts={ADMIN_ROUTE: timers.admin})) as url:
        yield url


def run_now(
    base: str, name: str = "tick", *, body: str = '{"input": ""}', headers: dict[str, str] | None = None
) -> requests.Response:
    """What the invoker sends (JSON unless `headers` say otherwise)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    return requests.post(f"{base}{ADMIN_ROUTE}/functions/{name}", data=body, headers=sent, timeout=10)


def ran_once() -> bool:
    """Whether the function ran (once, and was told it was not past due), within a generous wait."""
    try:
        timer = ran.get(timeout=30)
    except queue.Empty:
        return False
    return timer.past_due is False


def did_not_run() -> bool:
    """Whether the function has not run: a run the admin endpoint starts begins at once, in its own thread."""
    threading.Event().wait(0.5)
    return ran.empty()


# --- the schedule ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("0 30 3 * * *", datetime(2031, 5, 17, 3, 30, tzinfo=UTC), datetime(2031, 5, 18, 3, 30, tzinfo=UTC)),
        ("15 * * * * *", datetime(2031, 5, 17, 3, 30, 15, tzinfo=UTC), datetime(2031, 5, 17, 3, 31, 15, tzinfo=UTC)),
        ("0 0 9 * * Mon", datetime(2031, 5, 17, tzinfo=UTC), datetime(2031, 5, 19, 9, tzinfo=UTC)),
    ],
)
def test_the_next_occurrence_reads_six_fields_seconds_first(schedule: str, after: datetime, expected: datetime) -> None:
    assert next_occurrence(schedule, after) == expected


def test_a_timer_function_runs_on_its_schedule(timers: Timers) -> None:
    timers.start()
    try:
        assert ran_once()
        assert ran_once()
    finally:
        timers.stop()


def test_a_timer_function_that_fails_is_logged_and_runs_at_its_next_occurrence(
    timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    failures_left[0] = 1
    timers.start()
    try:
        assert ran_once()
    finally:
        timers.stop()

    assert ("ERROR", "Executed 'Functions.tick' (Failed)") in logged(caplog, "devtools.timers")


def test_a_stopped_schedule_runs_nothing_more(timers: Timers) -> None:
    timers.start()
    try:
        assert ran_once()
    finally:
        timers.stop()
    while not ran.empty():
        ran.get()

    threading.Event().wait(1.5)  # past the next occurrence of a schedule of every second
    assert ran.empty()


def test_stopping_waits_for_a_run_under_way(timers: Timers, host: str) -> None:
    held.clear()
    assert run_now(host).status_code == 202
    threading.Timer(0.2, held.set).start()

    timers.stop()

    assert not ran.empty()


def test_the_banner_gives_the_schedule_its_next_run_and_the_command_that_runs_it_now(timers: Timers) -> None:
    before = datetime.now(UTC)
    (line,) = timers.banner()

    shown = re.fullmatch(
        r"        tick: timerTrigger \* \* \* \* \* \* \(next at (\S+)Z; run it now: "
        r"\.venv/bin/python -m devtools\.invoke tick\)",
        line,
    )
    assert shown is not None, line
    assert before < datetime.fromisoformat(shown[1]).replace(tzinfo=UTC) <= before + timedelta(seconds=2)


# --- the admin endpoint ----------------------------------------------------------------------------------------------


def test_the_admin_endpoint_runs_a_timer_function_answering_202(host: str) -> None:
    response = run_now(host)

    assert (response.status_code, response.content, response.headers.get("Content-Type")) == (202, b"", None)
    assert ran_once()


def test_the_admin_endpoint_answers_404_for_a_name_that_is_no_timer_function(host: str) -> None:
    response = run_now(host, "echo")

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": f"No timer function answers {ADMIN_ROUTE}/functions/echo.",
        "target": "url",
    }


def test_the_admin_endpoint_answers_post_only(host: str) -> None:
    response = requests.get(f"{host}{ADMIN_ROUTE}/functions/tick", timeout=10)

    assert (response.status_code, response.json()["error"]["target"]) == (404, "method")
    assert did_not_run()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ('{"input": ""}', "text/plain", 415, "unsupported_media_type"),
        ("{", "application/json", 400, "invalid_json"),
        ('["input"]', "application/json", 400, "invalid_json"),
        ('{"input": 5}', "application/json", 400, "invalid_json"),
    ],
    ids=["text", "malformed", "a list", "input not a string"],
)
def test_the_admin_endpoint_takes_a_json_object(
    host: str, body: str, content_type: str, status: int, code: str
) -> None:
    response = run_now(host, body=body, headers={"Content-Type": content_type})

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert did_not_run()


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "null"},
    ],
    ids=["cross-site", "same-site", "another origin", "an opaque origin"],
)
def test_the_admin_endpoint_refuses_web_pages_with_403(host: str, headers: dict[str, str]) -> None:
    response = run_now(host, headers=headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin_request"
    assert did_not_run()


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}], ids=str)
def test_the_admin_endpoint_answers_its_own_origin(host: str, headers: dict[str, str]) -> None:
    assert run_now(host, headers={**headers, "Origin": host}).status_code == 202
    assert ran_once()


def test_the_admin_endpoint_refuses_a_name_other_than_loopback(
    timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind a tunnel, the host answers PUBLIC_BASE_URL's name: not on its admin endpoint."""
    with serving(LocalHost(timer_app, "api", mounts={ADMIN_ROUTE: timers.admin}, allowed_hosts=["abc.example"])) as url:
        response = run_now(url, headers={"Host": "abc.example"})

    assert (response.status_code, response.json()["error"]["code"]) == (403, "local_only")
    assert did_not_run()
    assert logged(caplog, "devtools.wsgi") == [
        (
            "WARNING",
            "Refused POST /admin/functions/tick: it was addressed to 'abc.example', not to a loopback name,"
            " and only Twilio's signed webhooks are served there",
        )
    ]


def test_the_admin_endpoint_refuses_a_peer_on_the_network(timers: Timers) -> None:
    """With --host 0.0.0.0, a machine on the LAN may name localhost in its Host header."""
    client = Client(LocalHost(timer_app, "api", mounts={ADMIN_ROUTE: timers.admin}))
    response = client.post(
        f"{ADMIN_ROUTE}/functions/tick",
        json={"input": ""},
        headers={"Host": "localhost:7071"},
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    )

    assert (response.status_code, response.get_json()["error"]["code"]) == (403, "local_only")
    assert did_not_run()


def test_the_admin_endpoint_answers_any_loopback_address_its_host_option_names(timers: Timers) -> None:
    client = Client(LocalHost(timer_app, "api", mounts={ADMIN_ROUTE: timers.admin}, allowed_hosts=["127.0.0.2"]))
    response = client.post(
        f"{ADMIN_ROUTE}/functions/tick",
        json={"input": ""},
        headers={"Host": "127.0.0.2:7071"},
        environ_base={"REMOTE_ADDR": "127.0.0.2"},
    )

    assert response.status_code == 202
    assert ran_once()


def test_the_admin_endpoint_answers_an_ipv4_mapped_loopback_peer(timers: Timers) -> None:
    client = Client(LocalHost(timer_app, "api", mounts={ADMIN_ROUTE: timers.admin}))
    response = client.post(
        f"{ADMIN_ROUTE}/functions/tick",
        json={"input": ""},
        headers={"Host": "[::1]:7071"},
        environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"},
    )

    assert response.status_code == 202
    assert ran_once()


# --- the invoker -----------------------------------------------------------------------------------------------------


def test_the_invoker_runs_a_timer_function_through_the_admin_endpoint(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke_main(["tick", "--base-url", host]) == 0

    assert ran_once()
    assert capsys.readouterr().out == "HTTP 202\ntick runs on the local host now: its log says how it went.\n"


def test_the_invoker_sends_a_name_that_is_no_timer_function_as_a_signed_webhook(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke_main(["echo", "--base-url", host]) == 0

    assert capsys.readouterr().out.splitlines()[1] not in {"", "unsigned"}
    assert did_not_run()


@pytest.mark.processes
def test_the_invoker_runs_sweep_state_through_make_runs_host() -> None:
    """`make run`'s host with its own Azurite: the invoker asks it to sweep, and an expired key goes."""
    port, azurite_port = free_port(), free_port()
    process = start_host("--port", str(port), "--azurite-port", str(azurite_port), environ=REAL_TWILIO)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_up(port, process)
        service = TableServiceClient.from_connection_string(
            connection_string(f"http://127.0.0.1:{azurite_port}/{ACCOUNT_NAME}")
        )
        keys = service.create_table_if_not_exists(idempotency.TABLE)
        now = datetime.now(UTC)
        for row, created in (("expired", now - 2 * idempotency.KEEP), ("live", now)):
            keys.create_entity({"PartitionKey": "make_call", "RowKey": row, "Created": created})

        assert invoke_main(["sweep_state", "--base-url", base]) == 0
        assert eventually(lambda: {e["RowKey"] for e in keys.list_entities()} == {"live"}, timeout=30)
    finally:
        output = stop_host(process)

    (shown,) = [line.strip() for line in output.splitlines() if "sweep_state: timerTrigger" in line]
    assert re.sub(r"next at \S+Z;", "next at …Z;", shown) in (ROOT / "docs/local-development.md").read_text()
    assert "Deleted 1 stale rows from table idempotency" in output
    assert "Executed 'Functions.sweep_state' (Succeeded)" in output


def test_the_docs_describe_the_admin_endpoint_and_its_refusals() -> None:
    page = " ".join((ROOT / "docs/local-development.md").read_text(encoding="utf-8").split())
    errors = (ROOT / "docs/api.md").read_text(encoding="utf-8")

    assert f'on `POST {ADMIN_ROUTE}/functions/<name>` with the body `{{"input": ""}}`, answered 202' in page
    assert "as `make_call` is: only from this machine (403 `local_only` through a tunnel or from another" in page
    assert ".venv/bin/python -m devtools.invoke sweep_state # run the daily timer function now" in page
    assert "`make_call`, `send_sms`, the sandbox or the admin endpoint reached through a tunnel" in errors
    assert "`make_call`, `send_sms`, the sandbox or the admin endpoint sent a request by a web page" in errors
