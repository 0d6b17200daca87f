"""Markdown for CI run summaries: the plan of a deploy (Azure run summary, GitHub step summary).

Pure functions over the ``--output json`` shapes, so every CI system shows the same text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Paths listed per change kind in the summary; a 10 000-notebook plan must stay readable.
SUMMARY_LIST_CAP = 50


def _md(text: object) -> str:
    """Make a value safe inside a Markdown table cell or list item."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple)):
        return len(value)
    return 0


def _path_list(title: str, paths: Iterable[str], cap: int) -> list[str]:
    paths = list(paths)
    if not paths:
        return []
    lines = [f"**{title}** ({len(paths)})", ""]
    lines += [f"- `{_md(p)}`" for p in paths[:cap]]
    if len(paths) > cap:
        lines.append(f"- … and {len(paths) - cap} more")
    lines.append("")
    return lines


def plan_summary_markdown(result: Mapping[str, Any], *, cap: int = SUMMARY_LIST_CAP) -> str:
    """Markdown for the run summary from a deploy/plan JSON result.

    :param result: the ``--output json`` object of ``deploy``: ``env``, ``version``,
        ``digest``, ``dry_run``, ``changes`` (``create``/``update``/``delete``/``drift``/
        ``unmanaged`` lists of paths, ``unchanged`` a count or a list), ``verified``.
        Missing keys are shown as empty rather than failing: the summary must never be
        the reason a deployment step fails.
    :param cap: at most this many paths are listed per kind.
    :return: the Markdown text (ends with a newline).
    """
    changes = result.get("changes") or {}
    env = result.get("env", "?")
    dry_run = bool(result.get("dry_run"))
    title = f"dbx-promote {'plan' if dry_run else 'deployment'}: {_md(env)}"
    verified = result.get("verified")
    verified_text = {True: "yes", False: "**NO**", None: "not run"}.get(verified, _md(verified))
    lines = [
        f"## {title}",
        "",
        f"- Version: `{_md(result.get('version', '?'))}`",
        f"- Digest: `{_md(result.get('digest', '?'))}`",
        f"- Mode: {'dry run (nothing written)' if dry_run else 'applied'}",
    ]
    if not dry_run:
        lines.append(f"- Verified: {verified_text}")
    lines += ["", "| change | count |", "|---|---:|"]
    for kind in ("create", "update", "delete", "unchanged", "drift", "unmanaged"):
        lines.append(f"| {kind} | {_count(changes.get(kind))} |")
    lines.append("")
    drift = _as_list(changes.get("drift"))
    if drift:
        lines += [
            "> **Drift:** these objects were edited in the workspace by hand; they are "
            "backed up before being overwritten.",
            "",
        ]
    for kind, heading in (
        ("create", "Create"),
        ("update", "Update"),
        ("delete", "Delete"),
        ("drift", "Drift (edited by hand)"),
        ("unmanaged", "Not managed by dbx-promote (left alone)"),
    ):
        lines += _path_list(heading, _as_list(changes.get(kind)), cap)
    lines += _permission_lines(result.get("permissions"), cap)
    return "\n".join(lines).rstrip("\n") + "\n"


def _grant(g: Any) -> str:
    """``group readers: CAN_READ`` from the JSON spelling (``{group, level}`` and friends)."""
    if not isinstance(g, Mapping):
        return str(g)
    who = [
        f"{k.replace('_', ' ')} {v}"
        for k, v in g.items()
        if k not in ("level", "path", "from", "to")
    ]
    level = g.get("level") or f"{g.get('from')} -> {g.get('to')}"
    where = f"{g['path']}: " if "path" in g else ""
    return f"{where}{' '.join(who)}: {level}"


def _permission_lines(perms: Any, cap: int) -> list[str]:
    """Root's ACL changes and the permission drift (what an approver must see), if managed."""
    if not isinstance(perms, Mapping):
        return []
    if not perms.get("known", True):
        return ["**Permissions:** unknown (the workspace refused to show them)", ""]
    lines: list[str] = []
    for kind, heading in (
        ("grant", "Permissions: grant on root"),
        ("revoke", "Permissions: revoke on root"),
        ("change", "Permissions: change on root"),
        ("drift", "Permission drift (direct grants removed)"),
    ):
        lines += _path_list(heading, [_grant(g) for g in perms.get(kind) or []], cap)
    lines += [f"> **Warning:** {_md(w)}" for w in _as_list(perms.get("warnings"))]
    return lines or ["**Permissions:** as configured", ""]


_STATUS = {"passed": "passed", "failed": "**FAILED**", "errored": "**ERRORED**"}


def tests_summary_markdown(suite: Mapping[str, Any], *, cap: int = SUMMARY_LIST_CAP) -> str:
    """Markdown for the run summary from a test suite's JSON (``test --output json``).

    :param suite: ``env``, ``version``, ``digest``, ``outcome`` and ``tests`` (each with
        ``notebook``, ``status``, ``duration_s``, ``run_page_url``, ``error``, ``cases``).
        Missing keys show as empty: the summary must never be why a step fails.
    :param cap: at most this many tests are listed.
    """
    tests = [t for t in suite.get("tests") or [] if isinstance(t, Mapping)]
    outcome = str(suite.get("outcome", "?"))
    counts = {s: sum(1 for t in tests if t.get("status") == s) for s in _STATUS}
    lines = [
        f"## dbx-promote tests: {_md(suite.get('env', '?'))} — {_STATUS.get(outcome, _md(outcome))}",
        "",
        f"- Version: `{_md(suite.get('version', '?'))}`",
        f"- Digest: `{_md(suite.get('digest', '?'))}`",
        "- " + ", ".join(f"{n} {s}" for s, n in counts.items()),
    ]
    if suite.get("reason"):
        lines.append(f"- Note: {_md(suite['reason'])}")
    if tests:
        lines += ["", "| test | result | time | run |", "|---|---|---:|---|"]
    for t in tests[:cap]:
        url = t.get("run_page_url")
        run = f"[run]({url})" if url else ""
        seconds = t.get("duration_s") or 0
        lines.append(
            f"| `{_md(t.get('notebook', '?'))}` | {_STATUS.get(str(t.get('status')), _md(t.get('status')))} "
            f"| {float(seconds):.1f} s | {run} |"
        )
    if len(tests) > cap:
        lines.append(f"| … and {len(tests) - cap} more | | | |")
    failures = [t for t in tests if t.get("status") != "passed"]
    if failures:
        lines += ["", "**Failures**", ""]
        for t in failures[:cap]:
            error = str(t.get("error") or "").splitlines()
            lines.append(
                f"- `{_md(t.get('notebook', '?'))}`: {_md(error[0] if error else t.get('status'))}"
            )
            for case in t.get("cases") or []:
                if isinstance(case, Mapping) and case.get("status") == "failed":
                    lines.append(
                        f"  - {_md(case.get('name', '?'))}: {_md(case.get('message') or '')}"
                    )
    return "\n".join(lines).rstrip("\n") + "\n"
