"""One cold start in a fresh interpreter: import an app module, answer one request, print the timings.

`python -m bench.firstcall` reads its job as JSON on stdin and loads only the standard library
before the clock starts, so the import it times is the app's alone.
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def main() -> None:
    job = json.load(sys.stdin)
    start = time.perf_counter()
    module = importlib.import_module(job["module"])
    imported = time.perf_counter()
    time.sleep(job["head_start"])  # the worker indexing, then waiting for the first invocation
    resumed = time.perf_counter()

    from bench.request import WebRequest, handlers  # only now: the worker indexes after the import

    handler = handlers(module.app)[job["function"]]
    indexed = time.perf_counter()
    request = WebRequest(**job["request"]).build()
    sent = time.perf_counter()
    response = handler(request)
    answered = time.perf_counter()
    timings = {
        "to_index": (imported - start) + (indexed - resumed),
        "to_response": (imported - start) + (answered - resumed),
        "request": answered - sent,
    }
    print(json.dumps({"status": response.status_code, **timings}))


if __name__ == "__main__":
    main()
