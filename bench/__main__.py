"""`python -m bench`: run every scenario on this machine, then print the one table.

It reports and asserts nothing about time; it stops only if a function answers wrongly."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable

from bench import cold, concurrency, roundtrips, state, warm
from bench.table import Row, render

SCENARIOS: dict[str, Callable[[], list[Row]]] = {
    "cold imports": cold.import_rows,
    "first requests after a cold import": cold.first_request_rows,
    "warm webhooks beside the library floor": warm.rows,
    "warm traffic through the Key Vault and Twilio stand-ins": roundtrips.rows,
    "make_call with its state in Table storage (Azurite)": state.rows,
    "concurrent requests on a thread pool, Twilio answering after 50-200 ms": concurrency.rows,
}


def main() -> int:
    started = time.perf_counter()
    rows: list[Row] = []
    for name, scenario in SCENARIOS.items():
        print(f"bench: {name}…", file=sys.stderr, flush=True)
        rows += scenario()
    print(
        f"Python {platform.python_version()} on {os.cpu_count()} CPUs. Each row sets the app against what follows"
        " its 'vs': the classic module (bench/baseline.py: SDKs imported up front, Key Vault and a Twilio Client"
        " per request), a bare `import azure.functions`, or the library floor (build the request, read its form,"
        " check the signature, render the TwiML, build the response).\n"
        f"Cold figures: medians of {cold.IMPORT_RUNS} (imports) or {cold.FIRST_CALL_RUNS} (requests) fresh"
        " interpreters, their ratio the median of each round's, app and baseline having run back to back."
        f" Warm figures: percentiles over {warm.REQUESTS:,} requests, or {roundtrips.WEBHOOKS // 2:,} per webhook"
        " with Key Vault. Counts are exact. The cold ratio is the median of per-round ratios, so it can differ"
        " from the ratio of the medians shown beside it. Concurrent rows: N clients at once sending N times"
        f" {concurrency.REQUESTS_PER_CLIENT['make_call']} make_call or {concurrency.REQUESTS_PER_CLIENT['voice_url']}"
        " voice_url, each the next as soon as it has an answer, on a pool of N threads with"
        f" PER_INSTANCE_CONCURRENCY=N, beside one client; {concurrency.ROUNDS} rounds, the levels taking turns;"
        " throughput the median of the rounds and its ratio the median of each round's; Twilio's stand-in"
        " answers after 50 to 200 ms, spread evenly.\n"
    )
    print(render(rows))
    print(f"\n{time.perf_counter() - started:.0f} s in all.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
