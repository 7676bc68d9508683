"""The URL a webhook was signed for, when a trusted proxy names it in X-Forwarded-* headers."""

from __future__ import annotations

import logging

import azure.functions as func
import pytest

from shared import public_url
from shared.public_url import requested_url
from shared.settings import Settings

INTERNAL = "http://10.0.0.5:8080/api/sms_url?x=1"
BEHIND_A_PROXY = Settings(trust_forwarded_headers=True)


def request(headers: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest("POST", INTERNAL, headers=headers, body=b"")


def test_the_first_of_several_forwarded_hosts_is_the_one_signed() -> None:
    req = request({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "front.example, edge.example, origin.example"})

    assert requested_url(req, BEHIND_A_PROXY) == "https://front.example/api/sms_url?x=1"


def test_a_malformed_forwarded_header_is_logged_cut_to_80_characters(caplog: pytest.LogCaptureFixture) -> None:
    value = "[" + "x" * 100

    with caplog.at_level(logging.WARNING, logger=public_url.__name__):
        assert requested_url(request({"X-Forwarded-Host": value}), BEHIND_A_PROXY) == INTERNAL

    assert [r.getMessage() for r in caplog.records] == [
        f"Ignored a malformed X-Forwarded-Host header {value[:80]!r}; checking the URL as received"
    ]
