"""The destinations allowed: regions from libphonenumber's metadata, prefixes, and never premium rates."""

from __future__ import annotations

import logging

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from devtools.sandbox.playout import OUTCOMES
from shared.destinations import check_destination
from shared.errors import ApiError
from shared.settings import Settings

US = "+14155550100"
CANADA = "+15062345678"
JAMAICA = "+18762101234"
BAHAMAS = "+12423456789"
FICTIONAL = "+15558675310"  # the 555 exchange: no region in the metadata, type UNKNOWN
UK_DRAMA = "+447700900123"  # Ofcom's range for fiction: likewise
TOLL_FREE_WORLDWIDE = "+80012345678"  # non-geographic: no region


def _example(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _settings(**environ: str) -> Settings:
    return Settings.from_environ(environ)


def _refusal(number: str, settings: Settings) -> ApiError:
    with pytest.raises(ApiError) as raised:
        check_destination(number, settings)
    return raised.value


@pytest.mark.parametrize("number", [US, CANADA])
def test_a_region_list_allows_numbers_of_its_regions(number: str) -> None:
    check_destination(number, _settings(ALLOWED_DESTINATIONS="US,CA"))


@pytest.mark.parametrize("number", sorted(OUTCOMES))
def test_a_us_list_lets_the_sandbox_test_numbers_through(number: str) -> None:
    check_destination(number, _settings(ALLOWED_DESTINATIONS="US"))


@pytest.mark.parametrize("number", [JAMAICA, BAHAMAS])
def test_a_region_list_refuses_other_countries_sharing_plus_1(number: str) -> None:
    error = _refusal(number, _settings(ALLOWED_DESTINATIONS="US,CA"))

    assert (error.status, error.code, error.target) == (403, "destination_not_allowed", "to")


@pytest.mark.parametrize("number", [FICTIONAL, TOLL_FREE_WORLDWIDE, "+999123456"])
def test_a_region_list_refuses_numbers_without_a_region(number: str) -> None:
    assert _refusal(number, _settings(ALLOWED_DESTINATIONS="US,CA")).code == "destination_not_allowed"


@pytest.mark.parametrize("number", [FICTIONAL, UK_DRAMA, JAMAICA])
def test_a_prefix_list_allows_every_number_under_its_prefixes(number: str) -> None:
    check_destination(number, _settings(ALLOWED_DESTINATIONS="+1,+44"))


def test_a_mixed_list_allows_a_listed_region_or_prefix() -> None:
    settings = _settings(ALLOWED_DESTINATIONS="us, +44")

    check_destination(US, settings)
    check_destination(UK_DRAMA, settings)
    assert _refusal(CANADA, settings).code == "destination_not_allowed"


def test_every_ordinary_destination_is_allowed_without_a_list() -> None:
    for number in (US, JAMAICA, FICTIONAL, TOLL_FREE_WORLDWIDE, "+2348012345678"):
        check_destination(number, _settings())


def test_us_900_numbers_are_premium_rate_in_the_metadata() -> None:
    number = _example("US", PhoneNumberType.PREMIUM_RATE)

    assert number.startswith("+1900")
    assert phonenumbers.number_type(phonenumbers.parse(number)) == PhoneNumberType.PREMIUM_RATE


@pytest.mark.parametrize(
    ("region", "kind", "allowed"),
    [
        ("US", PhoneNumberType.PREMIUM_RATE, "US,CA"),
        ("US", PhoneNumberType.PREMIUM_RATE, "+1"),
        ("GB", PhoneNumberType.PREMIUM_RATE, "GB"),
        ("FR", PhoneNumberType.SHARED_COST, "FR"),
        ("DE", PhoneNumberType.SHARED_COST, "+49"),
        ("US", PhoneNumberType.PREMIUM_RATE, ""),
    ],
)
def test_premium_rate_and_shared_cost_numbers_are_refused_even_where_allowed(
    region: str, kind: int, allowed: str
) -> None:
    error = _refusal(_example(region, kind), _settings(ALLOWED_DESTINATIONS=allowed))

    assert (error.status, error.code, error.target) == (403, "destination_not_allowed", "to")
    assert "ALLOW_PREMIUM_DESTINATIONS" in error.message


def test_allow_premium_destinations_lets_premium_numbers_through() -> None:
    settings = _settings(ALLOWED_DESTINATIONS="US", ALLOW_PREMIUM_DESTINATIONS="true")

    check_destination(_example("US", PhoneNumberType.PREMIUM_RATE), settings)


@pytest.mark.parametrize("allowed", ["US,XX", "UK", "+44,ZZ"])
def test_an_unknown_region_code_is_a_configuration_error(allowed: str) -> None:
    with pytest.raises(ApiError) as raised:
        check_destination("+447400123456", _settings(ALLOWED_DESTINATIONS=allowed))

    assert (raised.value.status, raised.value.code, raised.value.target) == (
        503,
        "configuration_error",
        "ALLOWED_DESTINATIONS",
    )


def test_a_refusal_logs_the_number_masked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _refusal(JAMAICA, _settings(ALLOWED_DESTINATIONS="US,CA"))

    assert "Refused destination +1876210****: not in ALLOWED_DESTINATIONS" in caplog.text
    assert JAMAICA not in caplog.text


def test_a_destination_outside_the_list_is_told_to_see_allowed_destinations() -> None:
    error = _refusal(JAMAICA, _settings(ALLOWED_DESTINATIONS="US,CA"))

    assert error.message == "This app is not allowed to reach that destination (see ALLOWED_DESTINATIONS)."


def test_a_refusal_log_line_holds_only_the_masked_number_and_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.destinations"):
        _refusal(JAMAICA, _settings(ALLOWED_DESTINATIONS="US,CA"))

    assert [r.getMessage() for r in caplog.records] == ["Refused destination +1876210****: not in ALLOWED_DESTINATIONS"]


def test_a_premium_refusal_logs_the_masked_number_as_premium(caplog: pytest.LogCaptureFixture) -> None:
    number = _example("US", PhoneNumberType.PREMIUM_RATE)

    with caplog.at_level(logging.WARNING, logger="shared.destinations"):
        _refusal(number, _settings())

    assert [r.getMessage() for r in caplog.records] == [
        f"Refused destination {number[:-4]}****: premium-rate or shared-cost"
    ]


def test_unknown_region_codes_are_all_named() -> None:
    with pytest.raises(ApiError) as raised:
        check_destination(US, _settings(ALLOWED_DESTINATIONS="ZZ,US,XX"))

    assert raised.value.message == (
        "Setting ALLOWED_DESTINATIONS names unknown region codes XX, ZZ (ISO 3166 codes such as US,GB)."
    )
