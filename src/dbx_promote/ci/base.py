"""What a CI system is to dbx-promote: where errors, summaries and outputs go.

`CISystem` itself is "no CI" (a laptop, or a CI we do not know): every report is a no-op,
so the CLI can call them unconditionally. Subclasses speak one system's dialect. They never
print: lines go to the ``echo`` callables the CLI passes in; files the system reads (a
step summary, an outputs file) are appended to, as the system expects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Literal

Echo = Callable[[str], None]
PathLike = str | os.PathLike[str]
IssueKind = Literal["error", "warning"]


def _discard(line: str) -> None:
    """The default ``echo``: library callers that want no CI output get none."""


class CISystem:
    """No CI system: nothing is reported anywhere but the CLI's own output.

    :param env: the process environment (a seam for tests).
    :param out: writes one line to standard output.
    :param err: writes one line to standard error.
    """

    name = "none"
    #: The variable (and its value, case-insensitive) by which the system announces itself.
    marker: tuple[str, str] | None = None
    #: Reports never write to standard output, so ``--output json`` may still make them.
    stdout_free = True

    def __init__(self, env: Mapping[str, str], *, out: Echo = _discard, err: Echo = _discard):
        self.env = dict(env)
        self.out = out
        self.err = err

    @classmethod
    def detected(cls, env: Mapping[str, str]) -> bool:
        """True when ``env`` is this system's job environment."""
        if cls.marker is None:
            return False
        name, value = cls.marker
        return env.get(name, "").lower() == value

    @property
    def active(self) -> bool:
        return self.marker is not None

    # --- what a CLI run reports -----------------------------------------------------------

    def error(self, message: str, *, file: PathLike | None = None, line: int | None = None) -> None:
        """An error the run's page shows (and links to ``file``:``line`` when given)."""
        self.annotate("error", message, file, line)

    def warning(
        self, message: str, *, file: PathLike | None = None, line: int | None = None
    ) -> None:
        """A warning the run's page shows."""
        self.annotate("warning", message, file, line)

    def annotate(
        self, kind: IssueKind, message: str, file: PathLike | None, line: int | None
    ) -> None:
        """Where `error` and `warning` go: each system says it its own way."""

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        """Fold what is printed inside into one collapsible section of the log."""
        yield

    def summary(self, markdown: str, *, name: str) -> None:
        """Attach Markdown to the run's summary page (``name``: a short file-name stem)."""

    def tag(self, tag: str) -> None:
        """Tag the run (systems without run tags ignore it)."""

    def outputs(self, values: Mapping[str, str]) -> None:
        """Expose values (``version``, ``digest``) to later steps and jobs."""

    def run_context(self) -> dict[str, str] | None:
        """The run that is deploying, for the record's "pipeline" (None outside CI)."""
        return None

    # --- helpers --------------------------------------------------------------------------

    def repo_relative(self, file: PathLike, root_var: str) -> str:
        """``file`` relative to the checkout named by ``root_var`` (posix), when inside it.

        CI systems link annotations to files by their path in the repository; an absolute
        path or one relative to another folder would not link.
        """
        path = Path(file)
        root = self.env.get(root_var)
        if root:
            try:
                rel = path.resolve().relative_to(Path(root).resolve())
                return str(PurePosixPath(*rel.parts)) if rel.parts else "."
            except (ValueError, OSError):
                pass
        return path.as_posix()
