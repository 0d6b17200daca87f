"""`status` and `history`: what runs where, and what ran before. Part of the CLI layer."""

from __future__ import annotations

from typing import Any

import click

from dbx_promote.cli_context import AppContext, emit_json


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
    if d["permissions"]:
        for line in _permission_lines(d["permissions"], d["root"]):
            app.out.print(f"  {line}", highlight=False, soft_wrap=True)


def _grant_text(g: dict[str, str]) -> str:
    kind = next(k for k in g if k not in ("level", "path", "from", "to"))
    return f"{kind.replace('_', ' ')} {g[kind]}"


def _permission_lines(p: dict[str, Any], root: str) -> list[str]:
    """``permissions as configured``, or one line per difference and per warning."""
    if not p["known"]:
        lines = []
    elif p["as_configured"]:
        lines = [f"{'permissions':<12}as configured"]
    else:
        lines = [
            f"[yellow]{'missing':<12}[/yellow]{_grant_text(g)}: {g['level']}" for g in p["missing"]
        ]
        lines += [
            f"[yellow]{'extra':<12}[/yellow]{_grant_text(g)}: {g['level']}" for g in p["extra"]
        ]
        lines += [
            f"[yellow]{'changed':<12}[/yellow]{_grant_text(c)}: {c['from']}, configured {c['to']}"
            for c in p["changed"]
        ]
        lines += [
            f"[yellow]{'grant drift':<12}[/yellow]{d['path'].removeprefix(root + '/')}: "
            f"{_grant_text(d)}: {d['level']} "
            "(a direct grant on a managed object; the next deploy removes it)"
            for d in p["drift"]
        ]
    return lines + [f"[yellow]{'warning':<12}[/yellow]{w}" for w in p["warnings"]]


def _render_interruption(app: AppContext, d: dict[str, Any]) -> None:
    cut = d["interrupted"]
    if not cut:
        return
    went = f"{cut['from'] or 'nothing'} → {cut['to']}"
    flag = "" if cut["abandoned"] else " --break-lock"
    app.out.print(
        f"  [bold red]INTERRUPTED[/bold red] a deploy {went} by {cut['holder']} "
        f"{'stopped' if cut['abandoned'] else 'died'} ({cut['why']}): the folder may hold "
        f"parts of both releases. Finish it with `deploy{flag}`, or go back to "
        f"{cut['from'] or 'nothing'} with `rollback{flag}`.",
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
    if d["tests"]:
        rows.append(("tests", _tests_line(d["tests"])))
    return rows


def _tests_line(t: dict[str, Any]) -> str:
    if t["outcome"] == "passed":
        return f"passed at {t['at']}"
    if t["outcome"] == "not run":
        return "not run for this release"
    return f"{t['outcome'].upper()} at {t['at']}: {t['summary']}"


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


@click.command("status")
@click.option("--env", "env_name", default=None, help="One environment (default: all).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--check",
    is_flag=True,
    help="Exit 1 when an environment shows drift, an interrupted deploy or another problem "
    "(each named in one line); {user} sandboxes are skipped unless named with --env.",
)
@click.pass_obj
def status_cmd(app: AppContext, env_name: str | None, output: str, check: bool) -> None:
    """What runs where: version, digest, who, verified, lock, drift."""
    from dbx_promote import operations
    from dbx_promote.config import load_config

    config = load_config(app.config_path)
    if check:
        from dbx_promote.cli_check import run_check

        run_check(app, config, env_name, output)
        return
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


@click.command("history")
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
