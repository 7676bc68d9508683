"""The Twilio client against Twilio faults provoked for real on local servers: what each failure answers and logs,
what is retried and after how long (nothing is sent twice), and the pooled connections."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
from twilio.rest import Client
from urllib3 import HTTPResponse
from urllib3.connection import HTTPConnection
from urllib3.exceptions import NewConnectionError

from devtools.sandbox.answers import twilio_error
from shared import credentials, twilio_client
from shared.errors import ApiError
from shared.twilio_client import call_twilio, client_for
from testing.standins import Fault, KeyVaultStandIn, Received, TwilioStandIn
from tests.servers import refusing_port, unaccepting_port
from tests.support import ACCOUNT_SID, AUTH_TOKEN, body_json, error_of, post_json

CALL = {"to": "+15558675310"}


def throttled(retry_after: str) -> Fault:
    return Fault(status=429, body=twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": retry_after})


class TimedTwilio(TwilioStandIn):
    """The Twilio stand-in, noting when each request arrived."""

    def __init__(self) -> None:
        super().__init__(ACCOUNT_SID, AUTH_TOKEN)
        self.arrivals: list[float] = []

    def record(self, request: Received) -> None:
        self.arrivals.append(time.monotonic())
        super().record(request)


@pytest.fixture
def timed_twilio(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> Iterator[TimedTwilio]:
    """The `twilio` fixture's settings, pointed at a stand-in that notes arrival times."""
    server = TimedTwilio().start()
    env.setenv("TWILIO_API_BASE_URL", server.url)
    yield server
    server.stop()


class LatePort:
    """A loopback port that refuses connections until opened, then relays them to `target`."""

    def __init__(self, target: str) -> None:
        self._target = ("127.0.0.1", urlsplit(target).port)
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))  # bound but not listening: a connection is refused
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.opened = False
        self._relayed: list[socket.socket] = []

    def open(self) -> None:
        if not self.opened:
            self.opened = True
            self._listener.listen()
            threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for sock in [self._listener, *self._relayed]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self._target)
            self._relayed += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_relay, args=(source, sink), daemon=True).start()


def _relay(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


class _Announced(logging.Handler):
    def __init__(self, action: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._action = action

    def emit(self, record: logging.LogRecord) -> None:
        self._action()


@contextlib.contextmanager
def on_retry(action: Callable[[], None]) -> Iterator[None]:
    """Run `action` when urllib3 announces a retry, which it logs before trying again."""
    handler, logger = _Announced(action), logging.getLogger("urllib3.connectionpool")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


# --- timeouts, 5xx, dropped and refused connections, through make_call and send_sms ----------------------------------


def test_a_read_timeout_answers_504_and_is_not_retried(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_HTTP_TIMEOUT", "0.3")
    twilio.fail_next(Fault(delay=1.0))

    response = post_json("make_call", CALL)

    assert response.status_code == 504
    assert error_of(response)["code"] == "twilio_timeout"
    assert "unknown" in error_of(response)["message"]
    assert len(twilio.creations()) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_twilio_5xx_answers_502_and_is_not_retried(twilio: TwilioStandIn, status: int) -> None:
    twilio.fail_next(Fault(status=status, body=twilio_error(20500, "Internal Server Error", status)))

    response = post_json("make_call", CALL)

    assert response.status_code == 502
    assert "whether the call was placed is unknown" in error_of(response)["message"]
    assert len(twilio.creations()) == 1


def test_a_dropped_connection_answers_502_outcome_unknown(twilio: TwilioStandIn) -> None:
    twilio.fail_next(Fault(drop=True))

    response = post_json("send_sms", {**CALL, "body": "Hi"})

    assert response.status_code == 502
    assert "whether the message was sent is unknown" in error_of(response)["message"]
    assert len(twilio.creations()) == 1


@pytest.mark.parametrize(
    ("function", "document"), [("make_call", CALL), ("send_sms", {**CALL, "body": "Hi"})], ids=["make_call", "send_sms"]
)
def test_an_unreachable_twilio_answers_502_nothing_sent(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, function: str, document: dict[str, str]
) -> None:
    with refusing_port() as url:
        env.setenv("TWILIO_API_BASE_URL", url)
        response = post_json(function, document)

    assert response.status_code == 502
    assert error_of(response)["code"] == "twilio_unreachable"
    assert error_of(response)["message"] == "Twilio could not be reached; nothing was sent."


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_refused_connection_is_retried_twice_before_answering(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, scheme: str
) -> None:
    """Twilio's own https:// as well as a local sandbox's http://: the connection is refused before any TLS."""
    retries: list[bool] = []
    with refusing_port() as url:
        env.setenv("TWILIO_API_BASE_URL", url.replace("http://", f"{scheme}://", 1))
        with on_retry(lambda: retries.append(True)):
            response = post_json("make_call", CALL)

    assert (response.status_code, retries) == (502, [True, True])


@pytest.fixture
def urllib3_loggers_unfiltered() -> Iterator[None]:
    """urllib3's loggers as a fresh process has them: the filter an earlier test's client added is taken off, so
    that only the client built here can put it back."""
    loggers = [logging.getLogger(name) for name in ("urllib3.connectionpool", "urllib3.util.retry")]
    kept = [list(logger.filters) for logger in loggers]
    for logger in loggers:
        logger.filters.clear()
    yield
    for logger, filters in zip(loggers, kept, strict=True):
        logger.filters[:] = filters


@pytest.mark.usefixtures("urllib3_loggers_unfiltered")
def test_urllib3s_lines_about_a_retry_name_no_account_sid(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs the request path, /Accounts/AC…/Calls.json, from two loggers as it retries."""
    caplog.set_level(logging.DEBUG, logger="urllib3")
    with refusing_port() as url:
        env.setenv("TWILIO_API_BASE_URL", url)
        post_json("make_call", CALL)

    lines = {(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("urllib3")}
    redacted = {name for name, message in lines if "/Accounts/AC…/Calls.json" in message}
    assert redacted == {"urllib3.connectionpool", "urllib3.util.retry"}
    assert not [message for _, message in lines if ACCOUNT_SID in message]


def test_the_retries_of_a_refused_connection_wait_nothing_then_half_a_second(twilio: TwilioStandIn) -> None:
    # What urllib3 sleeps before each retry; waiting it out here would prove no more.
    policy = client_for(credentials.current()).http_client.session.get_adapter(twilio.url).max_retries
    refused = NewConnectionError(HTTPConnection("127.0.0.1", 1), "Connection refused")
    first = policy.increment("POST", "/Calls.json", error=refused)
    second = first.increment("POST", "/Calls.json", error=refused)

    assert (first.get_backoff_time(), second.get_backoff_time()) == (0, 0.5)


def test_a_refused_connection_is_retried(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    late = LatePort(twilio.url)
    env.setenv("TWILIO_API_BASE_URL", late.url)
    try:
        with on_retry(late.open):  # the port accepts once a refused attempt is being retried
            response = post_json("make_call", CALL)
    finally:
        late.close()

    assert response.status_code == 201
    assert late.opened
    assert len(twilio.creations()) == 1


def test_a_connect_timeout_answers_504_nothing_sent(twilio: TwilioStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_HTTP_TIMEOUT", "0.1")
    with unaccepting_port() as url:
        env.setenv("TWILIO_API_BASE_URL", url)
        response = post_json("make_call", CALL)

    assert response.status_code == 504
    error = error_of(response)
    assert error["code"] == "twilio_timeout"
    assert "nothing was sent" in error["message"]


# --- 429s: retried after Retry-After, a bounded number of times ------------------------------------------------------


def test_a_429_is_retried_after_the_retry_after_it_gives(timed_twilio: TimedTwilio) -> None:
    timed_twilio.fail_next(throttled("1"))

    response = post_json("make_call", CALL)

    assert response.status_code == 201
    first, second = timed_twilio.arrivals
    assert second - first >= 1.0


@pytest.mark.parametrize("retry_after", ["6", "30", "86400"])
def test_a_long_retry_after_is_capped_at_5_seconds(twilio: TwilioStandIn, retry_after: str) -> None:
    # What the app's HTTP client waits before retrying a 429 that asks for `retry_after`: urllib3
    # sleeps for exactly this. Waiting it out here would cost 5 s per run and prove no more.
    policy = client_for(credentials.current()).http_client.session.get_adapter(twilio.url).max_retries
    response = HTTPResponse(status=429, headers={"Retry-After": retry_after})

    assert policy.get_retry_after(response) == 5


def test_persistent_429s_stop_after_a_bounded_number_of_tries(twilio: TwilioStandIn) -> None:
    twilio.fail_next(*[throttled("0")] * 10)

    response = post_json("make_call", CALL)

    assert response.status_code == 429
    assert error_of(response)["code"] == "twilio_rate_limited"
    assert len(twilio.creations()) == 3


# --- Twilio refusing the request or the auth token -------------------------------------------------------------------


def test_twilio_refusing_a_number_answers_400_with_twilio_status_and_code(twilio: TwilioStandIn) -> None:
    message = "The 'To' number +15558675310 is not a valid phone number."
    twilio.fail_next(Fault(status=400, body=twilio_error(21211, message, 400)))

    response = post_json("make_call", CALL)

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["target"]) == ("twilio_rejected", "to")
    assert error["innererror"] == {
        "twilio_status": 400,
        "twilio_code": 21211,
        "more_info": "https://www.twilio.com/docs/errors/21211",
    }
    assert message in error["message"]


@pytest.mark.parametrize("code", [21608, 21215, 21408, 13227])
def test_trial_and_geo_permission_refusals_answer_403(twilio: TwilioStandIn, code: int) -> None:
    twilio.fail_next(Fault(status=400, body=twilio_error(code, "Not permitted", 400)))

    response = post_json("make_call", CALL)

    assert response.status_code == 403
    assert error_of(response)["code"] == "twilio_rejected"
    assert error_of(response)["innererror"]["twilio_code"] == code


def test_an_rfc9457_problem_from_twilio_answers_400_with_its_code(twilio: TwilioStandIn) -> None:
    problem = {
        "type": "https://www.twilio.com/docs/errors/21211",
        "title": "Invalid 'To' Phone Number",
        "status": 400,
        "code": 21211,
        "detail": "The 'To' number is not valid.",
    }
    twilio.fail_next(Fault(status=400, body=problem))

    response = post_json("make_call", CALL)

    assert response.status_code == 400
    assert error_of(response)["innererror"]["twilio_code"] == 21211
    assert "The 'To' number is not valid." in error_of(response)["message"]


def test_a_rejected_token_with_no_newer_one_answers_503_without_retrying(twilio: TwilioStandIn) -> None:
    twilio.auth_token = "rotated-at-twilio"

    response = post_json("make_call", CALL)

    assert response.status_code == 503
    assert error_of(response)["code"] == "twilio_auth_failed"
    assert len(twilio.creations()) == 1


def test_a_token_rotated_in_key_vault_is_re_read_and_the_call_retried_once(
    twilio: TwilioStandIn, vault: KeyVaultStandIn
) -> None:
    assert post_json("make_call", CALL).status_code == 201
    twilio.auth_token = vault.secrets["twilio-auth-token"] = "rotated-token-2"

    response = post_json("make_call", CALL)

    assert response.status_code == 201
    assert [r.basic_auth() for r in twilio.creations()][1:] == [
        (twilio.account_sid, "test-auth-token-7f3a9c"),
        (twilio.account_sid, "rotated-token-2"),
    ]


# --- the connection pool ---------------------------------------------------------------------------------------------


def test_warm_calls_share_one_pooled_connection(twilio: TwilioStandIn) -> None:
    for _ in range(50):
        assert post_json("make_call", CALL).status_code == 201

    assert twilio.connections == 1
    assert len({body_json(post_json("make_call", CALL))["sid"] for _ in range(3)}) == 3


def place_in_bursts(twilio: TwilioStandIn, callers: int, bursts: int) -> list[int]:
    """`callers` threads, as the Python worker runs synchronous functions, each placing one call per burst.
    The stand-in holds every call of a burst until all of them are in flight; the callers wait for each other
    between bursts, so that all the connections are idle together, as between two bursts of traffic."""
    twilio.together = threading.Barrier(callers, timeout=20)
    between = threading.Barrier(callers, timeout=20)

    def place() -> list[int]:
        statuses = []
        for _ in range(bursts):
            statuses.append(post_json("make_call", CALL).status_code)
            between.wait()
        return statuses

    with ThreadPoolExecutor(max_workers=callers) as pool:
        futures = [pool.submit(place) for _ in range(callers)]
        statuses = [status for future in futures for status in future.result()]
    assert not twilio.together.broken
    return statuses


def test_concurrent_calls_open_one_connection_each_and_reuse_them(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch
) -> None:
    # More than the 32 connections a pool sized min(32, CPUs + 4) keeps, on any machine.
    env.setenv("PER_INSTANCE_CONCURRENCY", "40")
    env.setenv("TWILIO_HTTP_TIMEOUT", "30")  # a loaded machine may take a while to bring all 40 in

    statuses = place_in_bursts(twilio, callers=40, bursts=3)

    assert statuses == [201] * 120
    assert (twilio.connections, len(twilio.creations())) == (40, 120)


def test_the_connection_pool_keeps_per_instance_concurrency_connections(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("PER_INSTANCE_CONCURRENCY", "2")

    statuses = place_in_bursts(twilio, callers=4, bursts=3)

    # 4 connections at first; after each burst, 2 are kept and the 2 others closed, then opened again.
    assert statuses == [201] * 12
    assert twilio.connections == 4 + 2 + 2


# --- what call_twilio answers and logs for each failure, exactly -----------------------------------------------------


OUTCOME = "whether the call was placed"


def place_call(client: Client) -> Any:
    return client.calls.create(to="+15558675310", from_="+15017122661", url="https://example.com/voice")


def list_numbers(client: Client) -> Any:
    return client.incoming_phone_numbers.list()


def failure(twilio: TwilioStandIn, *faults: Fault) -> ApiError:
    """The error call_twilio raises for a call that meets `faults`."""
    twilio.fail_next(*faults)
    with pytest.raises(ApiError) as raised:
        call_twilio(place_call, outcome=OUTCOME)
    return raised.value


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == twilio_client.__name__]


def test_a_twilio_client_failure_answers_502_outcome_unknown(twilio: TwilioStandIn) -> None:
    twilio.fail_next(Fault(status=503, body=twilio_error(20503, "Service Unavailable", 503)))

    with pytest.raises(ApiError) as raised:
        call_twilio(list_numbers, outcome="whether the numbers were listed")

    assert (raised.value.status, raised.value.body(), raised.value.outcome_unknown) == (
        502,
        {
            "error": {
                "code": "twilio_error",
                "message": "The Twilio client failed; whether the numbers were listed is unknown.",
                "target": None,
            }
        },
        True,
    )


def test_a_twilio_client_failure_is_logged_by_type(twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture) -> None:
    twilio.fail_next(Fault(status=503, body=twilio_error(20503, "Service Unavailable", 503)))

    with pytest.raises(ApiError):
        call_twilio(list_numbers, outcome="whether the numbers were listed")

    assert warnings_of(caplog) == ["Twilio client error: TwilioException"]


def test_a_rejected_token_answers_503_naming_the_auth_token_setting(twilio: TwilioStandIn) -> None:
    twilio.auth_token = "rotated-at-twilio"

    error = failure(twilio)

    assert (error.status, error.body()) == (
        503,
        {
            "error": {
                "code": "twilio_auth_failed",
                "message": "Twilio rejected the account credentials.",
                "target": "TWILIO_AUTH_TOKEN",
                "innererror": {
                    "twilio_status": 401,
                    "twilio_code": 20003,
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                },
            }
        },
    )


def test_persistent_429s_answer_429_with_twilio_code(twilio: TwilioStandIn) -> None:
    error = failure(twilio, *[throttled("0")] * 3)

    assert (error.status, error.body()) == (
        429,
        {
            "error": {
                "code": "twilio_rate_limited",
                "message": "Twilio is rate limiting this account; try again shortly.",
                "target": None,
                "innererror": {
                    "twilio_status": 429,
                    "twilio_code": 20429,
                    "more_info": "https://www.twilio.com/docs/errors/20429",
                },
            }
        },
    )


def test_a_429_without_retry_after_is_retried(twilio: TwilioStandIn) -> None:
    twilio.fail_next(Fault(status=429, body=twilio_error(20429, "Too Many Requests", 429)))

    created = call_twilio(place_call, outcome=OUTCOME)

    assert created.sid == twilio.sids[-1]
    assert len(twilio.creations()) == 2


def test_a_twilio_5xx_answers_502_with_twilio_status_and_code(twilio: TwilioStandIn) -> None:
    error = failure(twilio, Fault(status=500, body=twilio_error(20500, "Internal Server Error", 500)))

    assert (error.status, error.body()) == (
        502,
        {
            "error": {
                "code": "twilio_error",
                "message": f"Twilio answered 500; {OUTCOME} is unknown, check before retrying.",
                "target": None,
                "innererror": {
                    "twilio_status": 500,
                    "twilio_code": 20500,
                    "more_info": "https://www.twilio.com/docs/errors/20500",
                },
            }
        },
    )


@pytest.mark.parametrize("code", [21608, 21215, 21408, 13227])
def test_trial_and_geo_permission_refusals_name_to_as_the_target(twilio: TwilioStandIn, code: int) -> None:
    error = failure(twilio, Fault(status=400, body=twilio_error(code, "Not permitted", 400)))

    assert (error.status, error.target) == (403, "to")


def test_a_twilio_refusal_is_logged_with_its_status_and_code(
    twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    failure(twilio, Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)))

    assert warnings_of(caplog) == ["Twilio answered 400 (error 21211)"]


def test_an_account_sid_in_a_refusal_is_shown_as_ac_and_an_ellipsis(twilio: TwilioStandIn) -> None:
    detail = f"Account {ACCOUNT_SID} is not allowed to call this number."

    error = failure(twilio, Fault(status=400, body=twilio_error(21211, detail, 400)))

    assert error.message == (
        "Twilio refused the request: Unable to create record: Account AC… is not allowed to call this number."
    )


def test_a_dropped_connection_answers_502_twilio_unreachable_outcome_unknown(twilio: TwilioStandIn) -> None:
    error = failure(twilio, Fault(drop=True))

    assert (error.status, error.body()) == (
        502,
        {
            "error": {
                "code": "twilio_unreachable",
                "message": f"The connection to Twilio failed; {OUTCOME} is unknown, check before retrying.",
                "target": None,
            }
        },
    )


def test_a_dropped_connection_is_logged_by_type(twilio: TwilioStandIn, caplog: pytest.LogCaptureFixture) -> None:
    failure(twilio, Fault(drop=True))

    assert warnings_of(caplog) == ["Connection to Twilio failed: ConnectionError"]


class NotTls:
    """A loopback port that answers a TLS handshake with plain HTTP, counting the connections it took."""

    def __init__(self) -> None:
        self.accepted = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            with connection:
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def not_tls() -> Iterator[NotTls]:
    server = NotTls()
    yield server
    server.close()


def test_a_failed_tls_handshake_is_not_retried(twilio: TwilioStandIn, not_tls: NotTls, env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_API_BASE_URL", not_tls.url)

    error = failure(twilio)

    assert (error.status, error.code, not_tls.accepted) == (502, "twilio_unreachable", 1)
