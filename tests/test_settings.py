"""Settings: read once into a typed object, defaults as documented, broken values named."""

from __future__ import annotations

import pytest

from shared.errors import ApiError
from shared.settings import get_settings


def test_defaults_without_any_setting_are_the_documented_ones() -> None:
    settings = get_settings()

    assert settings.key_vault_url is None
    assert (settings.account_sid_secret, settings.auth_token_secret) == ("twilio-account-sid", "twilio-auth-token")
    assert settings.from_number is None
    assert settings.voice_message == "Hello Monkey!"
    assert settings.sms_reply == "Hey, thanks for the ping! Twilio and Azure rock!"
    assert (settings.public_base_url, settings.website_hostname, settings.twilio_api_base_url) == (None, None, None)
    assert settings.trust_forwarded_headers is False
    assert settings.allowed_destinations == ()
    assert settings.allow_premium_destinations is False
    assert settings.twilio_http_timeout == 10
    assert settings.secret_ttl == 900
    assert settings.prefetch_secrets is True
    assert (settings.destination_hourly_limit, settings.daily_limit, settings.limits_fail_open) == (10, None, False)
    assert settings.storage_configured is False


def test_settings_are_read_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("KEY_VAULT_URL", "https://my-vault.vault.azure.net/")
    env.setenv("ALLOWED_DESTINATIONS", "+1, +44")
    env.setenv("TRUST_FORWARDED_HEADERS", "TRUE")
    env.setenv("TWILIO_HTTP_TIMEOUT", "2.5")
    env.setenv("PUBLIC_BASE_URL", "https://calls.example.com/")
    env.setenv("WEBSITE_HOSTNAME", "myapp.azurewebsites.net")
    env.setenv("ALLOW_PREMIUM_DESTINATIONS", "true")

    settings = get_settings()

    assert settings.key_vault_url == "https://my-vault.vault.azure.net"
    assert settings.allowed_destinations == ("+1", "+44")
    assert settings.trust_forwarded_headers is True
    assert settings.twilio_http_timeout == 2.5
    assert settings.public_base_url == "https://calls.example.com"
    assert settings.website_hostname == "myapp.azurewebsites.net"
    assert settings.allow_premium_destinations is True


def test_allowed_destinations_take_region_codes_and_prefixes(env: pytest.MonkeyPatch) -> None:
    env.setenv("ALLOWED_DESTINATIONS", " us, CA ,+44,")

    settings = get_settings()

    assert settings.allowed_destinations == ("US", "CA", "+44")
    assert (settings.destination_regions, settings.destination_prefixes) == (frozenset({"US", "CA"}), ("+44",))


@pytest.mark.parametrize("value", ["", "   "])
def test_allowed_destinations_unset_or_empty_means_every_destination(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("ALLOWED_DESTINATIONS", value)

    assert get_settings().allowed_destinations == ()


def test_public_base_url_keeps_its_path_prefix(env: pytest.MonkeyPatch) -> None:
    env.setenv("PUBLIC_BASE_URL", "https://api.example.com:8443/twilio/")

    assert get_settings().public_base_url == "https://api.example.com:8443/twilio"


def test_settings_are_read_once(env: pytest.MonkeyPatch) -> None:
    env.setenv("SMS_REPLY", "first")
    assert get_settings().sms_reply == "first"
    env.setenv("SMS_REPLY", "second")

    assert get_settings().sms_reply == "first"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TWILIO_HTTP_TIMEOUT", "ten"),
        ("TWILIO_HTTP_TIMEOUT", "-1"),
        ("SECRET_CACHE_TTL", "0"),
        ("PUBLIC_BASE_URL", "myapp.azurewebsites.net"),
        ("TWILIO_API_BASE_URL", "ftp://127.0.0.1"),
        ("ALLOW_PREMIUM_DESTINATIONS", "sometimes"),
        ("TRUST_FORWARDED_HEADERS", "maybe"),
        ("PUBLIC_BASE_URL", "https://pub.example:abc"),
        ("PUBLIC_BASE_URL", "https://pub.example:0"),
        ("PUBLIC_BASE_URL", "https://"),
        ("PUBLIC_BASE_URL", "https:///api"),
        ("PUBLIC_BASE_URL", "https://pub.example/?x=1"),
        ("PUBLIC_BASE_URL", "https://pub.example/#top"),
        ("PUBLIC_BASE_URL", "https://user@pub.example"),
        ("PUBLIC_BASE_URL", "https://[pub.example"),
        ("WEBSITE_HOSTNAME", "myapp.azurewebsites.net/x"),
        ("WEBSITE_HOSTNAME", "myapp:99999"),
    ],
)
def test_a_broken_setting_is_named_in_a_503(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)

    with pytest.raises(ApiError) as raised:
        get_settings()

    assert (raised.value.status, raised.value.code, raised.value.target) == (503, "configuration_error", name)


@pytest.mark.parametrize("value", ["1,44", ",", " , ,", "USA,CA", "US,+0"])
def test_a_broken_allowed_destinations_is_named_in_a_503_where_used(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("ALLOWED_DESTINATIONS", value)
    settings = get_settings()

    with pytest.raises(ApiError) as raised:
        _ = settings.destination_prefixes

    assert (raised.value.status, raised.value.code, raised.value.target) == (
        503,
        "configuration_error",
        "ALLOWED_DESTINATIONS",
    )
