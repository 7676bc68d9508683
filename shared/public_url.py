"""The URLs Twilio sees for this app, which a proxy or custom domain may change.

Two different questions: which URL did Twilio sign (a proxy in front may say so in
X-Forwarded-* headers, when trusted), and where should Twilio call back (never
anything a caller sent: a caller could otherwise point Twilio at their own server).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import azure.functions as func

from shared import hosts
from shared.settings import ROUTE_PREFIX, Settings

logger = logging.getLogger(__name__)

_SCHEMES = frozenset({"http", "https"})


def requested_url(req: func.HttpRequest, settings: Settings) -> str:
    """The exact URL Twilio requested and signed: path and query kept byte for byte."""
    url: str = req.url
    parts = urlsplit(url)
    if settings.public_base_url:
        base = urlsplit(settings.public_base_url)
        return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))
    if settings.trust_forwarded_headers:
        scheme = _forwarded(req, "X-Forwarded-Proto", _SCHEMES.__contains__) or parts.scheme
        netloc = _forwarded(req, "X-Forwarded-Host", hosts.is_host) or parts.netloc
        return urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return url


def callback_base(req: func.HttpRequest, settings: Settings) -> str:
    """PUBLIC_BASE_URL, else the app's own host name in Azure, else (off Azure) the URL called."""
    if settings.public_base_url:
        return settings.public_base_url
    if settings.website_hostname:
        return f"https://{settings.website_hostname}"
    url: str = req.url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def function_url(base: str, route: str, query: dict[str, str] | None = None) -> str:
    """The public URL of another function of this app under `base`, for Twilio to call back."""
    url = f"{base}/{ROUTE_PREFIX}/{route}"
    return f"{url}?{urlencode(query)}" if query else url


def _forwarded(req: func.HttpRequest, header: str, valid: Callable[[str], bool]) -> str | None:
    """The first value of a forwarded header, or None when it is absent or malformed."""
    value: str = req.headers.get(header, "")
    first = value.split(",", 1)[0].strip()
    if not first:
        return None
    if not valid(first):
        logger.warning("Ignored a malformed %s header %r; checking the URL as received", header, value[:80])
        return None
    return first
