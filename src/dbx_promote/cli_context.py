"""What every command of the CLI gets: the top-level options, the consoles, the CI
system, and the seam to workspaces (`connect`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

if TYPE_CHECKING:
    from dbx_promote.ci import CISystem


def connect_sdk(env: Any) -> Any:
    # Imported on first use: `build` and `verify` should not pay for the SDK import.
    from dbx_promote.connection import connect

    return connect(env)


@dataclass
class AppContext:
    """What every command gets from the top-level options, and the seam to workspaces.

    ``connect`` makes the workspace adapter for an environment: the SDK by default, or
    whatever `main(connect=...)` was given (tests run the CLI in-process with it).
    """

    config_path: str | None
    debug: bool
    out: Console
    err: Console
    connect: Callable[[Any], Any] = connect_sdk
    json_stdout: bool = False  # --output json: stdout is one JSON document
    _ci: CISystem | None = field(default=None, repr=False)

    @property
    def ci(self) -> CISystem:
        """The CI system of this run (a no-op outside CI): annotations, summary, outputs."""
        if self._ci is None:
            self._ci = detect_ci(json_stdout=self.json_stdout)
        return self._ci


def detect_ci(*, json_stdout: bool = False) -> CISystem:
    """The CI system of this process, writing its lines with click.

    With ``json_stdout`` (``--output json``) standard output carries one JSON document and
    nothing else, so what a system writes there (Azure's ##vso logging commands, GitHub's
    groups) is dropped; GitHub's annotations go to standard error and stay.
    """
    from dbx_promote.ci import detect

    out = _drop if json_stdout else click.echo
    return detect(out=out, err=lambda line: click.echo(line, err=True))


def _drop(line: str) -> None:
    """Where a CI system's standard-output lines go under ``--output json``."""


def emit_json(obj: Any) -> None:
    """Print exactly one JSON object on stdout (for ``--output json``)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


__all__ = ["AppContext", "emit_json"]
