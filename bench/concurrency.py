"""Concurrent requests in one process, each answered on a thread of a pool as the Python worker runs
synchronous functions, Twilio answering after 50 to 200 ms: what answering more than one request at
once (Flex Consumption's per-instance concurrency) gains and costs, beside one request at a time."""

from __future__ import annotations

import importlib
import queue
import statistics
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter

from bench import traffic
from bench.measure import percentile
from bench.process import app_settings, running
from bench.request import Handler, WebRequest, handlers, serve
from bench.table import Bound, Row, Target
from testing.standins import TwilioStandIn

LEVELS = (1, 4, 16, 32)
TWILIO_DELAY = (0.05, 0.2)  # seconds, spread evenly over the requests
# The levels take turns, round after round, so that a machine busier at one moment weighs on all of them alike.
ROUNDS = 3
# Requests per concurrent client per round: make_call waits on Twilio, voice_url on nothing.
REQUESTS_PER_CLIENT = {"make_call": 16, "voice_url": 200}
STATUS = {"make_call": 201, "voice_url": 200}


@dataclass(frozen=True)
class Guards:
    """One level's targets, as ratios to one client: its throughput at least, its p50 and p99 at most."""

    throughput: float
    p50: float
    p99: float


# make_call waits on Twilio, so its throughput should grow almost with the level (one request at a time, or too
# small a pool, would not); voice_url waits on nothing, so it should lose little throughput, its p99 taking turns
# for the GIL with every other request's.
GUARDS = {
    "make_call": {4: Guards(3, 1.2, 1.4), 16: Guards(10, 1.2, 1.4), 32: Guards(20, 1.3, 2.5)},
    "voice_url": {4: Guards(0.5, 1.5, 20), 16: Guards(0.5, 1.5, 40), 32: Guards(0.5, 2, 50)},
}


@dataclass
class Level:
    """One concurrency level's requests, over every round."""

    seconds: dict[str, list[float]] = field(default_factory=dict)  # each request's, by function
    throughputs: dict[str, list[float]] = field(default_factory=dict)  # requests per second, by function, by round
    twilio_connections: list[int] = field(default_factory=list)  # opened, by round


def clients(handler: Handler, request: WebRequest, status: int, level: int, each: int) -> tuple[list[float], float]:
    """`level` clients at once sending `level` * `each` requests, on a pool of `level` threads, each client taking
    the next request as soon as it has its answer, as the worker's threads take the host's next invocation (so
    that no client is left sending alone at the end): each request's seconds, and the seconds they all took."""
    pending: queue.SimpleQueue[None] = queue.SimpleQueue()
    for _ in range(level * each):
        pending.put(None)

    def client() -> list[float]:
        seconds: list[float] = []
        while True:
            try:
                pending.get_nowait()
            except queue.Empty:
                return seconds
            seconds.append(serve(handler, request, status))

    with ThreadPoolExecutor(max_workers=level, thread_name_prefix="bench-client") as pool:
        start = perf_counter()
        futures = [pool.submit(client) for _ in range(level)]
        seconds = [elapsed for future in futures for elapsed in future.result()]
        return seconds, perf_counter() - start


@contextmanager
def _app(twilio: TwilioStandIn, level: int) -> Iterator[dict[str, Handler]]:
    """The app configured for `level` requests at once, from an empty process state: a pool of its own."""
    settings = {**traffic.ENV_CREDENTIALS, **traffic.twilio_settings(twilio.url)}
    with app_settings({**settings, "PER_INSTANCE_CONCURRENCY": str(level)}):
        yield handlers(importlib.import_module("function_app").app)


def measure(twilio: TwilioStandIn, level: int, found: Level) -> None:
    requests = {"make_call": traffic.make_call(), "voice_url": traffic.webhook("voice_url")}
    before = twilio.connections
    with _app(twilio, level) as functions:
        for function, request in requests.items():
            handler = functions[function]
            clients(handler, request, STATUS[function], level, 1)  # warm: the imports, the client, the connections
            seconds, wall = clients(handler, request, STATUS[function], level, REQUESTS_PER_CLIENT[function])
            found.seconds.setdefault(function, []).extend(seconds)
            found.throughputs.setdefault(function, []).append(len(seconds) / wall)
    found.twilio_connections.append(twilio.connections - before)


def rows() -> list[Row]:
    levels = {level: Level() for level in LEVELS}
    with running(TwilioStandIn(traffic.ACCOUNT_SID, traffic.AUTH_TOKEN, delay=TWILIO_DELAY)) as twilio:
        for _ in range(ROUNDS):
            for level, found in levels.items():
                measure(twilio, level, found)
    one, most = levels[LEVELS[0]], LEVELS[-1]
    rows = []
    for function in REQUESTS_PER_CLIENT:
        alone = one.seconds[function]
        for level in LEVELS[1:]:
            throughputs, seconds = levels[level].throughputs[function], levels[level].seconds[function]
            guards = GUARDS[function][level]
            # Each round's ratio to the single client of the same round, as the cold rows are taken.
            ratio = statistics.median(t / t1 for t, t1 in zip(throughputs, one.throughputs[function], strict=True))
            rows += [
                Row(
                    f"{function} throughput, {level} concurrent vs 1",
                    statistics.median(throughputs),
                    statistics.median(one.throughputs[function]),
                    Target(guards.throughput, Bound.AT_LEAST),
                    per_second=True,
                    paired_ratio=ratio,
                ),
                Row(
                    f"{function} p50, {level} concurrent vs 1",
                    percentile(seconds, 0.50),
                    percentile(alone, 0.50),
                    Target(guards.p50),
                ),
                Row(
                    f"{function} p99, {level} concurrent vs 1",
                    percentile(seconds, 0.99),
                    percentile(alone, 0.99),
                    Target(guards.p99),
                ),
            ]
    rows.append(
        Row(
            f"TCP connections to Twilio per round, {most} concurrent make_call vs 1",
            max(levels[most].twilio_connections),
            max(one.twilio_connections),
            Target(most, of_ratio=False),
            count=True,
        )
    )
    return rows
