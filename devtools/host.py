"""A small local host for the function app, doing what `func start` does, on werkzeug.

It indexes `function_app.app` as the Python worker does and serves every HTTP function at
/<routePrefix>/<route> as the Functions host does in Azure: routes match whatever their case,
a method the function does not declare is a 404, and the request and the answer cross over
as they cross between the host and the worker. Like Core Tools, it does not ask for function
keys. It answers only requests addressed to a loopback name (or a name it is given), so that
a web page cannot drive it through DNS rebinding.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import azure.functions as func
from azure.functions.http import HttpResponseConverter
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devtools.azurite import Azurite
from devtools.functions import ROOT, HttpFunction, http_functions, query_params, route_prefix
from devtools.ports import port_taken
from devtools.sandbox.run import Sandbox, has_credentials, use_sandbox_credentials
from devtools.sandbox.webhooks import LocalRoute
from shared.errors import ApiError
from shared.responses import error_response
from shared.settings import STORAGE

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

SANDBOX_ROUTE = "/_sandbox"
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
        routed = self.routes.get(_route_key(request.path), [])
        function = next((f for f in routed if request.method in f.methods), None)
        if function is not None:
            return invoke(function, request, app_service_frontend=self.app_service_frontend)
        if not routed:
            return _answer(ApiError(404, "not_found", f"No function answers {request.path}.", target="url"))
        methods = ", ".join(dict.fromkeys(m for f in routed for m in f.methods))
        message = f"{request.path} answers {methods} only, not {request.method}."
        return _answer(ApiError(404, "not_found", message, target="method"))

    def banner(self, base_url: str) -> str:
        lines = ["Functions:", ""]
        for f in self.functions:
            lines.append(f"        {f.name}: [{','.join(f.methods)}] {base_url}{f.path(self.prefix)}")
        return "\n".join(lines)


def invoke(function: HttpFunction, request: Request, *, app_service_frontend: bool = False) -> Response:
    req = worker_request(request, app_service_frontend=app_service_frontend)
    try:
        result = function.handler(req)
    except Exception:
        logger.exception("Executed 'Functions.%s' (Failed)", function.name)
        return Response(status=500)
    return _to_wsgi(result)


def worker_request(request: Request, *, app_service_frontend: bool = False) -> func.HttpRequest:
    """The request as the Functions host hands it to the worker: header names in lower case,
    the query string parsed its way, and the URL with the path and query string as sent
    (Twilio signs the exact URL)."""
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


def load_local_settings(path: Path = ROOT / "local.settings.json") -> None:
    """Put local.settings.json's Values into the environment, as Core Tools does; the
    environment wins, so `TWILIO_SANDBOX=false make run` means what it says."""
    if not path.exists():
        return
    values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    for name, value in values.items():
        os.environ.setdefault(name, str(value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the function app locally, as `func start` does.")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (requests may name it)")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--prism-port", type=int, default=4010, help="the Twilio sandbox's port")
    parser.add_argument(
        "--azurite-port", type=int, default=0, help="the storage emulator's (Azurite's) port; default: any free port"
    )
    parser.add_argument(
        "--app-service-frontend",
        action="store_true",
        help="build the URL the app sees from X-Forwarded-Proto and DISGUISED-HOST, as behind App Service's front-end",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    load_local_settings()

    sandbox = os.environ.get("TWILIO_SANDBOX", "true").strip().lower() != "false"
    if not sandbox and not has_credentials(os.environ):
        print("TWILIO_SANDBOX=false needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or KEY_VAULT_URL.", file=sys.stderr)
        return 2
    azurite = None if _storage_configured(os.environ) else Azurite(args.azurite_port)
    clash = _port_clash(args, sandbox=sandbox, azurite=azurite is not None)
    if clash:
        print(clash, file=sys.stderr)
        return 1

    signal.signal(signal.SIGTERM, _stop)
    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, _stop)
    # The sandbox sends the app's webhooks here, even those addressed to PUBLIC_BASE_URL.
    route = LocalRoute.from_environ(f"http://{args.host}:{args.port}", os.environ)
    twilio = Sandbox(args.host, args.prism_port, route) if sandbox else None
    try:
        if azurite is not None and not _start_storage(azurite):
            return 1
        return _serve(args, twilio)
    except KeyboardInterrupt:
        return 0
    finally:
        if twilio is not None:
            twilio.stop()
        if azurite is not None:
            azurite.stop()


def _port_clash(args: argparse.Namespace, *, sandbox: bool, azurite: bool) -> str | None:
    """Checked before anything starts, so that a clash leaves nothing running."""
    ports = [(args.host, args.port, "the app", "PORT", "--port")]
    if sandbox:
        ports.append((args.host, args.prism_port, "the Twilio sandbox", "PRISM_PORT", "--prism-port"))
    if azurite and args.azurite_port:
        ports.append((Azurite.host, args.azurite_port, "the storage emulator", "AZURITE_PORT", "--azurite-port"))
    for host, port, role, variable, option in ports:
        if port_taken(host, port):
            return (
                f"Port {port} ({role}) is already in use, so nothing was started;"
                f" pick another: make run {variable}={port + 1} (or {option} {port + 1})."
            )
    return None


def _storage_configured(environ: Mapping[str, str]) -> bool:
    """Whether the user named a storage account, as AzureWebJobsStorage or its identity-based settings.
    `UseDevelopmentStorage=true` (Core Tools' value, in local.settings.json.example) names no account
    but the local emulator, which this host runs."""
    return any(
        (name == STORAGE and not _is_emulator(environ[name])) or name.startswith(f"{STORAGE}__") for name in environ
    )


def _is_emulator(connection_string: str) -> bool:
    """`UseDevelopmentStorage=true` among the connection string's `;`-separated settings, in any case."""
    settings = (part.partition("=") for part in connection_string.split(";"))
    return any(
        key.strip().lower() == "usedevelopmentstorage" and value.strip().lower() == "true" for key, _, value in settings
    )


def _start_storage(azurite: Azurite) -> bool:
    """Azurite's Table service for the app's idempotency keys and limits, in memory while the host runs."""
    print("Starting the storage emulator (Azurite's Table service)...", flush=True)
    try:
        azurite.start()
    except (RuntimeError, subprocess.SubprocessError) as error:
        print(f"The storage emulator did not start: {error}", file=sys.stderr)
        return False
    os.environ[STORAGE] = azurite.connection_string
    print(f"Storage emulator: {azurite.url} (AzureWebJobsStorage for the app's idempotency keys and limits)")
    return True


def _serve(args: argparse.Namespace, twilio: Sandbox | None) -> int:
    mounts: dict[str, WSGIApplication] = {}
    if twilio is not None:
        prism = twilio.prism
        print(f"Starting the Twilio sandbox (Prism on Twilio's OpenAPI spec) on port {prism.port}...", flush=True)
        try:
            os.environ["TWILIO_API_BASE_URL"] = twilio.start()
        except (RuntimeError, subprocess.SubprocessError) as error:
            print(f"The Twilio sandbox did not start: {error}", file=sys.stderr)
            return 1
        mounts[SANDBOX_ROUTE] = twilio.pass_through
        print(f"Twilio sandbox: {prism.url} (the app's Twilio REST calls go there, through a pass-through)")
        print(f"Calls and texts as they play out: http://{args.host}:{args.port}{SANDBOX_ROUTE}/")
        if use_sandbox_credentials(os.environ):
            names = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
            print("Sandbox credentials:", " ".join(f"{name}={os.environ[name]}" for name in names))

    import function_app

    public_host = urlsplit(os.environ.get("PUBLIC_BASE_URL", "").strip()).hostname
    host = LocalHost(
        function_app.app,
        route_prefix(),
        mounts=mounts,
        allowed_hosts=[args.host, *([public_host] if public_host else [])],
        app_service_frontend=args.app_service_frontend,
    )
    server = make_server(args.host, args.port, host, threaded=True)
    banner = host.banner(f"http://{args.host}:{server.port}")
    print(banner, "\n\nFor detailed output, see the log lines below. Press Ctrl+C to stop.", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
