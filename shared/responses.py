"""HTTP responses in the shapes this app promises: JSON, JSON errors and TwiML."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.errors import ApiError
from shared.params import check_body_size

if TYPE_CHECKING:
    from shared.outbound import Outcome

logger = logging.getLogger(__name__)

Handler = Callable[[func.HttpRequest], func.HttpResponse]
AsyncHandler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]
REPLAYED = "Idempotent-Replayed"


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False), status_code=status, headers=headers, mimetype="application/json"
    )


def error_response(error: ApiError) -> func.HttpResponse:
    return json_response(error.body(), error.status, error.headers)


def outcome_response(outcome: Outcome) -> func.HttpResponse:
    """A replayed answer says so in a header; its status and body are the first answer's. A created call or
    text's `status_url`, where its outcome can be followed, is its Location too."""
    headers = {REPLAYED: "true"} if outcome.replayed else {}
    if outcome.status == 201 and "status_url" in outcome.body:
        headers["Location"] = outcome.body["status_url"]
    return json_response(outcome.body, outcome.status, headers)


def twiml_response(twiml: str) -> func.HttpResponse:
    return func.HttpResponse(twiml, status_code=200, mimetype="text/xml", charset="utf-8")


def answers_errors(handler: Handler) -> Handler:
    """What every function passes through: a body over the limit is refused before anything
    reads it, and every failure becomes a JSON error: an ApiError as itself, anything else
    as a 500 whose details stay in the log, so no stack trace ever reaches a caller."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        return _answered(handler, req)

    return wrapper


def answers_errors_async(handler: AsyncHandler) -> AsyncHandler:
    """answers_errors for a handler that awaits: the Python worker runs it on its event loop, not on a thread."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        return await _answered_async(handler, req)

    return wrapper


def _answered(handler: Handler, req: func.HttpRequest) -> func.HttpResponse:
    """What answers_errors' wrapper runs: a plain function, so mutation testing reaches it."""
    try:
        check_body_size(req)
        return handler(req)
    except ApiError as error:
        return _refused(req, error)
    except Exception:
        return _failed(req)


async def _answered_async(handler: AsyncHandler, req: func.HttpRequest) -> func.HttpResponse:
    try:
        check_body_size(req)
        return await handler(req)
    except ApiError as error:
        return _refused(req, error)
    except Exception:
        return _failed(req)


def _refused(req: func.HttpRequest, error: ApiError) -> func.HttpResponse:
    log = logger.warning if error.status >= 500 else logger.info
    log("%s %s answered %d %s", req.method, _path(req), error.status, error.code)
    return error_response(error)


def _failed(req: func.HttpRequest) -> func.HttpResponse:
    logger.exception("%s %s failed unexpectedly", req.method, _path(req))
    return error_response(ApiError(500, "internal_error", "The function failed unexpectedly."))


def _path(req: func.HttpRequest) -> str:
    url: str = req.url
    return url.split("?", 1)[0]
