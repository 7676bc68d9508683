"""Every failure reaches the caller as a JSON error, and every outcome as its JSON answer; nothing else ever does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

import azure.functions as func
import pytest

from shared.errors import ApiError
from shared.outbound import Outcome
from shared.responses import answers_errors, answers_errors_async, json_response, outcome_response
from tests.support import body_json, error_of, logged


def _request() -> func.HttpRequest:
    return func.HttpRequest("POST", "https://myapp.azurewebsites.net/api/x?token=abc", body=b"")


def _awaited(answer: Awaitable[func.HttpResponse]) -> func.HttpResponse:
    async def run() -> func.HttpResponse:
        return await answer

    return asyncio.run(run())


def test_an_api_error_becomes_its_json_error() -> None:
    @answers_errors
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise ApiError(429, "twilio_rate_limited", "Slow down.", target="to")

    response = handler(_request())

    assert response.status_code == 429
    assert error_of(response) == {"code": "twilio_rate_limited", "message": "Slow down.", "target": "to"}


def test_an_unexpected_exception_is_a_500_without_its_details(caplog: pytest.LogCaptureFixture) -> None:
    @answers_errors
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("internal detail")

    with caplog.at_level(logging.ERROR):
        response = handler(_request())

    assert response.status_code == 500
    assert error_of(response) == {
        "code": "internal_error",
        "message": "The function failed unexpectedly.",
        "target": None,
    }
    assert b"internal detail" not in response.get_body()
    assert "token=abc" not in caplog.text
    assert "internal detail" in caplog.text


def test_a_body_over_64_kib_is_refused_before_the_handler_runs() -> None:
    ran: list[bool] = []

    @answers_errors
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        ran.append(True)
        return func.HttpResponse(status_code=204)

    response = handler(func.HttpRequest("POST", "https://myapp.azurewebsites.net/api/x", body=b"x" * 65_537))

    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert ran == []


def test_a_json_answer_is_200_unless_told_otherwise() -> None:
    assert json_response({"sid": "CA1"}).status_code == 200


def test_a_json_answer_carries_non_ascii_text_as_utf_8() -> None:
    assert json_response({"message": "Grüße, 世界"}).get_body() == '{"message": "Grüße, 世界"}'.encode()


def test_an_answered_error_is_logged_with_the_path_up_to_its_query(caplog: pytest.LogCaptureFixture) -> None:
    @answers_errors
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise ApiError(429, "twilio_rate_limited", "Slow down.")

    with caplog.at_level(logging.INFO, logger="shared.responses"):
        handler(func.HttpRequest("POST", "https://myapp.azurewebsites.net/api/x?a=b?c", body=b""))

    assert [r.getMessage() for r in caplog.records] == [
        "POST https://myapp.azurewebsites.net/api/x answered 429 twilio_rate_limited"
    ]


@pytest.mark.parametrize(("status", "level"), [(499, "INFO"), (500, "WARNING"), (503, "WARNING")])
def test_an_answered_error_is_a_warning_from_500_up_and_info_below(
    caplog: pytest.LogCaptureFixture, status: int, level: str
) -> None:
    @answers_errors
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise ApiError(status, "some_code", "Some message.")

    with caplog.at_level(logging.INFO, logger="shared.responses"):
        handler(_request())

    assert logged(caplog, "shared.responses") == [
        (level, f"POST https://myapp.azurewebsites.net/api/x answered {status} some_code")
    ]


def test_an_unexpected_exception_is_logged_as_an_error_naming_the_method_and_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @answers_errors
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("internal detail")

    with caplog.at_level(logging.ERROR, logger="shared.responses"):
        handler(_request())

    assert logged(caplog, "shared.responses") == [
        ("ERROR", "POST https://myapp.azurewebsites.net/api/x failed unexpectedly")
    ]


def test_a_handler_that_awaits_answers_an_api_error_as_its_json_error() -> None:
    @answers_errors_async
    async def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise ApiError(404, "not_found", "No such call.", target="sid")

    response = _awaited(handler(_request()))

    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")


def test_a_handler_that_awaits_and_fails_unexpectedly_answers_500_and_logs_its_method_and_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @answers_errors_async
    async def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("internal detail")

    with caplog.at_level(logging.ERROR, logger="shared.responses"):
        response = _awaited(handler(_request()))

    assert (response.status_code, error_of(response)["code"]) == (500, "internal_error")
    assert logged(caplog, "shared.responses") == [
        ("ERROR", "POST https://myapp.azurewebsites.net/api/x failed unexpectedly")
    ]


def test_an_outcome_is_answered_as_json_with_its_status_and_body() -> None:
    response = outcome_response(Outcome(201, {"sid": "SM1", "status": "queued"}))

    assert (response.status_code, response.mimetype, body_json(response)) == (
        201,
        "application/json",
        {"sid": "SM1", "status": "queued"},
    )


def test_a_fresh_outcome_is_answered_without_idempotent_replayed() -> None:
    assert "Idempotent-Replayed" not in outcome_response(Outcome(201, {"sid": "SM1"})).headers


def test_a_replayed_outcome_is_answered_with_idempotent_replayed_true() -> None:
    response = outcome_response(Outcome(502, {"error": {"code": "outcome_unknown"}}, replayed=True))

    assert (response.status_code, response.headers["Idempotent-Replayed"]) == (502, "true")
