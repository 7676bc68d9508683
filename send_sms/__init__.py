"""send_sms: send a text message."""

import azure.functions as func

from shared.outbound import Sms, deliver
from shared.outbound import send_sms as send
from shared.params import idempotency_key, read_params
from shared.public_url import callback_base
from shared.responses import answers_errors, outcome_response
from shared.settings import get_settings

bp = func.Blueprint()


@bp.function_name("send_sms")
@bp.route(route="send_sms", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def send_sms(req: func.HttpRequest) -> func.HttpResponse:
    from shared import outcomes  # on first use: kept out of the cold import

    values, settings = read_params(req), get_settings()
    sms = Sms.from_params(values, settings)
    key = idempotency_key(req)
    base = callback_base(req, settings)
    outcome = deliver("send_sms", sms, key, settings, lambda: outcomes.linked(outcomes.MESSAGES, send(sms, base), base))
    outcomes.record_created(outcomes.MESSAGES, outcome, settings)
    return outcome_response(outcome)
