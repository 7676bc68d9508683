"""What Twilio and callers send the functions: signed webhooks with Twilio's own parameters, and calls."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bench.request import WebRequest
from devtools.sandbox.webhooks import CALLER, TWILIO_NUMBER, sms_params, voice_params

PUBLIC_HOST = "https://myapp.azurewebsites.net"
ACCOUNT_SID = "AC" + "5a1e" * 8
AUTH_TOKEN = "bench-auth-token-5a1e"  # noqa: S105 - made up, known only to the stand-ins
SECRETS = {"twilio-account-sid": ACCOUNT_SID, "twilio-auth-token": AUTH_TOKEN}
ENV_CREDENTIALS = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}


def webhook(function: str) -> WebRequest:
    """voice_url or sms_url as Twilio calls it: form fields, signed over the URL it requested."""
    url = f"{PUBLIC_HOST}/api/{function}"
    form = voice_params(ACCOUNT_SID) if function == "voice_url" else sms_params(ACCOUNT_SID, "Hello")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, form),
    }
    return WebRequest("POST", url, headers, urlencode(form))


def make_call() -> WebRequest:
    body = json.dumps({"to": CALLER, "message": "Hello from Azure"})
    return WebRequest("POST", f"{PUBLIC_HOST}/api/make_call", {"Content-Type": "application/json"}, body)


def twilio_settings(api_base_url: str) -> dict[str, str]:
    """Where both implementations find Twilio's REST API and the number they call from."""
    return {"TWILIO_API_BASE_URL": api_base_url, "TWILIO_FROM_NUMBER": TWILIO_NUMBER}
