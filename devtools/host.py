"""A small local host for the function app, doing what `func start` does, on werkzeug.

It indexes `function_app.app` as the Python worker does and serves every HTTP function
at /<routePrefix>/<route>. Like Core Tools, it does not ask for function keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import azure.functions as func
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devtools.functions import ROOT, HttpFunction, http_functions, route_prefix
from devtools.sandbox import (
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    Prism,
    SandboxGateway,
    has_credentials,
    use_sandbox_credentials,
)

logger = logging.getLogger(__name__)

SANDBOX_ROUTE = "/_sandbox"


class LocalHost:
    """The WSGI application: HTTP in, `func.HttpRequest` to the handler, `func.HttpResponse` back out."""

    def __init__(self, app: func.FunctionApp, prefix: str) -> None:
        self.prefix = prefix
        self.functions = http_functions(app)
        rules = [Rule(f.path(prefix), methods=list(f.methods), endpoint=f) for f in self.functions]
        self.url_map = Map(rules, strict_slashes=False)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
        except NotFound:
            response = _error(404, "not_found", f"No function answers {request.path}.", "url")
        except MethodNotAllowed as error:
            allowed = ", ".join(error.valid_methods or ())
            response = _error(405, "method_not_allowed", f"{request.path} answers {allowed} only.", "method")
            response.headers["Allow"] = allowed
        else:
            response = invoke(endpoint, request)
        return response(environ, start_response)

    def banner(self, base_url: str) -> str:
        lines = ["Functions:", ""]
        for f in self.functions:
            lines.append(f"        {f.name}: [{','.join(f.methods)}] {base_url}{f.path(self.prefix)}")
        return "\n".join(lines)


def invoke(function: HttpFunction, request: Request) -> Response:
    req = func.HttpRequest(
        method=request.method,
        url=_url_as_sent(request),
        headers=dict(request.headers.items()),
        params=dict(request.args.items()),
        body=request.get_data(),
    )
    try:
        result = function.handler(req)
    except Exception:
        logger.exception("Executed 'Functions.%s' (Failed)", function.name)
        return Response(status=500)
    headers = dict(result.headers.items())
    content_type = headers.pop("Content-Type", None) or f"{result.mimetype}; charset={result.charset}"
    return Response(result.get_body(), status=result.status_code, headers=headers, content_type=content_type)


def _url_as_sent(request: Request) -> str:
    """The URL byte for byte as the client sent it: Twilio signs it, so no re-encoding."""
    raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    if not raw:
        return request.url
    return f"{request.scheme}://{request.host}{raw}"


def _error(status: int, code: str, message: str, target: str) -> Response:
    body = {"error": {"code": code, "message": message, "target": target}}
    return Response(json.dumps(body), status=status, mimetype="application/json")


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
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--prism-port", type=int, default=4010)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    load_local_settings()
    base_url = f"http://{args.host}:{args.port}"

    prism = None
    mounts: dict[str, Any] = {}
    if os.environ.get("TWILIO_SANDBOX", "true").strip().lower() != "false":
        print(f"Starting the Twilio sandbox (Prism on Twilio's OpenAPI spec) on port {args.prism_port}...")
        prism = Prism(args.host, args.prism_port).start()
        mounts[SANDBOX_ROUTE] = SandboxGateway(prism.url)
        os.environ["TWILIO_API_BASE_URL"] = f"{base_url}{SANDBOX_ROUTE}/twilio"
        print(f"Twilio sandbox: {prism.url} (the app's Twilio REST calls go there)")
        if use_sandbox_credentials(os.environ):
            print(
                f"Sandbox credentials: TWILIO_ACCOUNT_SID={SANDBOX_ACCOUNT_SID} TWILIO_AUTH_TOKEN={SANDBOX_AUTH_TOKEN}"
            )
    elif not has_credentials(os.environ):
        print("TWILIO_SANDBOX=false needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or KEY_VAULT_URL.", file=sys.stderr)
        return 2

    sys.path.insert(0, str(ROOT))
    import function_app

    host = LocalHost(function_app.app, route_prefix())
    server = make_server(args.host, args.port, DispatcherMiddleware(host, mounts), threaded=True)
    print(host.banner(base_url), "\n\nFor detailed output, see the log lines below. Press Ctrl+C to stop.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if prism is not None:
            prism.stop()
    return 0


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
