"""What the app does when the worker loads it: warn of a sandbox, prefetch secrets, never fail."""

from __future__ import annotations

import logging
import threading

import pytest

from shared.startup import on_load
from testing.standins import KeyVaultStandIn
from tests.support import eventually, fixture, logged, signed_post


def test_startup_prefetches_the_secrets_before_the_first_request(vault: KeyVaultStandIn) -> None:
    on_load()
    assert eventually(lambda: sum(vault.fetches.values()) == 2)

    assert signed_post("sms_url", fixture("incoming_sms")).status_code == 200
    assert vault.fetches == {"twilio-account-sid": 1, "twilio-auth-token": 1}


def test_a_request_during_the_prefetch_waits_for_it_instead_of_reading_again(vault: KeyVaultStandIn) -> None:
    vault.delay = 0.2
    on_load()
    assert eventually(lambda: len(vault.received) > 0)  # the prefetch is at the vault

    assert signed_post("sms_url", fixture("incoming_sms")).status_code == 200
    assert vault.fetches == {"twilio-account-sid": 1, "twilio-auth-token": 1}


def test_startup_prefetch_can_be_turned_off(vault: KeyVaultStandIn, env: pytest.MonkeyPatch) -> None:
    env.setenv("PREFETCH_SECRETS", "false")
    on_load()

    # A prefetch thread would still be running here, or have read the vault already.
    assert "credentials-prefetch" not in [thread.name for thread in threading.enumerate()]
    assert vault.received == []


def test_startup_warns_that_twilio_calls_go_elsewhere(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("TWILIO_API_BASE_URL", "http://127.0.0.1:4010")

    with caplog.at_level(logging.WARNING):
        on_load()

    assert logged(caplog, "shared.startup") == [
        ("WARNING", "TWILIO_API_BASE_URL is set: Twilio REST calls go to http://127.0.0.1:4010, not Twilio")
    ]


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        (
            "SECRET_CACHE_TTL",
            "forever",
            "Setting SECRET_CACHE_TTL must be a number of seconds. The functions will answer 503 until it is fixed.",
        ),
        (
            "PUBLIC_BASE_URL",
            "https://pub.example:abc",
            "Setting PUBLIC_BASE_URL must be an absolute http(s) URL with a valid host and port, no query or"
            " fragment. The functions will answer 503 until it is fixed.",
        ),
        (
            "DESTINATION_HOURLY_LIMIT",
            "ten",
            "Setting DESTINATION_HOURLY_LIMIT must be a whole number (0 turns the limit off)."
            " make_call and send_sms will answer 503 until it is fixed.",
        ),
        (
            "DAILY_LIMIT",
            "lots",
            "Setting DAILY_LIMIT must be a whole number (0 turns the limit off)."
            " make_call and send_sms will answer 503 until it is fixed.",
        ),
        (
            "PER_INSTANCE_CONCURRENCY",
            "many",
            "Setting PER_INSTANCE_CONCURRENCY must be a whole number from 1 to 1000."
            " make_call and send_sms will answer 503 until it is fixed.",
        ),
        (
            "ALLOWED_DESTINATIONS",
            ",",
            "Setting ALLOWED_DESTINATIONS names no destination: list region codes or prefixes such as US,CA or"
            " +1,+44. make_call and send_sms will answer 503 until it is fixed.",
        ),
    ],
)
def test_startup_logs_a_broken_setting_as_an_error_and_loads(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, name: str, value: str, line: str
) -> None:
    env.setenv(name, value)

    with caplog.at_level(logging.INFO):
        on_load()

    assert logged(caplog, "shared.startup") == [("ERROR", line)]


def test_startup_logs_an_unknown_region_code_in_allowed_destinations(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("ALLOWED_DESTINATIONS", "US,XX")

    with caplog.at_level(logging.INFO):
        on_load()
        assert eventually(lambda: logged(caplog, "shared.startup") != [])

    assert logged(caplog, "shared.startup") == [
        (
            "ERROR",
            "Setting ALLOWED_DESTINATIONS names unknown region codes XX (ISO 3166 codes such as US,GB)."
            " make_call and send_sms will answer 503 until it is fixed.",
        )
    ]


def test_the_region_check_logs_from_a_thread_named_for_it(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Its log line names the thread that wrote it, as Application Insights and a local log show."""
    env.setenv("ALLOWED_DESTINATIONS", "US,XX")

    on_load()
    assert eventually(lambda: logged(caplog, "shared.startup") != [])

    assert [r.threadName for r in caplog.records if r.name == "shared.startup"] == ["destinations-check"]
