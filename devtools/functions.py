"""The HTTP and timer functions of the app, read from the app itself as the Python worker indexes
them, and the request parameters as the Functions host hands them to the worker."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import azure.functions as func
from azure.functions.decorators.function_app import Function
from azure.functions.decorators.http import HttpTrigger
from azure.functions.decorators.timer import TimerTrigger

from shared.webhooks import is_twilio_webhook

ROOT = Path(__file__).resolve().parent.parent
Handler = Callable[[func.HttpRequest], func.HttpResponse | Awaitable[func.HttpResponse]]
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: tuple[str, ...]
    auth_level: str
    handler: Handler

    @property
    def webhook(self) -> bool:
        """Anonymous and checked by Twilio's signature: what Twilio calls, and all a tunnel may reach."""
        return self.auth_level == "ANONYMOUS" and is_twilio_webhook(self.handler)

    def path(self, prefix: str) -> str:
        return "/" + "/".join(part for part in (prefix, self.route) if part)

    def route_params(self, prefix: str, path: str) -> dict[str, str] | None:
        """`req.route_params` when `path` matches the route's template, else None. Literal segments match
        whatever their case, as the Functions host matches them; `{name}` takes one whole segment. Constraints
        and optional or catch-all parameters are not served here."""
        pattern = []
        for segment in self.path(prefix).split("/"):
            parameter = _PARAMETER.fullmatch(segment)
            if parameter is not None:
                pattern.append(f"(?P<{parameter[1]}>[^/]+)")
            elif "{" in segment:
                raise ValueError(f"The local host does not serve the route template {self.route!r}")
            else:
                pattern.append(re.escape(segment))
        match = re.fullmatch("/".join(pattern), path.rstrip("/"), re.IGNORECASE)
        return None if match is None else match.groupdict()

    def call(self, req: func.HttpRequest) -> func.HttpResponse:
        """Run the handler as the worker does; an `async def` one on an event loop of its own here."""
        answer = self.handler(req)
        return asyncio.run(_awaited(answer)) if inspect.isawaitable(answer) else answer


async def _awaited(answer: Awaitable[func.HttpResponse]) -> func.HttpResponse:
    return await answer


@functools.cache
def indexed(app: func.FunctionApp) -> tuple[Function, ...]:
    """The app's functions as the worker indexes them: `get_functions()` may run once per app."""
    return tuple(app.get_functions())


def http_functions(app: func.FunctionApp) -> list[HttpFunction]:
    found = []
    for function in indexed(app):
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        name = function.get_function_name()
        assert name is not None
        methods = tuple(str(getattr(m, "value", m)).upper() for m in (trigger.methods or ())) or (
            "GET",
            "POST",
            "PUT",
            "PATCH",
            "DELETE",
            "HEAD",
            "OPTIONS",
        )
        level = trigger.auth_level or app.auth_level
        found.append(
            HttpFunction(
                name=name,
                route=trigger.route or name,
                methods=methods,
                auth_level=str(getattr(level, "value", level)).upper(),
                handler=function.get_user_function(),
            )
        )
    return found


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str  # NCRONTAB: six fields, seconds first
    handler: Callable[[func.TimerRequest], None]


def timer_functions(app: func.FunctionApp) -> list[TimerFunction]:
    found = []
    for function in indexed(app):
        trigger = function.get_trigger()
        if isinstance(trigger, TimerTrigger):
            name = function.get_function_name()
            assert name is not None
            found.append(TimerFunction(name, trigger.schedule, function.get_user_function()))
    return found


def route_prefix(host_json: Path = ROOT / "host.json") -> str:
    settings = json.loads(host_json.read_text(encoding="utf-8"))
    prefix: str = settings.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return prefix.strip("/")


def query_params(query: str) -> dict[str, str]:
    """`req.params` as the Functions host builds them: names matched case-insensitively (the
    first spelling kept), repeated values joined with commas, and empty values dropped."""
    spellings: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        spelling = spellings.setdefault(name.lower(), name)
        if value:
            values.setdefault(spelling, []).append(value)
    return {name: ",".join(joined) for name, joined in values.items()}
