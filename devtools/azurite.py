"""Azurite, Microsoft's Azure Storage emulator, serving its Table service on a loopback port.

The app keeps idempotency keys and limit counters in Table storage; locally they live here,
in memory, for as long as Azurite runs. Pinned by the committed npm lock file.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from devtools import processes
from devtools.npm import npm_ci
from devtools.ports import accepting, free_port

EMULATOR_DIR = Path(__file__).resolve().parent / "storage-emulator"
AZURITE_TABLE = EMULATOR_DIR / "node_modules/.bin/azurite-table"
# Azurite's one account, with the key Microsoft publishes for it: a local emulator's, not a secret.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_STARTED = "successfully started"


def install() -> None:
    """Install the pinned Azurite once (npm ci from the committed lock file)."""
    if AZURITE_TABLE.exists():
        return
    npm_ci(EMULATOR_DIR, "the storage emulator (Azurite)")


@dataclass
class Azurite:
    """Azurite on `port` (0: any free port, chosen when it starts)."""

    port: int = 10002
    host: str = field(default="127.0.0.1", init=False)
    process: subprocess.Popen[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.url)

    def start(self, timeout: float = 60.0) -> Azurite:
        """Start it and wait until it says it listens; it keeps nothing on disk and sends no telemetry."""
        install()
        if not self.port:
            self.port = free_port(self.host)
        if accepting(self.host, self.port):  # Azurite would say it started, then exit
            raise RuntimeError(f"Port {self.port} is taken; is another Azurite running? (--azurite-port)")
        # A session of its own, as for Prism: a terminal's Ctrl+C reaches whoever started it, which stops it.
        self.process = subprocess.Popen(
            [
                str(AZURITE_TABLE),
                "--tableHost",
                self.host,
                "--tablePort",
                str(self.port),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--silent",
            ],
            cwd=EMULATOR_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started = threading.Event()
        output: list[str] = []
        threading.Thread(target=_read, args=(self.process, started, output), name="azurite-output", daemon=True).start()
        if not started.wait(timeout) or self.process.poll() is not None:
            self.stop()
            said = " ".join(line.strip() for line in output[-3:])
            raise RuntimeError(f"Azurite did not start on port {self.port}: {said or 'no answer'}")
        return self

    def stop(self) -> None:
        processes.stop(self.process)


def connection_string(table_endpoint: str) -> str:
    """AzureWebJobsStorage for Azurite's account, naming the Table endpoint (the port may not be the default)."""
    account = f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY}"
    return f"DefaultEndpointsProtocol=http;{account};TableEndpoint={table_endpoint};"


def _read(process: subprocess.Popen[str], started: threading.Event, output: list[str]) -> None:
    """Wait for Azurite's "started" line (or its exit), then keep its output flowing."""
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if _STARTED in line:
            started.set()
    started.set()  # it exited: the caller sees why
