"""The sandbox's REST API behind Prism, driven over HTTP as Twilio's REST API is: its answers, checked
against Twilio's spec, and what it does next, seen from a webhook receiver and the sandbox."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from jsonschema import Draft4Validator, FormatChecker
from twilio.request_validator import RequestValidator

from devtools.invoke import deliver_text
from devtools.invoke import main as invoke_main
from devtools.ports import free_port
from devtools.sandbox.prism import SPEC
from devtools.sandbox.run import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from devtools.sandbox.webhooks import LocalRoute, sms_params
from tests.devtools.sandbox_support import (
    NO_APP,
    Hit,
    Receiver,
    RunningSandbox,
    app_at,
    app_with_sandbox,
    settled,
    view,
)
from tests.servers import serving
from tests.support import eventually

pytestmark = pytest.mark.processes

TO, FROM = "+15558675310", "+15017122661"
SAY = '<?xml version="1.0" encoding="UTF-8"?><Response><Say voice="alice" language="en-GB">Ahoy</Say></Response>'
UNANSWERED = NO_APP  # the app's address while no test serves it: nothing answers there
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


@pytest.fixture
def receiver(sandbox: RunningSandbox, host: str) -> Iterator[tuple[Receiver, str]]:
    """A webhook receiver on a free port, answering /voice with TwiML, as the app: it takes the
    place of the app's host, whose sandbox views the test may still read."""
    app = Receiver({"/voice": (200, SAY)})
    with serving(app) as url, app_at(sandbox, url):
        yield app, url


def create_call(sandbox: RunningSandbox, url: str, **fields: Any) -> dict[str, Any]:
    form = {"To": TO, "From": FROM, "Url": f"{url}/voice"} | fields
    response = sandbox.rest("POST", "Calls.json", data=form)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_message(sandbox: RunningSandbox, **fields: str) -> dict[str, Any]:
    response = sandbox.rest("POST", "Messages.json", data={"To": TO, "From": FROM, "Body": "Hi"} | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def signed_by_twilio(hit: Hit) -> bool:
    return bool(RequestValidator(SANDBOX_AUTH_TOKEN).validate(hit.url, hit.form, hit.signature))


# --- Twilio's REST API: created with the caller's fields, fetched, listed --------------------------------------------


def test_a_call_is_created_with_the_callers_to_and_from(sandbox: RunningSandbox) -> None:
    call = create_call(sandbox, UNANSWERED)

    assert (call["to"], call["from"], call["status"], call["direction"]) == (TO, FROM, "queued", "outbound-api")


def test_each_call_gets_a_fresh_sid(sandbox: RunningSandbox) -> None:
    sids = {create_call(sandbox, UNANSWERED)["sid"] for _ in range(2)}

    assert len(sids) == 2


def test_a_call_is_fetched_by_sid(sandbox: RunningSandbox) -> None:
    created = create_call(sandbox, UNANSWERED, To="+14155550101")

    fetched = sandbox.rest("GET", f"Calls/{created['sid']}.json")

    assert fetched.status_code == 200
    assert (fetched.json()["sid"], fetched.json()["to"]) == (created["sid"], "+14155550101")


def test_an_unknown_call_is_twilios_404(sandbox: RunningSandbox) -> None:
    response = sandbox.rest("GET", f"Calls/CA{'0' * 32}.json")

    assert response.status_code == 404
    assert response.json()["code"] == 20404


def test_the_call_list_holds_the_calls_to_a_number(sandbox: RunningSandbox) -> None:
    sids = [create_call(sandbox, UNANSWERED, To=to)["sid"] for to in ("+14155550123", TO, "+14155550123")]

    listed = sandbox.rest("GET", "Calls.json", params={"To": "+14155550123"}).json()["calls"]

    assert [call["sid"] for call in listed] == [sids[2], sids[0]]


def test_a_message_is_created_with_the_callers_to_from_and_body(sandbox: RunningSandbox) -> None:
    message = create_message(sandbox, Body="Your code is 123456")

    assert (message["to"], message["from"], message["body"], message["status"]) == (
        TO,
        FROM,
        "Your code is 123456",
        "queued",
    )


def test_a_message_is_fetched_by_sid(sandbox: RunningSandbox) -> None:
    created = create_message(sandbox)

    fetched = sandbox.rest("GET", f"Messages/{created['sid']}.json")

    assert fetched.status_code == 200
    assert fetched.json()["sid"] == created["sid"]


def test_the_message_list_holds_the_messages_to_a_number(sandbox: RunningSandbox) -> None:
    sid = create_message(sandbox, To="+14155550188")["sid"]

    listed = sandbox.rest("GET", "Messages.json", params={"To": "+14155550188"}).json()["messages"]

    assert [message["sid"] for message in listed] == [sid]


def test_a_call_without_twiml_is_refused_as_twilio_refuses_it(sandbox: RunningSandbox) -> None:
    response = sandbox.rest("POST", "Calls.json", data={"To": TO, "From": FROM})

    assert response.status_code == 400
    assert response.json()["code"] == 21205


def test_a_message_without_a_body_is_refused_as_twilio_refuses_it(sandbox: RunningSandbox) -> None:
    response = sandbox.rest("POST", "Messages.json", data={"To": TO, "From": FROM})

    assert response.status_code == 400
    assert response.json()["code"] == 21602


# --- every answer satisfies Twilio's spec: its response schemas, and Prism's own check -------------------------------


CALLS = "/2010-04-01/Accounts/{AccountSid}/Calls"
MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages"


CALL = {"To": TO, "From": FROM, "Url": f"{UNANSWERED}/voice"}
LONG_TEXT = {"To": TO, "From": FROM, "Body": "é" * 71}
# Each operation the sandbox simulates: its path in the spec, its method, and a request for it.
OPERATIONS: dict[str, tuple[str, str, Callable[[RunningSandbox], requests.Response]]] = {
    "create call": (f"{CALLS}.json", "post", lambda s: s.rest("POST", "Calls.json", data=CALL)),
    "fetch call": (
        f"{CALLS}/{{Sid}}.json",
        "get",
        lambda s: s.rest("GET", f"Calls/{create_call(s, UNANSWERED)['sid']}.json"),
    ),
    "list calls": (f"{CALLS}.json", "get", lambda s: s.rest("GET", "Calls.json", params={"PageSize": 2})),
    "create message": (f"{MESSAGES}.json", "post", lambda s: s.rest("POST", "Messages.json", data=LONG_TEXT)),
    "fetch message": (
        f"{MESSAGES}/{{Sid}}.json",
        "get",
        lambda s: s.rest("GET", f"Messages/{create_message(s)['sid']}.json"),
    ),
    "list messages": (f"{MESSAGES}.json", "get", lambda s: s.rest("GET", "Messages.json", params={"PageSize": 2})),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_answers_match_twilios_response_schema(sandbox: RunningSandbox, operation: str) -> None:
    path, method, send = OPERATIONS[operation]
    answer = send(sandbox)

    validator = Draft4Validator(response_schema(path, method, answer.status_code), format_checker=RFC_2822)
    assert list(validator.iter_errors(answer.json())) == []


@pytest.mark.parametrize("operation", OPERATIONS)
def test_prism_finds_no_violation_in_the_answers(sandbox: RunningSandbox, operation: str) -> None:
    answer = OPERATIONS[operation][2](sandbox)

    assert answer.status_code in {200, 201}
    assert "sl-violations" not in answer.headers


RFC_2822 = FormatChecker(formats=())


@RFC_2822.checks("date-time-rfc-2822", raises=(TypeError, ValueError))
def _rfc_2822(value: object) -> bool:
    return not isinstance(value, str) or email.utils.parsedate_to_datetime(value) is not None


def response_schema(path: str, method: str, status: int) -> dict[str, Any]:
    """The spec's schema for that answer, as JSON Schema: OpenAPI's `nullable` becomes a null type."""
    spec = _nullable(json.loads(SPEC.read_text(encoding="utf-8")))
    schema = spec["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": spec["components"]}


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable(value) for key, value in node.items()}
    if converted.get("nullable") is True and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


# --- a call plays out as Twilio plays it -----------------------------------------------------------------------------


def test_status_callbacks_follow_the_call_through_the_requested_events(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    create_call(sandbox, url, StatusCallback=f"{url}/status", StatusCallbackEvent=ALL_EVENTS)

    assert eventually(lambda: len(app.at("/status")) == 4)
    assert [hit.form["CallStatus"] for hit in app.at("/status")] == ["initiated", "ringing", "in-progress", "completed"]


def test_only_the_completed_event_is_posted_when_no_event_is_named(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str], host: str
) -> None:
    app, url = receiver
    sid = create_call(sandbox, url, StatusCallback=f"{url}/status")["sid"]
    settled(host, "calls", sid)

    assert eventually(lambda: len(app.at("/status")) == 1)
    assert app.at("/status")[0].form["CallStatus"] == "completed"


def test_status_callbacks_are_signed_with_the_accounts_auth_token(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    create_call(sandbox, url, StatusCallback=f"{url}/status?tag=a%20b", StatusCallbackEvent=ALL_EVENTS)

    assert eventually(lambda: len(app.at("/status")) == 4)
    assert all(signed_by_twilio(hit) for hit in app.at("/status"))


def test_the_completed_callback_carries_the_call_duration(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    create_call(sandbox, url, StatusCallback=f"{url}/status")

    assert eventually(lambda: len(app.at("/status")) == 1)
    assert app.at("/status")[0].form["CallDuration"] == "1"


def test_the_voice_url_is_fetched_with_twilios_parameters(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    sid = create_call(sandbox, url)["sid"]

    assert eventually(lambda: len(app.at("/voice")) == 1)
    (fetch,) = app.at("/voice")
    assert fetch.method == "POST"
    assert fetch.form | {"CallSid": sid} == {
        "AccountSid": SANDBOX_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "in-progress",
        "Called": TO,
        "Caller": FROM,
        "Direction": "outbound-api",
        "From": FROM,
        "To": TO,
    }
    assert signed_by_twilio(fetch)


def test_the_voice_url_is_fetched_with_the_requested_method(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    create_call(sandbox, url, Url=f"{url}/voice?message=Hi", Method="GET")

    assert eventually(lambda: len(app.at("/voice")) == 1)
    (fetch,) = app.at("/voice")
    assert fetch.method == "GET"
    assert "CallSid=CA" in fetch.url
    assert signed_by_twilio(fetch)


def test_what_the_callee_hears_is_recorded(sandbox: RunningSandbox, receiver: tuple[Receiver, str], host: str) -> None:
    _, url = receiver
    sid = create_call(sandbox, url)["sid"]

    call = settled(host, "calls", sid)

    assert call["status"] == "completed"
    assert call["said"] == [{"text": "Ahoy", "voice": "alice", "language": "en-GB"}]


@pytest.mark.parametrize("answer", [(500, ""), (404, "Not found")], ids=["500", "404"])
def test_a_voice_url_answering_an_error_fails_the_call_with_11200(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str], host: str, answer: tuple[int, str]
) -> None:
    app, url = receiver
    app.answers["/voice"] = answer
    sid = create_call(sandbox, url, StatusCallback=f"{url}/status")["sid"]

    call = settled(host, "calls", sid)

    assert call["status"] == "failed"
    assert call["error"]["code"] == 11200
    assert eventually(lambda: len(app.at("/status")) == 1)
    assert (app.at("/status")[0].form["CallStatus"], app.at("/status")[0].form["ErrorCode"]) == ("failed", "11200")


def test_a_voice_url_nobody_answers_fails_the_call_with_11200(sandbox: RunningSandbox, host: str) -> None:
    stopped = f"http://127.0.0.1:{free_port()}"
    with app_at(sandbox, stopped):
        sid = create_call(sandbox, stopped)["sid"]
        call = settled(host, "calls", sid)

    assert (call["status"], call["error"]["code"]) == ("failed", 11200)


@pytest.mark.parametrize("twiml", ["Hello", "<Response><Say>Hi</Response>", "<Reply><Say>Hi</Say></Reply>"])
def test_invalid_twiml_fails_the_call_with_12100(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str], host: str, twiml: str
) -> None:
    app, url = receiver
    app.answers["/voice"] = (200, twiml)
    sid = create_call(sandbox, url)["sid"]

    call = settled(host, "calls", sid)

    assert (call["status"], call["error"]["code"]) == ("failed", 12100)


@pytest.mark.parametrize(
    "outcome",
    [
        ("+15005550011", "busy", "486", False),
        ("+15005550012", "no-answer", "487", True),
        ("+15005550013", "failed", "404", False),
    ],
    ids=lambda outcome: outcome[1],
)
def test_sandbox_numbers_end_the_call_unanswered(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str], host: str, outcome: tuple[str, str, str, bool]
) -> None:
    to, status, sip, rings = outcome
    app, url = receiver
    sid = create_call(sandbox, url, To=to, StatusCallback=f"{url}/status")["sid"]

    call = settled(host, "calls", sid)
    assert call["status"] == status
    assert ("ringing" in [event["name"] for event in call["events"]]) is rings
    assert eventually(lambda: len(app.at("/status")) == 1)
    assert (app.at("/status")[0].form["CallStatus"], app.at("/status")[0].form["SipResponseCode"]) == (status, sip)
    assert app.at("/voice") == []


# --- texts are delivered as Twilio delivers them ---------------------------------------------------------------------


def test_a_message_goes_from_queued_to_sent_to_delivered(sandbox: RunningSandbox, host: str) -> None:
    sid = create_message(sandbox)["sid"]

    message = settled(host, "messages", sid)

    assert [event["name"] for event in message["events"]] == ["queued", "sent", "delivered"]
    assert sandbox.rest("GET", f"Messages/{sid}.json").json()["status"] == "delivered"


def test_message_status_callbacks_are_posted_signed(sandbox: RunningSandbox, receiver: tuple[Receiver, str]) -> None:
    app, url = receiver
    create_message(sandbox, StatusCallback=f"{url}/sms-status")

    assert eventually(lambda: len(app.at("/sms-status")) == 2)
    assert [hit.form["MessageStatus"] for hit in app.at("/sms-status")] == ["sent", "delivered"]
    assert all(signed_by_twilio(hit) for hit in app.at("/sms-status"))


@pytest.mark.parametrize(
    ("to", "status", "error"),
    [("+15005550011", "delivered", None), ("+15005550012", "delivered", None), ("+15005550013", "undelivered", 30003)],
)
def test_a_text_to_a_sandbox_number_ends_as_that_number_says(
    sandbox: RunningSandbox, host: str, to: str, status: str, error: int | None
) -> None:
    sid = create_message(sandbox, To=to)["sid"]

    message = settled(host, "messages", sid)

    assert (message["status"], message["error"] and message["error"]["code"]) == (status, error)


# --- the sandbox's own views, as JSON: everything, oldest first, or one record by SID --------------------------------


RECORD_FIELDS = {"sid", "from", "to", "status", "direction", "created", "error", "events"}
CREATE: dict[str, Callable[[RunningSandbox], dict[str, Any]]] = {
    "calls": lambda s: create_call(s, UNANSWERED),
    "messages": create_message,
}


@pytest.mark.parametrize("kind", ["calls", "messages"])
def test_the_sandbox_lists_calls_and_texts_oldest_first(sandbox: RunningSandbox, host: str, kind: str) -> None:
    first, second = (CREATE[kind](sandbox)["sid"] for _ in range(2))

    listed = [item["sid"] for item in requests.get(f"{host}/_sandbox/{kind}", timeout=10).json()]

    assert listed.index(first) < listed.index(second)


def test_a_call_record_holds_who_what_failed_and_what_was_said(sandbox: RunningSandbox, host: str) -> None:
    call = settled(host, "calls", create_call(sandbox, UNANSWERED)["sid"])

    assert set(call) == RECORD_FIELDS | {"url", "method", "duration", "said"}
    assert set(call["error"]) == {"code", "message"}
    assert all(set(event) == {"at", "name", "detail"} for event in call["events"])


def test_a_text_record_holds_its_body_and_what_it_replies_to(sandbox: RunningSandbox, host: str) -> None:
    message = settled(host, "messages", create_message(sandbox)["sid"])

    assert set(message) == RECORD_FIELDS | {"body", "in_reply_to"}
    assert message["error"] is None
    assert all(set(event) == {"at", "name", "detail"} for event in message["events"])


# --- only the app's own URLs are requested: any other ends as Twilio ends one it cannot connect to ------------------


@pytest.fixture
def stranger() -> Iterator[tuple[Receiver, str]]:
    """A server on another loopback port, not the app, answering /voice with TwiML."""
    app = Receiver({"/voice": (200, SAY)})
    with serving(app) as url:
        yield app, url


def test_a_call_whose_url_is_not_the_apps_fails_with_11205_unrequested(
    sandbox: RunningSandbox, host: str, stranger: tuple[Receiver, str]
) -> None:
    elsewhere, url = stranger
    sid = create_call(sandbox, url)["sid"]

    call = settled(host, "calls", sid)

    assert (call["status"], call["error"]["code"]) == ("failed", 11205)
    assert elsewhere.hits == []


def test_a_call_status_callback_that_is_not_the_apps_is_not_requested(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str], host: str, stranger: tuple[Receiver, str]
) -> None:
    (_, url), (elsewhere, foreign) = receiver, stranger
    sid = create_call(sandbox, url, StatusCallback=f"{foreign}/status", StatusCallbackEvent=ALL_EVENTS)["sid"]

    call = settled(host, "calls", sid)

    assert eventually(lambda: len(callbacks_tried(view(host, "calls", sid))) == 4)
    assert call["status"] == "completed"
    assert elsewhere.hits == []


def test_a_message_status_callback_that_is_not_the_apps_is_not_requested(
    sandbox: RunningSandbox, host: str, stranger: tuple[Receiver, str]
) -> None:
    elsewhere, url = stranger
    sid = create_message(sandbox, StatusCallback=f"{url}/sms-status")["sid"]

    assert eventually(lambda: len(callbacks_tried(view(host, "messages", sid))) == 2)
    assert view(host, "messages", sid)["status"] == "delivered"
    assert elsewhere.hits == []


def test_the_apps_address_by_another_loopback_name_is_the_apps(
    sandbox: RunningSandbox, receiver: tuple[Receiver, str], host: str
) -> None:
    app, url = receiver
    alias = url.replace("127.0.0.1", "localhost")
    sid = create_call(sandbox, alias)["sid"]

    assert settled(host, "calls", sid)["status"] == "completed"
    assert [hit.url for hit in app.at("/voice")] == [f"{alias}/voice"]


def callbacks_tried(record: dict[str, Any]) -> list[dict[str, str]]:
    """The status callbacks the sandbox has tried so far, sent or not."""
    return [event for event in record["events"] if event["name"] == "status callback"]


# --- inbound texts, through the invoker: recorded with the reply the sender gets -------------------------------------


def test_an_inbound_text_is_recorded_with_the_apps_reply(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke_main(["sms_url", "--base-url", host, "--body", "Is it on?"]) == 0
    assert "<Message>Hey, thanks for the ping! Twilio and Azure rock!</Message>" in capsys.readouterr().out

    texts = requests.get(f"{host}/_sandbox/messages", timeout=10).json()
    inbound = next(t for t in texts if t["direction"] == "inbound" and t["body"] == "Is it on?")
    reply = next(t for t in texts if t["in_reply_to"] == inbound["sid"])
    assert (reply["from"], reply["to"], reply["body"]) == (
        inbound["to"],
        inbound["from"],
        "Hey, thanks for the ping! Twilio and Azure rock!",
    )
    assert settled(host, "messages", reply["sid"])["status"] == "delivered"


def test_an_inbound_text_the_app_refuses_is_recorded_with_11200(host: str) -> None:
    params = sms_params(SANDBOX_ACCOUNT_SID, "Hi")
    route = LocalRoute(host)

    answer = deliver_text(route, route.public("/api/sms_url"), params, SANDBOX_ACCOUNT_SID, "not-the-auth-token")

    assert answer.status_code == 403
    assert view(host, "messages", params["MessageSid"])["error"]["code"] == 11200


def test_an_inbound_text_for_a_url_not_the_apps_is_not_requested(host: str, stranger: tuple[Receiver, str]) -> None:
    elsewhere, url = stranger
    params = sms_params(SANDBOX_ACCOUNT_SID, "Hi")

    answer = deliver_text(LocalRoute(host), f"{url}/sms", params, SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)

    assert answer.status_code == 502
    assert view(host, "messages", params["MessageSid"])["error"]["code"] == 11205
    assert elsewhere.hits == []


# --- behind a tunnel: PUBLIC_BASE_URL set, nothing sent through it ---------------------------------------------------


TUNNEL = "https://abc.tunnel.example"


@pytest.fixture
def tunnelled(sandbox: RunningSandbox, env: pytest.MonkeyPatch) -> Iterator[str]:
    """The app with PUBLIC_BASE_URL set to a tunnel that is not running."""
    env.setenv("PUBLIC_BASE_URL", TUNNEL)
    with app_with_sandbox(sandbox, env, allowed_hosts=("abc.tunnel.example",)) as url, app_at(sandbox, url, TUNNEL):
        yield url


def test_behind_a_tunnel_calls_play_out_on_the_local_app(tunnelled: str) -> None:
    placed = requests.post(
        f"{tunnelled}/api/make_call", json={"to": TO, "from": FROM, "message": "Via tunnel"}, timeout=30
    )

    call = settled(tunnelled, "calls", placed.json()["sid"])

    assert call["url"].startswith(f"{TUNNEL}/api/voice_url?")
    assert call["said"][0]["text"] == "Via tunnel"


def test_the_invoker_signs_the_public_url_and_posts_to_the_local_one(
    tunnelled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = invoke_main(["voice_url", "--base-url", tunnelled])

    assert exit_code == 0
    assert "<Say>Hello Monkey!</Say>" in capsys.readouterr().out


def test_invoke_call_replays_the_last_call_by_default(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("Earlier", "Latest"):
        requests.post(f"{host}/api/make_call", json={"to": TO, "from": FROM, "message": text}, timeout=30)

    assert invoke_main(["call", "--base-url", host]) == 0
    assert "<Say>Latest</Say>" in capsys.readouterr().out


def test_invoke_call_replays_the_call_chosen_by_sid(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    first, _ = [
        requests.post(f"{host}/api/make_call", json={"to": TO, "from": FROM, "message": text}, timeout=30).json()["sid"]
        for text in ("First", "Second")
    ]

    assert invoke_main(["call", "--sid", first, "--base-url", host]) == 0
    assert "<Say>First</Say>" in capsys.readouterr().out
