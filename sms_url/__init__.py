"""sms_url: the TwiML Twilio fetches when a text arrives: reply to it."""

import azure.functions as func

from shared import twiml
from shared.responses import twiml_response
from shared.settings import get_settings
from shared.webhooks import twilio_webhook

bp = func.Blueprint()


@bp.function_name("sms_url")
@bp.route(route="sms_url", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@twilio_webhook
def sms_url(req: func.HttpRequest) -> func.HttpResponse:
    return twiml_response(twiml.reply(get_settings().sms_reply))
