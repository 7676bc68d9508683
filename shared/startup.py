"""What the app does once, when the worker loads it, without delaying function indexing."""

from __future__ import annotations

import logging

from shared import credentials
from shared.errors import ApiError
from shared.settings import get_settings

logger = logging.getLogger(__name__)


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
