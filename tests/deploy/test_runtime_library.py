"""The app through azure-functions-runtime, the library Azure loads it with from Python 3.13, driven as the host's
proxy worker drives it (tests/deploy/proxy_worker.py, in a fresh interpreter), with Twilio and Key Vault on local
stand-ins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from devtools.functions import query_params
from testing.process_state import without_settings
from testing.standins import KeyVaultStandIn, TwilioStandIn
from tests.support import ACCOUNT_SID, AUTH_TOKEN, FUNCTIONS, fixture, function_url

pytestmark = pytest.mark.processes

if sys.version_info < (3, 13):
    pytest.skip("azure-functions-runtime, which loads the app from Python 3.13, needs 3.13+", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
FROM_NUMBER = "+15017122661"
XML = '<?xml version="1.0" encoding="UTF-8"?>'
FORM = "application/x-www-form-urlencoded"
OUTCOME_SID = "CA" + "0" * 32


def host_request(
    url: str, headers: dict[str, str], body: str, *, function: str | None = None, sid: str | None = None
) -> dict[str, Any]:
    """A POST to a function as the host passes it on: header names in lower case, the query as `req.params`.
    With a `sid`, a GET of the route calls/{sid}, the sid as the host passes a route's parameters."""
    return {
        "function": function or urlsplit(url).path.rsplit("/", 1)[-1],
        "method": "POST" if sid is None else "GET",
        "url": url,
        "headers": {key.lower(): value for key, value in headers.items()},
        "query": query_params(urlsplit(url).query),
        "params": {} if sid is None else {"sid": sid},
        "body": body,
    }


def webhook(url: str, form: dict[str, str]) -> dict[str, Any]:
    """A webhook as Twilio sends it, signed over the URL it requested."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return host_request(url, {"Content-Type": FORM, "X-Twilio-Signature": signature}, urlencode(form))


def api_call(name: str, document: dict[str, str]) -> dict[str, Any]:
    return host_request(function_url(name), {"Content-Type": "application/json"}, json.dumps(document))


REQUESTS = [
    api_call("make_call", {"to": "+15558675310"}),
    webhook(function_url("voice_url", {"message": "Ahoy", "voice": "Polly.Joanna"}), fixture("voice_call")),
    webhook(function_url("sms_url"), fixture("incoming_sms")),
    api_call("send_sms", {"to": "+15558675310", "body": "Your code is 1234"}),
    webhook(function_url("call_status"), fixture("call_status_completed")),
    {
        "function": "sweep_state",
        "timer": {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": False},
    },
    host_request(function_url(f"calls/{OUTCOME_SID}"), {}, "", function="call_outcome", sid=OUTCOME_SID),
]


class Worker:
    """What one run of the library answered, and what the Twilio stand-in received meanwhile."""

    def __init__(self, report: dict[str, Any], twilio: TwilioStandIn) -> None:
        self.report = report
        self.twilio = twilio

    def answer(self, name: str) -> dict[str, Any]:
        (answer,) = [a for r, a in zip(REQUESTS, self.report["answers"], strict=True) if r["function"] == name]
        return answer

    def created(self, prefix: str) -> str:
        """The SID of the one call (CA) or message (SM) that Twilio created."""
        (sid,) = [sid for sid in self.twilio.sids if sid.startswith(prefix)]
        return sid


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    """One worker process, as on Azure: credentials read from Key Vault, Twilio's REST API on its stand-in."""
    twilio = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN).start()
    vault = KeyVaultStandIn({"twilio-account-sid": ACCOUNT_SID, "twilio-auth-token": AUTH_TOKEN}).start()
    environ = {
        **without_settings(os.environ),
        **vault.environ(),
        "TWILIO_API_BASE_URL": twilio.url,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
    }
    try:
        result = subprocess.run(
            [sys.executable, "-I", str(Path(__file__).with_name("proxy_worker.py"))],
            cwd=ROOT,
            env=environ,
            input=json.dumps(REQUESTS),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        yield Worker(json.loads(result.stdout), twilio)
    finally:
        vault.stop()
        twilio.stop()


def test_the_runtime_library_initialises_the_worker_indexing_the_app(worker: Worker) -> None:
    assert worker.report["init"] == {"status": "Success", "exception": ""}
    assert worker.report["metadata"] == {"status": "Success", "exception": ""}


def test_the_runtime_library_indexes_each_function_with_its_route_methods_and_auth_level(worker: Worker) -> None:
    indexed = {}
    for name, bindings in worker.report["bindings"].items():
        if name == "sweep_state":
            continue
        assert [(b["type"], b["name"]) for b in bindings] == [("httpTrigger", "req"), ("http", "$return")]
        trigger = bindings[0]
        indexed[name] = (trigger["route"], tuple(trigger["methods"]), trigger["authLevel"])

    assert indexed == {name: (f.route, f.methods, f.auth_level) for name, f in FUNCTIONS.items()}


def test_the_runtime_library_indexes_sweep_state_as_a_timer_trigger(worker: Worker) -> None:
    assert worker.report["bindings"]["sweep_state"] == [
        {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": "0 30 3 * * *",
            "runOnStartup": False,
            "useMonitor": True,
        }
    ]


def test_the_runtime_library_loads_every_function(worker: Worker) -> None:
    assert worker.report["loaded"] == {
        name: {"status": "Success", "exception": ""} for name in [*FUNCTIONS, "sweep_state"]
    }


def test_make_call_places_the_call_through_the_runtime_library(worker: Worker) -> None:
    answer = worker.answer("make_call")

    assert (answer["status"], answer["exception"], answer["status_code"]) == ("Success", "", 201)
    assert answer["headers"]["content-type"] == "application/json"
    sid = worker.created("CA")
    assert json.loads(answer["body"]) == {
        "sid": sid,
        "status": "queued",
        "to": "+15558675310",
        "from": FROM_NUMBER,
        "status_url": function_url(f"calls/{sid}"),
    }


def test_voice_url_says_the_message_of_its_signed_url_through_the_runtime_library(worker: Worker) -> None:
    answer = worker.answer("voice_url")

    assert (answer["status"], answer["exception"], answer["status_code"]) == ("Success", "", 200)
    assert answer["headers"]["content-type"] == "text/xml; charset=utf-8"
    assert answer["body"] == f'{XML}<Response><Say voice="Polly.Joanna">Ahoy</Say></Response>'


def test_sms_url_replies_through_the_runtime_library(worker: Worker) -> None:
    answer = worker.answer("sms_url")

    assert (answer["status"], answer["exception"], answer["status_code"]) == ("Success", "", 200)
    assert answer["headers"]["content-type"] == "text/xml; charset=utf-8"
    assert answer["body"] == (
        f"{XML}<Response><Message>Hey, thanks for the ping! Twilio and Azure rock!</Message></Response>"
    )


def test_send_sms_sends_the_message_through_the_runtime_library(worker: Worker) -> None:
    answer = worker.answer("send_sms")

    assert (answer["status"], answer["exception"], answer["status_code"]) == ("Success", "", 201)
    assert answer["headers"]["content-type"] == "application/json"
    sid = worker.created("SM")
    assert json.loads(answer["body"]) == {
        "sid": sid,
        "status": "queued",
        "to": "+15558675310",
        "from": FROM_NUMBER,
        "status_url": function_url(f"messages/{sid}"),
    }


def test_call_status_accepts_the_callback_through_the_runtime_library(worker: Worker) -> None:
    answer = worker.answer("call_status")

    assert (answer["status"], answer["exception"], answer["status_code"]) == ("Success", "", 204)
    assert answer["body"] == ""


def test_sweep_state_runs_through_the_runtime_library(worker: Worker) -> None:
    """No storage here: it says so in the log and ends without failing."""
    answer = worker.answer("sweep_state")

    assert (answer["status"], answer["exception"]) == ("Success", "")


def test_an_outcome_is_answered_by_its_async_function_with_its_route_parameter_through_the_runtime_library(
    worker: Worker,
) -> None:
    """Without storage in the worker's settings, a well-formed sid gets as far as 503 naming the setting."""
    answer = worker.answer("call_outcome")

    assert (answer["status"], answer["exception"], answer["status_code"]) == ("Success", "", 503)
    assert json.loads(answer["body"])["error"]["target"] == "AzureWebJobsStorage"
