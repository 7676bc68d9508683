"""Twilio faults, provoked for real on a local server: each gets a clear answer, and nothing is sent twice."""

from __future__ import annotations

import socket
import time

import pytest

from devtools.standins import Fault, KeyVaultStandIn, TwilioStandIn, twilio_error
from tests.support import body_json, error_of, post_json

CALL = {"to": "+15558675310"}


def test_a_read_timeout_answers_504_and_is_not_retried(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_HTTP_TIMEOUT", "0.3")
    twilio.fail_next(Fault(delay=1.0))

    response = post_json("make_call", CALL)

    assert response.status_code == 504
    assert error_of(response)["code"] == "twilio_timeout"
    assert "unknown" in error_of(response)["message"]
    assert len(twilio.creations()) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_twilio_5xx_answers_502_and_is_not_retried(twilio: TwilioStandIn, status: int) -> None:
    twilio.fail_next(Fault(status=status, body=twilio_error(20500, "Internal Server Error", status)))

    response = post_json("make_call", CALL)

    assert response.status_code == 502
    assert "whether the call was placed is unknown" in error_of(response)["message"]
    assert len(twilio.creations()) == 1


def test_a_dropped_connection_answers_502_outcome_unknown(twilio: TwilioStandIn) -> None:
    twilio.fail_next(Fault(drop=True))

    response = post_json("send_sms", {**CALL, "body": "Hi"})

    assert response.status_code == 502
    assert "whether the message was sent is unknown" in error_of(response)["message"]
    assert len(twilio.creations()) == 1


def test_an_unreachable_twilio_answers_502_nothing_sent(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        env.setenv("TWILIO_API_BASE_URL", f"http://127.0.0.1:{closed.getsockname()[1]}")
    response = post_json("make_call", CALL)

    assert response.status_code == 502
    assert error_of(response)["code"] == "twilio_unreachable"
    assert "nothing was sent" in error_of(response)["message"]


def test_a_429_is_retried_after_retry_after(twilio: TwilioStandIn) -> None:
    twilio.fail_next(
        Fault(status=429, body=twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "1"})
    )

    response = post_json("make_call", CALL)

    assert response.status_code == 201
    assert len(twilio.creations()) == 2


def test_a_long_retry_after_is_capped_so_the_caller_still_gets_an_answer(twilio: TwilioStandIn) -> None:
    twilio.fail_next(
        Fault(status=429, body=twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "30"})
    )
    started = time.monotonic()

    response = post_json("make_call", CALL)

    assert response.status_code == 201
    assert time.monotonic() - started < 15  # capped at MAX_RETRY_AFTER (5 s), not the 30 s asked
    assert len(twilio.creations()) == 2


def test_persistent_429s_stop_after_a_bounded_number_of_tries(twilio: TwilioStandIn) -> None:
    throttled = Fault(status=429, body=twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "0"})
    twilio.fail_next(*[throttled] * 10)

    response = post_json("make_call", CALL)

    assert response.status_code == 429
    assert error_of(response)["code"] == "twilio_rate_limited"
    assert len(twilio.creations()) == 3


def test_twilio_refusing_a_number_answers_400_with_twilio_code(twilio: TwilioStandIn) -> None:
    message = "The 'To' number +15558675310 is not a valid phone number."
    twilio.fail_next(Fault(status=400, body=twilio_error(21211, message, 400)))

    response = post_json("make_call", CALL)

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["target"]) == ("twilio_rejected", "to")
    assert error["innererror"]["twilio_code"] == 21211
    assert message in error["message"]


@pytest.mark.parametrize("code", [21608, 21215, 13227])
def test_trial_and_geo_permission_refusals_answer_403(twilio: TwilioStandIn, code: int) -> None:
    twilio.fail_next(Fault(status=400, body=twilio_error(code, "Not permitted", 400)))

    response = post_json("make_call", CALL)

    assert response.status_code == 403
    assert error_of(response)["innererror"]["twilio_code"] == code


def test_an_rfc9457_problem_from_twilio_answers_400_with_its_code(twilio: TwilioStandIn) -> None:
    problem = {
        "type": "https://www.twilio.com/docs/errors/21211",
        "title": "Invalid 'To' Phone Number",
        "status": 400,
        "code": 21211,
        "detail": "The 'To' number is not valid.",
    }
    twilio.fail_next(Fault(status=400, body=problem))

    response = post_json("make_call", CALL)

    assert response.status_code == 400
    assert error_of(response)["innererror"]["twilio_code"] == 21211
    assert "The 'To' number is not valid." in error_of(response)["message"]


def test_a_rejected_token_with_no_newer_one_answers_503_without_retrying(twilio: TwilioStandIn) -> None:
    twilio.auth_token = "rotated-at-twilio"

    response = post_json("make_call", CALL)

    assert response.status_code == 503
    assert error_of(response)["code"] == "twilio_auth_failed"
    assert len(twilio.creations()) == 1


def test_a_token_rotated_in_key_vault_is_re_read_and_the_call_retried_once(
    twilio: TwilioStandIn, vault: KeyVaultStandIn
) -> None:
    assert post_json("make_call", CALL).status_code == 201
    twilio.auth_token = vault.secrets["twilio-auth-token"] = "rotated-token-2"

    response = post_json("make_call", CALL)

    assert response.status_code == 201
    assert [r.basic_auth() for r in twilio.creations()][1:] == [
        (twilio.account_sid, "test-auth-token-7f3a9c"),
        (twilio.account_sid, "rotated-token-2"),
    ]


def test_warm_calls_share_one_pooled_connection(twilio: TwilioStandIn) -> None:
    for _ in range(50):
        assert post_json("make_call", CALL).status_code == 201

    assert twilio.connections == 1
    assert len({body_json(post_json("make_call", CALL))["sid"] for _ in range(3)}) == 3
