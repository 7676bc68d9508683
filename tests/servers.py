"""Loopback ports for a test: one serving a WSGI app from the project, one that refuses connections,
and one whose connections time out."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server


@contextmanager
def serving(
    app: Any, host: str = "127.0.0.1", request_handler: type[WSGIRequestHandler] | None = None
) -> Iterator[str]:
    server = make_server(host, 0, app, threaded=True, request_handler=request_handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def refusing_port() -> Iterator[str]:
    """A loopback port bound but not listening: each connection to it is refused."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{closed.getsockname()[1]}"


@contextmanager
def unaccepting_port() -> Iterator[str]:
    """A loopback port whose accept queue is full: a connection attempt times out, and nothing is sent."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued: list[socket.socket] = []
        try:
            for _ in range(16):  # Linux queues backlog + 1 connections, then drops the others' handshakes
                filler = socket.socket()
                filler.settimeout(0.1)
                try:
                    filler.connect(listener.getsockname())
                except TimeoutError:
                    filler.close()
                    break
                queued.append(filler)
            else:
                pytest.fail("the accept queue never filled")
            yield f"http://127.0.0.1:{listener.getsockname()[1]}"
        finally:
            for filler in queued:
                filler.close()
