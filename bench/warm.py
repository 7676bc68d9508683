"""Warm webhooks in-process, signature check included, beside the library work any handler must do:
build the request, read its form, check the signature, render the TwiML, build the response."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import azure.functions as func
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from bench import traffic
from bench.measure import percentile, rounds
from bench.process import app_settings
from bench.request import WebRequest, handlers, serve
from bench.table import Row, Target
from shared.settings import DEFAULT_SMS_REPLY, DEFAULT_VOICE_MESSAGE

REQUESTS = 2_000
WARMUP = 200


def say() -> str:
    response = VoiceResponse()
    response.say(DEFAULT_VOICE_MESSAGE)
    return str(response)


def reply() -> str:
    response = MessagingResponse()
    response.message(DEFAULT_SMS_REPLY)
    return str(response)


TWIML: dict[str, Callable[[], str]] = {"voice_url": say, "sms_url": reply}


def floor(request: WebRequest, render: Callable[[], str]) -> float:
    """Seconds for the library calls alone, with nothing of the app around them."""
    start = time.perf_counter()
    req = request.build()
    valid = RequestValidator(traffic.AUTH_TOKEN).validate(req.url, req.form, req.headers["X-Twilio-Signature"])
    func.HttpResponse(render(), status_code=200, mimetype="text/xml", charset="utf-8")
    elapsed = time.perf_counter() - start
    if not valid:
        raise RuntimeError(f"The signature of {request.url} does not validate")
    return elapsed


def rows() -> list[Row]:
    found = []
    with app_settings(traffic.ENV_CREDENTIALS):
        import function_app  # only now: importing it starts its start-up work with these settings

        app = handlers(function_app.app)
        for function, render in TWIML.items():
            request = traffic.webhook(function)
            served, floored = rounds(
                REQUESTS,
                [functools.partial(serve, app[function], request, 200), functools.partial(floor, request, render)],
                warmup=WARMUP,
            )
            found += [
                Row(
                    f"warm {function} p50 vs library floor",
                    percentile(served, 0.50),
                    percentile(floored, 0.50),
                    Target(1.3),
                ),
                Row(
                    f"warm {function} p99 vs library floor",
                    percentile(served, 0.99),
                    percentile(floored, 0.99),
                    Target(1.5),
                ),
            ]
    return found
