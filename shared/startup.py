"""What the app does once, when the worker loads it, without delaying function indexing."""

from __future__ import annotations

import logging
import threading

from shared import credentials
from shared.errors import ApiError
from shared.settings import Settings, get_settings

logger = logging.getLogger(__name__)

_OUTBOUND_STOPPED = "make_call and send_sms will answer 503 until it is fixed."


def on_load() -> None:
    try:
        settings = get_settings()
    except ApiError as error:
        logger.error("%s The functions will answer 503 until it is fixed.", error.message)
        return
    if settings.twilio_api_base_url:
        logger.warning(
            "TWILIO_API_BASE_URL is set: Twilio REST calls go to %s, not Twilio", settings.twilio_api_base_url
        )
    if settings.key_vault_url and settings.prefetch_secrets:
        credentials.prefetch()
    try:
        settings.destination_hourly_limit, settings.daily_limit, settings.limits_fail_open  # noqa: B018 - parsed here
        _ = settings.per_instance_concurrency
    except ApiError as error:
        logger.error("%s %s", error.message, _OUTBOUND_STOPPED)
    try:
        regions = settings.destination_regions
    except ApiError as error:
        logger.error("%s %s", error.message, _OUTBOUND_STOPPED)
        return
    if regions:
        threading.Thread(target=_check_regions, args=(settings,), name="destinations-check", daemon=True).start()


def _check_regions(settings: Settings) -> None:
    """Region codes are checked against the phone metadata, too heavy to load while functions are indexed."""
    from shared.destinations import checked_regions

    try:
        checked_regions(settings)
    except ApiError as error:
        logger.error("%s %s", error.message, _OUTBOUND_STOPPED)
