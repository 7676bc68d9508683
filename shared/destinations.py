"""The destinations make_call and send_sms may reach: the guard against toll fraud and SMS pumping.

A number's region and type come from libphonenumber's metadata (the phonenumbers
package), which weighs on a cold start: this module is imported where first needed.
"""

from __future__ import annotations

import logging

import phonenumbers

from shared.errors import ApiError
from shared.phone_numbers import masked
from shared.settings import ConfigurationError, Settings

logger = logging.getLogger(__name__)

# Numbers that bill the caller for the benefit of whoever holds them: what toll fraud dials.
_PREMIUM = frozenset({phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST})
_NOT_LISTED = "This app is not allowed to reach that destination (see ALLOWED_DESTINATIONS)."
_NOT_PREMIUM = "This app does not reach premium-rate or shared-cost numbers (see ALLOW_PREMIUM_DESTINATIONS)."


def check_destination(number: str, settings: Settings) -> None:
    """Refuse an E.164 number outside ALLOWED_DESTINATIONS, and premium-rate or shared-cost
    numbers unless ALLOW_PREMIUM_DESTINATIONS: a prefix such as +1 spans many countries."""
    regions = checked_regions(settings)
    parsed = _parse(number)
    if settings.allowed_destinations and not (
        number.startswith(settings.destination_prefixes) or _region(parsed) in regions
    ):
        raise _refusal(number, "not in ALLOWED_DESTINATIONS", _NOT_LISTED)
    if not settings.allow_premium_destinations and parsed is not None and phonenumbers.number_type(parsed) in _PREMIUM:
        raise _refusal(number, "premium-rate or shared-cost", _NOT_PREMIUM)


def checked_regions(settings: Settings) -> frozenset[str]:
    """The region codes of ALLOWED_DESTINATIONS; one the metadata does not know is a mistake."""
    regions = settings.destination_regions
    unknown = sorted(regions - phonenumbers.SUPPORTED_REGIONS)
    if unknown:
        raise ConfigurationError(
            "ALLOWED_DESTINATIONS", f"names unknown region codes {', '.join(unknown)} (ISO 3166 codes such as US,GB)"
        )
    return regions


def _parse(number: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number)
    except phonenumbers.NumberParseException:  # such as a country code that does not exist
        return None


def _region(number: phonenumbers.PhoneNumber | None) -> str | None:
    """The number's region, or None when it has none: invalid, or non-geographic such as +800."""
    if number is None:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _refusal(number: str, reason: str, message: str) -> ApiError:
    logger.warning("Refused destination %s: %s", masked(number), reason)
    return ApiError(403, "destination_not_allowed", message, target="to")
