"""call_status: each signed status callback becomes one structured log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support import fixture, invoke, signed_post

pytestmark = pytest.mark.usefixtures("credentials_in_env")

ROOT = Path(__file__).resolve().parents[2]


def _event_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "shared.call_events"]


def test_call_status_logs_a_completed_call_as_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    response = signed_post("call_status", fixture("call_status_completed"))

    assert response.status_code == 204
    assert response.get_body() == b""
    (record,) = _event_lines(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "call_status CallSid=CA5f6f2c1b0e4d3a2b1c0d9e8f7a6b5c4d CallStatus=completed CallDuration=12 ErrorCode= "
        "SipResponseCode=200"
    )


def test_call_status_logs_a_failed_call_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    signed_post("call_status", fixture("call_status_failed"))

    (record,) = _event_lines(caplog)
    assert record.levelno == logging.WARNING
    assert "CallStatus=failed" in record.getMessage().split()


def test_call_status_log_line_is_the_one_the_api_reference_shows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    signed_post("call_status", fixture("call_status_failed"))

    (record,) = _event_lines(caplog)
    sid = "CA9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
    assert record.getMessage() == (
        f"call_status CallSid={sid} CallStatus=failed CallDuration=0 ErrorCode=32009 SipResponseCode=500"
    )
    shown = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert f"\n{record.getMessage().replace(sid, 'CA…')}\n" in shown


@pytest.mark.parametrize(
    ("name", "status"),
    [("call_status_busy", "busy"), ("call_status_no_answer", "no-answer"), ("call_status_canceled", "canceled")],
)
def test_call_status_logs_an_unanswered_call_as_a_warning(
    caplog: pytest.LogCaptureFixture, name: str, status: str
) -> None:
    caplog.set_level(logging.INFO)
    signed_post("call_status", fixture(name))

    (record,) = _event_lines(caplog)
    assert f"CallStatus={status}" in record.getMessage().split()
    assert record.levelno == logging.WARNING


def test_call_status_logs_a_completed_call_with_an_error_code_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    signed_post("call_status", fixture("call_status_completed_with_error"))

    (record,) = _event_lines(caplog)
    assert {"CallStatus=completed", "ErrorCode=11200"} <= set(record.getMessage().split())
    assert record.levelno == logging.WARNING


def test_call_status_rejects_an_unsigned_callback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    response = invoke(
        "call_status", body=b"CallStatus=failed", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 403
    assert _event_lines(caplog) == []
