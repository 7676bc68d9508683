"""voice_url: the TwiML Twilio fetches when a call connects: say the message."""

import azure.functions as func

from shared import params, twiml
from shared.outbound import MAX_MESSAGE
from shared.responses import twiml_response
from shared.settings import get_settings
from shared.webhooks import twilio_webhook

bp = func.Blueprint()


@bp.function_name("voice_url")
@bp.route(route="voice_url", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@twilio_webhook
def voice_url(req: func.HttpRequest) -> func.HttpResponse:
    message = params.text(req.params, "message", max_length=MAX_MESSAGE, default=get_settings().voice_message)
    voice, language = params.token(req.params, "voice"), params.token(req.params, "language")
    return twiml_response(twiml.say(message, voice=voice, language=language))
