"""The URLs Twilio sees for this app, which a proxy or custom domain may change."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import azure.functions as func

from shared.settings import ROUTE_PREFIX, Settings


def requested_url(req: func.HttpRequest, settings: Settings) -> str:
    """The exact URL Twilio requested and signed: path and query kept byte for byte."""
    url: str = req.url
    parts = urlsplit(url)
    if settings.public_base_url:
        base = urlsplit(settings.public_base_url)
        return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))
    if settings.trust_forwarded_headers:
        scheme = _first(req.headers.get("X-Forwarded-Proto")) or parts.scheme
        netloc = _first(req.headers.get("X-Forwarded-Host")) or parts.netloc
        return urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return url


def function_url(req: func.HttpRequest, settings: Settings, route: str, query: dict[str, str] | None = None) -> str:
    """The public URL of another function of this app, for Twilio to call back."""
    parts = urlsplit(requested_url(req, settings))
    base = settings.public_base_url or urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    url = f"{base}/{ROUTE_PREFIX}/{route}"
    return f"{url}?{urlencode(query)}" if query else url


def _first(value: str | None) -> str:
    return (value or "").split(",", 1)[0].strip()
