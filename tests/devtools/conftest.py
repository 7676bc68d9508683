"""The Twilio sandbox that `make run` serves, and the app wired to it, for the sandbox's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.devtools.sandbox_support import RunningSandbox, app_with_sandbox, running_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    """Prism and the sandbox behind it, one per test module: a module's calls and texts stay its own."""
    with running_sandbox() as running:
        yield running


@pytest.fixture
def host(sandbox: RunningSandbox, env: pytest.MonkeyPatch) -> Iterator[str]:
    """The app as `make run` serves it, its Twilio REST calls going to the sandbox: its base URL."""
    with app_with_sandbox(sandbox, env) as url:
        yield url
