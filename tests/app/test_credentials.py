"""The credential cache: one read per secret per TTL, single flight, stale values through an outage; and its
background work: refreshes and the prefetch run in daemon threads, retry after a failure at a measured pace, and
say in the log what went wrong."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import credentials
from shared.credentials import (
    REMEMBER_FAILURE,
    RETRY_AFTER_FAILURE,
    CredentialStore,
    TwilioCredentials,
    load_credentials,
)
from shared.errors import ApiError
from shared.settings import get_settings
from testing.standins import Fault, KeyVaultStandIn
from tests.support import ACCOUNT_SID, AUTH_TOKEN, Clock, eventually, fixture, signed_post

DOWN = Fault(status=503, body={"error": {"code": "ServiceUnavailable"}})


class Source:
    """The credentials at their source: the token the last rotation set, and how often they were read."""

    def __init__(self) -> None:
        self.token = "old"
        self.reads = 0

    def __call__(self) -> TwilioCredentials:
        self.reads += 1
        return TwilioCredentials("AC1", self.token)


# --- one read per secret, shared by concurrent requests --------------------------------------------------------------


def test_many_requests_read_each_secret_once(vault: KeyVaultStandIn) -> None:
    for _ in range(100):
        assert signed_post("sms_url", fixture("incoming_sms")).status_code == 200

    assert vault.fetches == {"twilio-account-sid": 1, "twilio-auth-token": 1}


def test_concurrent_cold_requests_read_each_secret_once(vault: KeyVaultStandIn) -> None:
    vault.delay = 0.1
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(signed_post("sms_url", fixture("incoming_sms")).status_code))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 20
    assert vault.fetches == {"twilio-account-sid": 1, "twilio-auth-token": 1}


def test_a_failed_cold_read_answers_the_requests_queued_behind_it(vault: KeyVaultStandIn) -> None:
    vault.fail_next(*[DOWN] * 1000)

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: signed_post("sms_url", fixture("incoming_sms")).status_code, range(10)))

    assert statuses == [503] * 10
    # The SDK's retries of a read repeat its x-ms-client-request-id: one id per secret is one read of it.
    reads = {(r.path, r.headers["x-ms-client-request-id"]) for r in vault.received if "Authorization" in r.headers}
    assert sorted(path for path, _ in reads) == ["/secrets/twilio-account-sid/", "/secrets/twilio-auth-token/"]


# --- expiry: stale values served while a refresh runs, never undone by a slower one ----------------------------------


def test_expired_credentials_are_served_while_they_refresh(vault: KeyVaultStandIn) -> None:
    clock = Clock()
    store = CredentialStore(lambda: load_credentials(get_settings()), ttl=60, clock=clock)
    assert store.get().auth_token == AUTH_TOKEN

    vault.secrets["twilio-auth-token"] = "rotated"
    clock.now += 61
    assert store.get().auth_token == AUTH_TOKEN  # at once, from memory
    assert eventually(lambda: store.get().auth_token == "rotated")
    assert vault.fetches["twilio-auth-token"] == 2


def test_an_outage_after_one_read_never_breaks_requests(vault: KeyVaultStandIn) -> None:
    clock = Clock()
    store = CredentialStore(lambda: load_credentials(get_settings()), ttl=60, clock=clock)
    store.get()
    vault.fail_next(*[DOWN] * 1000)

    clock.now += 61
    assert store.get().auth_token == AUTH_TOKEN
    assert eventually(lambda: len(vault.faults) < 1000 and not store._refreshing.locked())
    tried = len(vault.received)

    clock.now += RETRY_AFTER_FAILURE / 2
    assert store.get().auth_token == AUTH_TOKEN
    assert len(vault.received) == tried  # a failed refresh waits before trying again

    vault.faults.clear()
    vault.secrets["twilio-auth-token"] = "after-the-outage"
    clock.now += RETRY_AFTER_FAILURE
    store.get()
    assert eventually(lambda: store.get().auth_token == "after-the-outage")


def test_a_slow_background_refresh_cannot_undo_a_newer_forced_one() -> None:
    clock = Clock()
    reading_old, release = threading.Event(), threading.Event()
    tokens = iter(["old", "slow", "rotated"])

    def load() -> credentials.TwilioCredentials:
        token = next(tokens)
        if token == "slow":  # a background read that began before the rotation
            reading_old.set()
            release.wait(10)
            token = "old"
        return credentials.TwilioCredentials("AC1", token)

    store = CredentialStore(load, ttl=60, clock=clock)
    old = store.get()
    clock.now += 61
    store.get()
    assert reading_old.wait(10)

    assert store.refresh(old) == credentials.TwilioCredentials("AC1", "rotated")
    release.set()

    assert eventually(lambda: not store._refreshing.locked())
    assert store.get().auth_token == "rotated"


# --- forced re-reads, at most one a minute ---------------------------------------------------------------------------


def forced_re_read() -> tuple[Clock, Source, CredentialStore, TwilioCredentials]:
    """A store that has just re-read a rotated token on demand, and a source rotated once more."""
    clock, source = Clock(), Source()
    store = CredentialStore(source, ttl=900, clock=clock)
    first = store.get()
    source.token = "rotated"
    second = store.refresh(first)
    assert second == TwilioCredentials("AC1", "rotated")
    source.token = "rotated-again"
    return clock, source, store, second


def test_a_forced_re_read_within_a_minute_of_the_last_is_refused() -> None:
    clock, source, store, current = forced_re_read()
    clock.now += 59.99

    assert store.refresh(current) is None
    assert source.reads == 2


def test_a_forced_re_read_is_allowed_again_a_minute_after_the_last() -> None:
    clock, source, store, current = forced_re_read()
    clock.now += 60

    assert store.refresh(current) == TwilioCredentials("AC1", "rotated-again")
    assert source.reads == 3


# --- how long secrets are kept ---------------------------------------------------------------------------------------


def test_secrets_are_kept_900_seconds_by_default() -> None:
    clock, source = Clock(), Source()
    read_at = clock.now
    store = CredentialStore(source, ttl=get_settings().secret_ttl, clock=clock)
    store.get()

    clock.now = read_at + 899.99
    store.get()
    assert source.reads == 1

    clock.now = read_at + 900
    store.get()
    assert eventually(lambda: source.reads == 2)


def test_secret_cache_ttl_sets_how_long_the_app_keeps_secrets(vault: KeyVaultStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("SECRET_CACHE_TTL", "0.3")
    started = time.monotonic()
    assert credentials.current().auth_token == AUTH_TOKEN
    vault.secrets["twilio-auth-token"] = "rotated"

    assert eventually(lambda: credentials.current().auth_token == "rotated", timeout=5)
    assert time.monotonic() - started >= 0.3  # kept until the TTL ran out, not refreshed on every read


# --- where credentials come from, and none configured ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "missing", "target"),
    [
        ({}, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_AUTH_TOKEN": "token"}, "TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"),
    ],
    ids=["neither", "no-token", "no-sid"],
)
def test_missing_credentials_are_a_503_naming_every_missing_setting(
    env: pytest.MonkeyPatch, configured: dict[str, str], missing: str, target: str
) -> None:
    for name, value in configured.items():
        env.setenv(name, value)

    with pytest.raises(ApiError) as raised:
        load_credentials(get_settings())

    assert (raised.value.status, raised.value.code, raised.value.message, raised.value.target) == (
        503,
        "credentials_unavailable",
        f"Twilio credentials are not configured: set {missing}, or KEY_VAULT_URL.",
        target,
    )


def test_credentials_come_from_the_app_settings_without_key_vault(credentials_in_env: None) -> None:
    assert load_credentials(get_settings()) == TwilioCredentials(ACCOUNT_SID, AUTH_TOKEN)


def test_credentials_a_caller_read_itself_are_served_at_once_after_a_failed_read() -> None:
    """As the number-wiring command does once it has waited for Key Vault access itself."""
    reads = 0

    def load() -> TwilioCredentials:
        nonlocal reads
        reads += 1
        raise ApiError(503, "credentials_unavailable", "Key Vault refused the read.")

    store = CredentialStore(load, ttl=900, clock=Clock())
    with pytest.raises(ApiError):
        store.get()

    store.keep(TwilioCredentials("AC1", "read-by-the-caller"))

    assert store.get() == TwilioCredentials("AC1", "read-by-the-caller")
    assert reads == 1


def test_credentials_repr_never_shows_the_token() -> None:
    assert AUTH_TOKEN not in repr(credentials.TwilioCredentials("AC1", AUTH_TOKEN))


# --- a failed first read ---------------------------------------------------------------------------------------------


def test_a_failed_cold_read_is_tried_again_5_seconds_later() -> None:
    clock, outcomes = Clock(), iter([False, True])

    def load() -> TwilioCredentials:
        if not next(outcomes):
            raise ApiError(503, "credentials_unavailable", "Key Vault could not be reached.")
        return TwilioCredentials("AC1", "token")

    store = CredentialStore(load, ttl=900, clock=clock)
    with pytest.raises(ApiError):
        store.get()
    clock.now += REMEMBER_FAILURE

    assert store.get() == TwilioCredentials("AC1", "token")


def test_a_remembered_cold_failure_is_raised_again_whole() -> None:
    clock, reads = Clock(), 0
    failure = ApiError(
        503, "credentials_unavailable", "Key Vault could not be reached.", target="twilio-auth-token", inner={"n": 1}
    )

    def load() -> TwilioCredentials:
        nonlocal reads
        reads += 1
        raise failure

    store = CredentialStore(load, ttl=900, clock=clock)
    with pytest.raises(ApiError):
        store.get()
    clock.now += REMEMBER_FAILURE - 0.01

    with pytest.raises(ApiError) as raised:
        store.get()
    assert raised.value is not failure
    assert (raised.value.status, raised.value.code, raised.value.message, raised.value.target, raised.value.inner) == (
        503,
        "credentials_unavailable",
        "Key Vault could not be reached.",
        "twilio-auth-token",
        {"n": 1},
    )
    assert reads == 1


# --- background threads, and what they log ---------------------------------------------------------------------------


UNAVAILABLE = ApiError(503, "credentials_unavailable", "Key Vault could not be reached.")


class ReadOnce:
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
    clock, source = Clock(), ReadOnce(UNAVAILABLE)
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
    store = expired_store(ReadOnce(UNAVAILABLE), clock)

    assert store.get() == TwilioCredentials("AC1", "token")
    finish("credentials-refresh")

    assert warnings_of(caplog) == [
        "Could not refresh Twilio credentials (credentials_unavailable); serving the cached ones"
    ]


def test_an_unexpected_background_refresh_failure_logs_its_type(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    store = expired_store(ReadOnce(ConnectionResetError("reset by peer")), clock)

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
    store = CredentialStore(ReadOnce(UNAVAILABLE), ttl=900, clock=Clock())
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
