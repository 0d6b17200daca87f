"""The command line: the only module that prints, colours output and picks exit codes.

Each command parses its options, builds settings, makes one library call and renders the
result. Library errors (`DbxPromoteError`) become one line on stderr and their exit code;
anything else is an internal error, shown with a traceback only under ``--debug``.
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import click
from rich.console import Console

from dbx_promote import __version__
from dbx_promote.cli_context import AppContext, connect_sdk, detect_ci, emit_json
from dbx_promote.cli_deploy import (
    deploy_cmd,
    diff_cmd,
    promote_cmd,
    rollback_cmd,
)
from dbx_promote.cli_doctor import doctor_cmd
from dbx_promote.cli_init import init_cmd
from dbx_promote.cli_status import history_cmd, status_cmd
from dbx_promote.cli_tests import test_cmd
from dbx_promote.errors import DbxPromoteError


@dataclass(frozen=True)
class _Seams:
    """What `main` hands the command group (see `AppContext.connect`)."""

    connect: Callable[[Any], Any] | None = None
    json_stdout: bool = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="DBX_PROMOTE_CONFIG",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: ./dbx-promote.yml; env DBX_PROMOTE_CONFIG).",
)
@click.option(
    "--debug", is_flag=True, help="Log every request (secrets redacted); show tracebacks."
)
@click.version_option(__version__, prog_name="dbx-promote")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Build Databricks notebooks once; promote the same bytes from Test to Prod."""
    seams = ctx.obj if isinstance(ctx.obj, _Seams) else _Seams()
    connect = seams.connect
    ctx.obj = AppContext(
        config_path=config_path,
        debug=debug,
        # Pipeline logs are not terminals and would get 80 columns, cutting digests and
        # timestamps: give them room for full values.
        out=Console() if sys.stdout.isatty() else Console(width=160),
        err=Console(stderr=True),
        connect=connect or connect_sdk,
        json_stdout=seams.json_stdout,
    )
    if debug:
        _enable_debug_logging()
    elif not logging.getLogger("databricks.sdk").handlers:
        # Without a handler, Python prints the SDK's warnings (a host-metadata probe that
        # failed) to stderr beside our one error line; --debug shows them.
        logging.getLogger("databricks.sdk").addHandler(logging.NullHandler())


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
@click.option(
    "--cluster",
    "clusters",
    multiple=True,
    metavar="ID",
    help="An existing cluster id one-time runs may use (repeatable; serverless always works).",
)
@click.option(
    "--run-start-delay",
    default=0.0,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="How long a submitted run stays PENDING.",
)
@click.option(
    "--no-exec", is_flag=True, help="Execute no notebook: runs follow job rules, else SUCCESS."
)
@click.option(
    "--principal",
    "principal_specs",
    multiple=True,
    metavar="TOKEN=NAME[:GROUP,...]",
    help="A user (or service principal, when NAME is a UUID) and its groups; repeatable. "
    "With any, ACLs are enforced and other tokens get 401.",
)
def emulator_serve(
    host: str,
    port: int,
    state_dir: str | None,
    user: str,
    latency_ms: float,
    import_rate_limit: float | None,
    clusters: tuple[str, ...],
    run_start_delay: float,
    no_exec: bool,
    principal_specs: tuple[str, ...],
) -> None:
    """Serve the Workspace and Jobs APIs until SIGINT or SIGTERM."""
    import signal

    from dbx_promote.emulator import Emulator, parse_principal
    from dbx_promote.errors import BadInput

    try:
        principals = [parse_principal(spec) for spec in principal_specs]
    except ValueError as exc:
        raise BadInput(f"--principal: {exc}") from None
    try:
        emu = Emulator(
            state_dir=state_dir,
            user=user,
            latency_ms=latency_ms,
            import_rate_limit=import_rate_limit,
            clusters=clusters,
            run_start_delay_s=run_start_delay,
            execute_notebooks=not no_exec,
            principals=principals,
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
    from dbx_promote.localpaths import output_folder

    config = load_config(app.config_path)
    if out_dir:
        output_folder(out_dir, "--out")
    options = BuildOptions.from_config(
        config,
        version=version,
        strip_outputs=strip_outputs,
        allow_files=not no_files,
        release=release,
    )
    artifact = build_artifact(options, Path(out_dir) if out_dir else config.base_dir / "dist")
    if output != "json" or app.ci.stdout_free:
        app.ci.outputs({"version": artifact.version, "digest": artifact.digest})
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


# === deploy / diff / promote / rollback (issues 5, 6): in cli_deploy.py ==========
for _command in (deploy_cmd, diff_cmd, promote_cmd, rollback_cmd, status_cmd, history_cmd):
    cli.add_command(_command)

# === test (issue 12): the command lives beside its rendering in cli_tests.py ======


cli.add_command(test_cmd)

# === doctor (issue 17): in cli_doctor.py ===================================================

cli.add_command(doctor_cmd)

# === init (issue 16): the command lives beside its rendering in cli_init.py ==============

cli.add_command(init_cmd)

# === ado (issue 7) =========================================================================


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
    from dbx_promote.azure.environments import devops_token, ensure_environments
    from dbx_promote.config import load_config

    if not organization:
        raise click.UsageError("--organization (or AZURE_DEVOPS_ORG_URL) is required")
    if not project:
        raise click.UsageError("--project (or SYSTEM_TEAMPROJECT) is required")
    config = load_config(app.config_path)
    token, kind = devops_token()
    changes = ensure_environments(
        config,
        organization_url=organization,
        project=project,
        token=token,
        token_kind=kind,
        dry_run=dry_run,
        only=only or None,
    )
    if output == "json":
        emit_json({"dry_run": dry_run, "changes": [c.as_dict() for c in changes]})
        return
    verb = {"create-environment": "create", "create-check": "create", "update-check": "update"}
    with app.ci.group("ado ensure-environments"):
        for change in changes:
            label = verb.get(change.kind, "ok")
            if dry_run and label != "ok":
                label = f"would {label}"
            app.out.print(f"{label:<14} {change.target:<28} {change.detail}", highlight=False)
    todo = sum(c.kind != "unchanged" for c in changes)
    done = "to make" if dry_run else "made"
    summary = f"{todo} change(s) {done}" if todo else "nothing to change"
    app.out.print(summary, highlight=False)


# === entry point ===========================================================================


def _fail(
    message: str, code: int, exc: BaseException | None = None, *, json_stdout: bool = False
) -> NoReturn:
    from dbx_promote.ci import report_failure
    from dbx_promote.redact import redact

    line = redact(" ".join(message.split()))
    click.echo(f"error: {line}", err=True)
    report_failure(detect_ci(json_stdout=json_stdout), line, exc)
    sys.exit(code)


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for ``--output json`` (either spelling)."""
    pairs = zip(args, [*args[1:], ""], strict=True)
    return "--output=json" in args or any(a == "--output" and b == "json" for a, b in pairs)


def _print_redacted_traceback() -> None:
    from dbx_promote.redact import redact

    click.echo(redact(traceback.format_exc()), err=True)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, *, connect: Callable[[Any], Any] | None = None) -> None:
    """Run the CLI; map errors to one line on stderr and an exit code.

    ``connect`` replaces how workspaces are reached (a seam for in-process tests).
    """
    args = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in args
    # With --output json, standard output is one JSON document: no CI command may join it.
    json_stdout = wants_json(args)
    # A cancelled pipeline run sends SIGTERM after SIGINT: both stop a deploy the same
    # way, through its restore path, and release the lock.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = cli.main(
            args=argv,
            prog_name="dbx-promote",
            standalone_mode=False,
            obj=_Seams(connect, json_stdout),
        )
        # Outside standalone mode click returns, not raises, a command's `Exit(n)`.
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130, json_stdout=json_stdout)
    except click.ClickException as exc:
        # Usage errors: keep click's own hint line, exit 2 as the contract says.
        exc.show()
        sys.exit(2)
    except DbxPromoteError as exc:
        if debug:
            _print_redacted_traceback()
        _fail(str(exc), exc.exit_code, exc, json_stdout=json_stdout)
    except KeyboardInterrupt:
        _fail("interrupted", 130, json_stdout=json_stdout)
    except Exception as exc:
        if debug:
            _print_redacted_traceback()
        if isinstance(exc, OSError) and exc.filename is not None:
            # A path that cannot be read or written is the path's problem, not a bug.
            from dbx_promote.localpaths import os_error_line

            line, code = os_error_line(exc)
            _fail(line, code, json_stdout=json_stdout)
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            1,
            json_stdout=json_stdout,
        )
