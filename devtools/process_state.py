"""The app's per-process state, which tests and the benchmark reset between scenarios.

The app reads its settings once and caches credentials and clients per process, as it
should in Azure; a scenario that changes settings starts with those caches empty.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

SETTING_PREFIXES = ("TWILIO_", "KEY_VAULT_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_", "AzureWebJobsStorage")
SETTINGS = frozenset(
    {
        "VOICE_MESSAGE",
        "SMS_REPLY",
        "PUBLIC_BASE_URL",
        "ALLOWED_DESTINATIONS",
        "ALLOW_PREMIUM_DESTINATIONS",
        "WEBSITE_HOSTNAME",
        "TRUST_FORWARDED_HEADERS",
        "SECRET_CACHE_TTL",
        "PREFETCH_SECRETS",
        "REQUESTS_CA_BUNDLE",
        "DESTINATION_HOURLY_LIMIT",
        "DAILY_LIMIT",
        "LIMITS_FAIL_OPEN",
        "PER_INSTANCE_CONCURRENCY",
    }
)


def is_setting(name: str) -> bool:
    """An app setting, or one that steers the Azure SDKs' choice of credential."""
    return name.startswith(SETTING_PREFIXES) or name in SETTINGS


def without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if not is_setting(k)}


def clear_caches() -> None:
    """Every functools cache of the app's common package: settings, credentials and clients."""
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] == "shared":
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()


def app_environ(values: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with no app setting of its own, only `values`."""
    return {**without_settings(os.environ), **values}
