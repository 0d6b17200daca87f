"""`status --check`: is every environment running cleanly what its record says?

Pure over `operations.Status`: each check is a function ``(env, status) -> findings``,
listed in `CHECKS`. A finding is one line naming the environment and what is wrong; any
finding makes the check fail (exit 1). An environment never deployed is a note, not a
finding: a fresh Prod is not broken. Sandboxes (roots with ``{user}``) are someone's own
folder, resolved per signed-in principal; a check of all environments skips them.

To watch something new (permission drift, say), add one function to `CHECKS`; nothing
else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dbx_promote.config import Config, Environment, relative_to_root
from dbx_promote.operations import Status


@dataclass(frozen=True)
class Finding:
    """One thing wrong in one environment."""

    env: str
    kind: str  # unreadable | drift | unverified | interrupted | stale-lock | ...
    message: str

    def line(self) -> str:
        return f"{self.env}: {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"env": self.env, "kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class CheckResult:
    """Every finding, and notes that are not failures (never deployed, skipped, busy)."""

    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }


Check = Callable[[Environment, Status, datetime | None], Iterable[Finding]]


def _listed(paths: list[str], cap: int = 5) -> str:
    shown = ", ".join(paths[:cap])
    return shown + (f" and {len(paths) - cap} more" if len(paths) > cap else "")


def check_readable(env: Environment, st: Status, now: datetime | None) -> Iterable[Finding]:
    if st.error:
        yield Finding(env.name, "unreadable", st.error)


def check_drift(env: Environment, st: Status, now: datetime | None) -> Iterable[Finding]:
    if st.drifted:
        yield Finding(
            env.name,
            "drift",
            f"{len(st.drifted)} object(s) edited by hand since the deploy: {_listed(st.drifted)}"
            " (the next deploy backs them up and puts the release back)",
        )
    if st.missing:
        yield Finding(
            env.name,
            "drift",
            f"{len(st.missing)} deployed object(s) missing: {_listed(st.missing)} "
            "(redeploy, or roll back, to restore them)",
        )


def check_verified(env: Environment, st: Status, now: datetime | None) -> Iterable[Finding]:
    if st.record is not None and not st.record.verified:
        yield Finding(
            env.name,
            "unverified",
            f"{st.record.version} is recorded but was not verified after its deploy",
        )


def check_interrupted(env: Environment, st: Status, now: datetime | None) -> Iterable[Finding]:
    """A deploy that died here (the engine's judgement of its lock: stale, not committed)."""
    lock = st.lock
    if not st.interrupted or lock is None:
        return
    why = st.lock_state.stale if st.lock_state else None
    written = f"; {len(st.written)} object(s) of it already written" if st.written else ""
    yield Finding(
        env.name,
        "interrupted",
        f"the deploy by {lock.describe()} never finished ({why or 'stale lock'}{written}): the "
        "folder may hold parts of two releases; deploy again with --break-lock, or roll back",
    )


def check_stale_lock(env: Environment, st: Status, now: datetime | None) -> Iterable[Finding]:
    """A stale lock left by a deploy that did commit (it could not unlock): it blocks the
    next deploy until removed."""
    lock, state = st.lock, st.lock_state
    if lock is None or state is None or not state.stale or not state.committed:
        return
    yield Finding(
        env.name,
        "stale-lock",
        f"a lock of a finished deploy by {lock.describe()} was left behind ({state.stale}); "
        "the next deploy removes it, or use --break-lock",
    )


def check_tests(env: Environment, st: Status, now: datetime | None) -> Iterable[Finding]:
    """The last tests of the release running here did not pass (failed, could not run, or
    were skipped). Not yet run is no finding: a release rolled back to has no new run."""
    tests = st.tests_summary() if st.error is None else None
    if tests and tests["outcome"] in ("failed", "errored", "skipped"):
        yield Finding(
            env.name,
            "tests",
            f"the last tests of {st.record.version if st.record else '?'} did not pass: "
            f"{tests['summary']} (rerun with `dbx-promote test --env {env.name}`)",
        )


def check_permissions(env: Environment, st: Status, now: datetime | None) -> Iterable[Finding]:
    """Root's ACL is not the configured list, or someone granted on a managed object."""
    perms = st.permissions
    if perms is None or not perms.known:
        return
    if perms.root_differs:
        n = len(perms.grant), len(perms.revoke), len(perms.change)
        yield Finding(
            env.name,
            "permissions",
            f"root's permissions are not as configured ({n[0]} missing, {n[1]} extra, "
            f"{n[2]} at another level); the next deploy sets them",
        )
    if perms.drift:
        where = sorted({relative_to_root(st.root, d.path) or d.path for d in perms.drift})
        yield Finding(
            env.name,
            "permissions",
            f"{len(perms.drift)} direct grant(s) made by hand on managed objects: "
            f"{_listed(where)} (the next deploy removes them)",
        )


#: Every check `status --check` runs, in order. Add new ones here.
CHECKS: tuple[Check, ...] = (
    check_readable,
    check_drift,
    check_verified,
    check_interrupted,
    check_stale_lock,
    check_tests,
    check_permissions,
)


def _notes(env: Environment, st: Status, now: datetime | None) -> list[str]:
    notes = []
    if st.error is None and st.record is None:
        notes.append(f"{env.name}: nothing deployed yet")
    if st.permissions is not None:
        notes.extend(f"{env.name}: {w}" for w in st.permissions.warnings)
    if st.lock is not None and (st.lock_state is None or not st.lock_state.stale):
        notes.append(f"{env.name}: a deploy is running: {st.lock.describe()}")
    return notes


def is_sandbox(env: Environment) -> bool:
    """A root per signed-in principal (``{user}``): nobody's shared environment."""
    return "{user}" in env.root


def checked_environments(config: Config, only: str | None) -> tuple[list[str], list[str]]:
    """(environments to check, notes about the ones skipped)."""
    if only:
        config.environment(only)
        return [only], []
    envs = config.environments
    skipped = [f"{n}: skipped ({{user}} sandbox)" for n, e in envs.items() if is_sandbox(e)]
    return [n for n, e in envs.items() if not is_sandbox(e)], skipped


def check(
    config: Config,
    statuses: Iterable[Status],
    *,
    skipped: Iterable[str] = (),
    now: datetime | None = None,
) -> CheckResult:
    """Run every check in `CHECKS` over ``statuses`` (from `operations.status`)."""
    findings: list[Finding] = []
    notes = list(skipped)
    for st in statuses:
        env = config.environments[st.env]
        for run in CHECKS:
            findings.extend(run(env, st, now))
        notes.extend(_notes(env, st, now))
    return CheckResult(tuple(findings), tuple(notes))
