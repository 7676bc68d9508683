"""Twilio's webhooks as the app receives them: their parameters, signed as Twilio signs them, and
sent where the app listens. The sandbox's play-out, the invoker and the local host share these."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

from devtools.wsgi import LOOPBACK_NAMES

API_VERSION = "2010-04-01"
CALLER = "+15558675310"
TWILIO_NUMBER = "+15017122661"
WEBHOOK_TIMEOUT = 15.0  # what Twilio gives a webhook to answer


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
    """The parameters of every voice webhook Twilio sends: the TwiML fetch and status callbacks."""
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
    """A text arriving at the app's number, as Twilio posts it to the SMS URL."""
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
    """A status callback of a call the app placed."""
    params = voice_params(
        account_sid, call_sid=call_sid, caller=TWILIO_NUMBER, called=CALLER, direction="outbound-api", status=status
    )
    params.update({"CallDuration": "7" if status == "completed" else "0", "SequenceNumber": "0"})
    if status == "failed":
        params.update({"ErrorCode": "32009", "SipResponseCode": "500"})
    return params


@dataclass(frozen=True)
class LocalRoute:
    """Where a webhook for the app is sent. Behind a tunnel, the app gives Twilio URLs under
    PUBLIC_BASE_URL and checks signatures against them: such a URL is signed as it is, but
    sent to the app's local address, so that nothing needs the tunnel to be up."""

    local_base: str
    public_base: str = ""

    @classmethod
    def from_environ(cls, local_base: str, environ: Mapping[str, str]) -> LocalRoute:
        """PUBLIC_BASE_URL as the app reads it: stripped, without a trailing slash."""
        return cls(local_base.rstrip("/"), environ.get("PUBLIC_BASE_URL", "").strip().rstrip("/"))

    def public(self, path: str) -> str:
        """The URL the app gives Twilio for `path`, and checks signatures against."""
        return (self.public_base or self.local_base) + path

    def target(self, url: str) -> str:
        if self.public_base and _under(self.public_base, url):
            return self.local_base + url[len(self.public_base) :]
        return url

    def owns(self, url: str) -> bool:
        """Whether `url` is the app's: under PUBLIC_BASE_URL, or under the app's local address by
        any loopback name, since the app's links follow the Host it was asked by."""
        return any(_under(base, url) for base in (self.public_base, *self._local_bases()) if base)

    def _local_bases(self) -> list[str]:
        """The local address as given, and under each loopback name."""
        local = urlsplit(self.local_base)
        try:
            port = "" if local.port is None else f":{local.port}"
        except ValueError:  # no host and port a URL could name
            return [self.local_base]
        names = LOOPBACK_NAMES | {local.hostname or "localhost"}
        hosts = (f"[{name}]" if ":" in name else name for name in names)
        return [self.local_base, *(f"{local.scheme}://{host}{port}{local.path}" for host in hosts)]


def _under(base: str, url: str) -> bool:
    """`url` is `base` followed by nothing, a path or a query: the same scheme, host and port,
    whatever their case, and no user info or longer port that would put it elsewhere."""
    return url[: len(base)].lower() == base.lower() and url[len(base) : len(base) + 1] in {"", "/", "?"}


def send_signed(
    url: str, params: Mapping[str, str], auth_token: str, method: str = "POST", route: LocalRoute | None = None
) -> requests.Response:
    """Sign as Twilio does: the full URL, plus the form fields for a POST (a GET carries them
    in its query string). The request goes where `route` says the app listens."""
    form = dict(params)
    if method == "GET":
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(form)}" if form else url
        form = {}
    signature = RequestValidator(auth_token).compute_signature(url, form)
    headers = {"User-Agent": "TwilioProxy/1.1", "X-Twilio-Signature": signature}
    target = route.target(url) if route else url
    return requests.request(method, target, data=form or None, headers=headers, timeout=WEBHOOK_TIMEOUT)
