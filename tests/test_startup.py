"""What the app does when the worker loads it: warn of a sandbox, prefetch secrets, never fail."""

from __future__ import annotations

import logging
import threading

import pytest

from devtools.standins import KeyVaultStandIn
from shared.startup import on_load
from tests.support import eventually, fixture, signed_post


def test_startup_prefetches_the_secrets_before_the_first_request(vault: KeyVaultStandIn) -> None:
    on_load()
    assert eventually(lambda: sum(vault.fetches.values()) == 2)

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

    (record,) = [r for r in caplog.records if "TWILIO_API_BASE_URL" in r.getMessage()]
    assert record.getMessage().startswith("TWILIO_API_BASE_URL is set: Twilio REST calls go to http://127.0.0.1:4010")
    assert record.levelno == logging.WARNING


def test_startup_with_a_broken_setting_logs_it_and_loads(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("SECRET_CACHE_TTL", "forever")

    with caplog.at_level(logging.ERROR):
        on_load()

    assert "Setting SECRET_CACHE_TTL must be a number of seconds" in caplog.text


def test_startup_logs_a_malformed_public_base_url(env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    env.setenv("PUBLIC_BASE_URL", "https://pub.example:abc")

    with caplog.at_level(logging.ERROR):
        on_load()

    assert "Setting PUBLIC_BASE_URL must be an absolute http(s) URL" in caplog.text


def test_startup_logs_an_allowed_destinations_that_names_nothing(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("ALLOWED_DESTINATIONS", ",")

    with caplog.at_level(logging.ERROR):
        on_load()

    assert "Setting ALLOWED_DESTINATIONS names no destination" in caplog.text
    assert "make_call and send_sms will answer 503" in caplog.text


def test_startup_logs_an_unknown_region_code_in_allowed_destinations(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("ALLOWED_DESTINATIONS", "US,XX")

    with caplog.at_level(logging.ERROR):
        on_load()
        assert eventually(lambda: "Setting ALLOWED_DESTINATIONS names unknown region codes XX" in caplog.text)
