"""message_status: each signed status callback of a text becomes one structured log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support import fixture, signed_post

pytestmark = pytest.mark.usefixtures("credentials_in_env")

ROOT = Path(__file__).resolve().parents[2]
SID = "SM7a6b5c4d3e2f10987a6b5c4d3e2f1098"


def _event_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "shared.call_events"]


def test_message_status_logs_a_delivered_text_as_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    response = signed_post("message_status", fixture("message_status_delivered"))

    assert (response.status_code, response.get_body()) == (204, b"")
    (record,) = _event_lines(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"message_status MessageSid={SID} MessageStatus=delivered ErrorCode="


def test_message_status_logs_an_undelivered_text_as_the_warning_the_api_reference_shows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    signed_post("message_status", fixture("message_status_undelivered"))

    (record,) = _event_lines(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"message_status MessageSid={SID} MessageStatus=undelivered ErrorCode=30003"
    shown = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert f"\n{record.getMessage().replace(SID, 'SM…')}\n" in shown


@pytest.mark.parametrize("status", ["undelivered", "failed", "canceled"])
def test_message_status_logs_a_text_that_did_not_get_through_as_a_warning(
    caplog: pytest.LogCaptureFixture, status: str
) -> None:
    caplog.set_level(logging.INFO)
    signed_post("message_status", {**fixture("message_status_sent"), "MessageStatus": status})

    (record,) = _event_lines(caplog)
    assert record.levelno == logging.WARNING
