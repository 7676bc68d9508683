"""make_call: place an outbound call that says a message when answered."""

import azure.functions as func

from shared.outbound import Call, deliver, place_call
from shared.params import idempotency_key, read_params
from shared.public_url import callback_base
from shared.responses import answers_errors, outcome_response
from shared.settings import get_settings

bp = func.Blueprint()


@bp.function_name("make_call")
@bp.route(route="make_call", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def make_call(req: func.HttpRequest) -> func.HttpResponse:
    from shared import outcomes  # on first use: kept out of the cold import

    values, settings = read_params(req), get_settings()
    call = Call.from_params(values, settings)
    key = idempotency_key(req)
    base = callback_base(req, settings)
    outcome = deliver(
        "make_call", call, key, settings, lambda: outcomes.linked(outcomes.CALLS, place_call(call, base), base)
    )
    outcomes.record_created(outcomes.CALLS, outcome, settings)
    return outcome_response(outcome)
