"""The local host's HTTP connections: the request target as sent, and no more of a body read than needed."""

from __future__ import annotations

import io
from collections.abc import Callable

from werkzeug.serving import WSGIRequestHandler

from shared.params import MAX_BODY_BYTES


class HostRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, taking the request target as sent and reading no more of a body
    than the host needs.

    http.server folds a target's leading `//` into `/`, so `//api/make_call` would reach `make_call`,
    which it does not in Azure: the target is kept as sent, for the host to answer 404.

    http.server and werkzeug ask for the body (100 Continue) before the application runs, and werkzeug
    drains whatever a client still sends after the answer, up to 10 GB, 10 MB at a time, waiting for
    each 10 MB: a refused 100 MB body would be read, and held, all the same. Here 100 Continue waits for
    the first read of the body; after the answer, the input gives what has arrived without waiting for
    more, and past `INPUT_LIMIT` bytes it ends, so the connection is closed instead.
    """

    # Room for a body at the limit in any chunk framing, and for a small body the answer left unread.
    INPUT_LIMIT = 16 * MAX_BODY_BYTES

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        words = self.requestline.split()
        if parsed and len(words) > 1:
            self.path = words[1]
        return parsed

    def handle_expect_100(self) -> bool:
        """Not yet: http.server would ask for the body as soon as the headers are read."""
        return True

    def run_wsgi(self) -> None:
        expects = self.headers.get("Expect", "").lower().strip(" \t") == "100-continue"
        if expects:
            del self.headers["Expect"]
        self.rfile = _BoundedInput(self.rfile, self.INPUT_LIMIT, self._continue if expects else None)
        super().run_wsgi()

    def send_response(self, code: int, message: str | None = None) -> None:
        if isinstance(self.rfile, _BoundedInput):
            self.rfile.answered()
        super().send_response(code, message)

    def _continue(self) -> None:
        self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.wfile.flush()


class _BoundedInput(io.BufferedIOBase):
    """A connection's input that ends, as if the client had stopped sending, after `limit` bytes,
    and calls `on_first_read` before it is first read."""

    def __init__(self, stream: io.BufferedIOBase, limit: int, on_first_read: Callable[[], None] | None) -> None:
        super().__init__()
        self._stream = stream
        self._left = limit
        self._read: Callable[[int], bytes] = stream.read
        self.on_first_read = on_first_read

    def answered(self) -> None:
        """The answer is on its way: a body not yet asked for is not to be sent, and what is read
        now (werkzeug's drain) is what has arrived, without waiting for a client that has stopped."""
        self.on_first_read = None
        self._read = self._stream.read1

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Closes the connection's input too, which the socket waits for to close."""
        self._stream.close()
        super().close()

    def read(self, size: int | None = -1) -> bytes:
        return self._counted(self._read, size)

    def read1(self, size: int = -1) -> bytes:
        return self._counted(self._stream.read1, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._counted(self._stream.readline, size)

    def _counted(self, read: Callable[[int], bytes], size: int | None) -> bytes:
        allowed = self._left if size is None or size < 0 else min(size, self._left)
        if allowed <= 0:
            return b""
        first_read, self.on_first_read = self.on_first_read, None
        if first_read is not None:
            first_read()
        data = read(allowed)
        self._left -= len(data)
        return data
