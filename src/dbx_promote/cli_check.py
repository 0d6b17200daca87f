"""`status --check`: the CLI side (with `cli.py`, the only code that prints or picks exit
codes). One line per environment that is fine, one per finding; under CI each finding is
also an error annotation, so a drifted or broken environment fails a scheduled run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from dbx_promote.cli import AppContext
    from dbx_promote.config import Config


def run_check(app: AppContext, config: Config, env_name: str | None, output: str) -> None:
    """Check ``env_name`` (or every shared environment); exit 1 on any finding."""
    from dbx_promote import monitor, operations
    from dbx_promote.cli import emit_json

    names, skipped = monitor.checked_environments(config, env_name)
    statuses = operations.status_all(config, connect=app.connect, names=names)
    result = monitor.check(config, statuses, skipped=skipped)
    if output == "json":
        emit_json({"environments": [s.to_dict() for s in statuses], "check": result.to_dict()})
    else:
        failing = {f.env for f in result.findings}
        for st in statuses:
            if st.env not in failing and st.record is not None:
                app.out.print(f"ok    {st.env}: runs {st.record.version}, clean", highlight=False)
        for note in result.notes:
            app.out.print(f"note  {note}", highlight=False)
        for finding in result.findings:
            app.out.print(f"[red]FAIL[/red]  {finding.line()}", highlight=False, soft_wrap=True)
        n = len(result.findings)
        app.out.print(
            f"check failed: {n} finding{'s' if n != 1 else ''}" if n else "check passed",
            highlight=False,
        )
    if output != "json" or app.ci.stdout_free:
        for finding in result.findings:
            app.ci.error(finding.line())
    if not result.ok:
        raise click.exceptions.Exit(1)
