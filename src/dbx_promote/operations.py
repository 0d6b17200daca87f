"""The commands as a Python API: deploy, promote, rollback, status, history.

Each function takes the validated config, connects through one seam (``connect``), and
returns data; the CLI renders it. Nothing here prints or exits.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dbx_promote.artifact import (
    Artifact,
    BuildOptions,
    build_artifact,
    compute_version,
)
from dbx_promote.config import Config, Environment
from dbx_promote.connection import connect
from dbx_promote.deploy import Deployer, DeployOptions, DeployResult, Events, target_from_artifact
from dbx_promote.envtests import PollPolicy, plan_suite, run_suite
from dbx_promote.errors import (
    BadInput,
    BuildError,
    DbxPromoteError,
    LockHeld,
    RecordCorrupt,
    ReleaseNotFound,
    RequiresNotMet,
)
from dbx_promote.lock import LockState, judge
from dbx_promote.ownership import Owner, check_owner
from dbx_promote.parallel import together
from dbx_promote.permissions import PermissionsPlan
from dbx_promote.permissions_step import permissions_status, steps_for
from dbx_promote.plan import is_drift
from dbx_promote.record import HistoryEntry, Lock, Record, ReleaseRef
from dbx_promote.recovery import recognise
from dbx_promote.testgate import (
    TestOptions,
    after_deploy,
    check_globs,
    record_outcome,
    recorded_outcome,
    require_passed,
)
from dbx_promote.testresults import SuiteEvents, SuiteResult
from dbx_promote.workspace import Workspace

Connect = Callable[[Environment], Workspace]


def open_environment(
    config: Config, name: str, *, connect: Connect = connect, events: Events | None = None
) -> Deployer[Workspace]:
    """Connect to environment ``name`` and resolve its root for the signed-in user.

    When neither the root nor the parameters name ``{user}``, SCIM `Me` runs in the
    background: only the lock and the record need the user, and the folder's first reads
    go at the same time.
    """
    env = config.environment(name)
    ws = connect(env)
    if needs_user(env):
        user = ws.current_user()
        root = env.resolved_root(user)
        steps = steps_for(ws, root, env.permissions)
        return Deployer(ws, env, root, user, events=events, steps=steps)
    lookup: Future[str] = Future()

    def look_up() -> None:
        try:
            lookup.set_result(ws.current_user())
        except BaseException as exc:  # handed to whoever asks for the user
            lookup.set_exception(exc)

    threading.Thread(target=look_up, name="dbx-promote-me", daemon=True).start()
    root = env.resolved_root("")
    steps = steps_for(ws, root, env.permissions)
    return Deployer(ws, env, root, lookup, events=events, steps=steps)


def needs_user(env: Environment) -> bool:
    """Whether the root or the parameters (so `_environment`) depend on the user."""
    return "{user}" in env.root or "{user}" in json.dumps(env.parameters, default=str)


def planning_user(deployer: Deployer[Any]) -> str:
    """The user as `_environment` needs it: not waited for when it does not appear there."""
    return deployer.user if needs_user(deployer.env) else ""


@contextmanager
def working_tree_artifact(config: Config, version: str | None = None) -> Iterator[Artifact]:
    """Build the working tree into a temporary artifact (deploy without ARTIFACT)."""
    if version is None:
        try:
            compute_version(config.base_dir, None, False)
        except BuildError:
            # Outside git (or a shallow clone): still usable for a sandbox or a dry run.
            version = "0.0.0+worktree"
    with tempfile.TemporaryDirectory(prefix="dbx-promote-build-") as tmp:
        options = BuildOptions.from_config(config, version=version)
        yield build_artifact(options, Path(tmp), repo_dir=config.base_dir)


def check_requires(
    config: Config, env: Environment, digest: str, *, connect: Connect = connect
) -> Record:
    """The required environment's record, if it holds ``digest`` verified.

    Raises `RequiresNotMet` (exit 1) naming both digests otherwise.
    """
    assert env.requires
    source = open_environment(config, env.requires, connect=connect)
    record = source.read_record()
    if record is None:
        raise RequiresNotMet(
            f"'{env.name}' requires '{env.requires}', where nothing is deployed yet; "
            f"deploy {digest} to '{env.requires}' first"
        )
    if record.digest != digest:
        raise RequiresNotMet(
            f"'{env.name}' only takes what is verified in '{env.requires}': this artifact is "
            f"{digest}, '{env.requires}' runs {record.digest} ({record.version}); "
            f"use `dbx-promote promote --from {env.requires} --to {env.name}`"
        )
    if not record.verified:
        raise RequiresNotMet(
            f"{digest} is deployed in '{env.requires}' but not verified; redeploy it there first"
        )
    if config.environment(env.requires).tests is not None:
        require_passed(record, env.requires, env.name)
    return record


def deploy(
    config: Config,
    env_name: str,
    artifact: Artifact,
    options: DeployOptions,
    *,
    connect: Connect = connect,
    events: Events | None = None,
    tests: TestOptions | None = None,
) -> DeployResult:
    """Deploy ``artifact`` to ``env_name`` (checks `requires` unless skipped), then run the
    environment's tests (see `testgate.after_deploy`; ``tests`` says whether and how)."""
    env = config.environment(env_name)
    tests = tests or TestOptions()
    if tests.run and not options.dry_run:
        check_globs(env, artifact)
    if env.requires and not options.skip_requires:
        check_requires(config, env, artifact.digest, connect=connect)
    deployer = open_environment(config, env_name, connect=connect, events=events)
    target = target_from_artifact(artifact, env, planning_user(deployer))
    return after_deploy(deployer, deployer.deploy(target, options), tests)


def promote(
    config: Config,
    from_env: str,
    to_env: str,
    options: DeployOptions,
    *,
    connect: Connect = connect,
    events: Events | None = None,
    tests: TestOptions | None = None,
) -> DeployResult:
    """Deploy the artifact verified in ``from_env`` to ``to_env``: the same bytes (that
    passed ``from_env``'s tests, when it has tests and ``to_env`` requires it)."""
    if from_env == to_env:
        raise BadInput(f"promote needs two environments; --from and --to both name '{to_env}'")
    source = open_environment(config, from_env, connect=connect)
    record = source.read_record()
    if record is None:
        raise RequiresNotMet(f"nothing is deployed in '{from_env}' yet; nothing to promote")
    if not record.verified:
        raise RequiresNotMet(f"{record.version} in '{from_env}' is not verified; not promoting")
    if record.release is None:
        raise ReleaseNotFound(f"'{from_env}' has no stored release for {record.digest}")
    target_env = config.environment(to_env)
    tests = tests or TestOptions()
    gated = target_env.requires == from_env and config.environment(from_env).tests is not None
    if gated and not options.skip_requires:
        require_passed(record, from_env, to_env)
    with source.fetch_release(record.release) as artifact:
        if tests.run and not options.dry_run:
            check_globs(target_env, artifact)
        if target_env.requires and target_env.requires != from_env and not options.skip_requires:
            check_requires(config, target_env, artifact.digest, connect=connect)
        deployer = open_environment(config, to_env, connect=connect, events=events)
        target = target_from_artifact(artifact, target_env, planning_user(deployer))
        result = deployer.deploy(target, replace(options, kind="promote"))
    return after_deploy(deployer, result, tests)


def rollback(
    config: Config,
    env_name: str,
    to: str | None,
    options: DeployOptions,
    *,
    connect: Connect = connect,
    events: Events | None = None,
    tests: TestOptions | None = None,
) -> DeployResult:
    """Redeploy the previous (or the named) release from the environment's store, then
    run the environment's tests against it."""
    deployer = open_environment(config, env_name, connect=connect, events=events)
    record, lock = together(deployer.read_record, deployer.read_lock)
    if record is None or not record.releases:
        raise ReleaseNotFound(f"'{env_name}' has no stored releases to roll back to")
    if to is None and record.release is not None and is_interrupted(lock, record):
        # The folder may hold parts of the dead deploy's target: going back means going
        # to the release the record names, the one that deploy started from.
        ref = record.release
    else:
        ref = pick_release(record, to, env_name)
    with deployer.fetch_release(ref) as artifact:
        target = target_from_artifact(artifact, deployer.env, planning_user(deployer))
        result = deployer.deploy(target, replace(options, kind="rollback"))
    return after_deploy(deployer, result, tests or TestOptions())


def run_tests(
    config: Config,
    env_name: str,
    *,
    only: str | None = None,
    connect: Connect = connect,
    events: SuiteEvents | None = None,
    policy: PollPolicy | None = None,
) -> SuiteResult:
    """`dbx-promote test --env E`: E's tests against the release deployed in E, recorded in
    its record and history (a rerun that passes makes the release meet ``requires``).

    Raises `ConfigError` (no tests, a glob matching nothing), `ReleaseNotFound` (nothing
    deployed), `RequiresNotMet` (the deployed release is not verified), `LockHeld` (a
    deploy is under way) and `TestsInterrupted`; a suite that ran returns its result,
    passed or not.
    """
    env = config.environment(env_name)
    if env.tests is None:
        plan_suite(env, "/", version="", digest="", notebooks=())  # raises the ConfigError
    deployer = open_environment(config, env_name, connect=connect)
    record = deployer.read_record()
    if record is None:
        raise ReleaseNotFound(f"nothing is deployed in '{env_name}' yet; deploy a release first")
    # The outcome is written into this record: it must be this environment's folder.
    check_owner(record, deployer.root, Owner(record.project, env_name), adopt=False)
    lock = deployer.read_lock()
    if lock is not None:
        raise LockHeld(f"a deploy to '{env_name}' is under way ({lock.describe()}); test after it")
    if not record.verified:
        raise RequiresNotMet(
            f"{record.version} in '{env_name}' is not verified; redeploy it before testing"
        )
    outcome = run_suite(
        deployer.ws,
        env,
        deployer.root,
        record,
        only=only,
        events=events,
        policy=policy or PollPolicy.from_env(),
    )
    if only is None:  # a partial run proves nothing about the release as a whole
        record_outcome(deployer, outcome)
    return outcome


def is_interrupted(lock: Lock | None, record: Record | None) -> bool:
    """Whether ``lock`` is another deploy's unfinished intent (not a committed one's)."""
    if lock is None:
        return False
    return not (lock.deploy_id and record is not None and record.deploy_id == lock.deploy_id)


def pick_release(record: Record, to: str | None, env_name: str) -> ReleaseRef:
    """The release to roll back to: the one before the current, or the one named."""
    kept = ", ".join(r.version for r in record.releases)
    if to is None:
        for ref in record.releases:
            if ref.digest != record.digest:
                return ref
        raise ReleaseNotFound(
            f"'{env_name}' has no earlier release stored (kept: {kept}); nothing to roll back to"
        )
    wanted = to.removeprefix("v")
    exact = [r for r in record.releases if r.version in (to, wanted) or r.digest == to]
    if exact:
        return exact[0]
    prefix = to.removeprefix("sha256:").lower()
    if len(prefix) >= 7 and all(c in "0123456789abcdef" for c in prefix):
        matches = [r for r in record.releases if r.digest.split(":")[-1].startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ReleaseNotFound(f"digest prefix '{to}' matches several stored releases")
    raise ReleaseNotFound(
        f"release '{to}' is not in the release store of '{env_name}' (kept: {kept}; "
        "older ones are pruned by keep_releases); deploy that version's build artifact again "
        "(for a gated environment: to the environment it requires first, then promote)"
    )


@dataclass
class Status:
    """What runs in one environment, and whether the folder still matches it."""

    env: str
    root: str
    record: Record | None
    lock: Lock | None
    drifted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    error: str | None = None
    lock_state: LockState | None = None
    #: Objects an interrupted deploy wrote (recognised by content): not hand edits.
    written: list[str] = field(default_factory=list)
    #: Root's ACL and the managed objects' direct grants (None: not managed, or nothing
    #: deployed yet).
    permissions: PermissionsPlan | None = None

    @property
    def interrupted(self) -> bool:
        """A deploy died here: the folder may hold parts of two releases."""
        st = self.lock_state
        return st is not None and st.stale is not None and not st.committed

    has_tests: bool = False  # the environment has `tests:` in the config

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "env": self.env,
            "root": self.root,
            "deployed": r is not None,
            "version": r.version if r else None,
            "digest": r.digest if r else None,
            "commit": r.commit if r else None,
            "deployed_at": r.deployed_at if r else None,
            "deployed_by": r.deployed_by if r else None,
            "kind": r.kind if r else None,
            "pipeline": r.pipeline if r else None,
            "verified": r.verified if r else None,
            "skip_requires": r.skip_requires if r else None,
            "releases": [x.version for x in r.releases] if r else [],
            "lock": None
            if self.lock is None
            else {
                "holder": self.lock.holder,
                "since": self.lock.started_at,
                "host": self.lock.host,
            },
            "lock_state": self._lock_dict(),
            "interrupted": self._interrupted_dict(),
            "drift": {"edited": self.drifted, "missing": self.missing, "unmanaged": self.unmanaged},
            "tests": self.tests_summary(),
            "permissions": self.permissions.status_json() if self.permissions else None,
            "error": self.error,
        }

    def _lock_dict(self) -> dict[str, Any] | None:
        lock, st = self.lock, self.lock_state
        if lock is None:
            return None
        return {
            "pid": lock.pid,
            "deploy_id": lock.deploy_id or None,
            "heartbeat_at": lock.heartbeat_at,
            "run_url": lock.run_url,
            "from": lock.from_version,
            "to": lock.version,
            "stale": st.stale if st else None,
            "committed": bool(st and st.committed),
        }

    def _interrupted_dict(self) -> dict[str, Any] | None:
        if not self.interrupted or self.lock is None:
            return None
        lock = self.lock
        return {
            "from": lock.from_version,
            "to": lock.version,
            "since": lock.started_at,
            "holder": lock.describe(),
            "why": self.lock_state.stale if self.lock_state else None,
            # Its deploy gave up and marked it: the next deploy takes it over by itself.
            "abandoned": bool(self.lock_state and self.lock_state.abandoned),
            "written": self.written,
        }

    def tests_summary(self) -> dict[str, Any] | None:
        """The last test outcome of the release deployed here: outcome, when, what failed."""
        outcome = recorded_outcome(self.record)
        if outcome is None:
            return {"outcome": "not run"} if self.has_tests and self.record else None
        return {
            "outcome": outcome.outcome,
            "at": outcome.finished_at,
            "summary": outcome.summary(),
            "not_passed": [t.notebook for t in outcome.not_passed],
        }


def status(config: Config, env_name: str, *, connect: Connect = connect) -> Status:
    """Record, lock and live drift of one environment.

    When a deploy died here, the objects it wrote (recognised by content) are reported as
    its writes, not as hand edits.
    """
    deployer = open_environment(config, env_name, connect=connect)
    (record, lock), listing = together(
        lambda: together(deployer.read_record, deployer.read_lock), deployer.listing
    )
    st = Status(env_name, deployer.root, record, lock, has_tests=deployer.env.tests is not None)
    if lock is not None:
        age = deployer.folder.lock_age()  # the workspace's clock: no client's skew
        st.lock_state = judge(lock, record, deployer.lock_rules, age=age)
    written: frozenset[str] = frozenset()
    if st.interrupted and lock is not None and lock.intent:
        written = frozenset(recognise(deployer.folder, lock, record, listing).objects)
        st.written = sorted(written)
    present = deployer.folder.layout.content(listing).objects
    owned = record.objects if record else {}
    for path, obj in sorted(owned.items()):
        live = present.get(path)
        if live is None:
            st.missing.append(path)
        elif is_drift(obj, live) and path not in written:
            st.drifted.append(path)
    st.unmanaged = sorted(p for p in present if p not in owned and p not in written)
    desired = deployer.env.permissions
    if desired is not None and record is not None:
        st.permissions = permissions_status(deployer.ws, deployer.root, desired, record, listing)
    return st


def status_all(
    config: Config, *, connect: Connect = connect, names: Iterable[str] | None = None
) -> list[Status]:
    """`status` of every environment (or of ``names``); a failing one is reported, not fatal."""
    out = []
    for name in config.environments if names is None else names:
        env = config.environment(name)
        try:
            out.append(status(config, name, connect=connect))
        except DbxPromoteError as exc:
            out.append(Status(name, env.root, None, None, error=str(exc)))
    return out


@dataclass(frozen=True)
class Comparison:
    """What `status` of every environment says about them together."""

    same: bool  # more than one deployed, all on one digest
    runs: list[tuple[str, str]]  # (env, version) of each deployed environment
    newest: str | None  # where the most recent deploy went


def compare_environments(statuses: list[Status]) -> Comparison:
    """Do the deployed environments run the same artifact, and which was deployed last?"""
    deployed = [(st.env, st.record) for st in statuses if st.record is not None]
    if len(deployed) < 2:
        return Comparison(False, [], None)
    newest, _ = max(deployed, key=lambda pair: pair[1].deployed_at)
    return Comparison(
        same=len({record.digest for _, record in deployed}) == 1,
        runs=[(env, record.version) for env, record in deployed],
        newest=newest,
    )


def history(config: Config, env_name: str, *, connect: Connect = connect) -> list[HistoryEntry]:
    """Past deployments of ``env_name``, newest first."""
    deployer = open_environment(config, env_name, connect=connect)
    return deployer.read_history()


__all__ = [
    "Comparison",
    "RecordCorrupt",
    "Status",
    "TestOptions",
    "check_requires",
    "compare_environments",
    "deploy",
    "history",
    "is_interrupted",
    "open_environment",
    "pick_release",
    "promote",
    "rollback",
    "run_tests",
    "status",
    "status_all",
    "working_tree_artifact",
]
