"""A test-only "silent host": a socket server that accepts every connection and never
answers (what a hung workspace, or a proxy or firewall that holds connections, looks like
to a client). It reads what it is sent so the client's request is fully delivered.

With ``answer_probe`` it answers the connection check (`connection.PROBE_PATH`, a 404)
and hangs on everything else: a host, or a proxy, that passes the check and then never
answers the API."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

from dbx_promote.connection import PROBE_PATH


class SilentHost:
    """Listen on a free loopback port; accept, read, never write. Use as a context manager."""

    def __init__(self, answer_probe: bool = False) -> None:
        self._answer_probe = answer_probe
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)  # so the accept loop sees a stop request
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self.first_accepted_at: float | None = None  # time.monotonic() of the first accept
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="silent-host", daemon=True)

    def __enter__(self) -> SilentHost:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for conn in self._held:
                conn.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                if self.first_accepted_at is None:
                    self.first_accepted_at = time.monotonic()
                self._held.append(conn)
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    def _swallow(self, conn: socket.socket) -> None:
        """Read until the client gives up; answer nothing (but the probe, if asked to)."""
        seen = b""
        try:
            while chunk := conn.recv(65536):
                seen += chunk
                # Bodyless GETs on a kept-alive connection: one request per blank line.
                while self._answer_probe and b"\r\n\r\n" in seen:
                    head, seen = seen.split(b"\r\n\r\n", 1)
                    if head.startswith(b"GET " + PROBE_PATH.encode() + b" "):
                        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
