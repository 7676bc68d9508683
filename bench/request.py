"""A request as the worker hands it to a function, and the clock around one answer.

Light on purpose: a cold child process imports this after the app, so it must load nothing
the app would otherwise have to load itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from devtools.functions import http_functions

Handler = Callable[[func.HttpRequest], func.HttpResponse]


@dataclass(frozen=True)
class WebRequest:
    """Everything needed to build the same func.HttpRequest again, in this process or in a child."""

    method: str
    url: str
    headers: dict[str, str]
    body: str = ""

    def build(self) -> func.HttpRequest:
        return func.HttpRequest(
            self.method,
            self.url,
            headers=self.headers,
            params=dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True)),
            body=self.body.encode(),
        )


def handlers(app: func.FunctionApp) -> dict[str, Handler]:
    """The app's HTTP functions by name, as the worker indexes them (an `async def` one run to its end)."""
    return {function.name: function.call for function in http_functions(app)}


def serve(handler: Handler, request: WebRequest, status: int) -> float:
    """Seconds to build the request and answer it; a wrong status stops the benchmark."""
    start = time.perf_counter()
    response = handler(request.build())
    elapsed = time.perf_counter() - start
    if response.status_code != status:
        raise RuntimeError(f"{request.url} answered {response.status_code}, not {status}: {response.get_body()!r}")
    return elapsed
