"""Settings: read once into a typed object, defaults as documented, broken values named."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from shared.errors import ApiError
from shared.settings import SETTING_NAMES, Settings, get_settings
from testing.process_state import without_settings

SHARED = Path(__file__).resolve().parents[2] / "shared"


# --- defaults, and where each setting is read from -------------------------------------------------------------------


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
    assert settings.per_instance_concurrency == 16
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


def test_every_setting_is_read_from_its_own_variable(env: pytest.MonkeyPatch) -> None:
    for name, value in {
        "KEY_VAULT_URL": "https://my-vault.vault.azure.net",
        "TWILIO_ACCOUNT_SID_SECRET": "sid-2",
        "TWILIO_AUTH_TOKEN_SECRET": "token-2",
        "TWILIO_FROM_NUMBER": "+15017122661",
        "VOICE_MESSAGE": "Your table is ready",
        "SMS_REPLY": "Thanks!",
        "PUBLIC_BASE_URL": "https://calls.example.com",
        "WEBSITE_HOSTNAME": "myapp.azurewebsites.net",
        "TWILIO_API_BASE_URL": "http://127.0.0.1:8080",
        "TWILIO_HTTP_TIMEOUT": "2.5",
        "ALLOWED_DESTINATIONS": "US,+44",
        "ALLOW_PREMIUM_DESTINATIONS": "yes",
        "TRUST_FORWARDED_HEADERS": "on",
        "SECRET_CACHE_TTL": "60",
        "PREFETCH_SECRETS": "off",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "AzureWebJobsStorage__accountName": "myappstore",
        "AzureWebJobsStorage__tableServiceUri": "https://myappstore.table.core.windows.net",
        "AzureWebJobsStorage__clientId": "client-1",
        "DESTINATION_HOURLY_LIMIT": "3",
        "DAILY_LIMIT": "100",
        "LIMITS_FAIL_OPEN": "true",
        "PER_INSTANCE_CONCURRENCY": "8",
    }.items():
        env.setenv(name, value)

    assert get_settings() == Settings(
        key_vault_url="https://my-vault.vault.azure.net",
        account_sid_secret="sid-2",
        auth_token_secret="token-2",
        from_number="+15017122661",
        voice_message="Your table is ready",
        sms_reply="Thanks!",
        public_base_url="https://calls.example.com",
        website_hostname="myapp.azurewebsites.net",
        twilio_api_base_url="http://127.0.0.1:8080",
        twilio_http_timeout=2.5,
        destinations_setting="US,+44",
        allow_premium_destinations=True,
        trust_forwarded_headers=True,
        secret_ttl=60.0,
        prefetch_secrets=False,
        storage_connection_string="UseDevelopmentStorage=true",
        storage_account_name="myappstore",
        storage_table_service_uri="https://myappstore.table.core.windows.net",
        storage_client_id="client-1",
        destination_hourly_limit_setting="3",
        daily_limit_setting="100",
        limits_fail_open_setting="true",
        per_instance_concurrency_setting="8",
    )


def test_allowed_destinations_take_region_codes_and_prefixes(env: pytest.MonkeyPatch) -> None:
    env.setenv("ALLOWED_DESTINATIONS", " us, CA ,+44,")

    settings = get_settings()

    assert settings.allowed_destinations == ("US", "CA", "+44")
    assert (settings.destination_regions, settings.destination_prefixes) == (frozenset({"US", "CA"}), ("+44",))


@pytest.mark.parametrize("value", ["", "   "])
def test_allowed_destinations_unset_or_empty_means_every_destination(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("ALLOWED_DESTINATIONS", value)

    assert get_settings().allowed_destinations == ()


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("https://api.example.com:8443/twilio/", "https://api.example.com:8443/twilio"),
        ("https://calls.example.com/PBX/", "https://calls.example.com/PBX"),
        ("https://calls.example.com/twilio/v1/", "https://calls.example.com/twilio/v1"),
        ("https://gateway.example.com/to/https://app", "https://gateway.example.com/to/https://app"),
    ],
)
def test_public_base_url_keeps_its_path_prefix(env: pytest.MonkeyPatch, value: str, kept: str) -> None:
    env.setenv("PUBLIC_BASE_URL", value)

    assert get_settings().public_base_url == kept


@pytest.mark.parametrize("value", ["0.001", "20000", "604799.5"])
def test_a_number_of_seconds_is_taken_from_just_above_0_to_just_below_a_week(
    env: pytest.MonkeyPatch, value: str
) -> None:
    env.setenv("SECRET_CACHE_TTL", value)

    assert get_settings().secret_ttl == float(value)


def test_settings_are_read_once(env: pytest.MonkeyPatch) -> None:
    env.setenv("SMS_REPLY", "first")
    assert get_settings().sms_reply == "first"
    env.setenv("SMS_REPLY", "second")

    assert get_settings().sms_reply == "first"


# --- broken values, named in a 503 -----------------------------------------------------------------------------------


NUMBER = "must be a number of seconds"
IN_RANGE = "must be more than 0 and less than a week (604800 seconds)"
URL = "must be an absolute http(s) URL with a valid host and port, no query or fragment"
FLAG = "must be true or false"
HOST = "must be a host name such as myapp.azurewebsites.net"


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("TWILIO_HTTP_TIMEOUT", "ten", NUMBER),
        ("TWILIO_HTTP_TIMEOUT", "-1", IN_RANGE),
        ("SECRET_CACHE_TTL", "0", IN_RANGE),
        ("SECRET_CACHE_TTL", "604800", IN_RANGE),
        ("PUBLIC_BASE_URL", "myapp.azurewebsites.net", URL),
        ("TWILIO_API_BASE_URL", "ftp://127.0.0.1", URL),
        ("ALLOW_PREMIUM_DESTINATIONS", "sometimes", FLAG),
        ("TRUST_FORWARDED_HEADERS", "maybe", FLAG),
        ("PUBLIC_BASE_URL", "https://pub.example:abc", URL),
        ("PUBLIC_BASE_URL", "https://pub.example:0", URL),
        ("PUBLIC_BASE_URL", "https://", URL),
        ("PUBLIC_BASE_URL", "https:///api", URL),
        ("PUBLIC_BASE_URL", "https://pub.example/?x=1", URL),
        ("PUBLIC_BASE_URL", "https://pub.example/#top", URL),
        ("PUBLIC_BASE_URL", "https://user@pub.example", URL),
        ("PUBLIC_BASE_URL", "https://[pub.example", URL),
        ("WEBSITE_HOSTNAME", "myapp.azurewebsites.net/x", HOST),
        ("WEBSITE_HOSTNAME", "myapp:99999", HOST),
    ],
)
def test_a_broken_setting_is_named_in_a_503(env: pytest.MonkeyPatch, name: str, value: str, why: str) -> None:
    env.setenv(name, value)

    with pytest.raises(ApiError) as raised:
        get_settings()

    assert (raised.value.status, raised.value.code, raised.value.message, raised.value.target) == (
        503,
        "configuration_error",
        f"Setting {name} {why}.",
        name,
    )


@pytest.mark.parametrize(
    ("name", "attribute"), [("DESTINATION_HOURLY_LIMIT", "destination_hourly_limit"), ("DAILY_LIMIT", "daily_limit")]
)
@pytest.mark.parametrize(("value", "limit"), [("3", 3), (" 100 ", 100), ("0", None)])
def test_a_limit_is_a_whole_number_and_0_turns_it_off(
    env: pytest.MonkeyPatch, name: str, attribute: str, value: str, limit: int | None
) -> None:
    env.setenv(name, value)

    assert getattr(get_settings(), attribute) == limit


NAMES_NOTHING = "names no destination: list region codes or prefixes such as US,CA or +1,+44"
NOT_A_DESTINATION = "must list region codes or E.164 prefixes such as US,CA or +1,+44"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1,44", NOT_A_DESTINATION),
        (",", NAMES_NOTHING),
        (" , ,", NAMES_NOTHING),
        ("USA,CA", NOT_A_DESTINATION),
        ("US,+0", NOT_A_DESTINATION),
    ],
)
def test_a_broken_allowed_destinations_is_named_in_a_503_where_used(
    env: pytest.MonkeyPatch, value: str, why: str
) -> None:
    env.setenv("ALLOWED_DESTINATIONS", value)
    settings = get_settings()

    with pytest.raises(ApiError) as raised:
        _ = settings.destination_prefixes

    assert (raised.value.status, raised.value.code, raised.value.message, raised.value.target) == (
        503,
        "configuration_error",
        f"Setting ALLOWED_DESTINATIONS {why}.",
        "ALLOWED_DESTINATIONS",
    )


@pytest.mark.parametrize(
    ("name", "attribute"), [("DESTINATION_HOURLY_LIMIT", "destination_hourly_limit"), ("DAILY_LIMIT", "daily_limit")]
)
@pytest.mark.parametrize("value", ["ten", "-1", "1.5", "\u0661\u0660"])
def test_a_broken_limit_is_named_in_a_503_where_used(
    env: pytest.MonkeyPatch, name: str, attribute: str, value: str
) -> None:
    env.setenv(name, value)
    settings = get_settings()

    with pytest.raises(ApiError) as raised:
        getattr(settings, attribute)

    assert (raised.value.status, raised.value.code, raised.value.message, raised.value.target) == (
        503,
        "configuration_error",
        f"Setting {name} must be a whole number (0 turns the limit off).",
        name,
    )


# --- SETTING_NAMES: every name the app reads, which the tests clear between tests ------------------------------------


class _NotingNames(Mapping[str, str]):
    """An empty environment that notes each name looked up in it."""

    def __init__(self) -> None:
        self.looked_up: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.looked_up.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _read_from_os_environ(tree: ast.AST) -> set[str]:
    """The names a module reads with os.environ.get("NAME"), os.environ["NAME"] or os.getenv("NAME")."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in {"os.environ.get", "os.getenv"}:
            named = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            named = node.slice
        else:
            continue
        if isinstance(named, ast.Constant) and isinstance(named.value, str):
            names.add(named.value)
    return names


def test_setting_names_hold_every_name_settings_reads() -> None:
    environ = _NotingNames()
    Settings.from_environ(environ)

    assert environ.looked_up
    assert environ.looked_up - set(SETTING_NAMES) == set()


@pytest.mark.source
def test_setting_names_hold_every_name_the_common_package_reads_from_os_environ() -> None:
    read = set().union(*(_read_from_os_environ(ast.parse(path.read_text())) for path in SHARED.glob("*.py")))

    assert {"TWILIO_ACCOUNT_SID", "AZURE_CLIENT_ID"} <= read
    assert read - set(SETTING_NAMES) == set()


def test_the_test_environment_cleaner_clears_every_setting_name() -> None:
    assert without_settings(dict.fromkeys(SETTING_NAMES, "set") | {"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}


# --- PER_INSTANCE_CONCURRENCY ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "concurrency"), [("1", 1), (" 32 ", 32), ("1000", 1000)])
def test_per_instance_concurrency_is_a_whole_number_from_1_to_1000(
    env: pytest.MonkeyPatch, value: str, concurrency: int
) -> None:
    env.setenv("PER_INSTANCE_CONCURRENCY", value)

    assert get_settings().per_instance_concurrency == concurrency


@pytest.mark.parametrize("value", ["0", "1001", "-4", "1.5", "sixteen", "\u0661\u0666"])
def test_a_broken_per_instance_concurrency_is_named_in_a_503_where_used(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("PER_INSTANCE_CONCURRENCY", value)
    settings = get_settings()

    with pytest.raises(ApiError) as raised:
        _ = settings.per_instance_concurrency

    assert (raised.value.status, raised.value.code, raised.value.message, raised.value.target) == (
        503,
        "configuration_error",
        "Setting PER_INSTANCE_CONCURRENCY must be a whole number from 1 to 1000.",
        "PER_INSTANCE_CONCURRENCY",
    )
