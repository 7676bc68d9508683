"""The Twilio account credentials, from Key Vault or the environment, cached per process.

A warm request never waits on Key Vault: a fresh value is served from memory, an
expired one is served while a background thread refreshes it, and after one
successful read an outage only delays the refresh.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.errors import ApiError
from shared.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# After a failed refresh, wait this long before trying again rather than on every request.
RETRY_AFTER_FAILURE = 30.0
# A failed cold read is the answer for this long: requests queued behind it fail at once
# instead of each waiting out its own round of retries.
REMEMBER_FAILURE = 5.0
# Forced re-reads (a rejected token, a signature that does not match) at most this often.
FORCED_REFRESH_INTERVAL = 60.0


@dataclass(frozen=True)
class TwilioCredentials:
    account_sid: str
    auth_token: str = field(repr=False)


def load_credentials(settings: Settings) -> TwilioCredentials:
    if settings.key_vault_url:
        from shared import keyvault

        names = (settings.account_sid_secret, settings.auth_token_secret)
        values = keyvault.read_secrets(settings.key_vault_url, names)
        return TwilioCredentials(values[names[0]], values[names[1]])
    # Secrets stay out of Settings; read here, they also follow a changed app setting.
    sid = os.environ.get("TWILIO_ACCOUNT_SID", "").strip()
    token = os.environ.get("TWILIO_AUTH_TOKEN", "").strip()
    missing = [name for name, value in (("TWILIO_ACCOUNT_SID", sid), ("TWILIO_AUTH_TOKEN", token)) if not value]
    if missing:
        raise ApiError(
            503,
            "credentials_unavailable",
            f"Twilio credentials are not configured: set {' and '.join(missing)}, or KEY_VAULT_URL.",
            target=missing[0],
        )
    return TwilioCredentials(sid, token)


class CredentialStore:
    def __init__(
        self,
        load: Callable[[], TwilioCredentials],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        # The credentials and when they expire, swapped as one: a request reading it without the lock
        # never sees new credentials with an old expiry, or none at all.
        self._entry: tuple[TwilioCredentials, float] | None = None
        self._failure: tuple[ApiError, float] | None = None
        self._last_forced = -math.inf
        self._generation = 0  # bumped by every store, so a slow background read cannot undo a newer one

    def get(self) -> TwilioCredentials:
        entry = self._entry
        if entry is not None:
            credentials, expires = entry
            if self._clock() >= expires:
                self._refresh_in_background()
            return credentials
        with self._lock:  # one read however many cold requests arrive together
            if self._entry is None:
                self._load_cold()
            assert self._entry is not None
            return self._entry[0]

    def refresh(self, stale: TwilioCredentials) -> TwilioCredentials | None:
        """Credentials newer than `stale`, which Twilio or a signature just refused.

        Re-reads the source unless another request already did; rate limited, so that
        forged signatures cannot make the app hammer Key Vault. None: nothing newer.
        """
        with self._lock:
            if self._entry is not None and self._entry[0] != stale:
                return self._entry[0]
            now = self._clock()
            if now - self._last_forced < FORCED_REFRESH_INTERVAL:
                return None
            self._last_forced = now
            try:
                fresh = self._load()
            except ApiError as error:
                logger.warning("Could not re-read Twilio credentials: %s", error.code)
                return None
            self._keep(fresh)
        if fresh == stale:
            return None
        logger.info("Twilio credentials changed at their source; using the new ones")
        return fresh

    def keep(self, credentials: TwilioCredentials) -> None:
        """Serve credentials the caller read from the source itself, such as a command that waited for access."""
        with self._lock:
            self._keep(credentials)
            self._failure = None

    def _load_cold(self) -> None:
        if self._failure is not None and self._clock() < self._failure[1]:
            failed = self._failure[0]  # a new exception each time: the first keeps its own traceback
            raise ApiError(failed.status, failed.code, failed.message, target=failed.target, inner=failed.inner)
        try:
            self._keep(self._load())
        except ApiError as error:
            self._failure = (error, self._clock() + REMEMBER_FAILURE)
            raise
        self._failure = None

    def _keep(self, credentials: TwilioCredentials) -> None:
        self._entry = (credentials, self._clock() + self._ttl)
        self._generation += 1

    def _refresh_in_background(self) -> None:
        if self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh_expired, name="credentials-refresh", daemon=True).start()

    def _refresh_expired(self) -> None:
        started = self._generation
        try:
            fresh = self._load()
        except Exception as error:
            logger.warning("Could not refresh Twilio credentials (%s); serving the cached ones", _code(error))
            with self._lock:
                assert self._entry is not None  # only cached credentials expire and get refreshed
                self._entry = (self._entry[0], self._clock() + min(self._ttl, RETRY_AFTER_FAILURE))
        else:
            with self._lock:
                if self._generation == started:
                    self._keep(fresh)
        finally:
            self._refreshing.release()


_STORE_LOCK = threading.Lock()


def credential_store() -> CredentialStore:
    with _STORE_LOCK:  # the prefetch thread and the first request must find the same store
        return _credential_store()


@functools.cache
def _credential_store() -> CredentialStore:
    settings = get_settings()
    return CredentialStore(functools.partial(load_credentials, settings), ttl=settings.secret_ttl)


def current() -> TwilioCredentials:
    return credential_store().get()


def prefetch() -> None:
    """Start reading the secrets in the background, so the first request finds them ready."""
    threading.Thread(target=_prefetch, name="credentials-prefetch", daemon=True).start()


def _prefetch() -> None:
    try:
        current()
    except Exception as error:
        logger.warning("Prefetching Twilio credentials failed (%s); the first request will retry", _code(error))


def _code(error: Exception) -> str:
    return error.code if isinstance(error, ApiError) else type(error).__name__
