"""send_sms: send a text message."""

import azure.functions as func

from shared.outbound import Sms, deliver
from shared.outbound import send_sms as send
from shared.params import read_params
from shared.responses import answers_errors

bp = func.Blueprint()


@bp.function_name("send_sms")
@bp.route(route="send_sms", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def send_sms(req: func.HttpRequest) -> func.HttpResponse:
    sms = Sms.from_params(read_params(req))
    return deliver(req, "send_sms", sms, lambda: send(sms))
