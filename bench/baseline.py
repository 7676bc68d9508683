"""voice_url, sms_url and make_call written as the classic "How to use Twilio for voice and SMS" guide
writes them: every SDK imported up front, the credentials read from Key Vault with a new
DefaultAzureCredential and SecretClient on every request, and a new Twilio Client per call.

It answers the same requests as the app, so the benchmark can run both on the same stand-ins.
"""

import json
import os
from urllib.parse import urlencode

import azure.functions as func
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def twilio_credentials() -> tuple[str, str]:
    secrets = SecretClient(vault_url=os.environ["KEY_VAULT_URL"], credential=DefaultAzureCredential())
    account_sid = secrets.get_secret("twilio-account-sid").value or ""
    auth_token = secrets.get_secret("twilio-auth-token").value or ""
    return account_sid, auth_token


def signed_by_twilio(req: func.HttpRequest, auth_token: str) -> bool:
    signature = req.headers.get("X-Twilio-Signature", "")
    valid: bool = RequestValidator(auth_token).validate(req.url, req.form, signature)
    return valid


@app.route(route="voice_url", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def voice_url(req: func.HttpRequest) -> func.HttpResponse:
    _, auth_token = twilio_credentials()
    if not signed_by_twilio(req, auth_token):
        return func.HttpResponse("Invalid signature", status_code=403)
    response = VoiceResponse()
    response.say(req.params.get("message", "Hello Monkey!"))
    return func.HttpResponse(str(response), mimetype="text/xml")


@app.route(route="sms_url", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def sms_url(req: func.HttpRequest) -> func.HttpResponse:
    _, auth_token = twilio_credentials()
    if not signed_by_twilio(req, auth_token):
        return func.HttpResponse("Invalid signature", status_code=403)
    response = MessagingResponse()
    response.message("Hey, thanks for the ping! Twilio and Azure rock!")
    return func.HttpResponse(str(response), mimetype="text/xml")


@app.route(route="make_call", methods=["GET", "POST"])
def make_call(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_json() if req.get_body() else {}
    to = req.params.get("to") or body.get("to")
    message = req.params.get("message") or body.get("message") or "Hello Monkey!"
    account_sid, auth_token = twilio_credentials()
    client = Client(account_sid, auth_token)
    if os.environ.get("TWILIO_API_BASE_URL"):  # the benchmark's local Twilio
        client.api.base_url = os.environ["TWILIO_API_BASE_URL"]
    base_url = req.url.split("/api/", 1)[0]
    call = client.calls.create(
        to=to,
        from_=os.environ["TWILIO_FROM_NUMBER"],
        url=f"{base_url}/api/voice_url?{urlencode({'message': message})}",
    )
    return func.HttpResponse(json.dumps({"sid": call.sid}), status_code=201, mimetype="application/json")
