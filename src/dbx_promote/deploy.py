"""Apply a plan to a folder: lock, release store, backups, parallel imports, deletes,
verify, record, and — if anything fails after the first write — restore.

The contract: when `deploy` returns or raises, the managed objects in the folder are
exactly the old release or exactly the new one. A later deploy converges from whatever is
really in the folder, because every plan starts from a fresh listing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dbx_promote.artifact import Artifact, ManifestObject, open_artifact
from dbx_promote.config import Environment, join_workspace, relative_to_root
from dbx_promote.errors import (
    ArtifactError,
    DbxPromoteError,
    DeployFailed,
    LockHeld,
    ObjectExists,
    RecordCorrupt,
    ReleaseNotFound,
    VerificationFailed,
    WorkspaceError,
)
from dbx_promote.plan import (
    ENVIRONMENT_NOTEBOOK,
    Change,
    DesiredObject,
    Plan,
    environment_notebook,
    make_plan,
)
from dbx_promote.record import (
    BACKUPS_DIR,
    HISTORY_FILE,
    HISTORY_LIMIT,
    LOCK_FILE,
    RECORD_FILE,
    RELEASE_PART_BYTES,
    RELEASES_DIR,
    STATE_DIR,
    HistoryEntry,
    Lock,
    ManagedObject,
    Record,
    ReleaseRef,
    history_from_json,
    history_to_json,
    local_identity,
    pipeline_context,
    utc_now,
)
from dbx_promote.remote import RemoteObject
from dbx_promote.reviewed import check_reviewed_plan
from dbx_promote.workspace import Workspace

log = logging.getLogger("dbx_promote.deploy")

A = TypeVar("A")
B = TypeVar("B")


class Events(Protocol):
    """What the engine reports while it works; the CLI renders it."""

    def phase(self, name: str) -> None: ...
    def progress(self, done: int, total: int) -> None: ...
    def warning(self, message: str) -> None: ...


class _Silent:
    def phase(self, name: str) -> None:
        log.debug("phase: %s", name)

    def progress(self, done: int, total: int) -> None:
        pass

    def warning(self, message: str) -> None:
        log.warning("%s", message)


@dataclass
class DeployOptions:
    """How to deploy (see `dbx-promote deploy --help`)."""

    dry_run: bool = False
    break_lock: bool = False
    kind: str = "deploy"  # deploy | promote | rollback
    reviewed_plan: dict[str, Any] | None = None
    skip_requires: bool = False


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "root": self.root,
            "version": self.version,
            "digest": self.digest,
            "previous_version": self.plan.previous_version,
            "previous_digest": self.plan.previous_digest,
            "dry_run": self.dry_run,
            "changes": self.plan.changes_summary(),
            "verified": self.verified,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "backups": self.backups,
            "noop": self.noop,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Target:
    """What to deploy: desired objects plus a way to read each one's bytes."""

    version: str
    digest: str
    project: str
    commit: str | None
    commit_time: str | None
    desired: tuple[DesiredObject, ...]
    read: Callable[[str], bytes]
    environment_source: str
    artifact: Artifact | None = None


def target_from_artifact(
    artifact: Artifact, env: Environment, user: str, *, environment_source: str | None = None
) -> Target:
    """The desired state for ``artifact`` in ``env`` (artifact objects + `_environment`)."""
    by_path: dict[str, ManifestObject] = {}
    for obj in artifact.manifest.objects:
        wp = obj.workspace_path
        if wp in (ENVIRONMENT_NOTEBOOK, STATE_DIR) or wp.startswith(STATE_DIR + "/"):
            raise ArtifactError(
                f"artifact object '{wp}' uses a name dbx-promote reserves "
                f"({ENVIRONMENT_NOTEBOOK}, {STATE_DIR}/); rename it in the source"
            )
        by_path[wp] = obj
    env_src = (
        environment_source
        if environment_source is not None
        else environment_notebook(env.name, env.parameters, user).decode()
    )
    env_bytes = env_src.encode()
    desired = [
        DesiredObject(o.workspace_path, o.kind, o.language, o.format, o.sha256, o.size)
        for o in by_path.values()
    ]
    desired.append(
        DesiredObject(
            ENVIRONMENT_NOTEBOOK,
            "notebook",
            "PYTHON",
            "SOURCE",
            hashlib.sha256(env_bytes).hexdigest(),
            len(env_bytes),
        )
    )
    read_lock = threading.Lock()
    handle: list[zipfile.ZipFile] = []

    def read(path: str) -> bytes:
        if path == ENVIRONMENT_NOTEBOOK:
            return env_bytes
        obj = by_path[path]
        # One zip handle shared by the import threads: reopening the archive per object
        # re-reads its central directory every time, quadratic for large releases.
        with read_lock:
            if not handle:
                handle.append(zipfile.ZipFile(artifact.path))
            data = handle[0].read(obj.entry_name)
        if hashlib.sha256(data).hexdigest() != obj.sha256:
            raise ArtifactError(
                f"{artifact.path.name}: {obj.path} changed on disk after verification"
            )
        return data

    m = artifact.manifest
    return Target(
        version=m.version,
        digest=artifact.digest,
        project=m.project,
        commit=m.commit,
        commit_time=m.commit_time,
        desired=tuple(sorted(desired, key=lambda d: d.path)),
        read=read,
        environment_source=env_src,
        artifact=artifact,
    )


class Deployer:
    """Deploys targets into one environment's folder.

    Args:
        ws: the workspace adapter.
        env: the environment settings.
        root: the resolved root folder (``{user}`` expanded).
        user: the signed-in principal, for the record and `_environment`.
        events: progress reporting (defaults to logging).
        now: a clock seam for timestamps.
        release_part_bytes: releases larger than this are stored in parts (the workspace
            refuses imports over 10 MB).
    """

    def __init__(
        self,
        ws: Workspace,
        env: Environment,
        root: str,
        user: str,
        *,
        events: Events | None = None,
        now: Callable[[], str] = utc_now,
        release_part_bytes: int = RELEASE_PART_BYTES,
    ) -> None:
        self.ws = ws
        self.release_part_bytes = release_part_bytes
        self.env = env
        self.root = root
        self.user = user
        self.events: Events = events or _Silent()
        self.now = now
        self._held_lock: Lock | None = None
        self._apply_started = False
        self._history: list[HistoryEntry] | None = None
        self._backed_up: dict[str, tuple[str, str, str | None]] = {}

    # --- paths and reads -------------------------------------------------------------

    def abs(self, rel: str) -> str:
        return join_workspace(self.root, rel)

    def read_record(self) -> Record | None:
        """The folder's deployment record, or None for a folder never deployed to."""
        raw = self.ws.read_optional(self.abs(RECORD_FILE))
        if raw is None:
            return None
        return Record.from_json(raw, where=f"{self.abs(RECORD_FILE)}")

    def read_history(self) -> list[HistoryEntry]:
        raw = self.ws.read_optional(self.abs(HISTORY_FILE))
        if raw is None:
            return []
        return history_from_json(raw, where=self.abs(HISTORY_FILE))

    def read_lock(self) -> Lock | None:
        raw = self.ws.read_optional(self.abs(LOCK_FILE))
        if raw is None:
            return None
        try:
            return Lock.from_json(raw, where=self.abs(LOCK_FILE))
        except RecordCorrupt:
            return Lock("unknown (unreadable lock file)", "1970-01-01T00:00:00Z", "?", 0, "?", "?")

    @contextmanager
    def fetch_release(self, ref: ReleaseRef) -> Iterator[Artifact]:
        """Download a stored release and verify it is the artifact the record names.

        Raises `ReleaseNotFound` when the zip is gone, `ArtifactError` when it was altered.
        """
        with tempfile.TemporaryDirectory(prefix="dbx-promote-release-") as tmp:
            path = Path(tmp) / Path(ref.file).name
            with path.open("wb") as out:
                for part in ref.files:
                    raw = self.ws.read_optional(self.abs(part))
                    if raw is None:
                        raise ReleaseNotFound(
                            f"release {ref.version} is recorded but {self.abs(part)} is gone "
                            "from the release store; deploy that artifact again from its build"
                        )
                    out.write(raw)
            artifact = open_artifact(path)
            if artifact.digest != ref.digest:
                raise ArtifactError(
                    f"stored release {ref.file} has digest {artifact.digest}, but the record "
                    f"says {ref.digest}; the release store was altered"
                )
            yield artifact

    def listing(self) -> list[RemoteObject]:
        return self.ws.list_tree(self.root)

    def plan(
        self,
        target: Target,
        *,
        record: Record | None = None,
        listing: list[RemoteObject] | None = None,
        trusted: frozenset[str] = frozenset(),
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
            trusted=trusted,
        )
        return plan, listing

    # --- the deploy ------------------------------------------------------------------

    def deploy(self, target: Target, options: DeployOptions | None = None) -> DeployResult:
        """Make the folder hold exactly ``target``.

        Raises:
            StalePlan: a reviewed plan no longer matches the live plan.
            LockHeld: another deploy holds the lock.
            DeployFailed: a step failed; the message says what was restored.
        """
        options = options or DeployOptions()
        self.events.phase("planning")
        record, listing = _together(self.read_record, self.listing)
        plan, listing = self.plan(target, record=record, listing=listing)
        result = self._result(target, plan, dry_run=options.dry_run)
        result.kind = options.kind
        self._check_reviewed(options, plan)
        if plan.conflicts:
            raise DeployFailed(
                "the folder cannot take this artifact without touching objects it does not own: "
                + "; ".join(plan.conflicts)
            )
        if options.dry_run:
            return self._finish(result)
        if plan.is_noop:
            result.noop = True
            result.verified = True
            return self._finish(result)

        self.events.phase("locking")
        has_state_dir = any(
            relative_to_root(self.root, o.path) == STATE_DIR and o.is_dir for o in listing
        )
        if not has_state_dir:
            self.ws.mkdirs(self.abs(STATE_DIR))
        self._acquire_lock(target, options)
        try:
            # Plan again from what is there now that nobody else can write: another deploy
            # or a hand edit may have landed between the first plan and the lock.
            (record, self._history), listing = _together(
                lambda: _together(self.read_record, self._safe_history), self.listing
            )
            plan, listing = self.plan(target, record=record, listing=listing)
            result.plan = plan
            self._check_reviewed(options, plan)
            touched: set[str] = set()
            self._apply_started = False
            new_release: ReleaseRef | None = None
            try:
                release = self._release_ref(target, record)
                if release not in (record.releases if record else ()):
                    new_release = release
                # The release zip uploads while the notebooks do; both must land before
                # the record names the release.
                with ThreadPoolExecutor(max_workers=1) as uploader:
                    stored = uploader.submit(self._store_release, target, record, release)
                    try:
                        result.backups = self._backup(plan, record)
                        final = self._apply(target, plan, touched)
                    finally:
                        wait([stored])
                    stored.result()
                result.verified = True
                self._write_record(target, plan, record, final, release, options)
            except (Exception, KeyboardInterrupt) as exc:
                # A release that never became current must not linger unlisted (and so
                # never pruned) in the release store.
                if new_release is not None:
                    self._discard_release(new_release)
                if not touched and not self._apply_started:
                    raise DeployFailed(
                        f"deploy of {target.version} to '{self.env.name}' failed before "
                        f"changing any notebook: {_one_line(exc)}; the folder is unchanged",
                        restored=record.version if record else None,
                    ) from exc
                restored = self._restore(target, plan, record, touched, exc)
                raise DeployFailed(
                    f"deploy of {target.version} to '{self.env.name}' failed: "
                    f"{_one_line(exc)}; {restored}",
                    restored=restored,
                ) from exc
        finally:
            self._release_lock()
        return self._finish(result)

    def _check_reviewed(self, options: DeployOptions, plan: Plan) -> None:
        if options.reviewed_plan is not None:
            check_reviewed_plan(options.reviewed_plan, plan)

    def _finish(self, result: DeployResult) -> DeployResult:
        result.requests = self.ws.requests
        result.retries = self.ws.retries
        result.throttled = self.ws.throttle.throttled
        return result

    def _result(self, target: Target, plan: Plan, *, dry_run: bool) -> DeployResult:
        return DeployResult(
            env=self.env.name,
            root=self.root,
            version=target.version,
            digest=target.digest,
            dry_run=dry_run,
            plan=plan,
            verified=None,
            requests=self.ws.requests,
        )

    # --- lock ------------------------------------------------------------------------

    def _acquire_lock(self, target: Target, options: DeployOptions) -> None:
        user, host = local_identity()
        pipeline = pipeline_context()
        lock = Lock(
            holder=self.user or user,
            started_at=self.now(),
            host=host,
            pid=os.getpid(),
            version=target.version,
            digest=target.digest,
            run_url=(pipeline or {}).get("run_url"),
        )
        path = self.abs(LOCK_FILE)
        for attempt in (1, 2):
            try:
                self.ws.create_file_exclusive(path, lock.to_json())
                self._held_lock = lock
                return
            except ObjectExists:
                current = self.read_lock()
                if current is None:
                    continue  # released between our two calls: try again
                if current == lock:
                    self._held_lock = lock  # our own write, answered by a retry
                    return
                timeout = self.env.lock_timeout_minutes * 60
                if options.break_lock and current.age_seconds() >= timeout and attempt == 1:
                    # Delete only the lock we judged stale, not one another run just took.
                    if self.read_lock() == current:
                        self.events.warning(f"breaking a stale lock held by {current.describe()}")
                        self.ws.delete(path)
                    continue
                hint = (
                    f"it is younger than lock_timeout_minutes ({self.env.lock_timeout_minutes})"
                    if options.break_lock
                    else "wait for it to finish, or if it crashed, rerun with --break-lock"
                )
                raise LockHeld(
                    f"'{self.env.name}' is locked by {current.describe()}; {hint}"
                ) from None
            except WorkspaceError:
                # The create may have landed before the connection dropped.
                current = self.read_lock()
                if current == lock:
                    self._held_lock = lock
                    return
                raise
        raise LockHeld(f"could not take the lock of '{self.env.name}'; try again")

    def _release_lock(self) -> None:
        if self._held_lock is None:
            return
        try:
            current = self.read_lock()
            if current != self._held_lock:
                # Someone broke our lock with --break-lock and may hold their own now.
                if current is not None:
                    self.events.warning(f"the lock is now held by {current.describe()}; left it")
                return
            self.ws.delete(self.abs(LOCK_FILE))
        except DbxPromoteError as exc:
            self.events.warning(
                f"could not release the lock {self.abs(LOCK_FILE)} ({exc}); the next deploy "
                "will report it: remove it with --break-lock once this run is over"
            )
        finally:
            self._held_lock = None

    # --- release store and backups ---------------------------------------------------

    def _release_ref(self, target: Target, record: Record | None) -> ReleaseRef:
        for ref in record.releases if record else ():
            if ref.digest == target.digest:
                return ref
        name = f"{target.project}-{target.version}-{target.digest.split(':')[-1][:12]}.zip"
        size = Path(target.artifact.path).stat().st_size if target.artifact else 0
        parts = max(1, -(-size // self.release_part_bytes))
        return ReleaseRef(target.version, target.digest, f"{RELEASES_DIR}/{name}", parts)

    def _store_release(self, target: Target, record: Record | None, ref: ReleaseRef) -> None:
        known = record.releases if record else ()
        if ref in known:
            return
        if target.artifact is None:
            raise DeployFailed("internal: no artifact bytes to store in the release store")
        if not known:
            self.ws.mkdirs(self.abs(RELEASES_DIR))
        with Path(target.artifact.path).open("rb") as f:
            for part in ref.files:
                self.ws.import_file(self.abs(part), f.read(self.release_part_bytes))

    def _delete_release(self, ref: ReleaseRef, why: str) -> None:
        for part in ref.files:
            try:
                self.ws.delete(self.abs(part))
            except DbxPromoteError as exc:
                self.events.warning(f"could not remove {why} release file {part}: {exc}")

    def _discard_release(self, ref: ReleaseRef) -> None:
        self._delete_release(ref, "the unused")

    def _backup(self, plan: Plan, record: Record | None) -> list[str]:
        """Export what the plan overwrites or deletes without owning it; returns the copies.

        ``self._backed_up`` maps each saved path to (copy, object type, language), so a
        restore can put those objects back as they were.
        """
        self._backed_up = {}
        todo = [c for c in plan.changes if c.backup]
        if not todo:
            return []
        self.events.phase(f"backing up {len(todo)} object(s) edited outside dbx-promote")
        stamp = self.now().replace(":", "").replace("-", "")
        base = f"{BACKUPS_DIR}/{stamp}"
        dirs = sorted({f"{base}/{c.path}".rsplit("/", 1)[0] for c in todo})
        for d in dirs:
            if not any(o.startswith(d + "/") for o in dirs):
                self.ws.mkdirs(self.abs(d))
        saved: list[str] = []

        def save(c: Change) -> None:
            current = self.ws.get_status(self.abs(c.path))
            if current is None:
                return
            dest = f"{base}/{c.path}"
            self._copy(c.path, dest, current.object_type, current.language)
            self._backed_up[c.path] = (dest, current.object_type, current.language)
            saved.append(dest)

        self._parallel(save, todo)
        return sorted(saved)

    def _copy(self, src: str, dest: str, object_type: str, language: str | None) -> None:
        content = self.ws.download(self.abs(src))
        if object_type == "NOTEBOOK":
            self.ws.import_notebook(self.abs(dest), content, language=language or "PYTHON")
        else:
            self.ws.import_file(self.abs(dest), content)

    # --- apply -----------------------------------------------------------------------

    def _apply(self, target: Target, plan: Plan, touched: set[str]) -> list[RemoteObject]:
        writes = plan.writes
        deletes = plan.deletes
        total = len(writes) + len(deletes)
        done = 0
        self.events.phase("applying")
        self.events.progress(0, total)
        self._apply_started = True

        # Objects in the way of a new folder, and objects changing type, go first.
        blocking = [c for c in deletes if c.path in set(plan.directories)]
        for c in blocking:
            touched.add(c.path)
            self.ws.delete(self.abs(c.path))
        for c in writes:
            if c.replace:
                touched.add(c.path)
                self.ws.delete(self.abs(c.path))

        if plan.mkdirs:
            self._parallel(lambda d: self.ws.mkdirs(self.abs(d)), plan.mkdirs)

        desired = {d.path: d for d in target.desired}
        progress_lock = threading.Lock()

        def write(c: Change) -> None:
            nonlocal done
            d = desired[c.path]
            content = target.read(c.path)
            touched.add(c.path)
            if d.kind == "notebook":
                self.ws.import_notebook(
                    self.abs(c.path),
                    content,
                    language=d.language or "PYTHON",
                    jupyter=d.format == "JUPYTER",
                )
            else:
                self.ws.import_file(self.abs(c.path), content)
            with progress_lock:
                done += 1
                self.events.progress(done, total)

        # The generated notebook only after every other import landed: if one fails,
        # `_environment` still matches the release the other notebooks belong to.
        self._parallel(write, [c for c in writes if c.path != ENVIRONMENT_NOTEBOOK])
        self._parallel(write, [c for c in writes if c.path == ENVIRONMENT_NOTEBOOK])

        def remove(c: Change) -> None:
            nonlocal done
            touched.add(c.path)
            self.ws.delete(self.abs(c.path))
            with progress_lock:
                done += 1
                self.events.progress(done, total)

        self._parallel(remove, [c for c in deletes if c not in blocking])
        for d in plan.rmdirs:
            try:
                self.ws.delete(self.abs(d))
            except WorkspaceError as exc:  # not empty after all: leave it, it is harmless
                self.events.warning(f"left folder {d} in place: {exc}")

        self.events.phase("verifying")
        return self._verify(plan)

    def _parallel(self, fn: Callable[[Any], None], items: Iterable[Any]) -> None:
        items = list(items)
        if not items:
            return
        workers = max(1, min(self.ws.throttle.max_limit, len(items)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dbx-promote")
        try:
            futures: list[Future[None]] = [pool.submit(fn, item) for item in items]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in finished if f.exception() is not None]
            if failed:
                exc = failed[0].exception()
                assert exc is not None
                raise exc
        finally:
            # On a failure or Ctrl-C, queued requests are dropped; those in flight finish,
            # so the restore starts from a folder nobody is still writing to.
            pool.shutdown(wait=True, cancel_futures=True)

    def _verify(self, plan: Plan) -> list[RemoteObject]:
        listing = self.listing()
        present: dict[str, RemoteObject] = {}
        for o in listing:
            rel = relative_to_root(self.root, o.path)
            if rel:
                present[rel] = o
        problems: list[str] = []
        for path, (otype, lang) in sorted(plan.end_state.items()):
            live = present.get(path)
            if live is None:
                problems.append(f"{path} is missing")
            elif live.object_type != otype:
                problems.append(f"{path} is a {live.object_type}, expected {otype}")
            elif lang and live.language and live.language != lang:
                problems.append(f"{path} is {live.language}, expected {lang}")
        for c in plan.deletes:
            if c.path in present:
                problems.append(f"{c.path} should have been deleted")
        if problems:
            shown = "; ".join(problems[:5]) + (
                f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            )
            raise VerificationFailed(f"the folder does not match the plan after apply: {shown}")
        return listing

    # --- record ----------------------------------------------------------------------

    def _write_record(
        self,
        target: Target,
        plan: Plan,
        previous: Record | None,
        listing: list[RemoteObject],
        release: ReleaseRef,
        options: DeployOptions,
        *,
        kind: str | None = None,
        outcome: str = "succeeded",
        detail: str = "",
        failed_entry: HistoryEntry | None = None,
    ) -> Record:
        present = {relative_to_root(self.root, o.path): o for o in listing}
        objects = {}
        for d in target.desired:
            o = present.get(d.path)
            objects[d.path] = ManagedObject(
                path=d.path,
                kind=d.kind,
                language=d.language,
                sha256=d.sha256,
                object_id=o.object_id if o else None,
                modified_at=o.modified_at if o else None,
            )
        releases = [release] + [
            r for r in (previous.releases if previous else ()) if r.digest != release.digest
        ]
        keep, prune = releases[: self.env.keep_releases], releases[self.env.keep_releases :]
        pipeline = pipeline_context()
        record = Record(
            project=target.project,
            env=self.env.name,
            version=target.version,
            digest=target.digest,
            commit=target.commit,
            commit_time=target.commit_time,
            deployed_at=self.now(),
            deployed_by=self.user,
            kind=kind or options.kind,
            verified=True,
            objects=objects,
            releases=tuple(keep),
            directories=plan.directories,
            pipeline=pipeline,
            skip_requires=options.skip_requires,
            environment_source=target.environment_source,
        )
        history = self._history if self._history is not None else self._safe_history()
        entries = [
            HistoryEntry(
                version=target.version,
                digest=target.digest,
                kind=record.kind,
                outcome=outcome,
                at=record.deployed_at,
                by=self.user,
                commit=target.commit,
                detail=detail,
                pipeline=pipeline,
            )
        ]
        if failed_entry:
            entries.append(failed_entry)  # the failure came first; newest first is the restore
        # The record is the commit point: once it is written the deploy has happened, and
        # what follows (history, pruning) can only warn.
        self.ws.import_file(self.abs(RECORD_FILE), record.to_json())
        new_history = [*entries, *history][:HISTORY_LIMIT]
        try:
            self.ws.import_file(self.abs(HISTORY_FILE), history_to_json(new_history))
            self._history = new_history
        except DbxPromoteError as exc:
            self.events.warning(f"deployed and recorded, but the history was not updated: {exc}")
            return record  # keep old releases: pruning waits for a deploy that records fully
        self._parallel(lambda ref: self._delete_release(ref, "an old"), prune)
        return record

    def _safe_history(self) -> list[HistoryEntry]:
        try:
            return self.read_history()
        except RecordCorrupt as exc:
            self.events.warning(f"{exc}; starting a new history")
            return []

    # --- restore ---------------------------------------------------------------------

    def _restore(
        self,
        failed: Target,
        plan: Plan,
        previous: Record | None,
        touched: set[str],
        cause: BaseException,
    ) -> str:
        """Put the folder back on ``previous``; returns a sentence saying what happened."""
        self.events.phase("restoring the previous release")
        self.events.warning(f"deploy failed ({_one_line(cause)}); restoring")
        trusted = frozenset(touched)
        # What the failed deploy backed up and then changed goes back as it was, whether
        # a hand edit of ours or someone else's object at a path the artifact wanted.
        put_back = {p: b for p, b in self._backed_up.items() if p in trusted}
        release = previous.release if previous else None
        # Everything the failed deploy sent counts as ours, so the restore deletes what it
        # created and does not take its own writes for hand edits. Their content is
        # unknown (a write may or may not have landed), so each is rewritten or deleted.
        owned = dict(previous.objects) if previous and release else {}
        for path in trusted - put_back.keys():
            known = owned.get(path) or ManagedObject(path, "file", None, sha256="")
            owned[path] = replace(known, sha256="", modified_at=None)
        dirs = tuple(sorted(set(previous.directories if previous else ()) | set(plan.new_dirs)))
        failed_entry = HistoryEntry(
            version=failed.version,
            digest=failed.digest,
            kind="deploy",
            outcome="failed",
            at=self.now(),
            by=self.user,
            commit=failed.commit,
            detail=_one_line(cause),
        )
        # The restore is the last line of defence: it waits out throttling longer than
        # the deploy did.
        patience = self.ws.retry
        self.ws.retry = replace(patience, attempts=patience.attempts * 3)
        try:
            with _signals_deferred() as signals:
                done = self._restore_to(
                    previous, release, failed, owned, dirs, trusted, failed_entry
                )
                for path, (copy, object_type, language) in sorted(put_back.items()):
                    self._copy(copy, path, object_type, language)
            if put_back:
                done += f"; put back {len(put_back)} object(s) it had overwritten"
            if signals:
                done += " (further interrupts were held off until the restore finished)"
            return done
        except (DbxPromoteError, OSError) as exc:
            return (
                f"restoring the previous release ALSO failed ({_one_line(exc)}); the folder may "
                "be mixed: run the deploy again, it converges from the folder's real state"
            )
        finally:
            self.ws.retry = patience

    def _restore_to(
        self,
        previous: Record | None,
        release: ReleaseRef | None,
        failed: Target,
        owned: dict[str, ManagedObject],
        dirs: tuple[str, ...],
        trusted: frozenset[str],
        failed_entry: HistoryEntry,
    ) -> str:
        if previous is None or release is None:
            empty = Target("none", "none", failed.project, None, None, (), lambda p: b"", "")
            assumed = _assumed_record(previous, failed, owned, dirs)
            restore_plan, _ = self.plan(empty, record=assumed, trusted=trusted)
            # Nothing to go back to: remove what this deploy created, keep the rest.
            self._apply(empty, replace(restore_plan, end_state={}), set())
            self._try_write_history(failed_entry)
            if previous is None:
                return "removed what it had created (there was no previous release)"
            return (
                "removed what it had created; the previous release is not in the release "
                "store, so objects it updated keep their new content"
            )
        with self.fetch_release(release) as artifact:
            old = target_from_artifact(
                artifact,
                self.env,
                self.user,
                environment_source=previous.environment_source,
            )
            assumed = replace(previous, objects=owned, directories=dirs)
            restore_plan, _ = self.plan(old, record=assumed, trusted=trusted)
            final = self._apply(old, restore_plan, set())
            self._write_record(
                old,
                restore_plan,
                previous,
                final,
                release,
                DeployOptions(kind="restore"),
                kind="restore",
                outcome="succeeded",
                detail=f"restored after the failed deploy of {failed.version}",
                failed_entry=failed_entry,
            )
        return f"restored the previous release {previous.version}"

    def _try_write_history(self, entry: HistoryEntry) -> None:
        try:
            history = self._safe_history()
            self.ws.import_file(self.abs(HISTORY_FILE), history_to_json([entry, *history]))
        except DbxPromoteError as exc:
            self.events.warning(f"could not write history: {exc}")


def _assumed_record(
    previous: Record | None, failed: Target, owned: dict[str, ManagedObject], dirs: tuple[str, ...]
) -> Record:
    base = previous or Record(
        project=failed.project,
        env="",
        version="none",
        digest="none",
        commit=None,
        deployed_at=datetime.now(timezone.utc).isoformat(),
        deployed_by="",
        kind="deploy",
        verified=False,
        objects={},
    )
    return replace(base, objects=owned, directories=dirs)


@contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Hold off SIGINT/SIGTERM while a restore runs (main thread only).

    A cancelled pipeline sends SIGTERM soon after SIGINT; a second signal must not stop
    the restore that the first one started, or the folder is left mixed.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _together(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Run two independent reads at once: one round trip instead of two."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(second)
        a = first()
        return a, later.result()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C, or the pipeline run was cancelled)"
    return " ".join(str(exc).split()) or type(exc).__name__


__all__ = [
    "DeployOptions",
    "DeployResult",
    "Deployer",
    "Events",
    "Target",
    "target_from_artifact",
]
