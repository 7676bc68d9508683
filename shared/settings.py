"""App settings, read once on first use into a typed, immutable object.

Nothing here runs at import time, so a missing setting can never stop the host
from indexing the functions; it surfaces as a clear 503 on the request that needs it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared import hosts
from shared.errors import ApiError

DEFAULT_VOICE_MESSAGE = "Hello Monkey!"
DEFAULT_SMS_REPLY = "Hey, thanks for the ping! Twilio and Azure rock!"
DEFAULT_DESTINATION_HOURLY_LIMIT = 10
DEFAULT_OUTCOME_RETENTION_DAYS = 30
MAX_OUTCOME_RETENTION_DAYS = 3650  # ten years; far beyond, the cutoff date would overflow
# HTTP requests one instance answers at once: Flex Consumption's perInstanceConcurrency, 1 for Python unless set.
# At 16, `make bench` measured make_call about 15 times as fast as one at a time, its median unchanged; 32 gave 26
# to 29 times, but every request's work shares one GIL: voice_url's p99, 5 to 9 ms alone, was 45 to 80 ms at 16 and
# 80 to 120 ms at 32. Flex's own default on 2048 MB instances, for the other languages, is 16 as well.
DEFAULT_PER_INSTANCE_CONCURRENCY = 16
# The Functions host gives the Python worker 1000 threads unless PYTHON_THREADPOOL_THREAD_COUNT is set, and urllib3
# fills a pool's queue up front, one placeholder per connection it may keep.
MAX_PER_INSTANCE_CONCURRENCY = 1000
STORAGE = "AzureWebJobsStorage"
ROUTE_PREFIX = "api"
# Set by devtools.host for the app it serves, as Core Tools sets AZURE_FUNCTIONS_ENVIRONMENT; never in Azure.
LOCAL_HOST = "DEVTOOLS_LOCAL_HOST"

_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")
_REGION = re.compile("[A-Za-z]{2}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigurationError(ApiError):
    """A setting is present but unusable."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(503, "configuration_error", f"Setting {name} {message}.", target=name)


# The name of every app setting the app reads. Settings.from_environ reads all but the last four:
# `credentials` and `identity` read the Twilio credentials and AZURE_CLIENT_ID where they need them, and
# `webhooks` reads LOCAL_HOST, which only the local host sets. The tests clear each of these
# between tests (testing.process_state), so a new setting is named here too.
SETTING_NAMES = (
    "KEY_VAULT_URL",
    "TWILIO_ACCOUNT_SID_SECRET",
    "TWILIO_AUTH_TOKEN_SECRET",
    "TWILIO_FROM_NUMBER",
    "VOICE_MESSAGE",
    "SMS_REPLY",
    "PUBLIC_BASE_URL",
    "WEBSITE_HOSTNAME",
    "TWILIO_API_BASE_URL",
    "TWILIO_HTTP_TIMEOUT",
    "ALLOWED_DESTINATIONS",
    "ALLOW_PREMIUM_DESTINATIONS",
    "TRUST_FORWARDED_HEADERS",
    "SECRET_CACHE_TTL",
    "PREFETCH_SECRETS",
    STORAGE,
    f"{STORAGE}__accountName",
    f"{STORAGE}__tableServiceUri",
    f"{STORAGE}__clientId",
    "DESTINATION_HOURLY_LIMIT",
    "DAILY_LIMIT",
    "LIMITS_FAIL_OPEN",
    "PER_INSTANCE_CONCURRENCY",
    "OUTCOME_RETENTION_DAYS",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "AZURE_CLIENT_ID",
    LOCAL_HOST,
)


@dataclass(frozen=True)
class Settings:
    key_vault_url: str | None = None
    account_sid_secret: str = "twilio-account-sid"
    auth_token_secret: str = "twilio-auth-token"
    from_number: str | None = None
    voice_message: str = DEFAULT_VOICE_MESSAGE
    sms_reply: str = DEFAULT_SMS_REPLY
    public_base_url: str | None = None
    website_hostname: str | None = None
    twilio_api_base_url: str | None = None
    twilio_http_timeout: float = 10.0
    # As set: parsed where used, so a mistake in it stops make_call and send_sms, not the webhooks.
    destinations_setting: str = ""
    allow_premium_destinations: bool = False
    trust_forwarded_headers: bool = False
    secret_ttl: float = 900.0
    prefetch_secrets: bool = True
    # The Functions host's own storage, as it finds it: a connection string (which may carry an
    # account key), or identity-based settings.
    storage_connection_string: str | None = field(default=None, repr=False)
    storage_account_name: str | None = None
    storage_table_service_uri: str | None = None
    storage_client_id: str | None = None
    # As set, like ALLOWED_DESTINATIONS: they concern make_call and send_sms alone.
    destination_hourly_limit_setting: str = ""
    daily_limit_setting: str = ""
    limits_fail_open_setting: str = ""
    # As set, like the limits: it sizes the Twilio client's connection pool, so only make_call and send_sms need it.
    per_instance_concurrency_setting: str = ""
    # As set: only the daily sweep of the outcomes table needs it.
    outcome_retention_days_setting: str = ""

    @functools.cached_property
    def allowed_destinations(self) -> tuple[str, ...]:
        return _destinations(self.destinations_setting, "ALLOWED_DESTINATIONS")

    @functools.cached_property
    def destination_hourly_limit(self) -> int | None:
        """Calls and texts to one number per hour; 0 turns the limit off."""
        return _limit(
            self.destination_hourly_limit_setting, "DESTINATION_HOURLY_LIMIT", DEFAULT_DESTINATION_HOURLY_LIMIT
        )

    @functools.cached_property
    def daily_limit(self) -> int | None:
        """Calls and texts per UTC day for the whole app; unset or 0: no limit."""
        return _limit(self.daily_limit_setting, "DAILY_LIMIT", None)

    @functools.cached_property
    def limits_fail_open(self) -> bool:
        return _flag({"LIMITS_FAIL_OPEN": self.limits_fail_open_setting}, "LIMITS_FAIL_OPEN", default=False)

    @functools.cached_property
    def per_instance_concurrency(self) -> int:
        """The requests one instance answers at once, so the Twilio calls it may have open at once."""
        return _concurrency(self.per_instance_concurrency_setting, "PER_INSTANCE_CONCURRENCY")

    @functools.cached_property
    def outcome_retention_days(self) -> int:
        """Days a call's or a text's outcome is kept before the daily sweep deletes it."""
        return _days(self.outcome_retention_days_setting, "OUTCOME_RETENTION_DAYS", DEFAULT_OUTCOME_RETENTION_DAYS)

    # The properties call plain functions, which mutation testing reaches (it leaves decorated ones alone).
    @property
    def storage_configured(self) -> bool:
        return _storage_configured(self)

    @property
    def destination_prefixes(self) -> tuple[str, ...]:
        return _prefixes(self.allowed_destinations)

    @property
    def destination_regions(self) -> frozenset[str]:
        return _regions(self.allowed_destinations)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        def text(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        return cls(
            key_vault_url=_url(environ, "KEY_VAULT_URL"),
            account_sid_secret=text("TWILIO_ACCOUNT_SID_SECRET") or cls.account_sid_secret,
            auth_token_secret=text("TWILIO_AUTH_TOKEN_SECRET") or cls.auth_token_secret,
            from_number=text("TWILIO_FROM_NUMBER"),
            voice_message=text("VOICE_MESSAGE") or DEFAULT_VOICE_MESSAGE,
            sms_reply=text("SMS_REPLY") or DEFAULT_SMS_REPLY,
            public_base_url=_url(environ, "PUBLIC_BASE_URL"),
            website_hostname=_host(environ, "WEBSITE_HOSTNAME"),
            twilio_api_base_url=_url(environ, "TWILIO_API_BASE_URL"),
            twilio_http_timeout=_seconds(environ, "TWILIO_HTTP_TIMEOUT", cls.twilio_http_timeout),
            destinations_setting=environ.get("ALLOWED_DESTINATIONS", ""),
            allow_premium_destinations=_flag(environ, "ALLOW_PREMIUM_DESTINATIONS", default=False),
            trust_forwarded_headers=_flag(environ, "TRUST_FORWARDED_HEADERS", default=False),
            secret_ttl=_seconds(environ, "SECRET_CACHE_TTL", cls.secret_ttl),
            prefetch_secrets=_flag(environ, "PREFETCH_SECRETS", default=True),
            storage_connection_string=text(STORAGE),
            storage_account_name=text(f"{STORAGE}__accountName"),
            storage_table_service_uri=text(f"{STORAGE}__tableServiceUri"),
            storage_client_id=text(f"{STORAGE}__clientId"),
            destination_hourly_limit_setting=environ.get("DESTINATION_HOURLY_LIMIT", ""),
            daily_limit_setting=environ.get("DAILY_LIMIT", ""),
            limits_fail_open_setting=environ.get("LIMITS_FAIL_OPEN", ""),
            per_instance_concurrency_setting=environ.get("PER_INSTANCE_CONCURRENCY", ""),
            outcome_retention_days_setting=environ.get("OUTCOME_RETENTION_DAYS", ""),
        )


def _storage_configured(settings: Settings) -> bool:
    return bool(
        settings.storage_connection_string or settings.storage_account_name or settings.storage_table_service_uri
    )


def _prefixes(destinations: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(entry for entry in destinations if entry.startswith("+"))


def _regions(destinations: tuple[str, ...]) -> frozenset[str]:
    return frozenset(entry for entry in destinations if not entry.startswith("+"))


@functools.cache
def get_settings() -> Settings:
    return Settings.from_environ(os.environ)


def _url(environ: Mapping[str, str], name: str) -> str | None:
    """An absolute http(s) URL, optionally with a path; never one whose host or port would fail later."""
    value = environ.get(name, "").strip().rstrip("/")
    if not value:
        return None
    scheme, _, rest = value.partition("://")
    netloc = rest.split("/", 1)[0]
    if scheme not in {"https", "http"} or not hosts.is_host(netloc) or "?" in value or "#" in value:
        raise ConfigurationError(
            name, "must be an absolute http(s) URL with a valid host and port, no query or fragment"
        )
    return value


def _host(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not hosts.is_host(value):
        raise ConfigurationError(name, "must be a host name such as myapp.azurewebsites.net")
    return value


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(name, "must be a number of seconds") from None
    if not 0 < value < 86_400 * 7:
        raise ConfigurationError(name, "must be more than 0 and less than a week (604800 seconds)")
    return value


def _flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(name, "must be true or false")


def _limit(setting: str, name: str, default: int | None) -> int | None:
    raw = setting.strip()
    if not raw:
        return default
    if not raw.isdigit() or not raw.isascii():
        raise ConfigurationError(name, "must be a whole number (0 turns the limit off)")
    return int(raw) or None


def _concurrency(setting: str, name: str) -> int:
    raw = setting.strip()
    if not raw:
        return DEFAULT_PER_INSTANCE_CONCURRENCY
    if not raw.isdigit() or not raw.isascii() or not 1 <= int(raw) <= MAX_PER_INSTANCE_CONCURRENCY:
        raise ConfigurationError(name, f"must be a whole number from 1 to {MAX_PER_INSTANCE_CONCURRENCY}")
    return int(raw)


def _days(setting: str, name: str, default: int) -> int:
    raw = setting.strip()
    if not raw:
        return default
    if not raw.isdigit() or not raw.isascii() or not 1 <= int(raw) <= MAX_OUTCOME_RETENTION_DAYS:
        raise ConfigurationError(name, f"must be a whole number of days from 1 to {MAX_OUTCOME_RETENTION_DAYS}")
    return int(raw)


def _destinations(setting: str, name: str) -> tuple[str, ...]:
    """Region codes (upper-cased) and E.164 prefixes; unset means every destination, but a
    list that names nothing (such as ",") is a mistake, never a licence to dial anywhere."""
    raw = setting.strip()
    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    if raw and not entries:
        raise ConfigurationError(name, "names no destination: list region codes or prefixes such as US,CA or +1,+44")
    for entry in entries:
        if not (_PREFIX.fullmatch(entry) or _REGION.fullmatch(entry)):
            raise ConfigurationError(name, "must list region codes or E.164 prefixes such as US,CA or +1,+44")
    return tuple(entry.upper() for entry in entries)
