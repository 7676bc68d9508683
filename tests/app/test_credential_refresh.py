"""The credential cache's background work: refreshes and the prefetch run in daemon threads, retry
after a failure at a measured pace, and say in the log what went wrong."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from shared import credentials
from shared.credentials import RETRY_AFTER_FAILURE, CredentialStore, TwilioCredentials
from shared.errors import ApiError
from testing.standins import Fault, KeyVaultStandIn
from tests.support import Clock

UNAVAILABLE = ApiError(503, "credentials_unavailable", "Key Vault could not be reached.")


class Source:
    """Credentials that can be read once, then fail with `error` on every read after."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.reads = 0

    def __call__(self) -> TwilioCredentials:
        self.reads += 1
        if self.reads > 1:
            raise self.error
        return TwilioCredentials("AC1", "token")


def threads_named(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def is_daemon(name: str) -> bool:
    """Whether the threads called `name` are running, and none of them would hold up the worker's exit."""
    threads = threads_named(name)
    return bool(threads) and all(thread.daemon for thread in threads)


def finish(name: str) -> None:
    """Wait for the app's background threads called `name` to end."""
    for thread in threads_named(name):
        thread.join(10)
        assert not thread.is_alive()


def expired_store(source: Callable[[], TwilioCredentials], clock: Clock) -> CredentialStore:
    """A store that read its credentials once, 900 s ago: the next get() refreshes them."""
    store = CredentialStore(source, ttl=900, clock=clock)
    store.get()
    clock.now += 900
    return store


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == credentials.__name__]


def test_a_failed_background_refresh_waits_30_seconds_before_the_next() -> None:
    clock, source = Clock(), Source(UNAVAILABLE)
    store = expired_store(source, clock)
    store.get()
    finish("credentials-refresh")
    failed_at = clock.now
    assert source.reads == 2

    clock.now = failed_at + RETRY_AFTER_FAILURE - 0.01
    store.get()
    finish("credentials-refresh")
    assert source.reads == 2

    clock.now = failed_at + RETRY_AFTER_FAILURE
    store.get()
    finish("credentials-refresh")
    assert source.reads == 3


def test_a_failed_background_refresh_logs_the_error_code(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    store = expired_store(Source(UNAVAILABLE), clock)

    assert store.get() == TwilioCredentials("AC1", "token")
    finish("credentials-refresh")

    assert warnings_of(caplog) == [
        "Could not refresh Twilio credentials (credentials_unavailable); serving the cached ones"
    ]


def test_an_unexpected_background_refresh_failure_logs_its_type(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    store = expired_store(Source(ConnectionResetError("reset by peer")), clock)

    assert store.get() == TwilioCredentials("AC1", "token")
    finish("credentials-refresh")

    assert warnings_of(caplog) == [
        "Could not refresh Twilio credentials (ConnectionResetError); serving the cached ones"
    ]


def test_a_background_refresh_runs_in_a_daemon_thread() -> None:
    reading, release = threading.Event(), threading.Event()
    reads = 0

    def load() -> TwilioCredentials:
        nonlocal reads
        reads += 1
        if reads > 1:
            reading.set()
            release.wait(10)
        return TwilioCredentials("AC1", "token")

    store = expired_store(load, Clock())
    store.get()
    assert reading.wait(10)
    try:
        assert is_daemon("credentials-refresh")
    finally:
        release.set()
        finish("credentials-refresh")


def test_a_failed_forced_re_read_logs_the_error_code(caplog: pytest.LogCaptureFixture) -> None:
    store = CredentialStore(Source(UNAVAILABLE), ttl=900, clock=Clock())
    stale = store.get()

    assert store.refresh(stale) is None
    assert warnings_of(caplog) == ["Could not re-read Twilio credentials: credentials_unavailable"]


def test_credentials_changed_at_their_source_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    tokens = iter(["old", "rotated"])
    store = CredentialStore(lambda: TwilioCredentials("AC1", next(tokens)), ttl=900, clock=Clock())
    stale = store.get()
    caplog.set_level(logging.INFO, logger=credentials.__name__)

    assert store.refresh(stale) == TwilioCredentials("AC1", "rotated")
    assert [r.getMessage() for r in caplog.records if r.name == credentials.__name__] == [
        "Twilio credentials changed at their source; using the new ones"
    ]


def test_a_failed_prefetch_is_logged_and_left_to_the_first_request(caplog: pytest.LogCaptureFixture) -> None:
    credentials.prefetch()  # no credentials configured at all
    finish("credentials-prefetch")

    assert warnings_of(caplog) == [
        "Prefetching Twilio credentials failed (credentials_unavailable); the first request will retry"
    ]


def test_the_prefetch_runs_in_a_daemon_thread(vault: KeyVaultStandIn) -> None:
    vault.fail_next(Fault(delay=1.0))  # holds the first read while the thread is looked at

    credentials.prefetch()
    try:
        assert is_daemon("credentials-prefetch")
    finally:
        finish("credentials-prefetch")
