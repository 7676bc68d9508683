"""call_status: Twilio's status callbacks for calls placed by make_call, each kept and logged once."""

import azure.functions as func

from shared.call_events import log_call_event
from shared.webhooks import twilio_webhook

bp = func.Blueprint()


@bp.function_name("call_status")
@bp.route(route="call_status", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@twilio_webhook
def call_status(req: func.HttpRequest) -> func.HttpResponse:
    from shared import outcomes  # on first use: kept out of the cold import

    if outcomes.record_event(outcomes.CALLS, req.form, req.headers.get(outcomes.RETRY_HEADER)):
        log_call_event(req.form)
    return func.HttpResponse(status_code=204)
