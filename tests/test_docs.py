"""The README stays short, and every page it sends a reader to, and every link in the docs, exists."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from shared.settings import LOCAL_HOST, SETTING_NAMES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MOST_LINES = 200

_FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def prose(page: Path) -> str:
    """The page without its code, where `#` starts a shell comment and `[x](y)` is no link."""
    return _FENCED.sub("", page.read_text(encoding="utf-8"))


def links(page: Path) -> list[str]:
    return [target for target in _LINK.findall(_INLINE_CODE.sub("", prose(page))) if not _SCHEME.match(target)]


def slug(heading: str) -> str:
    """A heading's fragment as GitHub renders it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Each heading's fragment; GitHub numbers a repeated one."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in _HEADING.findall(prose(page)):
        anchor = slug(heading)
        found.add(f"{anchor}-{seen[anchor]}" if seen[anchor] else anchor)
        seen[anchor] += 1
    return found


def test_readme_is_at_most_200_lines() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= README_MOST_LINES


def test_readme_links_every_docs_page() -> None:
    """A page nothing links to is a page no newcomer finds."""
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(README)}

    assert {page.resolve() for page in DOCS.glob("*.md")} <= linked


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading_that_exist(page: Path) -> None:
    def resolves(target: str) -> bool:
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        return linked.is_file() and (not fragment or (linked.suffix == ".md" and fragment in anchors(linked)))

    assert [target for target in links(page) if not resolves(target)] == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Playing Twilio's part", "playing-twilios-part"),
        ("What `make run` prints, and its ports", "what-make-run-prints-and-its-ports"),
        ("With the Azure Developer CLI: `azd up`", "with-the-azure-developer-cli-azd-up"),
        ("make_call", "make_call"),
    ],
)
def test_a_heading_gets_the_anchor_github_gives_it(heading: str, anchor: str) -> None:
    """The link check trusts this reading of GitHub's rule."""
    assert slug(heading) == anchor


def test_every_app_setting_is_documented_in_the_configuration_page() -> None:
    """shared.settings.SETTING_NAMES is what the app reads; LOCAL_HOST is set by the local host alone."""
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")

    assert [name for name in SETTING_NAMES if name != LOCAL_HOST and f"`{name}`" not in page] == []
