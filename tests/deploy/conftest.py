"""Twilio's REST API as Prism serves it from Twilio's own OpenAPI description, for the number-wiring tool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.ports import free_port
from devtools.sandbox.prism import Prism


@pytest.fixture(scope="module")
def prism() -> Iterator[Prism]:
    """The Twilio sandbox: Prism on Twilio's own OpenAPI description, one per test module."""
    server = Prism(port=free_port()).start()
    yield server
    server.stop()
