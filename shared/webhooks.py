"""Twilio webhook signatures: a decorator that answers 403 before the handler runs.

The webhooks are anonymous: a request without a signature is refused before any
credential is needed, and when the credentials or settings needed to check one are
unusable, the caller hears only that the service is unavailable; the details are logged.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator

from shared import credentials
from shared.errors import ApiError
from shared.params import FORM_TYPES, media_type
from shared.public_url import requested_url
from shared.responses import Handler, answers_errors
from shared.settings import LOCAL_HOST, get_settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
# Set on every handler twilio_webhook returns: the local host serves only these through a tunnel.
SIGNED_MARK = "twilio_signed"


def twilio_webhook(handler: Handler) -> Handler:
    """Run the handler only for requests signed by Twilio with this account's auth token."""

    @answers_errors
    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        verify_signature(req, handler.__name__)
        return handler(req)

    setattr(wrapper, SIGNED_MARK, True)
    return wrapper


def is_twilio_webhook(handler: Callable[..., object]) -> bool:
    """Whether the handler's requests must carry Twilio's signature (functools.wraps keeps the mark
    through any decorator put around it)."""
    return getattr(handler, SIGNED_MARK, False) is True


def verify_signature(req: func.HttpRequest, function: str) -> None:
    signature = req.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise _forbidden(_unsigned(function))
    if req.headers.get(SIGNATURE_SETTINGS_HEADER):
        raise _forbidden("Webhooks signed with a shared key are not supported: sign with the account's auth token.")
    with _DetailsLogged():
        settings = get_settings()
    url = requested_url(req, settings)
    params = _signed_params(req, url)
    with _DetailsLogged():
        store = credentials.credential_store()
        cached = store.get()
    if RequestValidator(cached.auth_token).validate(url, params, signature):
        return
    # The token may have been rotated since it was cached: re-read it (rate limited) and check again.
    fresh = store.refresh(cached)
    if fresh is not None and RequestValidator(fresh.auth_token).validate(url, params, signature):
        return
    logger.warning("Refused a webhook with an invalid signature for %s", url.split("?", 1)[0])
    raise _forbidden("The X-Twilio-Signature does not match this request.")


def _signed_params(req: func.HttpRequest, url: str) -> Any:
    """What Twilio signed besides the URL: the form fields, or a JSON body as raw text
    (then hashed into the URL's bodySHA256)."""
    if req.method == "GET" or not req.get_body():
        return {}
    if media_type(req) in FORM_TYPES:
        return req.form
    if "bodySHA256" not in parse_qs(urlsplit(url).query):
        raise _forbidden("A body that is not a form must be signed through bodySHA256 in the URL.")
    return req.get_body().decode("utf-8", errors="replace")


class _DetailsLogged(AbstractContextManager[None]):
    """A setting or credential failure, logged in full and answered without a name in it.

    A plain class rather than @contextmanager, so that mutation testing reaches its logic."""

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        if isinstance(error, ApiError) and error.status >= 500:
            logger.error("Cannot check webhook signatures: %s (%s)", error.message, error.code)
            raise ApiError(
                503, "service_unavailable", "The service is temporarily unavailable; try again later."
            ) from None


def _unsigned(function: str) -> str:
    """On the local host, where an unsigned request is most often one made by hand, how to sign one.
    Read apart from the settings, so that the answer never depends on them being valid."""
    message = f"The request has no {SIGNATURE_HEADER} header."
    if os.environ.get(LOCAL_HOST) != "1":
        return message
    return f"{message} To send one signed as Twilio does: .venv/bin/python -m devtools.invoke {function}"


def _forbidden(message: str) -> ApiError:
    return ApiError(403, "invalid_signature", message, target=SIGNATURE_HEADER)
