"""The mutation score counts only what the tests truly killed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.mutation_score import ROOT, left_alone, report

LISTED = {"shared.settings.x_get__mutmut_3": "the same value either way"}


def test_a_timeout_is_reported_apart_and_not_counted_as_killed() -> None:
    found: dict[str, int | None] = {"shared.limits.x_take__mutmut_1": 1, "shared.limits.x_take__mutmut_2": 152}

    assert report(found, {})[0] == "limits             1 /    2   50.00 % killed, 1 timed out"


def test_a_listed_equivalent_that_failed_a_test_is_a_harness_failure_not_a_kill() -> None:
    found: dict[str, int | None] = {"shared.settings.x_get__mutmut_3": 1, "shared.settings.x_get__mutmut_4": 1}

    lines = report(found, LISTED)

    assert lines[1] == "shared/            1 /    2   50.00 % killed, 0 timed out"
    assert lines[2] == "1 listed as equivalent but failed a test (harness failures, not counted as killed)"


def test_survivors_are_counted_with_those_listed_as_equivalent() -> None:
    found: dict[str, int | None] = {"shared.settings.x_get__mutmut_3": 0, "shared.settings.x_get__mutmut_5": 0}

    lines = report(found, LISTED)

    assert "2 survived: 1 listed as equivalent" in lines
    assert "  not listed: shared.settings.x_get__mutmut_5" in lines


@pytest.mark.source  # reads shared/ as text, which mutmut rewrites
def test_contributing_names_every_function_that_mutation_testing_leaves_alone() -> None:
    text = (ROOT / "docs" / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text[text.index("**What it mutates.**") : text.index("**Which tests it runs.**")]
    decorated, _, marked = section.partition("every function under a decorator")[2].partition("code that runs only")

    assert {"decorated": names_in(decorated), "marked": names_in(marked)} == left_alone()


def names_in(text: str) -> list[str]:
    return re.findall(r"`([a-z_]+\.[A-Za-z_.]+)`", text)


def test_a_function_under_a_cache_or_a_pragma_is_left_alone_and_a_lone_staticmethod_is_not(tmp_path: Path) -> None:
    (tmp_path / "cache.py").write_text(
        "import functools\n\n@functools.cache\ndef kept(): ...\n\n"
        "class Box:\n    @staticmethod\n    def plain(): ...\n\n    @property\n    def value(self): ...\n\n"
        "    def __init__(self) -> None:  # pragma: no mutate block\n        self.x = 1\n",
        encoding="utf-8",
    )

    assert left_alone(tmp_path) == {"decorated": ["cache.kept", "cache.Box.value"], "marked": ["cache.Box.__init__"]}


def test_a_listed_equivalent_not_tested_yet_is_not_reported_as_no_longer_surviving() -> None:
    lines = report({"shared.settings.x_get__mutmut_3": None}, LISTED)

    assert "1 not tested yet" in lines
    assert not any(line.startswith("  listed but no longer surviving") for line in lines)


def test_a_listed_name_that_is_not_a_mutant_of_this_code_is_reported_as_stale() -> None:
    """mutmut numbers a function's mutants afresh once it changes: a listing may come to name nothing."""
    lines = report({"shared.settings.x_get__mutmut_4": 0}, LISTED)

    assert "  listed but not a mutant of this code (renumbered?): shared.settings.x_get__mutmut_3" in lines
    assert not any(line.startswith("  listed but no longer surviving") for line in lines)
