"""The command line: the only module that prints, colours output and picks exit codes.

Each command parses its options, builds settings, makes one library call and renders the
result. Library errors (`DbxPromoteError`) become one line on stderr and their exit code;
anything else is an internal error, shown with a traceback only under ``--debug``.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console

from dbx_promote import __version__
from dbx_promote.cli_doctor import doctor_cmd
from dbx_promote.cli_tests import test_cmd
from dbx_promote.errors import DbxPromoteError

if TYPE_CHECKING:
    from dbx_promote.ci import CISystem


def _connect_sdk(env: Any) -> Any:
    # Imported on first use: `build` and `verify` should not pay for the SDK import.
    from dbx_promote.workspace import connect

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
    connect: Callable[[Any], Any] = _connect_sdk
    _ci: CISystem | None = field(default=None, repr=False)

    @property
    def ci(self) -> CISystem:
        """The CI system of this run (a no-op outside CI): annotations, summary, outputs."""
        if self._ci is None:
            self._ci = _detect_ci()
        return self._ci


def _detect_ci() -> CISystem:
    from dbx_promote.ci import detect

    return detect(out=click.echo, err=lambda line: click.echo(line, err=True))


def emit_json(obj: Any) -> None:
    """Print exactly one JSON object on stdout (for ``--output json``)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


@dataclass(frozen=True)
class _Seams:
    """What `main` hands the command group (see `AppContext.connect`)."""

    connect: Callable[[Any], Any] | None = None


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
    connect = ctx.obj.connect if isinstance(ctx.obj, _Seams) and ctx.obj.connect else None
    ctx.obj = AppContext(
        config_path=config_path,
        debug=debug,
        # Pipeline logs are not terminals and would get 80 columns, cutting digests and
        # timestamps: give them room for full values.
        out=Console() if sys.stdout.isatty() else Console(width=160),
        err=Console(stderr=True),
        connect=connect or _connect_sdk,
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
) -> None:
    """Serve the Workspace and Jobs APIs until SIGINT or SIGTERM."""
    import signal

    from dbx_promote.emulator import Emulator

    try:
        emu = Emulator(
            state_dir=state_dir,
            user=user,
            latency_ms=latency_ms,
            import_rate_limit=import_rate_limit,
            clusters=clusters,
            run_start_delay_s=run_start_delay,
            execute_notebooks=not no_exec,
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


# === deploy / diff (issue 5) ===============================================================


class CliEvents:
    """Renders engine events: phases and a progress bar on a terminal, plain lines elsewhere."""

    def __init__(self, app: AppContext, *, quiet: bool) -> None:
        self.app = app
        self.quiet = quiet
        self._progress: Any = None
        self._task: Any = None

    def phase(self, name: str) -> None:
        if self._progress is not None and name != "applying":
            self._progress.stop()
            self._progress = None
        # Phases only on a terminal: in logs and scripts, stderr carries errors alone.
        if not self.quiet and self.app.err.is_terminal:
            self.app.err.print(f"[dim]… {name}[/dim]", highlight=False)

    def progress(self, done: int, total: int) -> None:
        if self.quiet or not self.app.err.is_terminal or total == 0:
            return
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("applying"), BarColumn(), MofNCompleteColumn(), console=self.app.err
            )
            self._progress.start()
            self._task = self._progress.add_task("apply", total=total)
        self._progress.update(self._task, completed=done)

    def warning(self, message: str) -> None:
        from dbx_promote.redact import redact

        self.app.err.print(f"[yellow]warning:[/yellow] {redact(message)}", highlight=False)
        self.app.ci.warning(redact(message))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _done_sentence(result: Any) -> str:
    if result.kind == "rollback":
        return f"rolled {result.env} back to {result.version}"
    verb = "promoted" if result.kind == "promote" else "deployed"
    return f"{verb} {result.version} to {result.env}"


_ACTION_STYLE = {"create": "green", "update": "yellow", "delete": "red", "unchanged": "dim"}


def _render_plan(app: AppContext, result: Any) -> None:
    from rich.table import Table

    plan = result.plan
    verb = "Plan" if result.dry_run else result.kind.capitalize()
    title = f"{verb}: {result.version} → {result.env} ({result.root})"
    prev = plan.previous_version or "nothing"
    table = Table(title=title, caption=f"now deployed: {prev}", show_lines=False)
    table.add_column("action")
    table.add_column("path")
    table.add_column("why")
    shown = 0
    for c in plan.changes:
        if c.action == "unchanged":
            continue
        style = _ACTION_STYLE.get(c.action, "")
        why = c.reason + (" [backed up first]" if c.backup else "")
        table.add_row(f"[{style}]{c.action}[/{style}]", c.path, why)
        shown += 1
    for path in plan.unmanaged:
        table.add_row("[blue]unmanaged[/blue]", path, "not deployed by dbx-promote; left alone")
    counts = plan.counts()
    if shown or plan.unmanaged:
        app.out.print(table)
    summary = ", ".join(f"{counts[k]} {k}" for k in ("create", "update", "delete", "unchanged"))
    extra = f"; {counts['drift']} edited by hand" if counts["drift"] else ""
    app.out.print(f"{result.env}: {summary}{extra}", highlight=False)


def _pipeline_outputs(app: AppContext, result: Any, *, title: str) -> None:
    """Under CI: the plan as a run summary, a run tag, and version/digest as outputs."""
    ci = app.ci
    if not ci.active:
        return
    from dbx_promote.ci.markdown import plan_summary_markdown

    ci.summary(f"## {title}\n\n" + plan_summary_markdown(result.to_dict()), name=result.env)
    if not result.dry_run:
        ci.tag(f"dbx-{result.env}-{result.version}")
    ci.outputs({"version": result.version, "digest": result.digest})


def _run_deploy(app: AppContext, output: str, run: Any, *, plan_out: str | None) -> None:
    from dbx_promote.reviewed import save_plan

    events = CliEvents(app, quiet=output == "json")
    try:
        result = run(events)
    finally:
        events.close()
    if plan_out:
        save_plan(result.plan, plan_out)
    if output == "json":
        emit_json(result.to_dict())
    else:
        # The plan folds away in a CI log; the outcome line below stays visible.
        counts = result.plan.counts()
        with app.ci.group(
            f"dbx-promote plan for {result.env}: {counts['create']} create, "
            f"{counts['update']} update, {counts['delete']} delete"
        ):
            _render_plan(app, result)
        if plan_out:
            app.out.print(f"plan saved to {plan_out}", highlight=False)
        if result.dry_run:
            app.out.print("dry run: nothing was changed", highlight=False)
        elif result.noop:
            app.out.print(
                f"{result.env} already runs {result.version}: nothing to do", highlight=False
            )
        else:
            backups = (
                f"; {len(result.backups)} hand-edited object(s) backed up" if result.backups else ""
            )
            app.out.print(
                f"[green]{_done_sentence(result)} and verified[/green] "
                f"({result.requests} requests{backups})",
                highlight=False,
            )
    if output != "json" or app.ci.stdout_free:  # stdout must stay one JSON object
        _pipeline_outputs(app, result, title=f"dbx-promote {result.env}: {result.version}")


def _deploy_options(
    dry_run: bool,
    break_lock: bool,
    plan: str | None,
    skip_requires: bool,
    plan_out: str | None,
    force: bool = False,
) -> Any:
    from dbx_promote.deploy import DeployOptions
    from dbx_promote.errors import BadInput
    from dbx_promote.reviewed import load_plan

    if plan_out and not dry_run:
        raise BadInput("--plan-out saves a reviewed plan and needs --dry-run")
    if plan and dry_run:
        raise BadInput("--plan applies a reviewed plan; it cannot be combined with --dry-run")
    if force and not break_lock:
        raise BadInput("--force only goes with --break-lock (it breaks a live lock too)")
    return DeployOptions(
        dry_run=dry_run,
        break_lock=break_lock,
        force=force,
        reviewed_plan=load_plan(plan) if plan else None,
        skip_requires=skip_requires,
    )


def _with(options: list[Any]) -> Any:
    def apply(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


def _lock_flags() -> list[Any]:
    return [
        click.option(
            "--break-lock",
            is_flag=True,
            help="Break a stale lock (its deploy died: no heartbeat for lock_stale_minutes, "
            "or its process on this host is gone).",
        ),
        click.option("--force", is_flag=True, help="With --break-lock: break a live lock too."),
    ]


def _deploy_flags(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--dry-run", is_flag=True, help="Show the plan; write nothing, take no lock."
            ),
            click.option(
                "--plan-out",
                type=click.Path(dir_okay=False),
                help="With --dry-run: save the plan for review.",
            ),
            click.option(
                "--plan",
                "plan",
                type=click.Path(dir_okay=False),
                help="Apply only if the live plan equals this reviewed plan.",
            ),
            *_lock_flags(),
            click.option("--output", type=click.Choice(["text", "json"]), default="text"),
        ]
    ):
        fn = option(fn)
    return fn


@cli.command("deploy")
@click.argument(
    "artifact_path", metavar="[ARTIFACT]", required=False, type=click.Path(dir_okay=False)
)
@click.option("--env", "env_name", required=True, help="Environment from the config.")
@_deploy_flags
@click.option("--skip-requires", is_flag=True, help="Emergency only: ignore 'requires' (recorded).")
@click.pass_obj
def deploy_cmd(
    app: AppContext,
    artifact_path: str | None,
    env_name: str,
    dry_run: bool,
    plan_out: str | None,
    plan: str | None,
    break_lock: bool,
    force: bool,
    output: str,
    skip_requires: bool,
) -> None:
    """Deploy ARTIFACT (or the working tree, built in memory) to an environment."""
    from contextlib import nullcontext

    from dbx_promote import operations
    from dbx_promote.artifact import open_artifact
    from dbx_promote.config import load_config

    config = load_config(app.config_path)
    config.environment(env_name)
    options = _deploy_options(dry_run, break_lock, plan, skip_requires, plan_out, force)
    if skip_requires:
        app.err.print(
            f"[bold red]--skip-requires: deploying to '{env_name}' without the "
            "'requires' check; this is written into the record[/bold red]"
        )
    source: Any = (
        nullcontext(open_artifact(artifact_path))
        if artifact_path
        else operations.working_tree_artifact(config)
    )
    with source as artifact:
        _run_deploy(
            app,
            output,
            lambda events: operations.deploy(
                config, env_name, artifact, options, events=events, connect=app.connect
            ),
            plan_out=plan_out,
        )


@cli.command("diff")
@click.argument(
    "artifact_path", metavar="[ARTIFACT]", required=False, type=click.Path(dir_okay=False)
)
@click.option("--env", "env_name", required=True, help="Environment from the config.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def diff_cmd(ctx: click.Context, artifact_path: str | None, env_name: str, output: str) -> None:
    """What `deploy` would change (same as deploy --dry-run)."""
    ctx.invoke(
        deploy_cmd,
        artifact_path=artifact_path,
        env_name=env_name,
        dry_run=True,
        plan_out=None,
        plan=None,
        break_lock=False,
        force=False,
        output=output,
        skip_requires=False,
    )


# === promote / rollback / status / history (issue 6) =======================================


@cli.command("promote")
@click.option("--from", "from_env", required=True, help="Environment the artifact was verified in.")
@click.option("--to", "to_env", required=True, help="Environment to deploy it to.")
@_deploy_flags
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation (required without a terminal)."
)
@click.pass_obj
def promote_cmd(
    app: AppContext,
    from_env: str,
    to_env: str,
    dry_run: bool,
    plan_out: str | None,
    plan: str | None,
    break_lock: bool,
    force: bool,
    output: str,
    yes: bool,
) -> None:
    """Deploy the artifact verified in --from to --to: the same bytes, digest-checked."""
    from dbx_promote import operations
    from dbx_promote.config import load_config
    from dbx_promote.errors import BadInput
    from dbx_promote.reviewed import confirmed_plan

    config = load_config(app.config_path)
    config.environment(from_env)
    config.environment(to_env)
    options = _deploy_options(dry_run, break_lock, plan, False, plan_out, force)
    if not dry_run and not yes and not plan:
        if not sys.stdin.isatty():
            raise BadInput("promote changes another environment: pass --yes (no terminal to ask)")
        preview = operations.promote(
            config,
            from_env,
            to_env,
            _deploy_options(True, False, None, False, None),
            connect=app.connect,
        )
        _render_plan(app, preview)
        if not click.confirm(f"Promote {preview.version} to {to_env}?", default=False):
            raise click.exceptions.Abort()
        # What lands is what was confirmed: if Test or Prod moved meanwhile, stop.
        options.reviewed_plan = confirmed_plan(preview.plan)
    _run_deploy(
        app,
        output,
        lambda events: operations.promote(
            config, from_env, to_env, options, events=events, connect=app.connect
        ),
        plan_out=plan_out,
    )


@cli.command("rollback")
@click.option("--env", "env_name", required=True, help="Environment to roll back.")
@click.option("--to", "to", default=None, help="Version or digest (default: the previous release).")
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@_with(_lock_flags())
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def rollback_cmd(
    app: AppContext,
    env_name: str,
    to: str | None,
    dry_run: bool,
    break_lock: bool,
    force: bool,
    output: str,
) -> None:
    """Redeploy the previous (or a named) release from the environment's release store."""
    from dbx_promote import operations
    from dbx_promote.config import load_config

    config = load_config(app.config_path)
    config.environment(env_name)
    options = _deploy_options(dry_run, break_lock, None, False, None, force)
    _run_deploy(
        app,
        output,
        lambda events: operations.rollback(
            config, env_name, to, options, events=events, connect=app.connect
        ),
        plan_out=None,
    )


def _render_status(app: AppContext, st: Any) -> None:
    d = st.to_dict()
    if d["error"]:
        app.out.print(f"[bold]{d['env']}[/bold]: [red]{d['error']}[/red]", highlight=False)
        return
    app.out.print(f"[bold]{d['env']}[/bold]  {d['root']}", highlight=False)
    _render_interruption(app, d)
    if not d["deployed"]:
        app.out.print("  nothing deployed yet", highlight=False)
    for k, v in _record_rows(d) if d["deployed"] else ():
        app.out.print(f"  {k:<9}{v}", highlight=False, soft_wrap=True)
    app.out.print(f"  {'lock':<9}{_lock_line(d)}", highlight=False, soft_wrap=True)
    drift = d["drift"]
    if drift["edited"] or drift["missing"] or drift["unmanaged"]:
        for label in ("edited", "missing", "unmanaged"):
            for path in drift[label]:
                app.out.print(f"  [yellow]{label:<10}[/yellow]{path}", highlight=False)
    elif d["deployed"]:
        app.out.print(f"  {'drift':<9}none", highlight=False)


def _render_interruption(app: AppContext, d: dict[str, Any]) -> None:
    cut = d["interrupted"]
    if not cut:
        return
    went = f"{cut['from'] or 'nothing'} → {cut['to']}"
    app.out.print(
        f"  [bold red]INTERRUPTED[/bold red] a deploy {went} by {cut['holder']} died "
        f"({cut['why']}): the folder may hold parts of both releases. Finish it with "
        f"`deploy --break-lock`, or go back to {cut['from'] or 'nothing'} with "
        "`rollback --break-lock`.",
        highlight=False,
        soft_wrap=True,
    )
    if cut["written"]:
        app.out.print(
            f"  {'written':<9}{len(cut['written'])} object(s) by the interrupted deploy",
            highlight=False,
        )


def _record_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    who = d["deployed_by"]
    run = d["pipeline"] or {}
    person = run.get("actor") or run.get("requested_for")
    if person and person != who:
        who += f" for {person}"
    if run.get("run_url"):
        who += f" via {run['run_url']}"
    rows = [
        ("version", d["version"]),
        ("digest", d["digest"]),
        ("commit", d["commit"] or "-"),
        ("deployed", f"{d['deployed_at']} by {who} ({d['kind']})"),
        ("verified", "yes" if d["verified"] else "NO"),
        ("releases", ", ".join(d["releases"]) or "-"),
    ]
    if d["skip_requires"]:
        rows.append(("warning", "deployed with --skip-requires"))
    return rows


def _lock_line(d: dict[str, Any]) -> str:
    lock, state = d["lock"], d["lock_state"] or {}
    if not lock:
        return "free"
    line = f"held by {lock['holder']} since {lock['since']}"
    if state.get("committed"):
        return line + " — left by a deploy that committed; the next deploy removes it"
    if state.get("stale"):
        return line + f" — stale: {state['stale']}"
    return line


@cli.command("status")
@click.option("--env", "env_name", default=None, help="One environment (default: all).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def status_cmd(app: AppContext, env_name: str | None, output: str) -> None:
    """What runs where: version, digest, who, verified, lock, drift."""
    from dbx_promote import operations
    from dbx_promote.config import load_config

    config = load_config(app.config_path)
    if env_name:
        st = operations.status(config, env_name, connect=app.connect)
        if output == "json":
            emit_json(st.to_dict())
        else:
            _render_status(app, st)
        return
    all_st = operations.status_all(config, connect=app.connect)
    if output == "json":
        emit_json({"environments": [s.to_dict() for s in all_st]})
        return
    for st in all_st:
        _render_status(app, st)
    comparison = operations.compare_environments(all_st)
    if comparison.same:
        app.out.print("all environments run the same artifact", highlight=False)
    elif comparison.runs:
        runs = ", ".join(f"{env} runs {version}" for env, version in comparison.runs)
        app.out.print(
            f"environments run different artifacts: {runs}; the most recent deploy "
            f"went to {comparison.newest}",
            highlight=False,
        )


@cli.command("history")
@click.option("--env", "env_name", required=True, help="Environment.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def history_cmd(app: AppContext, env_name: str, output: str) -> None:
    """Past deployments of an environment, newest first."""
    from dataclasses import asdict

    from rich.table import Table

    from dbx_promote import operations
    from dbx_promote.config import load_config

    config = load_config(app.config_path)
    entries = operations.history(config, env_name, connect=app.connect)
    if output == "json":
        emit_json({"env": env_name, "deployments": [asdict(e) for e in entries]})
        return
    table = Table(title=f"history of {env_name}", expand=False)
    for col in ("when", "kind", "version", "digest", "outcome", "by"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            e.at,
            e.kind,
            e.version,
            e.digest[:19],
            e.outcome + (f": {e.detail}" if e.detail else ""),
            e.by,
        )
    app.out.print(table)


# === test (issue 12): the command lives beside its rendering in cli_tests.py ======


cli.add_command(test_cmd)

# === doctor (issue 17): in cli_doctor.py ===================================================

cli.add_command(doctor_cmd)

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


def _fail(message: str, code: int, exc: BaseException | None = None) -> NoReturn:
    from dbx_promote.ci import report_failure
    from dbx_promote.redact import redact

    line = redact(" ".join(message.split()))
    click.echo(f"error: {line}", err=True)
    report_failure(_detect_ci(), line, exc)
    sys.exit(code)


def _print_redacted_traceback() -> None:
    from dbx_promote.redact import redact

    click.echo(redact(traceback.format_exc()), err=True)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, *, connect: Callable[[Any], Any] | None = None) -> None:
    """Run the CLI; map errors to one line on stderr and an exit code.

    ``connect`` replaces how workspaces are reached (a seam for in-process tests).
    """
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    # A cancelled pipeline run sends SIGTERM after SIGINT: both stop a deploy the same
    # way, through its restore path, and release the lock.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(args=argv, prog_name="dbx-promote", standalone_mode=False, obj=_Seams(connect))
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
            _print_redacted_traceback()
        _fail(str(exc), exc.exit_code, exc)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if debug:
            _print_redacted_traceback()
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", 1)
