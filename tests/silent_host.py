"""A test-only "silent host": a socket server that accepts every connection and never
answers (what a hung workspace, or a proxy or firewall that holds connections, looks like
to a client). It reads what it is sent so the client's request is fully delivered."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType


class SilentHost:
    """Listen on a free loopback port; accept, read, never write. Use as a context manager."""

    def __init__(self) -> None:
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
        """Read until the client gives up; answer nothing."""
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
