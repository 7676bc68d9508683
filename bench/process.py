"""Process state between scenarios: the app reads its settings once and caches clients per process,
so each scenario sets its settings first and starts (and leaves) those caches empty."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from testing.process_state import app_environ, clear_caches
from testing.standins import StandIn

S = TypeVar("S", bound=StandIn)


@contextmanager
def app_settings(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(app_environ(values))
    clear_caches()
    try:
        yield
    finally:
        clear_caches()
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def running(server: S) -> Iterator[S]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
