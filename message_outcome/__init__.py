"""message_outcome: what became of a text send_sms sent; with ?wait=N, once it is final."""

import azure.functions as func

from shared.responses import answers_errors_async

bp = func.Blueprint()


@bp.function_name("message_outcome")
@bp.route(route="messages/{sid}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors_async
async def message_outcome(req: func.HttpRequest) -> func.HttpResponse:
    from shared import outcome_answers, outcomes  # on first use: kept out of the cold import

    return await outcome_answers.serve(outcomes.MESSAGES, req)
