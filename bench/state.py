"""make_call with its state in Table storage (Azurite): what an Idempotency-Key and the shared limits
cost a warm request, beside the same request without them."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from bench import traffic
from bench.measure import percentile, rounds
from bench.process import app_settings, running
from bench.request import WebRequest, handlers, serve
from bench.table import Row, Target
from devtools.azurite import Azurite
from testing.standins import TwilioStandIn

CALLS = 200
WARMUP = 20
# High enough that the benchmark's own calls to one number never reach it: each still takes a slot.
HOURLY_LIMIT = "1000000"


def keyed(request: WebRequest) -> WebRequest:
    """The same call under a key of its own: claimed, then its answer recorded."""
    return dataclasses.replace(request, headers={**request.headers, "Idempotency-Key": str(uuid.uuid4())})


@contextmanager
def _app(twilio: TwilioStandIn, storage: Mapping[str, str]) -> Iterator[functools.partial[float]]:
    settings = {**traffic.ENV_CREDENTIALS, **traffic.twilio_settings(twilio.url), **storage}
    with app_settings({**settings, "DESTINATION_HOURLY_LIMIT": HOURLY_LIMIT}):
        app = importlib.import_module("function_app").app
        yield functools.partial(serve, handlers(app)["make_call"], status=201)


def rows() -> list[Row]:
    call = traffic.make_call()
    with (
        running(TwilioStandIn(traffic.ACCOUNT_SID, traffic.AUTH_TOKEN)) as twilio,
        _azurite() as azurite,
    ):
        with _app(twilio, {"AzureWebJobsStorage": azurite.connection_string}) as make_call:
            with_key, without_key = rounds(
                CALLS,
                [lambda: make_call(keyed(call)), lambda: make_call(call)],
                warmup=WARMUP,
            )
        with _app(twilio, {}) as make_call:
            (no_storage,) = rounds(CALLS, [lambda: make_call(call)], warmup=WARMUP)
    return [
        Row(
            "warm make_call p50 with an Idempotency-Key vs without (Azurite)",
            percentile(with_key, 0.50),
            percentile(without_key, 0.50),
            Target(2.5),
        ),
        Row(
            "warm make_call p50 under DESTINATION_HOURLY_LIMIT (Azurite) vs no storage",
            percentile(without_key, 0.50),
            percentile(no_storage, 0.50),
            Target(10),
        ),
    ]


@contextmanager
def _azurite() -> Iterator[Azurite]:
    azurite = Azurite(0).start()
    try:
        yield azurite
    finally:
        azurite.stop()
