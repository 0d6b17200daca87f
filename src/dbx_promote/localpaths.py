"""Local paths a user names (`--out`, `--plan-out`, `--junit`, an artifact, `--config`).

A path that cannot work is bad input: an output is checked before any work is done (not
after a dry run has read the whole workspace), and a file-system error that names a path
becomes one line about that path, never an "internal error".
"""

from __future__ import annotations

import errno
from pathlib import Path

from dbx_promote.config import MAX_PATH_CHARS
from dbx_promote.errors import BadInput

MAX_NAME_BYTES = 255  # one component, as Linux, macOS and Windows file systems allow

# Errors that say the path is wrong (exit 2); any other names a failure of the machine
# (a full disk, an I/O error), an operation that failed (exit 1).
PATH_ERRNOS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENOENT,
        errno.EACCES,
        errno.EPERM,
        errno.ELOOP,
        errno.EROFS,
        errno.EEXIST,
    }
)


def output_file(path: str, option: str) -> Path:
    """``path`` as a file to be written later; `BadInput` now when it cannot be one."""
    p = _checked(path, option)
    if p.is_dir():
        raise BadInput(f"{option} {shown(path)} is a folder; name a file in it")
    _refuse_file_ancestor(p.parent, option, path)
    return p


def output_folder(path: str, option: str) -> Path:
    """``path`` as a folder to be created or written into; `BadInput` when it cannot be."""
    p = _checked(path, option)
    _refuse_file_ancestor(p, option, path)
    return p


def os_error_line(exc: OSError) -> tuple[str, int]:
    """The one line and exit code for a file-system error that names a path."""
    what = exc.strerror or type(exc).__name__
    line = f"{shown(str(exc.filename))}: {what}"
    return line, 2 if exc.errno in PATH_ERRNOS else 1


def shown(path: str) -> str:
    """``path`` for an error line: a path of thousands of characters is cut in the middle."""
    return path if len(path) <= 120 else f"{path[:60]}...{path[-40:]} ({len(path)} characters)"


def _checked(path: str, option: str) -> Path:
    if len(path) > MAX_PATH_CHARS:
        raise BadInput(
            f"{option} is {len(path)} characters long; at most {MAX_PATH_CHARS} are allowed"
        )
    if any(
        len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in Path(path).parts
    ):
        raise BadInput(f"{option} {shown(path)} has a name longer than {MAX_NAME_BYTES} bytes")
    return Path(path)


def _refuse_file_ancestor(folder: Path, option: str, path: str) -> None:
    """The nearest existing folder of ``folder`` (itself included) must be a folder."""
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise BadInput(
                    f"{option} {shown(path)}: {shown(str(ancestor))} is a file, not a folder"
                )
            return


__all__ = ["MAX_NAME_BYTES", "os_error_line", "output_file", "output_folder", "shown"]
