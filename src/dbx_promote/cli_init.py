"""The `init` command: part of the CLI layer (with `cli.py`, the only code that prints)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from dbx_promote.cli import AppContext


@click.command("init")
@click.option(
    "--ci",
    type=click.Choice(["azure", "github", "both"]),
    default=None,
    help="Pipeline file(s) to write (default: github if .github/ exists, azure for an "
    "Azure Repos origin, else both).",
)
@click.option(
    "--source",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The notebooks folder (default: the nearest folder holding every notebook found).",
)
@click.option("--project", default=None, help="Project name (default: the folder's name).")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@click.pass_obj
def init_cmd(
    app: AppContext, ci: str | None, source: Path | None, project: str | None, force: bool
) -> None:
    """Write dbx-promote.yml, a CI pipeline and a first smoke test for this repository."""
    from dbx_promote.scaffold import InitOptions, init_project

    result = init_project(
        InitOptions(root=Path.cwd(), ci=ci, source=source, project=project, force=force)
    )
    noun = "notebook" if result.notebooks == 1 else "notebooks"
    app.out.print(
        f"project {result.project}: {result.notebooks} {noun} in {result.source}/",
        highlight=False,
    )
    for rel in result.written:
        verb = "overwrote" if rel in result.overwritten else "wrote"
        app.out.print(f"{verb:<10}{rel}", highlight=False)
    app.out.print("\nnext steps:", highlight=False)
    for number, step in enumerate(result.next_steps, 1):
        app.out.print(f"  {number}. {step}", highlight=False, soft_wrap=True)
