"""The function app as a WSGI application, doing what the Functions host does with HTTP, on werkzeug.

It indexes `function_app.app` as the Python worker does and serves every HTTP function at
/<routePrefix>/<route> as the Functions host does in Azure: routes match whatever their case,
a method the function does not declare is a 404, and the request and the answer cross over
as they cross between the host and the worker. Like Core Tools, it does not ask for function
keys. It answers only requests addressed to a loopback name (or a name it is given), so that
a web page cannot drive it through DNS rebinding.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import azure.functions as func
from azure.functions.http import HttpResponseConverter
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Request, Response

from devtools.functions import HttpFunction, http_functions, query_params
from shared.errors import ApiError
from shared.responses import error_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# A Host header: a name or a bracketed IPv6 address, then an optional port.
_HOST_HEADER = re.compile(r"(?P<name>\[[^\]]*\]|[^:\[\]]*)(?::\d*)?")


class LocalHost:
    """The WSGI application: HTTP in, `func.HttpRequest` to the handler, `func.HttpResponse` back out.

    `mounts` serve other WSGI applications under a path (the Twilio sandbox), behind the same
    Host check. With `app_service_frontend`, the URL the app sees is rebuilt from the headers
    App Service's front-end adds, as the host does there.
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
        self._dispatch = DispatcherMiddleware(self._serve, dict(mounts or {}))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST", "")
        if _host_name(host) not in self.allowed_hosts:
            names = ", ".join(sorted(f"[{name}]" if ":" in name else name for name in self.allowed_hosts))
            message = (
                f"This host answers only requests addressed to {names}, not to {host!r}."
                " Behind a tunnel, set PUBLIC_BASE_URL to the tunnel's URL."
            )
            return _answer(ApiError(421, "misdirected_request", message, target="Host"))(environ, start_response)
        return self._dispatch(environ, start_response)

    def _serve(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(Request(environ))(environ, start_response)

    def _respond(self, request: Request) -> Response:
        routed = self.routes.get(_route_key(request.path)) or self._templated(request.path)
        function = next((f for f in routed if request.method in f.methods), None)
        if function is not None:
            route_params = function.route_params(self.prefix, request.path)
            return invoke(function, request, app_service_frontend=self.app_service_frontend, route_params=route_params)
        if not routed:
            return _answer(ApiError(404, "not_found", f"No function answers {request.path}.", target="url"))
        methods = ", ".join(dict.fromkeys(m for f in routed for m in f.methods))
        message = f"{request.path} answers {methods} only, not {request.method}."
        return _answer(ApiError(404, "not_found", message, target="method"))

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


def _answer(error: ApiError) -> Response:
    return _to_wsgi(error_response(error))


def _route_key(path: str) -> str:
    """Routes match whatever their case, with or without a trailing slash, as in ASP.NET Core."""
    return path.lower().rstrip("/")


def _host_name(host: str) -> str | None:
    match = _HOST_HEADER.fullmatch(host)
    return match["name"].strip("[]").lower() if match else None
