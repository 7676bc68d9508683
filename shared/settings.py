"""App settings, read once on first use into a typed, immutable object.

Nothing here runs at import time, so a missing setting can never stop the host
from indexing the functions; it surfaces as a clear 503 on the request that needs it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import ApiError

DEFAULT_VOICE_MESSAGE = "Hello Monkey!"
DEFAULT_SMS_REPLY = "Hey, thanks for the ping! Twilio and Azure rock!"
ROUTE_PREFIX = "api"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigurationError(ApiError):
    """A setting is present but unusable."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(503, "configuration_error", f"Setting {name} {message}.", target=name)


@dataclass(frozen=True)
class Settings:
    key_vault_url: str | None = None
    account_sid_secret: str = "twilio-account-sid"
    auth_token_secret: str = "twilio-auth-token"
    from_number: str | None = None
    voice_message: str = DEFAULT_VOICE_MESSAGE
    sms_reply: str = DEFAULT_SMS_REPLY
    public_base_url: str | None = None
    twilio_api_base_url: str | None = None
    twilio_http_timeout: float = 10.0
    allowed_destinations: tuple[str, ...] = ()
    trust_forwarded_headers: bool = False
    secret_ttl: float = 900.0
    prefetch_secrets: bool = True

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
            twilio_api_base_url=_url(environ, "TWILIO_API_BASE_URL"),
            twilio_http_timeout=_seconds(environ, "TWILIO_HTTP_TIMEOUT", cls.twilio_http_timeout),
            allowed_destinations=_prefixes(environ, "ALLOWED_DESTINATIONS"),
            trust_forwarded_headers=_flag(environ, "TRUST_FORWARDED_HEADERS", default=False),
            secret_ttl=_seconds(environ, "SECRET_CACHE_TTL", cls.secret_ttl),
            prefetch_secrets=_flag(environ, "PREFETCH_SECRETS", default=True),
        )


@functools.cache
def get_settings() -> Settings:
    return Settings.from_environ(os.environ)


def _url(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("https://", "http://")):
        raise ConfigurationError(name, "must be an absolute http(s) URL")
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
        raise ConfigurationError(name, "must be a positive number of seconds")
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


def _prefixes(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    prefixes = tuple(p.strip() for p in environ.get(name, "").split(",") if p.strip())
    for prefix in prefixes:
        if not (prefix.startswith("+") and prefix[1:].isdigit() and prefix[1:2] != "0"):
            raise ConfigurationError(name, "must list E.164 prefixes such as +1,+44")
    return prefixes
