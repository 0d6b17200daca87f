"""`deploy`, `diff`, `promote` and `rollback`: options, the engine's events, and the plan
as a table. Part of the CLI layer (only the CLI prints or picks exit codes)."""

from __future__ import annotations

import sys
from typing import Any

import click

from dbx_promote.cli_context import AppContext, emit_json
from dbx_promote.cli_tests import DeployTests

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
    for row in plan.rows:
        table.add_row(f"[magenta]{row.action}[/magenta]", row.subject, row.detail or row.kind)
    counts = plan.counts()
    if shown or plan.unmanaged or plan.rows:
        app.out.print(table)
    summary = ", ".join(f"{counts[k]} {k}" for k in ("create", "update", "delete", "unchanged"))
    extra = f"; {counts['drift']} edited by hand" if counts["drift"] else ""
    app.out.print(f"{result.env}: {summary}{extra}{_permissions_note(plan)}", highlight=False)


def _permissions_note(plan: Any) -> str:
    perms = plan.permissions
    if perms is None:
        return ""
    if not perms.known:
        return "; permissions unknown (the workspace refused to show them)"
    if perms.in_sync:
        return "; permissions as configured"
    return f"; {len(perms.rows())} permission change(s)"


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


def _run_deploy(
    app: AppContext,
    output: str,
    run: Any,
    *,
    plan_out: str | None,
    tests: DeployTests | None = None,
) -> None:
    from dbx_promote.reviewed import save_plan

    tests = tests or DeployTests(app, output)
    events = CliEvents(app, quiet=output == "json")
    test_options = tests.options()
    try:
        assert tests.view is not None
        with tests.view:
            result = run(events, test_options)
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
    tests.finish(result, _done_sentence(result))


def _config(app: AppContext, *env_names: str) -> Any:
    """The config, every named environment checked to exist (exit 2 before any request)."""
    from dbx_promote.config import load_config

    config = load_config(app.config_path)
    for name in env_names:
        config.environment(name)
    return config


def _deploy_options(
    dry_run: bool,
    break_lock: bool,
    plan: str | None,
    skip_requires: bool,
    plan_out: str | None,
    force: bool = False,
    no_bulk: bool = False,
    adopt: bool = False,
) -> Any:
    from dbx_promote.deploy import DeployOptions
    from dbx_promote.errors import BadInput
    from dbx_promote.localpaths import output_file
    from dbx_promote.reviewed import load_plan

    if plan_out and not dry_run:
        raise BadInput("--plan-out saves a reviewed plan and needs --dry-run")
    if plan_out:
        output_file(plan_out, "--plan-out")  # refused now, not after the dry run
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
        no_bulk=no_bulk,
        adopt=adopt,
    )


_SKIP_REQUIRES = click.option(
    "--skip-requires", is_flag=True, help="Emergency only: ignore 'requires' (recorded)."
)


def _warn_skip_requires(app: AppContext, env_name: str) -> None:
    app.err.print(
        f"[bold red]--skip-requires: deploying to '{env_name}' without the "
        "'requires' check; this is written into the record[/bold red]"
    )


_NO_BULK = click.option(
    "--no-bulk",
    is_flag=True,
    help="Import new folders one object at a time, not one directory import each.",
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


def _test_flags() -> list[Any]:
    return [
        click.option(
            "--no-test",
            is_flag=True,
            help="Do not run the environment's tests (recorded: the release then does "
            "not meet 'requires').",
        ),
        click.option(
            "--junit",
            type=click.Path(dir_okay=False),
            default=None,
            help="Write the tests' results as JUnit XML here.",
        ),
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
            *_test_flags(),
            *_lock_flags(),
            _NO_BULK,
            click.option(
                "--adopt",
                is_flag=True,
                help="Take over a folder whose record names another project or "
                "environment (recorded in its record and history).",
            ),
            click.option("--output", type=click.Choice(["text", "json"]), default="text"),
        ]
    ):
        fn = option(fn)
    return fn


@click.command("deploy")
@click.argument(
    "artifact_path", metavar="[ARTIFACT]", required=False, type=click.Path(dir_okay=False)
)
@click.option("--env", "env_name", required=True, help="Environment from the config.")
@_deploy_flags
@_SKIP_REQUIRES
@click.pass_obj
def deploy_cmd(
    app: AppContext,
    artifact_path: str | None,
    env_name: str,
    dry_run: bool,
    plan_out: str | None,
    plan: str | None,
    no_test: bool,
    junit: str | None,
    break_lock: bool,
    force: bool,
    no_bulk: bool,
    adopt: bool,
    output: str,
    skip_requires: bool,
) -> None:
    """Deploy ARTIFACT (or the working tree, built in memory) to an environment, then run
    its tests."""
    from contextlib import nullcontext

    from dbx_promote import operations
    from dbx_promote.artifact import open_artifact

    config = _config(app, env_name)
    tests = DeployTests(app, output, no_test, junit)
    tests.warn_skipped(config.environment(env_name))
    options = _deploy_options(
        dry_run, break_lock, plan, skip_requires, plan_out, force, no_bulk, adopt
    )
    if skip_requires:
        _warn_skip_requires(app, env_name)
    source: Any = (
        nullcontext(open_artifact(artifact_path))
        if artifact_path
        else operations.working_tree_artifact(config)
    )
    with source as artifact:
        _run_deploy(
            app,
            output,
            lambda events, tested: operations.deploy(
                config,
                env_name,
                artifact,
                options,
                events=events,
                tests=tested,
                connect=app.connect,
            ),
            plan_out=plan_out,
            tests=tests,
        )


@click.command("diff")
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
        no_test=False,
        junit=None,
        break_lock=False,
        force=False,
        no_bulk=False,
        adopt=False,
        output=output,
        skip_requires=False,
    )


# === promote / rollback / status / history (issue 6) =======================================


@click.command("promote")
@click.option("--from", "from_env", required=True, help="Environment the artifact was verified in.")
@click.option("--to", "to_env", required=True, help="Environment to deploy it to.")
@_deploy_flags
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation (required without a terminal)."
)
@_SKIP_REQUIRES
@click.pass_obj
def promote_cmd(
    app: AppContext,
    from_env: str,
    to_env: str,
    dry_run: bool,
    plan_out: str | None,
    plan: str | None,
    no_test: bool,
    junit: str | None,
    break_lock: bool,
    force: bool,
    no_bulk: bool,
    adopt: bool,
    output: str,
    yes: bool,
    skip_requires: bool,
) -> None:
    """Deploy the artifact verified (and tested) in --from to --to: the same bytes,
    digest-checked; then run the tests of --to."""
    from dbx_promote import operations
    from dbx_promote.errors import BadInput
    from dbx_promote.reviewed import confirmed_plan

    config = _config(app, from_env, to_env)
    tests = DeployTests(app, output, no_test, junit)
    tests.warn_skipped(config.environment(to_env))
    options = _deploy_options(
        dry_run, break_lock, plan, skip_requires, plan_out, force, no_bulk, adopt
    )
    if skip_requires:
        _warn_skip_requires(app, to_env)
    if not dry_run and not yes and not plan:
        if not sys.stdin.isatty():
            raise BadInput("promote changes another environment: pass --yes (no terminal to ask)")
        preview = operations.promote(
            config,
            from_env,
            to_env,
            _deploy_options(True, False, None, False, None, adopt=adopt),
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
        lambda events, tested: operations.promote(
            config, from_env, to_env, options, events=events, tests=tested, connect=app.connect
        ),
        plan_out=plan_out,
        tests=tests,
    )


@click.command("rollback")
@click.option("--env", "env_name", required=True, help="Environment to roll back.")
@click.option("--to", "to", default=None, help="Version or digest (default: the previous release).")
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@_with(_test_flags())
@_with(_lock_flags())
@_NO_BULK
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def rollback_cmd(
    app: AppContext,
    env_name: str,
    to: str | None,
    dry_run: bool,
    no_test: bool,
    junit: str | None,
    break_lock: bool,
    force: bool,
    no_bulk: bool,
    output: str,
) -> None:
    """Redeploy the previous (or a named) release from the environment's release store,
    then run its tests."""
    from dbx_promote import operations

    config = _config(app, env_name)
    tests = DeployTests(app, output, no_test, junit)
    tests.warn_skipped(config.environment(env_name))
    options = _deploy_options(dry_run, break_lock, None, False, None, force, no_bulk)
    _run_deploy(
        app,
        output,
        lambda events, tested: operations.rollback(
            config, env_name, to, options, events=events, tests=tested, connect=app.connect
        ),
        plan_out=None,
        tests=tests,
    )
