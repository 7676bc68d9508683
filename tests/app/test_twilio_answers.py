"""What call_twilio answers for each kind of Twilio failure, body and log line, against the local stand-in."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from twilio.rest import Client

from devtools.sandbox.answers import twilio_error
from shared import twilio_client
from shared.errors import ApiError
from shared.twilio_client import call_twilio
from testing.standins import Fault, TwilioStandIn
from tests.support import ACCOUNT_SID

OUTCOME = "whether the call was placed"


def place_call(client: Client) -> Any:
    return client.calls.create(to="+15558675310", from_="+15017122661", url="https://example.com/voice")


def list_numbers(client: Client) -> Any:
    return client.incoming_phone_numbers.list()


def failure(twilio: TwilioStandIn, *faults: Fault) -> ApiError:
    """The error call_twilio raises for a call that meets `faults`."""
    twilio.fail_next(*faults)
    with pytest.raises(ApiError) as raised:
        call_twilio(place_call, outcome=OUTCOME)
    return raised.value


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == twilio_client.__name__]


def test_a_twilio_client_failure_answers_502_outcome_unknown(twilio: TwilioStandIn) -> None:
    twilio.fail_next(Fault(status=503, body=twilio_error(20503, "Service Unavailable", 503)))

    with pytest.raises(ApiError) as raised:
        call_twilio(list_numbers, outcome="whether the numbers were listed")

    assert (raised.value.status, raised.value.body(), raised.value.outcome_unknown) == (
        502,
        {
            "error": {
                "code": "twilio_error",
                "message": "The Twilio client failed; whether the numbers were listed is unknown.",
                "target": None,
            }
        },
        True,
    )


def test_a_twilio_client_failure_is_logged_by_type(twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture) -> None:
    twilio.fail_next(Fault(status=503, body=twilio_error(20503, "Service Unavailable", 503)))

    with pytest.raises(ApiError):
        call_twilio(list_numbers, outcome="whether the numbers were listed")

    assert warnings_of(caplog) == ["Twilio client error: TwilioException"]


def test_a_rejected_token_answers_503_naming_the_auth_token_setting(twilio: TwilioStandIn) -> None:
    twilio.auth_token = "rotated-at-twilio"

    error = failure(twilio)

    assert (error.status, error.body()) == (
        503,
        {
            "error": {
                "code": "twilio_auth_failed",
                "message": "Twilio rejected the account credentials.",
                "target": "TWILIO_AUTH_TOKEN",
                "innererror": {
                    "twilio_status": 401,
                    "twilio_code": 20003,
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                },
            }
        },
    )


def test_persistent_429s_answer_429_with_twilio_code(twilio: TwilioStandIn) -> None:
    throttled = Fault(status=429, body=twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "0"})

    error = failure(twilio, *[throttled] * 3)

    assert (error.status, error.body()) == (
        429,
        {
            "error": {
                "code": "twilio_rate_limited",
                "message": "Twilio is rate limiting this account; try again shortly.",
                "target": None,
                "innererror": {
                    "twilio_status": 429,
                    "twilio_code": 20429,
                    "more_info": "https://www.twilio.com/docs/errors/20429",
                },
            }
        },
    )


def test_a_429_without_retry_after_is_retried(twilio: TwilioStandIn) -> None:
    twilio.fail_next(Fault(status=429, body=twilio_error(20429, "Too Many Requests", 429)))

    created = call_twilio(place_call, outcome=OUTCOME)

    assert created.sid == twilio.sids[-1]
    assert len(twilio.creations()) == 2


def test_a_twilio_5xx_answers_502_with_twilio_status_and_code(twilio: TwilioStandIn) -> None:
    error = failure(twilio, Fault(status=500, body=twilio_error(20500, "Internal Server Error", 500)))

    assert (error.status, error.body()) == (
        502,
        {
            "error": {
                "code": "twilio_error",
                "message": f"Twilio answered 500; {OUTCOME} is unknown, check before retrying.",
                "target": None,
                "innererror": {
                    "twilio_status": 500,
                    "twilio_code": 20500,
                    "more_info": "https://www.twilio.com/docs/errors/20500",
                },
            }
        },
    )


@pytest.mark.parametrize("code", [21608, 21215, 21408, 13227])
def test_trial_and_geo_permission_refusals_name_to_as_the_target(twilio: TwilioStandIn, code: int) -> None:
    error = failure(twilio, Fault(status=400, body=twilio_error(code, "Not permitted", 400)))

    assert (error.status, error.target) == (403, "to")


def test_a_twilio_refusal_is_logged_with_its_status_and_code(
    twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    failure(twilio, Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)))

    assert warnings_of(caplog) == ["Twilio answered 400 (error 21211)"]


def test_an_account_sid_in_a_refusal_is_shown_as_ac_and_an_ellipsis(twilio: TwilioStandIn) -> None:
    detail = f"Account {ACCOUNT_SID} is not allowed to call this number."

    error = failure(twilio, Fault(status=400, body=twilio_error(21211, detail, 400)))

    assert error.message == (
        "Twilio refused the request: Unable to create record: Account AC… is not allowed to call this number."
    )


def test_a_dropped_connection_answers_502_twilio_unreachable_outcome_unknown(twilio: TwilioStandIn) -> None:
    error = failure(twilio, Fault(drop=True))

    assert (error.status, error.body()) == (
        502,
        {
            "error": {
                "code": "twilio_unreachable",
                "message": f"The connection to Twilio failed; {OUTCOME} is unknown, check before retrying.",
                "target": None,
            }
        },
    )


def test_a_dropped_connection_is_logged_by_type(twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture) -> None:
    failure(twilio, Fault(drop=True))

    assert warnings_of(caplog) == ["Connection to Twilio failed: ConnectionError"]


class NotTls:
    """A loopback port that answers a TLS handshake with plain HTTP, counting the connections it took."""

    def __init__(self) -> None:
        self.accepted = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            with connection:
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def not_tls() -> Iterator[NotTls]:
    server = NotTls()
    yield server
    server.close()


def test_a_failed_tls_handshake_is_not_retried(twilio: TwilioStandIn, not_tls: NotTls, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_API_BASE_URL", not_tls.url)

    error = failure(twilio)

    assert (error.status, error.code, not_tls.accepted) == (502, "twilio_unreachable", 1)
