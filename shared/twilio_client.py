"""One Twilio REST client per process: pooled connections, a timeout, safe retries, clear errors.

Imported where first needed: twilio.rest and requests weigh on every cold start.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from shared.credentials import TwilioCredentials, credential_store
from shared.errors import ApiError
from shared.settings import get_settings

logger = logging.getLogger(__name__)
# twilio logs each request's URL, account SID included, at INFO; keep that out of the logs.
_wire_logger = logging.getLogger(f"{__name__}.wire")
_wire_logger.setLevel(logging.WARNING)
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")

T = TypeVar("T")

MAX_RETRY_AFTER = 5.0
# Twilio's errors that only the caller (or the account owner) can fix, and the field they concern.
_CALLER_MUST_FIX = {21608: "to", 21215: "to", 13227: "to", 21408: "to"}
_TARGETS = {21211: "to", 21212: "from", 21606: "from", 21610: "to", 21614: "to", 21604: "to", 21603: "from"}


def _redact(text: str) -> str:
    return _ACCOUNT_SID.sub("AC…", text)


class _RedactAccountSid(logging.Filter):
    """urllib3 names the request path, and so the account SID, when it warns of a retry."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _ACCOUNT_SID.search(message):
            record.msg, record.args = _redact(message), ()
        return True


_REDACT_ACCOUNT_SID = _RedactAccountSid()


class _BoundedRetryAfter(Retry):
    """urllib3's retry, with Retry-After capped so a throttled request still answers in time."""

    def get_retry_after(self, response: Any) -> float | None:
        retry_after = super().get_retry_after(response)
        return None if retry_after is None else min(retry_after, MAX_RETRY_AFTER)


def _retry_policy() -> Retry:
    # A refused connection or a 429 means Twilio did nothing, so those are retried. Once a
    # request is sent, a timeout or a dropped connection leaves the outcome unknown: a
    # retry could place a second call, so read errors are never retried.
    return _BoundedRetryAfter(
        connect=2,
        read=False,
        other=0,
        status=2,
        status_forcelist=(429,),
        allowed_methods=None,
        backoff_factor=0.25,
        raise_on_status=False,
    )


@functools.cache
def _http_client() -> TwilioHttpClient:
    """One session for the process, so warm calls reuse pooled HTTPS connections: one for each request the
    instance may answer at once. A smaller pool would close and reopen connections (a TLS handshake each)
    whenever more calls overlap than it keeps."""
    return _new_http_client()


def _new_http_client() -> TwilioHttpClient:
    """Built apart from the cache around it, so that mutation testing reaches its pool and retries."""
    settings = get_settings()
    http = TwilioHttpClient(timeout=settings.twilio_http_timeout, logger=_wire_logger)
    assert http.session is not None
    # With the retry policy above; http:// too, for a local sandbox.
    adapter = HTTPAdapter(pool_maxsize=settings.per_instance_concurrency, max_retries=_retry_policy())
    http.session.mount("https://", adapter)
    http.session.mount("http://", adapter)
    for name in ("urllib3.connectionpool", "urllib3.util.retry"):
        logging.getLogger(name).addFilter(_REDACT_ACCOUNT_SID)
    return http


@functools.lru_cache(maxsize=1)
def client_for(credentials: TwilioCredentials) -> Client:
    return _new_client(credentials)


def _new_client(credentials: TwilioCredentials) -> Client:
    """Built apart from the cache around it, so that mutation testing reaches the sandbox's base URL."""
    client = Client(credentials.account_sid, credentials.auth_token, http_client=_http_client())
    api_base_url = get_settings().twilio_api_base_url
    if api_base_url:
        client.api.base_url = api_base_url
    return client


def call_twilio(operation: Callable[[Client], T], *, outcome: str) -> T:
    """Run one REST operation; `outcome` names what may have happened if the answer is lost.

    A 401 means the token was rotated: the credentials are re-read once and, if they
    changed, the operation runs once more (Twilio did nothing the first time).
    """
    store = credential_store()
    try:
        credentials = store.get()
        try:
            return operation(client_for(credentials))
        except TwilioException as error:
            if getattr(error, "status", None) != 401:
                raise
            fresh = store.refresh(credentials)
            if fresh is None:
                raise
            return operation(client_for(fresh))
    except TwilioException as error:
        raise _from_twilio(error, outcome) from None
    except requests.RequestException as error:
        raise _from_transport(error, outcome) from None


def _from_twilio(error: TwilioException, outcome: str) -> ApiError:
    if isinstance(error, TwilioRestException):
        status, code, detail = error.status, error.code, error.msg
    elif isinstance(error, TwilioServiceException):
        status, code, detail = error.status, error.code, error.detail or error.title
    else:
        logger.warning("Twilio client error: %s", type(error).__name__)
        return ApiError(502, "twilio_error", f"The Twilio client failed; {outcome} is unknown.", outcome_unknown=True)
    inner = {"twilio_status": status, "twilio_code": code}
    if code:
        inner["more_info"] = f"https://www.twilio.com/docs/errors/{code}"
    logger.warning("Twilio answered %s (error %s)", status, code)
    if status == 401:
        return ApiError(
            503,
            "twilio_auth_failed",
            "Twilio rejected the account credentials.",
            target="TWILIO_AUTH_TOKEN",
            inner=inner,
        )
    if status == 429:
        return ApiError(
            429, "twilio_rate_limited", "Twilio is rate limiting this account; try again shortly.", inner=inner
        )
    if 400 <= status < 500:
        http_status = 403 if code in _CALLER_MUST_FIX else 400
        target = _CALLER_MUST_FIX.get(code) or _TARGETS.get(code)
        return ApiError(
            http_status,
            "twilio_rejected",
            f"Twilio refused the request: {_redact(str(detail))}",
            target=target,
            inner=inner,
        )
    return ApiError(
        502,
        "twilio_error",
        f"Twilio answered {status}; {outcome} is unknown, check before retrying.",
        inner=inner,
        outcome_unknown=True,
    )


def _from_transport(error: requests.RequestException, outcome: str) -> ApiError:
    timeout = get_settings().twilio_http_timeout
    if isinstance(error, requests.ConnectTimeout):
        return ApiError(
            504, "twilio_timeout", f"Twilio did not accept a connection within {timeout:g} s; nothing was sent."
        )
    if isinstance(error, requests.Timeout):
        return ApiError(
            504,
            "twilio_timeout",
            f"Twilio did not answer within {timeout:g} s; {outcome} is unknown, check before retrying.",
            outcome_unknown=True,
        )
    if _never_connected(error):
        return ApiError(502, "twilio_unreachable", "Twilio could not be reached; nothing was sent.")
    logger.warning("Connection to Twilio failed: %s", type(error).__name__)
    return ApiError(
        502,
        "twilio_unreachable",
        f"The connection to Twilio failed; {outcome} is unknown, check before retrying.",
        outcome_unknown=True,
    )


def _never_connected(error: requests.RequestException) -> bool:
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError)
