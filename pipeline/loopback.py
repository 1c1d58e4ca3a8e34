"""A small HTTP server on 127.0.0.1, serving from a daemon thread, and the request handler our emulators share.

Binding here, and only here, is what keeps every server the tests and demos start on loopback.
"""

import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self


class EmulatorHandler(BaseHTTPRequestHandler):
    """An emulator's handler: each method in `methods` goes to `_handle(method)`; `_reply` sends JSON, `_send` bytes.

    Keep-alive, as a real API behind a load balancer; request lines go to the subclass's module logger at debug.
    """

    protocol_version = "HTTP/1.1"
    # headers and body go out as two writes: with Nagle on, each reply waits on the client's delayed ACK (~40 ms)
    disable_nagle_algorithm = True
    methods: ClassVar[frozenset[str]] = frozenset({"GET", "POST"})
    content_type = "application/json"

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        if self.command not in self.methods:  # what http.server answers a method it has no do_ for
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        self._handle(self.command)

    def _handle(self, method: str) -> None:
        raise NotImplementedError

    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger(type(self).__module__).debug("%s " + format, self.address_string(), *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: dict | None, headers: dict[str, str] | None = None) -> None:
        """`body` as JSON in `content_type`; None sends an empty body without a Content-Type (a 204)."""
        if body is None:
            self._send(status, b"", None, headers)
        else:
            self._send(status, json.dumps(body).encode(), self.content_type, headers)

    def _send(self, status: int, data: bytes, content_type: str | None, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (a timeout) while we were slow: nothing to tell it
            self.close_connection = True

    def _drop(self) -> None:
        """Closes the connection without a reply, as a crashed server or a cut network does."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            logging.getLogger(type(self).__module__).debug("connection already closed")


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], *, port: int = 0, name: str = "loopback") -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        # a short poll interval keeps stop() quick: shutdown waits for the serving loop's next turn
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
