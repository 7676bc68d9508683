"""Two app instances (two `python -m devtools.host` processes) sharing one Table storage (Azurite) and one
Twilio: idempotency keys and limits hold across them, and a store outage stops both."""

from __future__ import annotations

import functools
import http.client
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests

from devtools.azurite import Azurite
from devtools.ports import free_port
from tests.app.state_support import HeldTwilio
from tests.host_process import REAL_TWILIO, start_host, stop_host, wait_until_up
from tests.support import eventually

pytestmark = pytest.mark.processes

HOURLY_LIMIT = 3


@contextmanager
def app_instance(twilio: HeldTwilio, storage: str) -> Iterator[str]:
    """One host process, as one instance of the app in Azure: its base URL."""
    port = free_port()
    settings = {
        **REAL_TWILIO,
        "TWILIO_API_BASE_URL": twilio.url,
        "TWILIO_FROM_NUMBER": "+15017122661",
        "AzureWebJobsStorage": storage,
        "DESTINATION_HOURLY_LIMIT": str(HOURLY_LIMIT),
    }
    process = start_host("--port", str(port), environ=settings)
    try:
        assert wait_until_up(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_host(process)


@dataclass(frozen=True)
class Instances:
    urls: tuple[str, str]
    twilio: HeldTwilio

    def creations_to(self, number: str) -> int:
        return sum(1 for created in self.twilio.creations() if created.field("To") == number)


@pytest.fixture(scope="module")
def instances(azurite: Azurite) -> Iterator[Instances]:
    with ExitStack() as stack:
        twilio = HeldTwilio().start()
        stack.callback(twilio.stop)
        stack.callback(twilio.gate.set)
        first = stack.enter_context(app_instance(twilio, azurite.connection_string))
        second = stack.enter_context(app_instance(twilio, azurite.connection_string))
        yield Instances((first, second), twilio)


def a_number() -> str:
    """A destination no other test has used, so that counts start at zero."""
    return "+1555" + str(uuid.uuid4().int)[:7]


def send_sms(base: str, number: str, key: str | None = None) -> requests.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return requests.post(f"{base}/api/send_sms", json={"to": number, "body": "Hi"}, headers=headers, timeout=60)


def at_once(
    requests_: Sequence[Callable[[], requests.Response]], done: list[requests.Response]
) -> list[threading.Thread]:
    """Start every request at the same moment, each in its thread; their answers go to `done`."""
    together = threading.Barrier(len(requests_))

    def run(send: Callable[[], requests.Response]) -> None:
        together.wait()
        done.append(send())

    threads = [threading.Thread(target=run, args=(send,)) for send in requests_]
    for thread in threads:
        thread.start()
    return threads


def test_one_key_sent_to_two_instances_at_once_reaches_twilio_once(instances: Instances) -> None:
    number, key = a_number(), str(uuid.uuid4())
    instances.twilio.arrived.clear()
    instances.twilio.gate.clear()
    done: list[requests.Response] = []
    sends = [functools.partial(send_sms, url, number, key) for url in instances.urls for _ in range(3)]
    threads = at_once(sends, done)
    try:
        assert instances.twilio.arrived.wait(60)
        assert eventually(lambda: len(done) == 5, timeout=60)
    finally:
        instances.twilio.gate.set()
        for thread in threads:
            thread.join()

    assert sorted(r.status_code for r in done) == [201, 409, 409, 409, 409, 409]
    assert instances.creations_to(number) == 1


def test_the_other_instance_replays_the_first_answer(instances: Instances) -> None:
    number, key = a_number(), str(uuid.uuid4())
    first = send_sms(instances.urls[0], number, key)
    replayed = send_sms(instances.urls[1], number, key)

    assert replayed.status_code == 201
    assert replayed.json() == first.json()
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert instances.creations_to(number) == 1


def test_a_key_header_sent_twice_to_an_instance_answers_400(instances: Instances) -> None:
    """The local host joins a repeated header as the Functions host does: `a,b`."""
    number, base = a_number(), urlsplit(instances.urls[0])
    body = json.dumps({"to": number, "body": "Hi"}).encode()
    connection = http.client.HTTPConnection(base.hostname or "", base.port, timeout=60)
    try:
        connection.putrequest("POST", "/api/send_sms")
        for name, value in [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Idempotency-Key", "sent-twice"),
            ("Idempotency-Key", "sent-twice"),
        ]:
            connection.putheader(name, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        error = json.loads(answer.read())["error"]
    finally:
        connection.close()

    assert (answer.status, error["code"]) == (400, "invalid_idempotency_key")
    assert instances.creations_to(number) == 0


@pytest.mark.usefixtures("clear_of_the_hour_turn")
def test_two_instances_at_once_never_exceed_the_hourly_limit(instances: Instances) -> None:
    number = a_number()
    done: list[requests.Response] = []
    sends = [functools.partial(send_sms, url, number) for url in instances.urls for _ in range(4)]
    for thread in at_once(sends, done):
        thread.join()

    assert sorted(r.status_code for r in done) == [201] * HOURLY_LIMIT + [429] * (8 - HOURLY_LIMIT)
    assert instances.creations_to(number) == HOURLY_LIMIT


def test_a_store_outage_answers_503_and_twilio_is_not_asked() -> None:
    with ExitStack() as stack:
        twilio = HeldTwilio().start()
        stack.callback(twilio.stop)
        store = Azurite(free_port()).start()
        stack.callback(store.stop)
        url = stack.enter_context(app_instance(twilio, store.connection_string))
        assert send_sms(url, a_number()).status_code == 201
        store.stop()

        keyed, unkeyed = send_sms(url, a_number(), "after-the-outage"), send_sms(url, a_number())

    assert (keyed.status_code, unkeyed.status_code) == (503, 503)
    assert keyed.json()["error"]["code"] == unkeyed.json()["error"]["code"] == "state_unavailable"
    assert len(twilio.creations()) == 1
