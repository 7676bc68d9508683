"""message_status: Twilio's status callbacks for texts sent by send_sms, each kept and logged once."""

import azure.functions as func

from shared.call_events import log_message_event
from shared.webhooks import twilio_webhook

bp = func.Blueprint()


@bp.function_name("message_status")
@bp.route(route="message_status", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@twilio_webhook
def message_status(req: func.HttpRequest) -> func.HttpResponse:
    from shared import outcomes  # on first use: kept out of the cold import

    if outcomes.record_event(outcomes.MESSAGES, req.form, req.headers.get(outcomes.RETRY_HEADER)):
        log_message_event(req.form)
    return func.HttpResponse(status_code=204)
