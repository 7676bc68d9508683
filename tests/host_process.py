"""`python -m devtools.host` as `make run` starts it, in a process of its own: started, waited for, stopped,
and what it prints when its ports are taken. The app's tests start two as two instances of the app."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devtools.azurite import connection_string
from devtools.ports import accepting
from shared.settings import STORAGE
from testing.process_state import without_settings
from tests.support import ACCOUNT_SID, AUTH_TOKEN

ROOT = Path(__file__).resolve().parent.parent
# A store named, so that `python -m devtools.host` starts no storage emulator where a test needs none.
NO_EMULATOR = {STORAGE: connection_string("http://127.0.0.1:9/devstoreaccount1")}
REAL_TWILIO = {"TWILIO_SANDBOX": "false", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}


def start_host(*args: str, environ: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m devtools.host` with no app setting of this process's, only `environ`."""
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.host", *args],
        cwd=ROOT,
        env={**without_settings(os.environ), **(environ or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_host(process: subprocess.Popen[str], stop_signal: signal.Signals = signal.SIGTERM) -> str:
    """Stop the host as a terminal or a service manager would; what it printed."""
    if process.poll() is None:
        process.send_signal(stop_signal)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def wait_until_up(port: int, process: subprocess.Popen[Any], timeout: float = 180, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if accepting(host, port):
            return True
        time.sleep(0.2)
    return False


def run_host(*args: str, environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run a host that is expected to stop by itself: its exit code and what it printed."""
    process = start_host(*args, environ=environ)
    try:
        process.wait(timeout=60)
    finally:
        output = stop_host(process)
    return process.returncode, output


def moved_to(output: str, named: str, *variables_and_options: str) -> list[int]:
    """The free ports suggested by the one line the host prints when the ports `named` are taken:
    make run VARIABLE=port ... (or --option port ...)."""
    variables, options = variables_and_options[::2], variables_and_options[1::2]
    moves = " ".join(rf"{variable}=(\d+)" for variable in variables)
    same = " ".join(rf"{option} \{number}" for number, option in enumerate(options, 1))
    pick = "another" if len(variables) == 1 else "others"
    said = rf"{re.escape(named)} already in use, so nothing was started; pick {pick}: make run {moves} \(or {same}\)\."
    (line,) = output.splitlines()
    match = re.fullmatch(said, line)
    assert match is not None, line
    return [int(number) for number in match.groups()]


@contextmanager
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port: int = holder.getsockname()[1]
        yield port
