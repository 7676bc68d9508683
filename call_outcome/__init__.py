"""call_outcome: what became of a call make_call placed; with ?wait=N, once it is final."""

import azure.functions as func

from shared.responses import answers_errors_async

bp = func.Blueprint()


@bp.function_name("call_outcome")
@bp.route(route="calls/{sid}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors_async
async def call_outcome(req: func.HttpRequest) -> func.HttpResponse:
    from shared import outcome_answers, outcomes  # on first use: kept out of the cold import

    return await outcome_answers.serve(outcomes.CALLS, req)
