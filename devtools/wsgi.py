"""The function app as a WSGI application, doing what the Functions host does with HTTP, on werkzeug.

It indexes `function_app.app` as the Python worker does and serves every HTTP function at
/<routePrefix>/<route> as the Functions host does in Azure: routes match whatever their case,
a route holding `//` or `%2F` or a method the function does not declare is a 404, and the request
and the answer cross over as they cross between the host and the worker. Like Core Tools, it does
not ask for function keys, so it guards what a key would:

- it answers only requests addressed to a loopback name (or a name it is given), against DNS rebinding;
- what comes through a tunnel or from another machine reaches only the anonymous, Twilio-signed
  webhooks, never `make_call`, `send_sms` or the sandbox;
- a web page on another origin reaches nothing but those webhooks either;
- a body over the functions' limit is refused before it is read, and a request target that is not a
  path (`POST http://host/api/make_call`) is refused, as a front end would, before any link is built from it.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import azure.functions as func
from azure.functions.http import HttpResponseConverter
from werkzeug.exceptions import ClientDisconnected
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_input_stream

from devtools.functions import HttpFunction, http_functions, query_params
from shared import hosts
from shared.errors import ApiError
from shared.params import MAX_BODY_BYTES
from shared.responses import error_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# A Host header: a name or a bracketed IPv6 address, then an optional port.
_HOST_HEADER = re.compile(r"(?P<name>\[[^\]]*\]|[^:\[\]]*)(?::\d*)?")
# A proxy names the client it forwards for: a request carrying these came through a tunnel, even one
# that rewrites Host to localhost.
_FORWARDING_HEADERS = ("X-Forwarded-For", "X-Forwarded-Host", "Forwarded")
# What a browser says of a request a page on another origin makes (Fetch Metadata).
_OTHER_SITES = frozenset({"cross-site", "same-site"})
# A route segment holding an encoded slash, or an empty one: Azure routes neither.
_UNROUTABLE = re.compile(r"//|%2f", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
_READ_SIZE = 64 * 1024


class LocalHost:
    """The WSGI application: HTTP in, `func.HttpRequest` to the handler, `func.HttpResponse` back out.

    `mounts` serve other WSGI applications under a path (the Twilio sandbox), behind the same
    checks as `make_call`. With `app_service_frontend`, the URL the app sees is rebuilt from the
    headers App Service's front-end adds, as the host does there.
    """

    def __init__(
        self,
        app: func.FunctionApp,
        prefix: str,
        *,
        mounts: Mapping[str, WSGIApplication] | None = None,
        allowed_hosts: Iterable[str] = (),
        app_service_frontend: bool = False,
    ) -> None:
        self.prefix = prefix
        self.functions = http_functions(app)
        self.routes: dict[str, list[HttpFunction]] = {}
        for function in self.functions:
            self.routes.setdefault(_route_key(function.path(prefix)), []).append(function)
        self.allowed_hosts = LOOPBACK_NAMES | {name.strip("[]").lower() for name in allowed_hosts}
        self.app_service_frontend = app_service_frontend
        self.webhooks = ", ".join(f.name for f in self.functions if f.webhook) or "none"
        guarded = {path: self._guarded(mounted) for path, mounted in (mounts or {}).items()}
        self._dispatch = DispatcherMiddleware(self._serve, guarded)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        refusal = _malformed(environ) or self._misdirected(environ) or _unroutable(environ)
        if refusal is not None:
            return answer(refusal)(environ, start_response)
        return self._dispatch(environ, start_response)

    def _misdirected(self, environ: WSGIEnvironment) -> ApiError | None:
        """A Host this host does not answer: the answer names the settings that make it answer,
        never the names it answers, which a DNS-rebinding page could read."""
        host = environ.get("HTTP_HOST", "")
        if _host_name(host) in self.allowed_hosts:
            return None
        logger.warning("Refused a request addressed to %r, a name this host does not answer", host)
        message = (
            f"This host does not answer requests addressed to {host!r}. Behind a tunnel, set PUBLIC_BASE_URL"
            " to the tunnel's URL; to be reached at another address, start it with --host."
        )
        return ApiError(421, "misdirected_request", message, target="Host")

    def _serve(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)

    def _respond(self, request: Request) -> Response:
        routed = self.routes.get(_route_key(request.path)) or self._templated(request.path)
        function = next((f for f in routed if request.method in f.methods), None)
        if function is not None:
            refusal = (None if function.webhook else self._foreign(request)) or _buffer_body(request.environ)
            if refusal is not None:
                return answer(refusal)
            route_params = function.route_params(self.prefix, request.path)
            return invoke(function, request, app_service_frontend=self.app_service_frontend, route_params=route_params)
        if not routed:
            return answer(ApiError(404, "not_found", f"No function answers {request.path}.", target="url"))
        methods = ", ".join(dict.fromkeys(m for f in routed for m in f.methods))
        message = f"{request.path} answers {methods} only, not {request.method}."
        return answer(ApiError(404, "not_found", message, target="method"))

    def _guarded(self, app: WSGIApplication) -> WSGIApplication:
        """A mounted application (the sandbox) behind the checks that guard `make_call`."""

        def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            refusal = self._foreign(Request(environ)) or _buffer_body(environ)
            if refusal is not None:
                return answer(refusal)(environ, start_response)
            return app(environ, start_response)

        return guarded

    def _foreign(self, request: Request) -> ApiError | None:
        """Why a request that is not a webhook is refused: it came from elsewhere than this machine's
        own tools (a tunnel, another machine), or from a web page on another origin."""
        path = request.script_root + request.path  # the sandbox sees its own path only
        elsewhere = from_elsewhere(request)
        if elsewhere is not None:
            logger.warning(
                "Refused %s %s: it %s, and only Twilio's signed webhooks are served there",
                request.method,
                path,
                elsewhere,
            )
            message = (
                f"{path} is served to this machine only. Through a tunnel or from another machine,"
                f" this host serves only Twilio's signed webhooks ({self.webhooks})."
            )
            return ApiError(403, "local_only", message, target="url")
        page = other_origin(request)
        if page is not None:
            logger.warning(
                "Refused %s %s: it was sent by a web page on another origin (%s)", request.method, path, page
            )
            message = (
                f"{path} does not answer a web page on another origin; send the request yourself"
                " (curl, the invoker) or use the sandbox's own page."
            )
            return ApiError(403, "cross_origin_request", message, target="Origin")
        return None

    def _templated(self, path: str) -> list[HttpFunction]:
        """The functions whose route has parameters, such as calls/{sid}, that `path` matches."""
        return [f for f in self.functions if "{" in f.route and f.route_params(self.prefix, path) is not None]

    def banner(self, base_url: str) -> str:
        lines = ["Functions:", ""]
        for f in self.functions:
            lines.append(f"        {f.name}: [{','.join(f.methods)}] {base_url}{f.path(self.prefix)}")
        return "\n".join(lines)


def invoke(
    function: HttpFunction,
    request: Request,
    *,
    app_service_frontend: bool = False,
    route_params: dict[str, str] | None = None,
) -> Response:
    req = worker_request(request, app_service_frontend=app_service_frontend, route_params=route_params)
    try:
        result = function.call(req)
    except Exception:
        logger.exception("Executed 'Functions.%s' (Failed)", function.name)
        return Response(status=500)
    return _to_wsgi(result)


def worker_request(
    request: Request, *, app_service_frontend: bool = False, route_params: dict[str, str] | None = None
) -> func.HttpRequest:
    """The request as the Functions host hands it to the worker: header names in lower case,
    the query string parsed its way, the route's parameters, and the URL with the path and
    query string as sent (Twilio signs the exact URL)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    scheme, host = request.scheme, request.host
    if app_service_frontend:
        # App Service's front-end ends TLS and names the site in these headers; the host puts them back.
        scheme = headers.get("x-forwarded-proto", scheme)
        host = headers["host"] = headers.get("disguised-host", host)
    target = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    return func.HttpRequest(
        method=request.method,
        url=f"{scheme}://{host}{target}" if target else request.url,
        headers=headers,
        params=query_params(request.query_string.decode("utf-8", errors="replace")),
        route_params=route_params,
        body=request.get_data(),
    )


def _to_wsgi(result: func.HttpResponse) -> Response:
    """The answer as the worker returns it to the host, through the library's own converter:
    a charset is added to text/* types only, so JSON goes out as plain application/json."""
    answer = HttpResponseConverter.encode(result, expected_type=None).value
    headers = [(name, header.value) for name, header in answer["headers"].items()]
    headers += [("Set-Cookie", m.OutputString()) for cookie in answer["cookies"] or () for m in cookie.values()]
    return Response(answer["body"].value, status=int(answer["status_code"].value), headers=headers)


def answer(error: ApiError) -> Response:
    return _to_wsgi(error_response(error))


def _malformed(environ: WSGIEnvironment) -> ApiError | None:
    """A request target that is not a path (absolute-form or `*`), as only a proxy is sent, or a
    Content-Length that is not a number: a front end answers both 400."""
    target = environ.get("REQUEST_URI") or environ.get("RAW_URI") or "/"
    if not target.startswith("/"):
        message = "The request target must be a path, such as /api/make_call, not a URL."
        return ApiError(400, "malformed_request", message, target="url")
    declared = environ.get("CONTENT_LENGTH", "")
    if declared and not _DIGITS.fullmatch(declared):
        return ApiError(400, "malformed_request", "Content-Length must be a number of bytes.", target="Content-Length")
    return None


def _unroutable(environ: WSGIEnvironment) -> ApiError | None:
    """`/api%2Fmake_call` and `//api/make_call` reach no function in Azure: werkzeug would decode the
    one and fold the other into /api/make_call."""
    target = environ.get("REQUEST_URI") or environ.get("RAW_URI") or "/"
    path = target.split("?", 1)[0]
    if not _UNROUTABLE.search(path):
        return None
    return ApiError(404, "not_found", f"No function answers {path}.", target="url")


def _buffer_body(environ: WSGIEnvironment) -> ApiError | None:
    """Read the body, refusing it once it is over the limit: from its Content-Length before a byte
    is read, else (chunked) as soon as one byte more than the limit has arrived. What is served
    next reads it from memory."""
    declared = environ.get("CONTENT_LENGTH", "")
    too_large = ApiError(413, "payload_too_large", f"The request body is over {MAX_BODY_BYTES} bytes.", target="body")
    if declared and int(declared) > MAX_BODY_BYTES:
        return too_large
    stream = get_input_stream(environ)
    body = bytearray()
    try:
        while len(body) <= MAX_BODY_BYTES and (data := stream.read(min(_READ_SIZE, MAX_BODY_BYTES + 1 - len(body)))):
            body += data
    except (OSError, ClientDisconnected):
        return ApiError(400, "malformed_request", "The body ended before its framing said it would.", target="body")
    if len(body) > MAX_BODY_BYTES:
        return too_large
    environ["wsgi.input"] = io.BytesIO(body)
    return None


def from_elsewhere(request: Request) -> str | None:
    """How a request shows it did not come from this machine's own tools, if it does."""
    forwarded = next((name for name in _FORWARDING_HEADERS if name in request.headers), None)
    if forwarded is not None:
        return f"came through a proxy ({forwarded})"
    host = request.headers.get("Host", "")
    if not hosts.is_loopback(_host_name(host)):
        return f"was addressed to {host!r}, not to a loopback name"
    peer = request.remote_addr
    if not hosts.is_loopback(peer):
        return f"came from {peer}, not from this machine"
    return None


def other_origin(request: Request) -> str | None:
    """How a request shows that a web page on another origin sent it, if it does."""
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in _OTHER_SITES:
        return f"Sec-Fetch-Site: {site}"
    origin = request.headers.get("Origin")
    if origin is not None and origin.strip().lower() != f"{request.scheme}://{request.host}".lower():
        return f"Origin: {origin!r}"
    return None


def _route_key(path: str) -> str:
    """Routes match whatever their case, with or without a trailing slash, as in ASP.NET Core."""
    return path.lower().rstrip("/")


def _host_name(host: str) -> str | None:
    match = _HOST_HEADER.fullmatch(host)
    return match["name"].strip("[]").lower() if match else None
