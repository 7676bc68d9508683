"""The sandbox's page, /_sandbox/, as a person sees it in a browser: headless Chromium renders it."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import requests
from werkzeug.wrappers import Response

from tests.devtools.sandbox_support import RunningSandbox, rendered_text, settled
from tests.servers import serving
from tests.support import eventually

pytestmark = pytest.mark.processes

# A page on another origin that tries to place calls, send a text and reach the sandbox, in every way a page
# can without the app's consent: an image, a form posted into a frame, and fetches that need no CORS.
ELSEWHERE_PAGE = """<!doctype html>
<html><body>
<img src="{host}/api/make_call?to=%2B14155550190&from=%2B15017122661">
<iframe name="sink"></iframe>
<form id="text" method="POST" action="{host}/api/send_sms" target="sink">
<input name="to" value="+14155550191"><input name="from" value="+15017122661">
<input name="body" value="From a web page">
</form>
<script>
document.getElementById("text").submit();
const call = new URLSearchParams({{to: "+14155550192", from: "+15017122661"}});
fetch("{host}/api/make_call", {{method: "POST", mode: "no-cors", body: call}});
fetch("{host}/_sandbox/messages/inbound", {{method: "POST", mode: "no-cors", body: "{{}}"}});
</script>
</body></html>
"""
ELSEWHERE_NUMBERS = {"+14155550190", "+14155550191", "+14155550192"}
# What the page sends, as the host's access log names each request.
ELSEWHERE_REQUESTS = {
    "GET /api/make_call",
    "POST /api/send_sms",
    "POST /api/make_call",
    "POST /_sandbox/messages/inbound",
}
_ACCESS_LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) ([^ ?]+)\S* HTTP/1\.1(?:\x1b\[[0-9;]*m)*" (\d{3})')


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


def test_a_web_page_on_another_origin_places_no_call_and_sends_no_text(
    host: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    page = Response(ELSEWHERE_PAGE.format(host=host), mimetype="text/html")
    with serving(page) as elsewhere:  # another loopback origin: another port
        rendered_text(elsewhere, tmp_path, "--virtual-time-budget=10000")

    def answered() -> dict[str, str]:
        lines = (_ACCESS_LINE.search(record.getMessage()) for record in caplog.records if record.name == "werkzeug")
        return {f"{line[1]} {line[2]}": line[3] for line in lines if line is not None}

    assert eventually(lambda: answered().keys() >= ELSEWHERE_REQUESTS, timeout=30)
    records = [*requests.get(f"{host}/_sandbox/calls", timeout=10).json()]
    records += requests.get(f"{host}/_sandbox/messages", timeout=10).json()
    assert [record["to"] for record in records if record["to"] in ELSEWHERE_NUMBERS] == []
    assert {request: answered()[request] for request in ELSEWHERE_REQUESTS} == dict.fromkeys(ELSEWHERE_REQUESTS, "403")
