"""Send a webhook to the app exactly as Twilio would: Twilio's parameters, signed.

python -m devtools.invoke voice_url                 # a call connecting
python -m devtools.invoke sms_url --body "Hi"       # a text arriving (the sandbox records it and the reply)
python -m devtools.invoke call_status --status completed
python -m devtools.invoke call [--sid CA...]        # replay a sandbox call's voice_url (the last one by default)
python -m devtools.invoke sweep_state               # run a timer function now, as Core Tools' admin endpoint does

It sends to the app where `make run` serves it (the address noted in .run/address), else to
http://127.0.0.1:7071; --base-url names another. With PUBLIC_BASE_URL set (a tunnel), a webhook
is signed for the URL the app checks, under PUBLIC_BASE_URL, and sent to where the app listens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import requests

from devtools.functions import ROOT
from devtools.host import ADDRESS_FILE, DEFAULT_PORT, SANDBOX_ROUTE, load_local_settings
from devtools.sandbox.run import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from devtools.sandbox.webhooks import LocalRoute, send_signed, sms_params, status_params, voice_params
from devtools.timers import ADMIN_ROUTE

DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
WEBHOOK_KINDS = {"voice_url": "voice", "sms_url": "sms", "call_status": "status"}


def replay_call(route: LocalRoute, account_sid: str, auth_token: str, call_sid: str | None = None) -> requests.Response:
    """Twilio's side of a call the app placed in the sandbox: fetch its voice URL again, signed."""
    calls = requests.get(f"{route.local_base}{SANDBOX_ROUTE}/calls", timeout=15).json()
    chosen = [c for c in calls if call_sid in (None, c["sid"]) and c["url"]]
    if not chosen:
        raise SystemExit(
            f"No call {call_sid} with a voice URL in the sandbox."
            if call_sid
            else "No call placed in the sandbox yet: POST /api/make_call first."
        )
    call = chosen[-1]
    params = voice_params(
        account_sid,
        call_sid=call["sid"],
        caller=call["from"],
        called=call["to"],
        direction="outbound-api",
        status="in-progress",
    )
    return send_signed(call["url"], params, auth_token, call["method"], route)


def deliver_text(
    route: LocalRoute, url: str, params: Mapping[str, str], account_sid: str, auth_token: str, *, method: str = "POST"
) -> requests.Response:
    """A text arriving at the app's number. Where the sandbox runs, it delivers the text as
    Twilio would and records it, with the reply the sender gets; elsewhere the invoker posts
    the webhook itself. Either way, the app's answer."""
    sandbox = f"{route.local_base}{SANDBOX_ROUTE}/messages"
    if not requests.get(sandbox, timeout=15).ok:
        return send_signed(url, params, auth_token, method, route)
    document = {"url": url, "method": method, "params": dict(params)}
    return requests.post(f"{sandbox}/inbound", json=document, auth=(account_sid, auth_token), timeout=30)


def run_timer(route: LocalRoute, name: str) -> requests.Response | None:
    """Ask the local host to run the timer function `name` now, as Core Tools is asked; None where
    the app has no timer function by that name."""
    response = requests.post(f"{route.local_base}{ADMIN_ROUTE}/functions/{name}", json={"input": ""}, timeout=15)
    return None if response.status_code == 404 else response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Send a signed Twilio webhook to the app, or run a timer function.")
    parser.add_argument(
        "function", help="voice_url, sms_url, call_status, any later webhook, 'call', or a timer function (sweep_state)"
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help=f"where the app listens (default: where `make run` serves it, else {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--address-file",
        type=Path,
        default=ADDRESS_FILE,
        metavar="FILE",
        help=f"where `make run` notes its address (default {ADDRESS_FILE.relative_to(ROOT)})",
    )
    parser.add_argument("--kind", choices=["voice", "sms", "status"], help="payload for a webhook not named above")
    parser.add_argument("--method", choices=["POST", "GET"], default="POST")
    parser.add_argument("--body", default="Hello from the invoker", help="the text of an incoming SMS")
    parser.add_argument("--status", default="completed", help="CallStatus of a status callback")
    parser.add_argument("--sid", help="with 'call': the call to replay (default: the last one)")
    parser.add_argument(
        "--param", action="append", type=_param, default=[], metavar="NAME=VALUE", help="add or override a parameter"
    )
    args = parser.parse_args(argv)
    base_url = args.base_url or _noted_address(args.address_file) or DEFAULT_BASE_URL

    load_local_settings()
    account_sid = os.environ.get("TWILIO_ACCOUNT_SID") or SANDBOX_ACCOUNT_SID
    auth_token = os.environ.get("TWILIO_AUTH_TOKEN") or SANDBOX_AUTH_TOKEN
    route = LocalRoute.from_environ(base_url, os.environ)
    try:
        response = _send(args, route, account_sid, auth_token)
    except requests.ConnectionError:
        print(
            f"Nothing answers at {base_url}: start the app with `make run`, or name it with --base-url.",
            file=sys.stderr,
        )
        return 2
    print(f"HTTP {response.status_code} {response.headers.get('Content-Type', '')}".rstrip())
    if response.status_code == 202:
        print(f"{args.function} runs on the local host now: its log says how it went.")
        return 0
    print(
        response.text
        if "json" not in response.headers.get("Content-Type", "")
        else json.dumps(response.json(), indent=2)
    )
    return 0 if response.ok else 1


def _noted_address(path: Path) -> str | None:
    """The address `make run` noted, if it runs."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _param(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def _send(args: argparse.Namespace, route: LocalRoute, account_sid: str, auth_token: str) -> requests.Response:
    if args.function == "call":
        return replay_call(route, account_sid, auth_token, args.sid)
    if args.kind is None and args.function not in WEBHOOK_KINDS:
        started = run_timer(route, args.function)
        if started is not None:
            return started
    kind = args.kind or WEBHOOK_KINDS.get(args.function, "voice")
    params = {
        "voice": lambda: voice_params(account_sid),
        "sms": lambda: sms_params(account_sid, args.body),
        "status": lambda: status_params(account_sid, args.status),
    }[kind]()
    params.update(dict(args.param))
    url = route.public(f"/api/{args.function}")
    if kind == "sms":
        return deliver_text(route, url, params, account_sid, auth_token, method=args.method)
    return send_signed(url, params, auth_token, args.method, route)


if __name__ == "__main__":
    sys.exit(main())
