"""The command line: the only module that prints, colours output and picks exit codes.

Each command parses its options, builds settings, makes one library call and renders the
result. Library errors (`DbxPromoteError`) become one line on stderr and their exit code;
anything else is an internal error, shown with a traceback only under ``--debug``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, NoReturn

import click
from rich.console import Console

from dbx_promote import __version__
from dbx_promote.errors import DbxPromoteError

log = logging.getLogger("dbx_promote")


@dataclass
class AppContext:
    """What every command gets from the top-level options."""

    config_path: str | None
    debug: bool
    out: Console
    err: Console

    @property
    def in_pipeline(self) -> bool:
        return os.environ.get("TF_BUILD", "").lower() == "true"


def emit_json(obj: Any) -> None:
    """Print exactly one JSON object on stdout (for ``--output json``)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="DBX_PROMOTE_CONFIG",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: ./dbx-promote.yml; env DBX_PROMOTE_CONFIG).",
)
@click.option("--debug", is_flag=True, help="Log every request (secrets redacted); show tracebacks.")
@click.version_option(__version__, prog_name="dbx-promote")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Build Databricks notebooks once; promote the same bytes from Test to Prod."""
    ctx.obj = AppContext(
        config_path=config_path,
        debug=debug,
        out=Console(),
        err=Console(stderr=True),
    )
    if debug:
        _enable_debug_logging()


def _enable_debug_logging() -> None:
    from dbx_promote.redact import RedactingFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("dbx_promote", "databricks.sdk"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


# === emulator (issue 3) ====================================================================


@cli.group()
def emulator() -> None:
    """The local Databricks workspace emulator."""


@emulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0: a free one).")
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder that keeps the workspace across runs (default: in memory).",
)
@click.option("--user", default="emulator@example.com", show_default=True, help="SCIM user name.")
@click.option("--latency-ms", default=0.0, type=float, help="Delay added to every API request.")
@click.option(
    "--import-rate-limit", default=None, type=float, help="Imports per second before 429."
)
def emulator_serve(
    host: str,
    port: int,
    state_dir: str | None,
    user: str,
    latency_ms: float,
    import_rate_limit: float | None,
) -> None:
    """Serve the Workspace API until SIGINT or SIGTERM."""
    import signal

    from dbx_promote.emulator import Emulator

    try:
        emu = Emulator(
            state_dir=state_dir,
            user=user,
            latency_ms=latency_ms,
            import_rate_limit=import_rate_limit,
        ).start(host, port)
    except OSError as exc:
        raise DbxPromoteError(f"cannot start the emulator on {host}:{port}: {exc}") from exc
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: emu.request_stop())
    click.echo(f"Emulator listening on {emu.url}")
    sys.stdout.flush()
    emu.serve_forever()


# === build / verify / inspect (issue 4) ====================================================


def _artifact_summary(artifact: Any) -> dict[str, Any]:
    return {
        "artifact": str(artifact.path),
        "version": artifact.version,
        "digest": artifact.digest,
        "objects": len(artifact.manifest.objects),
    }


@cli.command("build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the artifact (default: dist/ next to the config file).",
)
@click.option("--version", "version", default=None, help="Use this version instead of git's.")
@click.option(
    "--strip-outputs/--keep-outputs",
    default=None,
    help="Strip .ipynb outputs and execution counts (default: config, else strip).",
)
@click.option("--no-files", is_flag=True, help="Refuse files that are not notebooks.")
@click.option("--release", is_flag=True, help="Refuse to build from a dirty tree.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def build_cmd(
    app: AppContext,
    out_dir: str | None,
    version: str | None,
    strip_outputs: bool | None,
    no_files: bool,
    release: bool,
    output: str,
) -> None:
    """Build the notebooks into dist/<project>-<version>.zip."""
    from pathlib import Path

    from dbx_promote.artifact import BuildOptions, build_artifact
    from dbx_promote.config import load_config

    config = load_config(app.config_path)
    options = BuildOptions(
        project=config.project,
        source=config.source,
        include=config.build.include,
        exclude=config.build.exclude,
        strip_outputs=config.build.strip_outputs if strip_outputs is None else strip_outputs,
        allow_files=config.build.allow_files and not no_files,
        release=release,
        version=version,
    )
    artifact = build_artifact(options, Path(out_dir) if out_dir else config.base_dir / "dist")
    if output == "json":
        emit_json(_artifact_summary(artifact))
        return
    app.out.print(f"built   {artifact.path}", highlight=False)
    app.out.print(f"version {artifact.version}", highlight=False)
    app.out.print(f"digest  {artifact.digest}", highlight=False)


@cli.command("verify")
@click.argument("artifact_path", metavar="ARTIFACT", type=click.Path(dir_okay=False))
@click.pass_obj
def verify_cmd(app: AppContext, artifact_path: str) -> None:
    """Check an artifact's structure, manifest and every object's sha256."""
    from dbx_promote.artifact import verify_artifact

    artifact = verify_artifact(artifact_path)
    app.out.print(f"OK {artifact.digest} {len(artifact.manifest.objects)} objects", highlight=False)


@cli.command("inspect")
@click.argument("artifact_path", metavar="ARTIFACT", type=click.Path(dir_okay=False))
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def inspect_cmd(app: AppContext, artifact_path: str, output: str) -> None:
    """Show a verified artifact's manifest."""
    from rich.table import Table

    from dbx_promote.artifact import open_artifact

    artifact = open_artifact(artifact_path)
    manifest = artifact.manifest
    if output == "json":
        emit_json({**manifest.to_dict(), "digest": artifact.digest})
        return
    app.out.print(
        f"{manifest.project} {manifest.version}  {artifact.digest}\n"
        f"commit {manifest.commit or '-'} at {manifest.commit_time or '-'}, "
        f"built by dbx-promote {manifest.tool_version}",
        highlight=False,
    )
    table = Table("kind", "language", "format", "size", "sha256")
    table.add_column("workspace path", overflow="fold")
    for obj in manifest.objects:
        table.add_row(
            obj.kind,
            obj.language or "",
            obj.format,
            str(obj.size),
            obj.sha256[:12],
            obj.workspace_path,
        )
    app.out.print(table)


# === deploy / diff (issue 5) ===============================================================

# === promote / rollback / status / history (issue 6) =======================================

# === ado (issue 7) =========================================================================


def _ado_token() -> tuple[str, str]:
    """The Azure DevOps token from the environment and its kind (``pat`` or ``bearer``)."""
    from dbx_promote.errors import CredentialsError

    for name in ("AZURE_DEVOPS_PAT", "AZURE_DEVOPS_EXT_PAT"):
        if os.environ.get(name):
            return os.environ[name], "pat"
    if os.environ.get("SYSTEM_ACCESSTOKEN"):
        return os.environ["SYSTEM_ACCESSTOKEN"], "bearer"
    raise CredentialsError(
        "no Azure DevOps token: set AZURE_DEVOPS_PAT (a PAT with Environment read & manage "
        "and Identity read scopes) or, in a pipeline, map "
        "env: {SYSTEM_ACCESSTOKEN: $(System.AccessToken)}"
    )


@cli.group("ado")
def ado_group() -> None:
    """Azure DevOps: environments and their approval checks."""


@ado_group.command("ensure-environments")
@click.option(
    "--organization",
    envvar=["AZURE_DEVOPS_ORG_URL", "SYSTEM_COLLECTIONURI"],
    help="Organization URL, e.g. https://dev.azure.com/contoso "
    "(env AZURE_DEVOPS_ORG_URL or SYSTEM_COLLECTIONURI).",
)
@click.option("--project", envvar="SYSTEM_TEAMPROJECT", help="Project (env SYSTEM_TEAMPROJECT).")
@click.option(
    "--env",
    "only",
    multiple=True,
    help="Only this config environment (repeatable; default: all but {user} sandboxes).",
)
@click.option("--dry-run", is_flag=True, help="Only read; show what would be created or updated.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def ado_ensure_environments(
    app: AppContext,
    organization: str | None,
    project: str | None,
    only: tuple[str, ...],
    dry_run: bool,
    output: str,
) -> None:
    """Create the Azure DevOps environments and Approval/Branch control checks from config.

    Idempotent: a second run changes nothing. The token comes from AZURE_DEVOPS_PAT,
    AZURE_DEVOPS_EXT_PAT or SYSTEM_ACCESSTOKEN, never from the command line.
    """
    from dbx_promote.azure import logging_commands
    from dbx_promote.azure.environments import ensure_environments
    from dbx_promote.config import load_config

    if not organization:
        raise click.UsageError("--organization (or AZURE_DEVOPS_ORG_URL) is required")
    if not project:
        raise click.UsageError("--project (or SYSTEM_TEAMPROJECT) is required")
    config = load_config(app.config_path)
    token, kind = _ado_token()
    changes = ensure_environments(
        config,
        organization_url=organization,
        project=project,
        token=token,
        token_kind="bearer" if kind == "bearer" else "pat",
        dry_run=dry_run,
        only=only or None,
    )
    if output == "json":
        emit_json({"dry_run": dry_run, "changes": [c.as_dict() for c in changes]})
        return
    if app.in_pipeline:
        click.echo(logging_commands.group_start("ado ensure-environments"))
    verb = {"create-environment": "create", "create-check": "create", "update-check": "update"}
    for change in changes:
        label = verb.get(change.kind, "ok")
        if dry_run and label != "ok":
            label = f"would {label}"
        app.out.print(f"{label:<14} {change.target:<28} {change.detail}", highlight=False)
    if app.in_pipeline:
        click.echo(logging_commands.group_end())
    todo = sum(c.kind != "unchanged" for c in changes)
    done = "to make" if dry_run else "made"
    summary = f"{todo} change(s) {done}" if todo else "nothing to change"
    app.out.print(summary, highlight=False)


# === entry point ===========================================================================


def _fail(message: str, code: int) -> NoReturn:
    from dbx_promote.redact import redact

    line = redact(" ".join(message.split()))
    click.echo(f"error: {line}", err=True)
    if os.environ.get("TF_BUILD", "").lower() == "true":
        from dbx_promote.azure.logging_commands import log_issue

        click.echo(log_issue("error", line))
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one line on stderr and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="dbx-promote", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:
        # Usage errors: keep click's own hint line, exit 2 as the contract says.
        exc.show()
        sys.exit(2)
    except DbxPromoteError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", 1)
