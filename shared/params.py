"""Reading a caller's parameters from the query string, a JSON body, a form body or a header."""

from __future__ import annotations

import re
from collections.abc import Mapping

import azure.functions as func
from werkzeug.http import parse_options_header

from shared.errors import ApiError

MAX_BODY_BYTES = 64 * 1024
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
IDEMPOTENCY_KEY = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DIGITS = re.compile("[0-9]+")
# JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 request to Twilio can carry.
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_body_size(req: func.HttpRequest) -> None:
    """Refuse a large body before anything parses it: a forged 8 MB form costs seconds of CPU."""
    declared = req.headers.get("Content-Length", "").strip()
    if (_DIGITS.fullmatch(declared) and int(declared) > MAX_BODY_BYTES) or len(req.get_body()) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"The request body is over {MAX_BODY_BYTES} bytes.", target="body")


def read_params(req: func.HttpRequest) -> dict[str, str]:
    """Query parameters overlaid by the body's, so the body wins as callers expect."""
    params = dict(req.params)
    if req.get_body().strip():
        params.update(_body_params(req))
    return params


def idempotency_key(req: func.HttpRequest) -> str | None:
    """The caller's key as a plain string (None when not sent), so outbound never sees the request.

    Surrounding spaces are not part of it. A header sent twice reaches the app joined with a comma
    (`a,b` or `a, b`), so a key with a comma in it is refused rather than read as a third key.
    """
    sent: str | None = req.headers.get(IDEMPOTENCY_KEY)
    if sent is None:
        return None
    key = sent.strip(" \t")
    if "," in key:
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Send one {IDEMPOTENCY_KEY} header, with no comma in the key: a repeated header arrives joined"
            " with commas.",
            target=IDEMPOTENCY_KEY,
        )
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"{IDEMPOTENCY_KEY} must be 1 to 255 printable ASCII characters.",
            target=IDEMPOTENCY_KEY,
        )
    return key


def media_type(req: func.HttpRequest) -> str:
    mimetype, _ = parse_options_header(req.headers.get("Content-Type", ""))
    return mimetype.lower()


def _body_params(req: func.HttpRequest) -> dict[str, str]:
    content_type = media_type(req)
    if content_type == "application/json" or content_type.endswith("+json"):
        return _json_params(req)
    if req.get_body().lstrip()[:1] in {b"{", b"["}:
        # Read as a form, JSON would lose every parameter: `curl -d '{...}'` sends it as one.
        sent = f"as {content_type}" if content_type else "without a Content-Type"
        raise ApiError(
            400,
            "content_type_mismatch",
            f"The body looks like JSON but was sent {sent}: send it with Content-Type: application/json.",
            target="Content-Type",
        )
    if content_type in FORM_TYPES:
        return dict(req.form)
    raise ApiError(
        415,
        "unsupported_media_type",
        "Send the body as application/json or application/x-www-form-urlencoded,"
        f" not {content_type or 'an untyped body'}.",
        target="Content-Type",
    )


def _json_params(req: func.HttpRequest) -> dict[str, str]:
    try:
        document = req.get_json()
    except (ValueError, RecursionError):  # RecursionError: arrays or objects nested too deep
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.", target="body") from None
    if not isinstance(document, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.", target="body")
    params: dict[str, str] = {}
    for name, value in document.items():
        if _SURROGATE.search(name):  # checked first: the name appears in the other errors
            raise ApiError(400, "invalid_json", "A member name in the body is not valid Unicode.", target="body")
        if value is None:
            continue
        if not isinstance(value, str):
            raise ApiError(400, "invalid_parameter", f"'{name}' must be a string.", target=name)
        if _SURROGATE.search(value):
            raise ApiError(400, "invalid_parameter", f"'{name}' is not valid Unicode text.", target=name)
        params[name] = value
    return params


def text(params: Mapping[str, str], name: str, *, max_length: int, default: str | None = None) -> str:
    value = params.get(name, "").strip() or default
    if not value:
        raise ApiError(400, "missing_parameter", f"'{name}' is required.", target=name)
    if len(value) > max_length:
        raise ApiError(400, "parameter_too_long", f"'{name}' is longer than {max_length} characters.", target=name)
    return value


def token(params: Mapping[str, str], name: str) -> str | None:
    """An optional short identifier such as a voice (Polly.Joanna) or a language (en-US)."""
    value = params.get(name, "").strip()
    if not value:
        return None
    if not _TOKEN.fullmatch(value):
        raise ApiError(
            400,
            "invalid_parameter",
            f"'{name}' may hold only letters, digits, '.', '_' and '-' (at most 64).",
            target=name,
        )
    return value
