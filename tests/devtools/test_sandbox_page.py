"""The sandbox's page, /_sandbox/, as a person sees it in a browser: headless Chromium renders it."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.devtools.sandbox_support import RunningSandbox, rendered_text, settled

pytestmark = pytest.mark.processes


def test_the_page_shows_a_call_with_its_status_changes_and_what_was_said(host: str, tmp_path: Path) -> None:
    document = {"to": "+14155550100", "from": "+15017122661", "message": "Your table is ready", "voice": "alice"}
    sid = requests.post(f"{host}/api/make_call", json=document, timeout=30).json()["sid"]
    settled(host, "calls", sid)

    page = rendered_text(f"{host}/_sandbox/", tmp_path)

    assert f"Call from +15017122661 to +14155550100 completed {sid}" in page
    assert "Your table is ready (alice)" in page
    assert all(f" {status} " in page for status in ("queued", "initiated", "ringing", "in-progress", "completed"))


def test_the_page_shows_why_a_call_failed(sandbox: RunningSandbox, host: str, tmp_path: Path) -> None:
    form = {"To": "+14155550101", "From": "+15017122661", "Url": f"{host}/api/no_such_function"}
    sid = sandbox.rest("POST", "Calls.json", data=form).json()["sid"]
    settled(host, "calls", sid)

    page = rendered_text(f"{host}/_sandbox/", tmp_path)

    assert f"Failed: 11200 HTTP retrieval failure: POST {host}/api/no_such_function answered 404" in page


def test_the_page_shows_a_text_with_its_body_and_status(host: str, tmp_path: Path) -> None:
    document = {"to": "+14155550102", "from": "+15017122661", "body": "Your code is 123456"}
    sid = requests.post(f"{host}/api/send_sms", json=document, timeout=30).json()["sid"]
    settled(host, "messages", sid)

    page = rendered_text(f"{host}/_sandbox/", tmp_path)

    assert f"Text from +15017122661 to +14155550102 delivered {sid}" in page
    assert "Your code is 123456" in page


def test_the_page_shows_the_newest_first(host: str) -> None:
    texts = [{"to": to, "from": "+15017122661", "body": "Hi"} for to in ("+14155550104", "+14155550105")]
    sids = [requests.post(f"{host}/api/send_sms", json=text, timeout=30).json()["sid"] for text in texts]

    page = requests.get(f"{host}/_sandbox/", timeout=10).text

    assert page.index(sids[1]) < page.index(sids[0])


def test_the_page_shows_what_was_said_as_text_never_as_markup(host: str) -> None:
    document = {"to": "+14155550103", "from": "+15017122661", "body": "<script>alert(1)</script>"}
    requests.post(f"{host}/api/send_sms", json=document, timeout=30)

    page = requests.get(f"{host}/_sandbox/", timeout=10).text

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_the_page_refreshes_itself(host: str) -> None:
    page = requests.get(f"{host}/_sandbox/", timeout=10)

    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<meta http-equiv="refresh" content="2">' in page.text
