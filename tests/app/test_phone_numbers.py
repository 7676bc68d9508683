"""E.164 numbers as callers and settings write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import phone_numbers
from shared.errors import ApiError


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("+15558675310", "+15558675310"),
        ("+1 (555) 867-5310", "+15558675310"),
        ("+44.7700.900123", "+447700900123"),
        (" +33 6 12 34 56 78 ", "+33612345678"),
        ("+123456789012345", "+123456789012345"),
        ("+99", "+99"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, number: str) -> None:
    assert phone_numbers.parse({"to": raw}, "to") == number


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("+44 (0) 7911 123456", "+447911123456"),
        ("+4407911123456", "+447911123456"),
        ("+39 06 1234 5678", "+390612345678"),
    ],
)
def test_a_trunk_prefix_after_the_country_code_is_dropped_where_the_country_drops_it(raw: str, number: str) -> None:
    assert phone_numbers.parse({"to": raw}, "to") == number


@pytest.mark.parametrize(
    "raw", ["15558675310", "+0123456", "+1234567890123456", "+1555867531O", "+1/555", "++1555", "+1"]
)
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(ApiError) as raised:
        phone_numbers.parse({"to": raw}, "to")

    assert (raised.value.status, raised.value.code, raised.value.target) == (400, "invalid_phone_number", "to")


def test_a_missing_number_is_named() -> None:
    with pytest.raises(ApiError) as raised:
        phone_numbers.parse({"to": "  "}, "to")

    assert (raised.value.status, raised.value.code, raised.value.target) == (400, "missing_parameter", "to")


def test_a_masked_number_hides_its_last_four_digits() -> None:
    assert phone_numbers.masked("+18765550123") == "+1876555****"
    assert phone_numbers.masked("+12345") == "****"


def test_an_invalid_number_is_shown_the_e164_form() -> None:
    with pytest.raises(ApiError) as raised:
        phone_numbers.parse({"from": "555-0100"}, "from")

    assert raised.value.message == "'from' must be an E.164 number such as +14155550100."


@pytest.mark.parametrize(
    ("raw", "hinted"),
    [(" 15558675310", True), (" 1 555 867 5310", True), ("15558675310", False), (" 0123456", False)],
    ids=["plus-decoded-to-a-space", "with-spaces", "no-plus-at-all", "not-e164-with-a-plus"],
)
def test_a_number_whose_plus_became_a_space_is_told_to_encode_it(raw: str, hinted: bool) -> None:
    with pytest.raises(ApiError) as raised:
        phone_numbers.parse({"to": raw}, "to")

    hint = " A '+' sent unencoded in a form or query string arrives as a space: write it as %2B."
    assert raised.value.message == "'to' must be an E.164 number such as +14155550100." + (hint if hinted else "")


def test_a_missing_number_is_told_it_is_required() -> None:
    with pytest.raises(ApiError) as raised:
        phone_numbers.parse({}, "to")

    assert raised.value.message == "'to' is required."


def test_a_seven_character_number_is_masked_but_for_its_last_four() -> None:
    assert phone_numbers.masked("+123456") == "+12****"


def test_the_api_docs_example_of_a_trunk_prefix_is_what_the_app_sends() -> None:
    api = (Path(__file__).resolve().parents[2] / "docs/api.md").read_text(encoding="utf-8")
    written, sent = "+44 (0) 7911 123456", "+447911123456"

    assert f"`{written}` is `{sent}`" in api
    assert phone_numbers.parse({"to": written}, "to") == sent
