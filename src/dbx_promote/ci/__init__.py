"""The CI system a run is in, detected in one place, behind one small interface.

``detect()`` returns an object with ``error``, ``warning``, ``group``, ``summary``, ``tag``,
``outputs`` and ``run_context``; outside CI they do nothing, so callers need no checks.

- :mod:`dbx_promote.ci.azure` — Azure Pipelines (``TF_BUILD=True``): ``##vso`` commands.
- :mod:`dbx_promote.ci.github` — GitHub Actions (``GITHUB_ACTIONS=true``): workflow
  commands, ``$GITHUB_STEP_SUMMARY``, ``$GITHUB_OUTPUT``.
- :mod:`dbx_promote.ci.markdown` — the summary text both show.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from dbx_promote.ci.base import CISystem, Echo, _discard


def _systems() -> list[type[CISystem]]:
    from dbx_promote.ci.azure import AzurePipelines
    from dbx_promote.ci.github import GitHubActions

    return [AzurePipelines, GitHubActions]


def detect(
    env: Mapping[str, str] | None = None, *, out: Echo = _discard, err: Echo = _discard
) -> CISystem:
    """The CI system of this process (``CISystem`` itself, a no-op, outside CI).

    :param env: the environment to look at (default: ``os.environ``).
    :param out: writes a line to standard output (the CLI passes ``click.echo``).
    :param err: writes a line to standard error.
    """
    source = os.environ if env is None else env
    for system in _systems():
        if system.detected(source):
            return system(source, out=out, err=err)
    return CISystem(source, out=out, err=err)


# A build problem reads "path: reason" or "path:line: reason" (see notebooks.discover);
# several paths ("a.py, a.sql: ...") name no single file and are reported without one.
_PROBLEM = re.compile(r"^(?P<path>[^:,]+?)(?::(?P<line>\d+))?: (?P<reason>.+)$", re.DOTALL)


def report_failure(ci: CISystem, message: str, exc: BaseException | None = None) -> None:
    """Report a failed command to ``ci``: one error, or one per build problem at its file.

    :param message: the (already redacted) one-line error the CLI printed.
    :param exc: the error, when it was one of ours; a `BuildError` with ``problems`` and
        ``source`` becomes one annotation per problem, linked to its file and line.
    """
    from dbx_promote.errors import BuildError
    from dbx_promote.redact import redact

    source = getattr(exc, "source", None)
    if not (isinstance(exc, BuildError) and exc.problems and source):
        ci.error(message)
        return
    for problem in exc.problems:
        m = _PROBLEM.match(problem)
        file = Path(source) / m["path"] if m else None
        if m is None or file is None or not file.exists():
            ci.error(redact(problem))
            continue
        line = int(m["line"]) if m["line"] else None
        ci.error(redact(f"{m['path']}: {m['reason']}"), file=file, line=line)


__all__ = ["CISystem", "detect", "report_failure"]
