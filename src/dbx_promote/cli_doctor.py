"""The `doctor` command and its table: part of the CLI layer (with `cli.py`, the only code
that prints or picks exit codes). The checks themselves live in `doctor.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from dbx_promote.cli import AppContext


@click.command("doctor")
@click.option("--env", "env_name", default=None, help="One environment (default: all).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def doctor_cmd(app: AppContext, env_name: str | None, output: str) -> None:
    """Check the setup, read-only: sign-in, root, access, state, lock, requires, CI identity."""
    from dbx_promote.cli import emit_json
    from dbx_promote.config import load_config
    from dbx_promote.doctor import diagnose
    from dbx_promote.errors import ChecksFailed

    diagnosis = diagnose(load_config(app.config_path), env_name)
    if output == "json":
        emit_json(diagnosis.to_dict())
    else:
        _render_diagnosis(app, diagnosis)
    if not diagnosis.ok:
        names = ", ".join(f"{c.env + ' ' if c.env else ''}{c.name}" for c in diagnosis.failed)
        raise ChecksFailed(f"{len(diagnosis.failed)} check(s) failed: {names}")


def _render_diagnosis(app: AppContext, diagnosis: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    style = {"ok": "green", "fail": "red", "unknown": "yellow"}
    table = Table("", "env", "check", "finding", title="dbx-promote doctor")
    for c in diagnosis.checks:
        detail = escape(c.detail) + (f"\n[bold]fix:[/bold] {escape(c.fix)}" if c.fix else "")
        table.add_row(f"[{style[c.status]}]{c.symbol}[/]", c.env or "-", c.name, detail)
    app.out.print(table)
    if diagnosis.ok:
        app.out.print("[green]all checks passed[/green]", highlight=False)
