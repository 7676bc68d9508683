"""E.164 phone numbers, and the destinations this app may dial or text."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from shared.errors import ApiError

logger = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[\s\-.()]")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def parse(params: Mapping[str, str], name: str) -> str:
    """The number under `name`, with spaces, dashes, dots and parentheses removed."""
    raw = params.get(name, "").strip()
    if not raw:
        raise ApiError(400, "missing_parameter", f"'{name}' is required.", target=name)
    return normalize(raw, name)


def normalize(raw: str, name: str) -> str:
    number = _SEPARATORS.sub("", raw)
    if not _E164.fullmatch(number):
        raise ApiError(
            400,
            "invalid_phone_number",
            f"'{name}' must be an E.164 number such as +14155550100.",
            target=name,
        )
    return number


def check_destination(number: str, allowed_prefixes: tuple[str, ...]) -> None:
    """Refuse numbers outside ALLOWED_DESTINATIONS, the guard against toll fraud and SMS pumping."""
    if allowed_prefixes and not number.startswith(allowed_prefixes):
        logger.warning("Refused destination %s: not in ALLOWED_DESTINATIONS", _masked(number))
        raise ApiError(
            403,
            "destination_not_allowed",
            "This app is not allowed to reach that destination (see ALLOWED_DESTINATIONS).",
            target="to",
        )


def _masked(number: str) -> str:
    return number[:-4] + "****" if len(number) > 6 else "****"
