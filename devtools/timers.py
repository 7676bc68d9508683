"""The app's timer functions on the local host, run as the Functions host runs them: each on its NCRONTAB
schedule (UTC, as in Azure by default), in a thread of its own, and on demand through the endpoint Core
Tools serves for that, `POST /admin/functions/<name>` with `{"input": ""}`, answered 202 as it starts.

In Azure that endpoint takes the app's master key. Here it takes no key: the local host mounts it behind
the checks that guard `make_call` (devtools.wsgi), so it answers only a caller on this machine (never a
tunnel or the LAN) and no web page on another origin.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from croniter import croniter
from werkzeug.wrappers import Request, Response

from devtools.functions import TimerFunction, timer_functions
from devtools.wsgi import answer
from shared.errors import ApiError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

ADMIN_ROUTE = "/admin"
_FUNCTION_PATH = re.compile(r"/functions/(?P<name>[^/]+)")
STOP_WAIT = 10.0  # seconds; a sweep gives up on a silent store sooner


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first time after `after` that an NCRONTAB schedule names: six fields, seconds first."""
    return croniter(schedule, after, second_at_beginning=True).get_next(datetime)


def timer_request(*, past_due: bool) -> func.TimerRequest:
    """The trigger's input as the worker decodes it from what the host sends."""
    sent = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": past_due}
    request: func.TimerRequest = TimerRequestConverter.decode(meta.Datum(json.dumps(sent), "json"), trigger_metadata={})
    return request


def run(function: TimerFunction, reason: str, *, past_due: bool = False) -> None:
    """One run, logged as the Functions host logs it; a failure is logged, never raised."""
    logger.info("Executing 'Functions.%s' (Reason='%s')", function.name, reason)
    try:
        function.handler(timer_request(past_due=past_due))
    except Exception:
        logger.exception("Executed 'Functions.%s' (Failed)", function.name)
        return
    logger.info("Executed 'Functions.%s' (Succeeded)", function.name)


class Timers:
    """The timer functions of `app`: `start` runs each on its schedule until `stop`; `admin` is the WSGI
    application the local host mounts at ADMIN_ROUTE."""

    def __init__(self, app: func.FunctionApp) -> None:
        self.functions = {function.name: function for function in timer_functions(app)}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for function in self.functions.values():
            thread = threading.Thread(target=self._keep, args=(function,), name=f"timer-{function.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """No scheduled run starts after this; one under way, scheduled or asked for, is waited for a while,
        so that its log is complete, then left to end with the host."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(STOP_WAIT)

    def banner(self) -> Iterable[str]:
        now = datetime.now(UTC)
        for f in self.functions.values():
            following = next_occurrence(f.schedule, now).isoformat().replace("+00:00", "Z")
            yield (
                f"        {f.name}: timerTrigger {f.schedule} (next at {following};"
                f" run it now: .venv/bin/python -m devtools.invoke {f.name})"
            )

    def _keep(self, function: TimerFunction) -> None:
        """Wait for each occurrence, on the wall clock, and run the function then."""
        due = next_occurrence(function.schedule, datetime.now(UTC))
        while not self._stopping.wait(max(0.0, (due - datetime.now(UTC)).total_seconds())):
            if datetime.now(UTC) < due:
                continue  # woken early: the wait's clock is not the wall clock
            run(function, f"Timer fired at {due.isoformat()}")
            due = next_occurrence(function.schedule, max(due, datetime.now(UTC)))

    def admin(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)

    def _respond(self, request: Request) -> Response:
        try:
            function = self._asked_for(request)
        except ApiError as error:
            return answer(error)
        reason = "This function was programmatically called via the host APIs."
        thread = threading.Thread(target=run, args=(function, reason), name=f"admin-{function.name}", daemon=True)
        thread.start()
        self._threads.append(thread)
        accepted = Response(status=202)
        accepted.headers.remove("Content-Type")  # nothing to type, as the Functions host answers
        return accepted

    def _asked_for(self, request: Request) -> TimerFunction:
        """The function a request may run, or why not."""
        path = request.script_root + request.path
        matched = _FUNCTION_PATH.fullmatch(request.path)
        function = self.functions.get(matched["name"]) if matched else None
        if function is None:
            raise ApiError(404, "not_found", f"No timer function answers {path}.", target="url")
        if request.method != "POST":
            raise ApiError(404, "not_found", f"{path} answers POST only, not {request.method}.", target="method")
        if request.mimetype != "application/json":
            message = 'Send a JSON body such as {"input": ""} with Content-Type: application/json.'
            raise ApiError(415, "unsupported_media_type", message)
        document = request.get_json(silent=True)
        if not isinstance(document, dict) or not isinstance(document.get("input", ""), str):
            raise ApiError(400, "invalid_json", 'The body must be a JSON object such as {"input": ""}.')
        return function
