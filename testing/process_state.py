"""The app's per-process state, which tests and the benchmark reset between scenarios.

The app reads its settings once and caches credentials and clients per process, as it
should in Azure; a scenario that changes settings starts with those caches empty.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from shared.settings import SETTING_NAMES, STORAGE

# Read on the app's behalf rather than by it: TWILIO_* (the Twilio SDK's edge and region, the local
# host's TWILIO_SANDBOX), the Azure SDKs' choice of credential, the Functions host's other
# identity-based storage settings, and the CA bundle requests trusts.
READ_FOR_THE_APP = ("TWILIO_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_", f"{STORAGE}__")


def is_setting(name: str) -> bool:
    """An app setting, or one that steers how the app's libraries reach Twilio and Azure."""
    return name in SETTING_NAMES or name.startswith(READ_FOR_THE_APP) or name == "REQUESTS_CA_BUNDLE"


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
