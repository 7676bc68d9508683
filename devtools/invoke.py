"""Send a webhook to the app exactly as Twilio would: Twilio's parameters, signed.

python -m devtools.invoke voice_url                 # a call connecting
python -m devtools.invoke sms_url --body "Hi"       # a text arriving
python -m devtools.invoke call_status --status completed
python -m devtools.invoke call                      # replay the last sandbox call's voice_url
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Mapping
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

from devtools.host import load_local_settings
from devtools.sandbox import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN

API_VERSION = "2010-04-01"
CALLER = "+15558675310"
TWILIO_NUMBER = "+15017122661"


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def voice_params(
    account_sid: str,
    *,
    call_sid: str | None = None,
    caller: str = CALLER,
    called: str = TWILIO_NUMBER,
    direction: str = "inbound",
    status: str = "ringing",
) -> dict[str, str]:
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call_sid or sid("CA"),
        "CallStatus": status,
        "Called": called,
        "Caller": caller,
        "Direction": direction,
        "From": caller,
        "To": called,
    }


def sms_params(account_sid: str, body: str, *, sender: str = CALLER, to: str = TWILIO_NUMBER) -> dict[str, str]:
    message_sid = sid("SM")
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "Body": body,
        "From": sender,
        "MessageSid": message_sid,
        "MessagingServiceSid": "",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": message_sid,
        "SmsSid": message_sid,
        "SmsStatus": "received",
        "To": to,
    }


def status_params(account_sid: str, status: str, *, call_sid: str | None = None) -> dict[str, str]:
    params = voice_params(
        account_sid, call_sid=call_sid, caller=TWILIO_NUMBER, called=CALLER, direction="outbound-api", status=status
    )
    params.update({"CallDuration": "7" if status == "completed" else "0", "SequenceNumber": "0"})
    if status == "failed":
        params.update({"ErrorCode": "32009", "SipResponseCode": "500"})
    return params


def send_signed(url: str, params: Mapping[str, str], auth_token: str, method: str = "POST") -> requests.Response:
    """Sign as Twilio does: the full URL, plus the form fields for a POST."""
    if method == "GET":
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
        signature = RequestValidator(auth_token).compute_signature(url, {})
        return requests.get(url, headers={"X-Twilio-Signature": signature}, timeout=15)
    signature = RequestValidator(auth_token).compute_signature(url, dict(params))
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=15)


def replay_call(base_url: str, account_sid: str, auth_token: str, call_sid: str | None = None) -> requests.Response:
    """Twilio's side of a call the app placed in the sandbox: fetch its voice URL, signed."""
    calls = requests.get(f"{base_url}/_sandbox/calls", timeout=15).json()
    chosen = [c for c in calls if call_sid in (None, c["sid"])]
    if not chosen:
        raise SystemExit("No call placed in the sandbox yet: POST /api/make_call first.")
    call = chosen[-1]
    params = voice_params(
        account_sid,
        call_sid=call["sid"],
        caller=call["from"],
        called=call["to"],
        direction="outbound-api",
        status="in-progress",
    )
    return send_signed(call["url"], params, auth_token, call["method"] or "POST")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Send a signed Twilio webhook to the app.")
    parser.add_argument("function", help="voice_url, sms_url, call_status, any later webhook, or 'call'")
    parser.add_argument("--base-url", default="http://127.0.0.1:7071")
    parser.add_argument("--kind", choices=["voice", "sms", "status"], help="payload for a webhook not named above")
    parser.add_argument("--method", choices=["POST", "GET"], default="POST")
    parser.add_argument("--body", default="Hello from the invoker", help="the text of an incoming SMS")
    parser.add_argument("--status", default="completed", help="CallStatus of a status callback")
    parser.add_argument("--sid", help="with 'call': the call to replay (default: the last one)")
    parser.add_argument(
        "--param", action="append", type=_param, default=[], metavar="NAME=VALUE", help="add or override a parameter"
    )
    args = parser.parse_args(argv)

    load_local_settings()
    account_sid = os.environ.get("TWILIO_ACCOUNT_SID") or SANDBOX_ACCOUNT_SID
    auth_token = os.environ.get("TWILIO_AUTH_TOKEN") or SANDBOX_AUTH_TOKEN
    try:
        response = _send(args, account_sid, auth_token)
    except requests.ConnectionError:
        print(f"Nothing answers at {args.base_url}: start the app with `make run`.", file=sys.stderr)
        return 2
    print(f"HTTP {response.status_code} {response.headers.get('Content-Type', '')}")
    print(
        response.text
        if "json" not in response.headers.get("Content-Type", "")
        else json.dumps(response.json(), indent=2)
    )
    return 0 if response.ok else 1


def _param(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def _send(args: argparse.Namespace, account_sid: str, auth_token: str) -> requests.Response:
    if args.function == "call":
        return replay_call(args.base_url, account_sid, auth_token, args.sid)
    kind = args.kind or {"voice_url": "voice", "sms_url": "sms", "call_status": "status"}.get(args.function, "voice")
    params = {
        "voice": lambda: voice_params(account_sid),
        "sms": lambda: sms_params(account_sid, args.body),
        "status": lambda: status_params(account_sid, args.status),
    }[kind]()
    params.update(dict(args.param))
    return send_signed(f"{args.base_url}/api/{args.function}", params, auth_token, args.method)


if __name__ == "__main__":
    sys.exit(main())
