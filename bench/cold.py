"""Cold starts, each in a fresh interpreter: the import alone, then the import and the first request."""

from __future__ import annotations

import functools
import json
import logging
import statistics
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from bench import traffic
from bench.log import LOG
from bench.measure import paired_ratio, rounds
from bench.process import running
from bench.table import Row, Target
from devtools.functions import ROOT
from testing.process_state import app_environ
from testing.standins import KeyVaultStandIn

logger = logging.getLogger(__name__)

IMPORT_RUNS = 31
FIRST_CALL_RUNS = 9
WARMUP = 1  # a round untimed: bytecode written, disk cache and CPU settled
VAULT_DELAY = 0.030  # per Key Vault request, about a round trip within an Azure region
HEAD_START = 0.5  # between the worker importing the app and the first invocation
APP, BASELINE, BARE = "function_app", "bench.baseline", "azure.functions"
TIMED_IMPORT = "import time\nstart = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - start)"


def import_rows() -> list[Row]:
    env = app_environ({})
    app, bare, baseline = rounds(
        IMPORT_RUNS, [functools.partial(_import_time, m, env) for m in (APP, BARE, BASELINE)], warmup=WARMUP
    )
    return [
        _row("cold import: function_app vs bare `import azure.functions`", app, bare, Target(1.3)),
        _row("cold import: function_app vs classic module", app, baseline, Target(0.7)),
    ]


def first_request_rows() -> list[Row]:
    with running(KeyVaultStandIn(traffic.SECRETS, delay=VAULT_DELAY)) as vault:
        request = asdict(traffic.webhook("voice_url"))
        first_call = functools.partial(_first_call, request, app_environ(vault.environ()))
        no_prefetch = functools.partial(
            _first_call, request, app_environ({**vault.environ(), "PREFETCH_SECRETS": "false"})
        )
        app, baseline, app_ready, baseline_ready, indexed, indexed_alone = rounds(
            FIRST_CALL_RUNS,
            [
                functools.partial(first_call, APP, 0, "to_response"),
                functools.partial(first_call, BASELINE, 0, "to_response"),
                functools.partial(first_call, APP, HEAD_START, "request"),
                functools.partial(first_call, BASELINE, HEAD_START, "request"),
                functools.partial(first_call, APP, 0, "to_index"),
                functools.partial(no_prefetch, APP, 0, "to_index"),
            ],
            warmup=WARMUP,
        )
    vault_ms = f"{VAULT_DELAY * 1e3:g} ms"
    return [
        _row(f"cold import → first voice_url answered (Key Vault {vault_ms}/request)", app, baseline, Target(1.2)),
        _row(
            f"first voice_url request {HEAD_START:g} s after import (Key Vault {vault_ms}/request)",
            app_ready,
            baseline_ready,
            # A prefetch a busy machine has not finished by then still beats the classic; none costs several times it.
            Target(1),
        ),
        _row("cold import + indexing: Key Vault prefetch on vs off", indexed, indexed_alone, Target(1.15)),
    ]


def _row(measure: str, app: list[float], baseline: list[float], target: Target) -> Row:
    """Medians of the runs, and the ratio of runs taken side by side."""
    return Row(
        measure, statistics.median(app), statistics.median(baseline), target, paired_ratio=paired_ratio(app, baseline)
    )


def _import_time(module: str, env: dict[str, str]) -> float:
    return float(_child(module, ["-c", TIMED_IMPORT.format(module=module)], env))


def _first_call(request: dict[str, Any], env: dict[str, str], module: str, head_start: float, timing: str) -> float:
    """One child's `timing`: "to_response" (import to answer, less the head start) or "request"."""
    job = {"module": module, "function": "voice_url", "head_start": head_start, "request": request}
    result = json.loads(_child(module, ["-m", "bench.firstcall"], env, json.dumps(job)))
    if result["status"] != 200:
        raise RuntimeError(f"{module} answered the first voice_url with {result['status']}; its stderr is in {LOG}")
    seconds: float = result[timing]
    return seconds


def _child(module: str, args: list[str], env: dict[str, str], job: str = "") -> str:
    """The output of a fresh interpreter loading `module`; what it writes on stderr goes to the log, never amid
    the table."""
    command = [sys.executable, *args]
    done = subprocess.run(command, input=job, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.stderr:
        logger.warning("A fresh interpreter loading %s wrote on stderr:\n%s", module, done.stderr.rstrip())
    done.check_returncode()  # after the log has its stderr
    return done.stdout
