"""`python -m devtools.host`, which `make run` runs: the function app served locally as `func start`
serves it (devtools.wsgi), with the Twilio sandbox and the storage emulator beside it."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from werkzeug.serving import make_server

from devtools.azurite import Azurite
from devtools.connection import HostRequestHandler
from devtools.functions import ROOT, route_prefix
from devtools.ports import port_taken
from devtools.sandbox.run import Sandbox, has_credentials, use_sandbox_credentials
from devtools.sandbox.webhooks import LocalRoute
from devtools.timers import ADMIN_ROUTE, Timers
from devtools.wsgi import LocalHost
from shared.settings import LOCAL_HOST, STORAGE

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

SANDBOX_ROUTE = "/_sandbox"
DEFAULT_PORT = 7071
# Where `make run` notes the address it serves the app on, for the invoker; git-ignored.
ADDRESS_FILE = ROOT / ".run" / "address"
LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


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
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--prism-port", type=int, default=4010, help="the Twilio sandbox's port")
    parser.add_argument(
        "--azurite-port", type=int, default=0, help="the storage emulator's (Azurite's) port; default: any free port"
    )
    parser.add_argument(
        "--app-service-frontend",
        action="store_true",
        help="build the URL the app sees from X-Forwarded-Proto and DISGUISED-HOST, as behind App Service's front-end",
    )
    parser.add_argument(
        "--note-address",
        nargs="?",
        const=ADDRESS_FILE,
        type=Path,
        metavar="FILE",
        help=f"while serving, keep the app's address in FILE (default {ADDRESS_FILE.relative_to(ROOT)}), where the"
        " invoker looks for it",
    )
    args = parser.parse_args(argv)
    _log_to(sys.stderr)
    load_local_settings()
    os.environ[LOCAL_HOST] = "1"  # the app's answers may then name the local tools

    sandbox = os.environ.get("TWILIO_SANDBOX", "true").strip().lower() != "false"
    if not sandbox and not has_credentials(os.environ):
        print("TWILIO_SANDBOX=false needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or KEY_VAULT_URL.", file=sys.stderr)
        return 2
    azurite = None if _storage_configured(os.environ) else Azurite(args.azurite_port)
    clash = _port_clash(args, sandbox=sandbox, azurite=azurite is not None)
    if clash:
        print(clash, file=sys.stderr)
        return 1

    # SIGINT too: a shell that starts the host in the background hands it SIGINT ignored.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, _stop)
    # The sandbox sends the app's webhooks here, even those addressed to PUBLIC_BASE_URL.
    route = LocalRoute.from_environ(own_url(args.host, args.port), os.environ)
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
    """Checked before anything starts, so that a clash leaves nothing running; every taken port
    is named at once, with a free one to move it to."""
    ports = [(args.host, args.port, "the app", "PORT", "--port")]
    if sandbox:
        ports.append((args.host, args.prism_port, "the Twilio sandbox", "PRISM_PORT", "--prism-port"))
    if azurite and args.azurite_port:
        ports.append((Azurite.host, args.azurite_port, "the storage emulator", "AZURITE_PORT", "--azurite-port"))
    taken = [entry for entry in ports if port_taken(entry[0], entry[1])]
    if not taken:
        return None
    avoided = {port for _, port, *_ in ports}
    variables, options = [], []
    for host, port, _, variable, option in taken:
        free = _free_above(host, port, avoided)
        avoided.add(free)
        variables.append(f"{variable}={free}")
        options.append(f"{option} {free}")
    named = ", ".join(f"{port} ({role})" for _, port, role, *_ in taken)
    moves = f"make run {' '.join(variables)} (or {' '.join(options)})."
    if len(taken) == 1:
        return f"Port {named} is already in use, so nothing was started; pick another: {moves}"
    return f"Ports {named} are already in use, so nothing was started; pick others: {moves}"


def _free_above(host: str, port: int, avoided: set[int]) -> int:
    """The first port above `port` that nothing holds and no other part of the app is to take."""
    candidate = port + 1
    while candidate in avoided or port_taken(host, candidate):
        candidate += 1
    return candidate


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

    timers = Timers(function_app.app)
    mounts[ADMIN_ROUTE] = timers.admin
    public_host = urlsplit(os.environ.get("PUBLIC_BASE_URL", "").strip()).hostname
    host = LocalHost(
        function_app.app,
        route_prefix(),
        mounts=mounts,
        allowed_hosts=[args.host, *([public_host] if public_host else [])],
        app_service_frontend=args.app_service_frontend,
    )
    server = make_server(args.host, args.port, host, threaded=True, request_handler=HostRequestHandler)
    address = own_url(args.host, server.port)
    banner = "\n".join([host.banner(address), *timers.banner()])
    print(banner, "\n\nFor detailed output, see the log lines below. Press Ctrl+C to stop.", flush=True)
    if args.note_address is not None:
        _note_address(args.note_address, address)
    timers.start()
    try:
        server.serve_forever()
    finally:
        timers.stop()
        server.server_close()
        if args.note_address is not None:
            _forget_address(args.note_address, address)
    return 0


def own_url(host: str, port: int) -> str:
    """Where this machine reaches the app. A wildcard address (0.0.0.0, ::) listens on every interface,
    but only a loopback name is served every function, so the banner and the invoker use that."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"http://[{address}]:{port}" if address.version == 6 else f"http://{address}:{port}"


def _note_address(path: Path, address: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(address + "\n", encoding="utf-8")


def _forget_address(path: Path, address: str) -> None:
    """Remove the address, unless a host started since has noted its own."""
    if path.exists() and path.read_text(encoding="utf-8").strip() == address:
        path.unlink()


def _log_to(stream: TextIO) -> None:
    """Log to `stream`, in colour only on a terminal: werkzeug colours its request lines whatever
    the stream, and a log file or a pipe would keep the escape codes."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT) if stream.isatty() else _Plain(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _COLOUR.sub("", super().format(record))


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
