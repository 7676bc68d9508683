"""`python -m bench`: run every scenario on this machine, then print the one table.

It reports and asserts nothing about time; it stops only if a function answers wrongly."""

from __future__ import annotations

import os
import platform
import sys
import textwrap
import time
from collections.abc import Callable

from bench import cold, concurrency, log, roundtrips, state, warm
from bench.table import Row, render

SCENARIOS: dict[str, Callable[[], list[Row]]] = {
    "cold imports": cold.import_rows,
    "first requests after a cold import": cold.first_request_rows,
    "warm webhooks beside the library floor": warm.rows,
    "warm traffic through the Key Vault and Twilio stand-ins": roundtrips.rows,
    "make_call with its state in Table storage (Azurite)": state.rows,
    "concurrent requests on a thread pool, Twilio answering after 50-200 ms": concurrency.rows,
}
WIDTH = 120  # the legend's, about the table's


def legend() -> str:
    """How to read the table, printed once above it."""
    each = concurrency.REQUESTS_PER_CLIENT
    twilio = "-".join(f"{seconds * 1e3:g}" for seconds in concurrency.TWILIO_DELAY)
    return "\n".join(
        [
            f"Python {platform.python_version()} on {os.cpu_count()} CPUs.",
            *_terms(
                {
                    "app/baseline": "the app's figure divided by its baseline's. Lower is better; on throughput rows,"
                    " higher is better.",
                    "target": "a regression guard on that ratio (on the app's own figure for counts): ✓ met in this"
                    " run, ✗ not.",
                }
            ),
            "Baselines, after each row's 'vs':",
            *_terms(
                {
                    "classic module": "bench/baseline.py: SDKs imported up front, Key Vault and a Twilio Client per"
                    " request",
                    "bare `import azure.functions`": "the import no Python function app can skip",
                    "library floor": "what a webhook cannot avoid: build the request, read its form, check the"
                    " signature, render the TwiML, build the response",
                    "1 (concurrent)": "one request at a time, on the same app and stand-ins",
                    "anything else": "the same app without what the row names",
                },
                indent="  ",
            ),
            *_terms(
                {
                    "Cold": f"medians of {cold.IMPORT_RUNS} imports or {cold.FIRST_CALL_RUNS} first requests, each in"
                    " a fresh interpreter",
                    "Warm": f"percentiles of {warm.REQUESTS:,} requests ({roundtrips.WEBHOOKS // 2:,} per webhook with"
                    " Key Vault); counts are exact",
                    "Concurrent": f"N clients on N threads (PER_INSTANCE_CONCURRENCY=N), {each['make_call']} make_call"
                    f" or {each['voice_url']} voice_url each, Twilio answering in {twilio} ms; {concurrency.ROUNDS}"
                    " rounds",
                }
            ),
            textwrap.fill(
                "Cold and concurrent ratios are the median of each round's (app and baseline taking turns), so they"
                " can differ from the ratio of the figures shown.",
                WIDTH,
            ),
        ]
    )


def _terms(definitions: dict[str, str], indent: str = "") -> list[str]:
    """Each term beside its definition, the definitions aligned and wrapped to a terminal's width."""
    width = len(indent) + max(map(len, definitions)) + 2
    return [
        textwrap.fill(text, WIDTH, initial_indent=(indent + term).ljust(width), subsequent_indent=" " * width)
        for term, text in definitions.items()
    ]


def main() -> int:
    started = time.perf_counter()
    warnings = log.to_file()
    rows: list[Row] = []
    for name, scenario in SCENARIOS.items():
        print(f"bench: {name}…", file=sys.stderr, flush=True)
        rows += scenario()
    print(legend(), end="\n\n")
    print(render(rows))
    print(f"\nThe log, {os.path.relpath(log.LOG)}, holds {warnings.count} warnings and errors.")
    print(f"{time.perf_counter() - started:.0f} s in all.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
