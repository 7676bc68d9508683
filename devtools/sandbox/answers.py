"""How Twilio's REST API answers, in the sandbox and in the tests' stand-in alike: JSON, Twilio's
error bodies, and its list pages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

TWILIO_API = "https://api.twilio.com"  # the server in Twilio's spec


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    """Twilio's error body."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": more_info, "status": status}


def list_page(items: list[Any], key: str, path: str, query: Mapping[str, str], server: str = "") -> dict[str, Any]:
    """One page of a list at `path`, with Twilio's paging fields, by PageSize and Page. Twilio
    writes their URIs relative to its API (`server` empty); its spec says they are absolute,
    and Prism holds the sandbox to that."""
    size = min(max(_number(query.get("PageSize"), 50), 1), 1000)
    page = max(_number(query.get("Page"), 0), 0)
    start = page * size
    chunk = items[start : start + size]

    def link(number: int) -> str:
        return f"{server}{path}?PageSize={size}&Page={number}"

    return {
        key: chunk,
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": link(0),
        "next_page_uri": link(page + 1) if start + size < len(items) else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": link(page - 1) if page else None,
        "start": start,
        "uri": link(page),
    }


def _number(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def json_response(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document), status, mimetype="application/json")
