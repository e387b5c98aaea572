"""Loopback TCP stand-ins for cameras that misbehave: a proxy that can be paused (a stalled stream: the
connection stays open, no byte moves) and a listener that accepts and never speaks (a camera that hangs)."""

from __future__ import annotations

import select
import socket
import threading


class _Listener:
    def __init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name=type(self).__name__, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
            self._accepted(client)

    def _accepted(self, client: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        self._thread.join(timeout=5)
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


class SilentListener(_Listener):
    """Accepts TCP connections and never sends a byte: an RTSP client waits for an answer forever."""

    def _accepted(self, client: socket.socket) -> None:
        pass  # keep it open, say nothing

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._sockets)


class PausableProxy(_Listener):
    """Forwards 127.0.0.1:port ↔ upstream; `pause()` stops moving bytes both ways without closing."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._running = threading.Event()
        self._running.set()
        super().__init__()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def _accepted(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.append(upstream)
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._closed.is_set():
                if not self._running.wait(timeout=0.1):
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    if not self._running.is_set():
                        break
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()
