"""Invoking the app's functions in-process, as the Python worker does, with real HttpRequests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import azure.functions as func
import pytest
from twilio.request_validator import RequestValidator

import function_app
from devtools.functions import HttpFunction, http_functions

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC_HOST = "https://myapp.azurewebsites.net"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-7f3a9c"
FUNCTIONS: dict[str, HttpFunction] = {f.name: f for f in http_functions(function_app.app)}


def fixture(name: str) -> dict[str, str]:
    payload: dict[str, str] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return payload


def function_url(name: str, query: Mapping[str, str] | str | None = None, host: str = PUBLIC_HOST) -> str:
    url = f"{host}/api/{name}"
    if query:
        url += "?" + (query if isinstance(query, str) else urlencode(query))
    return url


def invoke(
    name: str,
    method: str = "POST",
    *,
    url: str | None = None,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> func.HttpResponse:
    """Call the indexed function exactly as the worker would hand it a request, its route's parameters
    read from the URL's path."""
    url = url or function_url(name)
    parts = urlsplit(url)
    req = func.HttpRequest(
        method,
        url,
        headers=dict(headers or {}),
        params=dict(parse_qsl(parts.query, keep_blank_values=True)),
        route_params=FUNCTIONS[name].route_params("api", parts.path),
        body=body,
    )
    return FUNCTIONS[name].call(req)


def post_json(name: str, document: Any, *, url: str | None = None) -> func.HttpResponse:
    return invoke(name, url=url, body=json.dumps(document).encode(), headers={"Content-Type": "application/json"})


def post_form(name: str, form: Mapping[str, str], *, url: str | None = None) -> func.HttpResponse:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return invoke(name, url=url, body=urlencode(form).encode(), headers=headers)


def signed_post(
    name: str,
    form: Mapping[str, str],
    *,
    url: str | None = None,
    token: str = AUTH_TOKEN,
    headers: Mapping[str, str] | None = None,
    signed_url: str | None = None,
    signed_form: Mapping[str, str] | None = None,
) -> func.HttpResponse:
    """A webhook as Twilio sends it: form fields, signed over the URL Twilio requested.

    `signed_url` and `signed_form` sign something other than what is sent, as a forger would.
    """
    url = url or function_url(name)
    signature = RequestValidator(token).compute_signature(signed_url or url, dict(signed_form or form))
    all_headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return invoke(name, url=url, body=urlencode(form).encode(), headers={**all_headers, **(headers or {})})


def signed_get(name: str, query: Mapping[str, str], *, token: str = AUTH_TOKEN) -> func.HttpResponse:
    url = function_url(name, query)
    signature = RequestValidator(token).compute_signature(url, {})
    return invoke(name, "GET", url=url, headers={"X-Twilio-Signature": signature})


def body_json(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def error_of(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    error: dict[str, Any] = body_json(response)["error"]
    assert set(error) >= {"code", "message", "target"}
    return error


def text(response: func.HttpResponse) -> str:
    body: bytes = response.get_body()
    return body.decode("utf-8")


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def logged(caplog: pytest.LogCaptureFixture, logger_name: str) -> list[tuple[str, str]]:
    """What the logger `logger_name` logged, level and whole line, so that a changed word is noticed."""
    return [(record.levelname, record.getMessage()) for record in caplog.records if record.name == logger_name]


class Clock:
    """A clock the tests move by hand, for code that takes one (the credential cache)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
