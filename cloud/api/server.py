"""The HTTP server that carries ConsoleApi: the standard library's ThreadingHTTPServer, no framework.

One thread per connection (a <video> holds one open while it plays); request bodies are bounded before
they are read; one structured log line per request (never its headers: they may carry the token).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from cloud.api.app import MAX_BODY_BYTES, ConsoleApi, Request, Response, error_response

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server_version = "vigia-console"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle or stuck client does not hold its thread forever
    api: ConsoleApi  # set on the subclass made by make_server

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_message(self, format: str, *args) -> None:
        pass  # replaced by the structured line in _serve

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        self._serve(head=False)

    def do_PUT(self) -> None:
        self._serve(head=False)

    def do_DELETE(self) -> None:
        self._serve(head=False)

    def _read_body(self) -> bytes | Response:
        if self.command not in ("POST", "PUT"):
            return b""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            return error_response(411, "a Content-Length header is required")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as the next request
            return error_response(413, f"body of {length} bytes is over the {MAX_BODY_BYTES} byte limit")
        return self.rfile.read(int(length))

    def _serve(self, head: bool) -> None:
        started = time.perf_counter()
        parts = urlsplit(self.path)
        body = self._read_body()
        if isinstance(body, Response):
            response = body
        else:
            request = Request(
                method="GET" if head else self.command, path=unquote(parts.path), query=parts.query,
                headers={k.lower(): v for k, v in self.headers.items()}, body=body,
            )
            response = self.api.handle(request)
        sent = self._send(response, head)
        log.info("http", extra={"method": self.command, "path": parts.path, "status": response.status,
                                "bytes": sent, "ms": round((time.perf_counter() - started) * 1000, 1)})

    def _send(self, response: Response, head: bool) -> int:
        body = response.body
        length = len(body) if isinstance(body, bytes) else (response.length or 0)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if response.content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy",
                             "default-src 'self'; img-src 'self' blob:; media-src 'self'; frame-ancestors 'none'")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            _close(body)
            return 0
        sent = 0
        try:
            if isinstance(body, bytes):
                self.wfile.write(body)
                return len(body)
            for chunk in body:
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the browser moved on (a <video> seeking): normal
        finally:
            _close(body)
        return sent


def _close(body: bytes | Iterator[bytes]) -> None:
    close = getattr(body, "close", None)
    if close:
        close()


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(api: ConsoleApi, host: str = "127.0.0.1", port: int = 8600) -> ConsoleServer:
    """Bind (port 0: any free one); `serve_forever()` to run, `shutdown()` from another thread to stop."""
    handler = type("ConsoleHandler", (_Handler,), {"api": api})
    return ConsoleServer((host, port), handler)
