"""Warm traffic with Key Vault and Twilio on local stand-ins: what each implementation asks of them,
and what that costs a request. Both start from a fresh process state and fresh stand-ins."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

from bench import traffic
from bench.measure import percentile, rounds
from bench.process import app_settings, running
from bench.request import handlers, serve
from bench.table import Row, Target
from testing.standins import KeyVaultStandIn, TwilioStandIn

WEBHOOKS = 1_000
WEBHOOK_FUNCTIONS = ("voice_url", "sms_url")  # taking turns
CALLS = 50


@dataclass(frozen=True)
class Trips:
    seconds: dict[str, list[float]]  # each request's, by function
    secret_fetches: int
    twilio_connections: int


def trips(module_name: str) -> Trips:
    with (
        running(KeyVaultStandIn(traffic.SECRETS)) as vault,
        running(TwilioStandIn(traffic.ACCOUNT_SID, traffic.AUTH_TOKEN)) as twilio,
        app_settings({**vault.environ(), **traffic.twilio_settings(twilio.url)}),
    ):
        module = importlib.import_module(module_name)  # the app's start-up work sees these settings
        functions = handlers(module.app)
        voice, sms = rounds(
            WEBHOOKS // 2,
            [functools.partial(serve, functions[f], traffic.webhook(f), 200) for f in WEBHOOK_FUNCTIONS],
        )
        secret_fetches = vault.fetches.total()
        calls = [serve(functions["make_call"], traffic.make_call(), 201) for _ in range(CALLS)]
        seconds = {"voice_url": voice, "sms_url": sms, "make_call": calls}
        return Trips(seconds, secret_fetches, twilio.connections)


def rows() -> list[Row]:
    app, classic = trips("function_app"), trips("bench.baseline")
    return [
        *(
            Row(
                f"warm {function} p50, Key Vault configured, vs classic reading it per request",
                percentile(app.seconds[function], 0.50),
                percentile(classic.seconds[function], 0.50),
                Target(0.05),
            )
            for function in WEBHOOK_FUNCTIONS
        ),
        Row(
            f"warm make_call p50 vs classic ({CALLS} in a row)",
            percentile(app.seconds["make_call"], 0.50),
            percentile(classic.seconds["make_call"], 0.50),
            Target(0.2),
        ),
        Row(
            f"TCP connections to Twilio over {CALLS} make_call",
            app.twilio_connections,
            classic.twilio_connections,
            Target(1, of_ratio=False),
            count=True,
        ),
        Row(
            f"Key Vault secret fetches over {WEBHOOKS:,} webhooks",
            app.secret_fetches,
            classic.secret_fetches,
            Target(2, of_ratio=False),
            count=True,
        ),
    ]
