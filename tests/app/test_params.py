"""The caller's parameters: the exact error each malformed request gets, before any setting is read."""

from __future__ import annotations

from typing import Any

import azure.functions as func
import pytest

from shared import params
from shared.errors import ApiError

URL = "https://myapp.azurewebsites.net/api/make_call"
JSON = {"Content-Type": "application/json"}


def error_body(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ApiError) as raised:
        call(*args, **kwargs)
    assert raised.value.status in {400, 413, 415}
    body: dict[str, Any] = raised.value.body()["error"]
    return {"status": raised.value.status, **body}


def request(body: bytes, headers: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest("POST", URL, headers=headers, body=body)


def invalid(message: str, target: str = "body", code: str = "invalid_json") -> dict[str, Any]:
    return {"status": 400, "code": code, "message": message, "target": target}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"to": ', invalid("The request body is not valid JSON.")),
        (b"[" * 100_000 + b"]" * 100_000, invalid("The request body is not valid JSON.")),
        (b'["+15558675310"]', invalid("The request body must be a JSON object.")),
        (b'{"\\ud800": "x"}', invalid("A member name in the body is not valid Unicode.")),
        (b'{"to": 15558675310}', invalid("'to' must be a string.", "to", "invalid_parameter")),
        (b'{"body": "\\udfff"}', invalid("'body' is not valid Unicode text.", "body", "invalid_parameter")),
    ],
    ids=["truncated", "nested-too-deep", "array", "surrogate-name", "number", "surrogate-value"],
)
def test_each_malformed_json_body_gets_its_own_error(body: bytes, expected: dict[str, Any]) -> None:
    assert error_body(params.read_params, request(body, JSON)) == expected


@pytest.mark.parametrize(
    ("headers", "named"),
    [({"Content-Type": "text/plain"}, "text/plain"), ({}, "an untyped body")],
    ids=["text", "untyped"],
)
def test_a_body_neither_json_nor_a_form_is_refused_naming_its_type(headers: dict[str, str], named: str) -> None:
    assert error_body(params.read_params, request(b"to=+15558675310", headers)) == {
        "status": 415,
        "code": "unsupported_media_type",
        "message": f"Send the body as application/json or application/x-www-form-urlencoded, not {named}.",
        "target": "Content-Type",
    }


@pytest.mark.parametrize(
    ("body", "headers", "sent"),
    [
        (
            b'{"to": "+15558675310"}',
            {"Content-Type": "application/x-www-form-urlencoded"},
            "as application/x-www-form-urlencoded",
        ),
        (b' \n [{"to": "+15558675310"}]', {"Content-Type": "text/plain; charset=utf-8"}, "as text/plain"),
        (b'{"to": "+15558675310"}', {}, "without a Content-Type"),
    ],
    ids=["as-a-form", "as-text", "untyped"],
)
def test_a_json_looking_body_not_sent_as_json_is_told_its_content_type(
    body: bytes, headers: dict[str, str], sent: str
) -> None:
    assert error_body(params.read_params, request(body, headers)) == {
        "status": 400,
        "code": "content_type_mismatch",
        "message": f"The body looks like JSON but was sent {sent}: send it with Content-Type: application/json.",
        "target": "Content-Type",
    }


def test_a_body_over_64_kib_is_refused_with_the_limit() -> None:
    big = request(b"x" * (64 * 1024 + 1), JSON)

    assert error_body(params.check_body_size, big) == {
        "status": 413,
        "code": "payload_too_large",
        "message": "The request body is over 65536 bytes.",
        "target": "body",
    }


def test_a_missing_text_parameter_is_named() -> None:
    assert error_body(params.text, {"body": "  "}, "body", max_length=10) == invalid(
        "'body' is required.", "body", "missing_parameter"
    )


def test_a_text_parameter_over_its_limit_is_named_with_the_limit() -> None:
    assert error_body(params.text, {"body": "x" * 11}, "body", max_length=10) == invalid(
        "'body' is longer than 10 characters.", "body", "parameter_too_long"
    )


def test_a_token_with_other_characters_is_told_what_it_may_hold() -> None:
    assert error_body(params.token, {"voice": "Polly Joanna"}, "voice") == invalid(
        "'voice' may hold only letters, digits, '.', '_' and '-' (at most 64).", "voice", "invalid_parameter"
    )


def test_a_null_member_is_skipped_and_the_members_after_it_are_read() -> None:
    body = b'{"voice": null, "to": "+15558675310"}'

    assert params.read_params(request(body, JSON)) == {"to": "+15558675310"}


def test_a_structured_json_media_type_is_read_as_json() -> None:
    body = b'{"to": "+15558675310"}'

    assert params.read_params(request(body, {"Content-Type": "application/vnd.api+json"})) == {"to": "+15558675310"}


def test_a_body_of_exactly_64_kib_is_accepted() -> None:
    body = b"x" * (64 * 1024)

    params.check_body_size(request(body, {**JSON, "Content-Length": str(len(body))}))
