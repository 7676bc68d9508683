"""make_call: place an outbound call that says a message when answered."""

import azure.functions as func

from shared.outbound import Call, deliver, place_call
from shared.params import read_params
from shared.responses import answers_errors

bp = func.Blueprint()


@bp.function_name("make_call")
@bp.route(route="make_call", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def make_call(req: func.HttpRequest) -> func.HttpResponse:
    call = Call.from_params(read_params(req))
    return deliver(req, "make_call", call, lambda: place_call(call, req))
