"""E.164 phone numbers as callers and settings write them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.errors import ApiError

_SEPARATORS = re.compile(r"[\s\-.()]")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def parse(params: Mapping[str, str], name: str) -> str:
    """The number under `name`, with spaces, dashes, dots and parentheses removed."""
    value = params.get(name, "")
    raw = value.strip()
    if not raw:
        raise ApiError(400, "missing_parameter", f"'{name}' is required.", target=name)
    if value.startswith(" ") and _E164.fullmatch("+" + _SEPARATORS.sub("", raw)):
        # An unencoded `+` in a query string or form decodes to a space: `to=+1555...` arrives as " 1555...".
        raise _invalid(name, " A '+' sent unencoded in a form or query string arrives as a space: write it as %2B.")
    return normalize(raw, name)


def normalize(raw: str, name: str) -> str:
    number = _SEPARATORS.sub("", raw)
    if not _E164.fullmatch(number):
        raise _invalid(name)
    return _canonical(number)


def _canonical(number: str) -> str:
    """The number as libphonenumber writes it, without a trunk prefix written after the country code:
    `+44 (0) 7911 123456` is +447911123456, to Twilio, the limits and an Idempotency-Key alike."""
    import phonenumbers  # on first use: its metadata weighs on every cold start

    try:
        return phonenumbers.format_number(phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:  # such as a country code that does not exist
        return number


def _invalid(name: str, hint: str = "") -> ApiError:
    message = f"'{name}' must be an E.164 number such as +14155550100.{hint}"
    return ApiError(400, "invalid_phone_number", message, target=name)


def masked(number: str) -> str:
    """A number fit for a log line: enough to recognise, not enough to dial."""
    return number[:-4] + "****" if len(number) > 6 else "****"
