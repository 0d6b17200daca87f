"""What the engine reports while it works; the CLI renders it, the library only logs."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("dbx_promote.deploy")


class Events(Protocol):
    """Progress reporting of a deploy."""

    def phase(self, name: str) -> None: ...
    def progress(self, done: int, total: int) -> None: ...
    def warning(self, message: str) -> None: ...


class Silent:
    """Events that only go to the log (the default outside the CLI)."""

    def phase(self, name: str) -> None:
        log.debug("phase: %s", name)

    def progress(self, done: int, total: int) -> None:
        pass

    def warning(self, message: str) -> None:
        log.warning("%s", message)


def one_line(exc: BaseException) -> str:
    """An exception as one line of text for messages."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C, or the pipeline run was cancelled)"
    return " ".join(str(exc).split()) or type(exc).__name__
