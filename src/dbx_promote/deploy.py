"""The deploy orchestrator: make one environment's folder hold exactly one target.

The contract: when `deploy` returns or raises, the managed objects in the folder are
exactly the old release or exactly the new one. A later deploy converges from whatever is
really in the folder, because every plan starts from a fresh listing.

One `Deployer` per folder (settings only); every `Deployer.deploy` call runs a fresh
`Run`, which holds that run's state. The steps of a run — and where to hook in:

0. preflight     every `DeployStep.preflight`: reads only, before anything else; raising
                 stops the deploy with nothing written (the permissions lockout guard).
1. plan          `Run._plan`: record and listing read at once, `make_plan` (pure, plan.py),
                 then every `DeployStep.extend_plan` — the place a plan gets extra rows
                 (`PlanRow`, e.g. permissions). Dry runs stop after step 2.
2. gate          a reviewed plan must match (reviewed.py); conflicts refuse; a no-op ends.
3. lock          `DeployLock` (lock.py), held until step 7 ends.
4. re-plan       under the lock, from a fresh listing (an edit may have landed meanwhile).
5. apply         the release uploads (releases.py) while backups are taken (backups.py)
                 and the plan is applied and verified (apply.py).
6. before commit every `DeployStep.before_commit`: after verify, still under the lock;
                 raising here restores like any failure (permissions apply, …).
7. commit        the record — the commit point — then history and pruning (commit.py).
8. after commit  every `DeployStep.after_commit`, once the lock is released: the deploy
                 has happened (tests in the environment, …).

A failure in steps 5 to 7 after the first write restores the previous release (restore.py) and
raises `DeployFailed` saying what was restored; every `DeployStep.on_failure` first undoes
that step's own writes (newest step first: an ACL goes back before its notebooks).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from dbx_promote.apply import Applied, ApplyFailed, BulkOutcome, apply_plan
from dbx_promote.artifact import Artifact
from dbx_promote.backups import BackupSet, prune_backups, take_backups
from dbx_promote.bulk import BulkPlan, plan_bulk
from dbx_promote.commit import Commit
from dbx_promote.config import Environment
from dbx_promote.errors import DbxPromoteError, DeployFailed, DeployInterrupted, LockLost
from dbx_promote.events import Events, Silent, one_line
from dbx_promote.known import patched, touched_paths, unchanged_since
from dbx_promote.layout import Layout
from dbx_promote.lock import HEARTBEAT_SECONDS, DeployLock, LockRules, new_lock, remove_stale
from dbx_promote.ownership import Owner, adoption_note, check_owner, deploying_as
from dbx_promote.parallel import together
from dbx_promote.plan import Adopted, Plan, make_plan
from dbx_promote.ports import WorkspaceApi
from dbx_promote.record import (
    RELEASE_PART_BYTES,
    HistoryEntry,
    Lock,
    Record,
    ReleaseRef,
    utc_now,
)
from dbx_promote.recovery import HashCache, recognise
from dbx_promote.releases import ReleaseStore
from dbx_promote.remote import RemoteObject
from dbx_promote.restore import FailedDeploy, restore, restore_target
from dbx_promote.reviewed import check_reviewed_plan
from dbx_promote.state import Folder
from dbx_promote.target import Target, target_from_artifact
from dbx_promote.testresults import SuiteResult


@dataclass
class DeployOptions:
    """How to deploy (see `dbx-promote deploy --help`)."""

    dry_run: bool = False
    break_lock: bool = False
    kind: str = "deploy"  # deploy | promote | rollback
    reviewed_plan: dict[str, Any] | None = None
    skip_requires: bool = False
    force: bool = False  # with break_lock: break a live lock too
    reason: str = ""  # why, for the history (e.g. the failed tests behind a rollback)
    # Import new folders one object at a time even where one directory import could.
    no_bulk: bool = False
    # Take over a folder whose record names another project or environment (ownership.py).
    adopt: bool = False


@dataclass
class DeployResult:
    """The outcome of one deploy (also the `--output json` object)."""

    env: str
    root: str
    version: str
    digest: str
    dry_run: bool
    plan: Plan
    verified: bool | None
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    backups: list[str] = field(default_factory=list)
    noop: bool = False
    kind: str = "deploy"
    # Set by the environment's tests after the deploy (testgate.py).
    tests: SuiteResult | None = None
    rolled_back_to: str | None = None
    # The restored release's tests, run again after an automatic rollback.
    rollback_tests: SuiteResult | None = None
    rollback_error: str | None = None
    bulk: BulkOutcome = field(default_factory=BulkOutcome)
    adopted_from: Owner | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.identity(),
            "env": self.env,
            "root": self.root,
            "version": self.version,
            "digest": self.digest,
            "dry_run": self.dry_run,
            "changes": self.plan.changes_summary(),
            "verified": self.verified,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "backups": self.backups,
            "noop": self.noop,
            "kind": self.kind,
            "tests": self.tests.to_dict() if self.tests else None,
            "rolled_back_to": self.rolled_back_to,
            "permissions": self.plan.permissions.to_json() if self.plan.permissions else None,
            "adopted_from": self.adopted_from.to_dict() if self.adopted_from else None,
            "rollback_tests": self.rollback_tests.to_dict() if self.rollback_tests else None,
            "bulk": {
                "imports": self.bulk.imports,
                "refused": self.bulk.refused,
                "per_object": list(self.bulk.per_object),
                "repaired": list(self.bulk.repaired),
            },
        }


class DeployStep:
    """A part of a deploy beyond the notebooks; override the hooks you need.

    Steps are given to `Deployer(steps=...)` and run in order at each hook.
    """

    def preflight(self, run: Run) -> None:
        """Reads only, before the folder is read or locked; raising writes nothing."""

    def extend_plan(self, run: Run, plan: Plan) -> Plan:
        """Reads only (also in dry runs): return ``plan``, e.g. ``plan.with_rows(...)``."""
        return plan

    def before_commit(self, run: Run, plan: Plan) -> None:
        """Writes under the lock after the objects are verified; raising restores."""

    def after_commit(self, run: Run, result: DeployResult) -> None:
        """Runs once the deploy is recorded and the lock released."""

    def on_failure(self, run: Run, error: BaseException) -> str | None:
        """The deploy failed after its first write: undo this step's writes, if any.

        Must not raise; returns what it did for the failure message (None: nothing).
        """
        return None


W = TypeVar("W", bound=WorkspaceApi)


class Deployer(Generic[W]):
    """Deploys targets into one environment's folder.

    Args:
        ws: the workspace adapter.
        env: the environment settings.
        root: the resolved root folder (``{user}`` expanded).
        user: the signed-in principal, for the lock, the record and `_environment`; a
            `Future` lets the SCIM lookup run while the deploy reads the folder.
        events: progress reporting (defaults to logging).
        now: a clock seam for timestamps.
        release_part_bytes: releases larger than this are stored in parts (the workspace
            refuses imports over 10 MB).
        steps: more parts of a deploy (see `DeployStep`).
        lock_rules: how others' locks are judged (stale rules; seams for tests).
        heartbeat_seconds: how often a held lock's heartbeat is refreshed.
    """

    def __init__(
        self,
        ws: W,
        env: Environment,
        root: str,
        user: str | Future[str],
        *,
        events: Events | None = None,
        now: Callable[[], str] = utc_now,
        release_part_bytes: int = RELEASE_PART_BYTES,
        steps: Sequence[DeployStep] = (),
        lock_rules: LockRules | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.ws = ws
        self.env = env
        self.root = root
        self._user = user
        self.events: Events = events or Silent()
        self.now = now
        self.release_part_bytes = release_part_bytes
        self.steps = tuple(steps)
        self.lock_rules = lock_rules or LockRules(stale_minutes=env.lock_stale_minutes)
        self.heartbeat_seconds = heartbeat_seconds
        self.folder = Folder(ws, Layout(root), self.events)
        self.store = ReleaseStore(self.folder, release_part_bytes)

    @property
    def user(self) -> str:
        """The signed-in principal (waits for the SCIM lookup if it is still running)."""
        return self._user if isinstance(self._user, str) else self._user.result()

    @property
    def commit(self) -> Commit:
        return Commit(self.env, self.user, self.now, self.store)

    def abs(self, rel: str) -> str:
        return self.folder.abs(rel)

    def read_record(self) -> Record | None:
        """The folder's deployment record, or None for a folder never deployed to."""
        return self.folder.read_record()

    def read_history(self) -> list[HistoryEntry]:
        return self.folder.read_history()

    def read_lock(self) -> Lock | None:
        return self.folder.read_lock()

    @contextmanager
    def fetch_release(self, ref: ReleaseRef) -> Iterator[Artifact]:
        """A stored release, verified (see `ReleaseStore.fetch`)."""
        with self.store.fetch(ref) as artifact:
            yield artifact

    def listing(self) -> list[RemoteObject]:
        return self.folder.listing()

    def plan(
        self,
        target: Target,
        *,
        record: Record | None = None,
        listing: list[RemoteObject] | None = None,
        adopted: Adopted | None = None,
    ) -> tuple[Plan, list[RemoteObject]]:
        """Plan ``target`` against a fresh listing (reads only)."""
        listing = self.listing() if listing is None else listing
        plan = make_plan(
            target.desired,
            listing,
            record,
            env=self.env.name,
            root=self.root,
            version=target.version,
            digest=target.digest,
            adopted=adopted,
        )
        return plan, listing

    def deploy(self, target: Target, options: DeployOptions | None = None) -> DeployResult:
        """Make the folder hold exactly ``target``.

        Raises:
            StalePlan: a reviewed plan no longer matches the live plan.
            LockHeld: another deploy holds the lock.
            DeployFailed: a step failed; the message says what was restored.
        """
        return Run(self, target, options or DeployOptions()).execute()

    def result(self, target: Target, plan: Plan, *, dry_run: bool, kind: str) -> DeployResult:
        return DeployResult(
            env=self.env.name,
            root=self.root,
            version=target.version,
            digest=target.digest,
            dry_run=dry_run,
            plan=plan,
            verified=None,
            requests=self.ws.requests,
            kind=kind,
        )

    def finish(self, result: DeployResult) -> DeployResult:
        result.requests = self.ws.requests
        result.retries = self.ws.retries
        result.throttled = self.ws.throttle.throttled
        return result


class Run:
    """The state of one deploy: what it read, planned, backed up and touched."""

    def __init__(self, deployer: Deployer[Any], target: Target, options: DeployOptions) -> None:
        self.deployer = deployer
        self.target = target
        self.options = options
        self.folder = deployer.folder
        self.deploy_id = uuid.uuid4().hex
        self.record: Record | None = None
        self.history: list[HistoryEntry] = []
        #: The lock of a deploy that died, and what it had written (recovery.py).
        self.dead: Lock | None = None
        self.adopted = Adopted()
        self.hashes: HashCache = {}
        self.backups = BackupSet()
        self.touched: frozenset[str] = frozenset()
        self.apply_started = False
        self.committed: Record | None = None
        self.result: DeployResult | None = None
        self.held: DeployLock | None = None
        # What the latest plan was made from (under the lock: what apply trusts).
        self.listing: list[RemoteObject] = []
        self.planned_record: Record | None = None
        self.adopting: Owner | None = None  # the owner --adopt takes the folder from
        self.owner = Owner(target.project, deployer.env.name)  # whom the record will name

    def execute(self) -> DeployResult:
        d, options = self.deployer, self.options
        d.events.phase("planning")
        for step in d.steps:
            step.preflight(self)
        with ExitStack() as held:
            record, listing, lock = self._read_state(held)
            plan = self._plan(record, listing)
            result = self.result = d.result(
                self.target, plan, dry_run=options.dry_run, kind=options.kind
            )
            self._gate(plan)
            result.adopted_from = self.adopting
            if options.dry_run:
                return d.finish(result)
            if plan.is_noop and self.adopting is None:
                if lock is not None and not self._is_ours(lock):
                    age = self.folder.lock_age()
                    remove_stale(
                        self.folder, lock, record, d.lock_rules, age=age, **self._breaking()
                    )
                result.noop = True
                result.verified = True
                return d.finish(result)
            if self.held is None:
                d.events.phase("locking")
                if not self.folder.layout.has_state_dir(listing):
                    self.folder.ensure_state_dir()
                self.held = held.enter_context(self._lock(record, plan))
            self._under_lock(result, self.held, record, listing)
        for step in d.steps:
            step.after_commit(self, result)
        return d.finish(result)

    def _read_state(self, held: ExitStack) -> tuple[Record | None, list[RemoteObject], Lock | None]:
        """Record and listing at once; the lock too when it matters (--break-lock, or
        the record says a lock was left behind). A dead deploy's writes are recognised.

        When the record names another release, this deploy writes whatever the listing
        shows (the release and the record at least), so the lock is taken while the
        folder is still being listed: one round trip less. The plan is checked again
        under the lock either way, and the lock names the new folders before any write.
        """
        folder = self.folder
        if self.options.break_lock:
            (record, listing), lock = together(
                lambda: together(folder.read_record, folder.listing), folder.read_lock
            )
            self._check_owner(record, lock)  # before a dead deploy's writes are looked at
            if lock is not None:
                self._recognise(lock, record, listing)
            return record, listing, lock
        lock = None
        with ThreadPoolExecutor(max_workers=1) as pool:
            later = pool.submit(folder.listing)
            record = folder.read_record()
            self._check_owner(record)  # before the early lock, the first write
            if record is not None and record.lock_left:
                lock = folder.read_lock()
            elif not self.options.dry_run and record and record.digest != self.target.digest:
                self.deployer.events.phase("locking")
                self.held = held.enter_context(self._lock(record, None))
            return record, later.result(), lock

    def _recognise(self, lock: Lock, record: Record | None, listing: list[RemoteObject]) -> None:
        if lock.intent and not (record and record.deploy_id == lock.deploy_id):
            self.dead = lock
            self.adopted = recognise(self.folder, lock, record, listing, self.hashes)

    def _is_ours(self, lock: Lock) -> bool:
        return lock.deploy_id == self.deploy_id

    def _breaking(self) -> dict[str, bool]:
        return {"break_lock": self.options.break_lock, "force": self.options.force}

    def _plan(self, record: Record | None, listing: list[RemoteObject]) -> Plan:
        self._check_owner(record, self.dead)  # every record read, under the lock too
        self.listing, self.planned_record = listing, record
        plan, _ = self.deployer.plan(
            self.target, record=record, listing=listing, adopted=self.adopted
        )
        for step in self.deployer.steps:
            plan = step.extend_plan(self, plan)
        return plan

    def _check_owner(self, record: Record | None, lock: Lock | None = None) -> None:
        d, t = self.deployer, self.target
        rollback_to = t.digest if self.options.kind == "rollback" else None
        mine = self.owner = deploying_as(record, t.project, d.env.name, rollback_to=rollback_to)
        adopting = check_owner(record, d.root, mine, adopt=self.options.adopt, lock=lock)
        if adopting is not None and adopting != self.adopting:
            d.events.warning(f"--adopt: {d.root} is {adoption_note(adopting, mine)}")
        self.adopting = adopting

    def _gate(self, plan: Plan) -> None:
        if self.options.reviewed_plan is not None:
            check_reviewed_plan(self.options.reviewed_plan, plan)
        if plan.conflicts:
            raise DeployFailed(
                "the folder cannot take this artifact without touching objects it does not "
                "own: " + "; ".join(plan.conflicts)
            )

    def _new_dirs(self, plan: Plan) -> list[str]:
        return sorted({*plan.new_dirs, *self.adopted.dirs})

    def _lock(self, record: Record | None, plan: Plan | None) -> DeployLock:
        d, t = self.deployer, self.target
        lock = new_lock(
            self.deploy_id,
            d.user,
            d.now(),
            version=t.version,
            digest=t.digest,
            intent=t.hashes,
            jupyter=[o.path for o in t.desired if o.format == "JUPYTER"],
            new_dirs=self._new_dirs(plan) if plan is not None else [],
            previous=record,
            owner=self.owner,
        )
        return DeployLock(
            self.folder,
            lock,
            env_name=d.env.name,
            record=record,
            rules=d.lock_rules,
            heartbeat_seconds=d.heartbeat_seconds,
            on_left_behind=self._left_behind,
            **self._breaking(),
        )

    def _left_behind(self, lock: Lock) -> str | None:
        """Our lock could not be removed: say so in the record, so the next deploy (even
        a no-op) removes it."""
        if self.committed is None:
            return None
        try:
            self.folder.write_record(replace(self.committed, lock_left=lock.deploy_id))
        except DbxPromoteError:
            return "the next changing deploy removes it, or `deploy --break-lock`"
        return "the next deploy removes it by itself"

    def _under_lock(
        self,
        result: DeployResult,
        held: DeployLock,
        first_record: Record | None,
        first: list[RemoteObject],
    ) -> None:
        dead = held.broken or self.dead
        if dead is None:
            plan, self.listing = self._plan_again(result.plan, held, first_record, first)
        else:
            # Plan again from a fresh listing: what the dead deploy wrote is recognised.
            (self.record, self.history), self.listing = together(
                lambda: together(self.folder.read_record, self.folder.read_history_or_new),
                self.folder.listing,
            )
            self._recognise(dead, self.record, self.listing)
            plan = self._plan(self.record, self.listing)
        if held.lock.new_dirs != self._new_dirs(plan):
            held.amend(self._new_dirs(plan))
        result.plan = plan
        if self.options.reviewed_plan is not None:
            check_reviewed_plan(self.options.reviewed_plan, plan)
        known = self.record.releases if self.record else ()
        release = self.deployer.store.ref_for(self.target.artifact, known)
        try:
            applied = self._apply(plan, release, known)
            for step in self.deployer.steps:
                step.before_commit(self, plan)
            held.ensure_held()
            result.verified = True
            self._commit(plan, applied, release)
        except LockLost as exc:
            # Another run may hold the folder now: write nothing more, restore nothing.
            raise self._interrupted(
                f"deploy of {self.target.version} to '{self.deployer.env.name}' did not "
                f"commit: {exc}; nothing was restored, another run may hold the folder now",
                "it lost its lock",
            ) from exc
        except (Exception, KeyboardInterrupt) as exc:
            # A release that never became current must not linger unlisted (and so
            # never pruned) in the release store.
            if release not in known:
                self.deployer.store.delete(release, "the unused")
            cause = exc.cause if isinstance(exc, ApplyFailed) else exc
            undone = [n for s in reversed(self.deployer.steps) if (n := s.on_failure(self, exc))]
            raise self._failed(exc, plan, undone) from cause

    def _plan_again(
        self,
        plan: Plan,
        held: DeployLock,
        first_record: Record | None,
        first: list[RemoteObject],
    ) -> tuple[Plan, list[RemoteObject]]:
        """The plan from what is there now that nobody else can write: another deploy or a
        hand edit may have landed between the first plan and the lock.

        The record and history are read again and the paths the plan writes looked up
        (known.py), while a lock taken early learns the new folders; only when something
        moved, or the plan writes many paths, is the whole folder listed again.
        """
        folder, new_dirs = self.folder, self._new_dirs(plan)

        def reads() -> None:
            (self.record, self.history), _ = together(
                lambda: together(folder.read_record, folder.read_history_or_new),
                lambda: held.amend(new_dirs) if held.lock.new_dirs != new_dirs else None,
            )

        paths = touched_paths(plan)
        if paths is None:
            _, listing = together(reads, folder.listing)
            return self._plan(self.record, listing), listing
        _, found = together(reads, lambda: folder.ws.statuses([folder.abs(p) for p in paths]))
        now = {p: found[folder.abs(p)] for p in paths}
        same = first_record == self.record or (
            first_record is not None
            and self.record is not None
            and (first_record.digest, first_record.deployed_at)
            == (self.record.digest, self.record.deployed_at)
        )
        if same and unchanged_since(first, folder.layout, now):
            listing = patched(first, folder.layout, now)
        else:
            listing = folder.listing()
        return self._plan(self.record, listing), listing

    def _apply(self, plan: Plan, release: ReleaseRef, known: tuple[ReleaseRef, ...]) -> Applied:
        # The release zip uploads while the notebooks do; both must land before the
        # record names the release.
        with ThreadPoolExecutor(max_workers=1) as uploader:
            stored = uploader.submit(
                self.deployer.store.store, self.target.artifact, release, known
            )
            try:
                self.backups = take_backups(self.folder, plan, self._stamp)
                if self.result is not None:
                    self.result.backups = self.backups.paths
                with self.target.content() as content:
                    self.apply_started = True
                    applied = apply_plan(
                        self.folder,
                        self.target.desired,
                        content,
                        plan,
                        self._bulk_plan(plan),
                        known=self.listing,
                    )
                self.touched = applied.touched
                if self.result is not None:
                    self.result.bulk = applied.bulk
            finally:
                wait([stored])
            stored.result()
        return applied

    @functools.cached_property
    def _stamp(self) -> str:
        """This run's backup folder name (one per run: pruning never removes it)."""
        return self.deployer.now().replace(":", "").replace("-", "")

    def _bulk_plan(self, plan: Plan) -> BulkPlan | None:
        """How new folders are created in bulk; None for one import per object."""
        if self.options.no_bulk or (self.record is not None and self.record.bulk_refused):
            return None
        return plan_bulk(plan, self.target.desired)

    def _commit(self, plan: Plan, applied: Applied, release: ReleaseRef) -> None:
        commit = self.deployer.commit
        record, prune = commit.record(
            self.target,
            plan,
            self.record,
            applied.listing,
            release,
            kind=self.options.kind,
            skip_requires=self.options.skip_requires,
            bulk_refused=applied.bulk.refused,
        )
        reason, adopted = self.options.reason, self.adopting
        if adopted is not None:
            note = adoption_note(adopted, self.owner)
            reason = f"{reason}; {note}" if reason else note
        record = replace(
            record,
            project=self.owner.project,
            deploy_id=self.deploy_id,
            adopted_from=adopted.to_dict() if adopted else None,
        )
        entry = commit.entry(self.target, record.kind, "succeeded", reason, at=record.deployed_at)
        held = self.held
        commit.write(
            record,
            [entry],
            self.history,
            prune,
            after_record=held.read_back_now if held is not None else None,
        )
        self.committed = record
        if self.backups.copies:
            prune_backups(self.folder, self.deployer.env.keep_backups, self._stamp)

    def _failed(self, exc: BaseException, plan: Plan, undone: list[str]) -> DeployFailed:
        """Restore after a failure; the error that says what happened and what was done
        (``undone``: what the steps put back)."""
        cause, touched = (
            (exc.cause, exc.touched) if isinstance(exc, ApplyFailed) else (exc, self.touched)
        )
        what = f"deploy of {self.target.version} to '{self.deployer.env.name}' failed"
        also = "".join(f"; {note}" for note in undone)
        if not touched and not self.apply_started:
            return DeployFailed(
                f"{what} before changing any notebook: {one_line(cause)}; the folder is "
                f"unchanged{also}",
                restored=self.record.version if self.record else None,
            )
        failed = FailedDeploy(
            self.target,
            self.options.kind,
            cause,
            # What a dead deploy wrote is undone too: the folder goes back to the record.
            touched | frozenset(self.adopted.objects),
            tuple(sorted({*plan.new_dirs, *self.adopted.dirs})),
            self.backups,
            self.history,
        )
        restored = restore(self.folder, self.deployer.commit, failed, restore_target(self.record))
        if not restored.done:
            return self._interrupted(f"{what}: {one_line(cause)}; {restored.text}{also}")
        return DeployFailed(
            f"{what}: {one_line(cause)}; {restored.text}{also}", restored=restored.text
        )

    def _interrupted(self, failed: str, gave_up: str = "its restore failed") -> DeployInterrupted:
        """The restore gave up (or we lost the lock): our lock stays as the intent, so the
        folder is reported interrupted, as after a crash, and the next deploy converges."""
        was, to = (self.record.version if self.record else None), self.target.version
        left = self.held.abandon(f"{gave_up} at {utc_now()}") if self.held else "unmarked"
        nxt = {
            "marked": "the next deploy takes the lock over",
            "unmarked": "the next `deploy --break-lock` takes the lock over (it could not be "
            "marked as given up)",
            "theirs": "the run that holds the lock now, or the next deploy after it,",
        }[left]
        back = f" (`rollback` goes back to {was})" if was else ""
        return DeployInterrupted(
            f"{failed}. The folder is INTERRUPTED: it may hold "
            + (f"parts of {was} and {to}" if was else f"part of {to}")
            + f"; its lock stays as the intent, so `status` reports it; {nxt} recognises "
            f"what was written and converges{back}"
        )


__all__ = [
    "DeployOptions",
    "DeployResult",
    "DeployStep",
    "Deployer",
    "Events",
    "Run",
    "Target",
    "target_from_artifact",
]
