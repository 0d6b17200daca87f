"""The deploy lock, `.dbx-promote/lock.json`, as a context manager.

The lock names the deploy (`deploy_id`), its holder (user, host, pid, run URL) and its
intent (from → to, and the content it writes). While held, a heartbeat refreshes
`heartbeat_at` (every 30 s). It is created with `overwrite=false`, so two deploys cannot
both hold it; a create whose answer was lost is resolved by reading the lock back.

A lock is **stale** when the record already carries its `deploy_id` (the deploy committed
but could not unlock: removed automatically, with a warning), when its deploy gave up after
its restore failed and marked it so (`abandoned`: taken over automatically, with a warning,
and its intent recognised like a dead deploy's), when its holder ran on this
host and its pid is gone, or when its heartbeat is older than `lock_stale_minutes`.
"This host" means the same hostname, boot and pid namespace (`host_identity`): containers
share hostnames, and a pid of another container says nothing about its process.
`--break-lock` breaks a stale lock; `--break-lock --force` any lock.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from types import TracebackType

from dbx_promote.errors import DbxPromoteError, LockHeld, LockLost, ObjectExists, WorkspaceError
from dbx_promote.layout import LOCK_FILE
from dbx_promote.ownership import Owner
from dbx_promote.record import Lock, Record, local_identity, pipeline_context, utc_now
from dbx_promote.state import Folder

HEARTBEAT_SECONDS = 30.0
# How long the end of a deploy waits for a heartbeat still in flight (its request may be
# retrying a throttled workspace); the beat then finds the lock released and does not write.
HEARTBEAT_JOIN_SECONDS = 5.0


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (unknown counts as running)."""
    if pid <= 0 or os.name != "posix":
        return True  # os.kill would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. EPERM: it exists, it is someone else's
    return True


@functools.cache
def host_identity() -> str:
    """This machine and pid namespace: hostname, boot id and pid namespace, or "" when
    the boot id or namespace cannot be read (then no lock is judged by its pid)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{socket.gethostname()}/{boot}/{namespace}" if boot and namespace else ""


@dataclass(frozen=True)
class LockRules:
    """How to judge someone else's lock (seams for tests: host, pids, clock)."""

    stale_minutes: int = 3
    host: str = ""
    alive: Callable[[int], bool] = pid_alive
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    host_id: str = ""  # this process's `host_identity` (a seam for tests)

    def this_host(self) -> str:
        return self.host or socket.gethostname()

    def same_host(self, lock: Lock) -> bool:
        """Whether ``lock``'s pid is a pid of this machine and pid namespace."""
        here = self.host_id or host_identity()
        return bool(here) and lock.host_id == here


@dataclass(frozen=True)
class LockState:
    """A lock judged by the rules: why it is stale (None: live), or why it is live."""

    lock: Lock
    stale: str | None
    live: str = ""
    committed: bool = False  # the record carries its deploy_id: remove it automatically
    abandoned: bool = False  # its deploy gave up and left it as the intent: take it over


def judge(
    lock: Lock, record: Record | None, rules: LockRules, *, age: float | None = None
) -> LockState:
    """Apply the stale rules to ``lock`` given the folder's ``record``.

    ``age`` is how long ago the lock was last written by the workspace's own clock
    (`Folder.lock_age`); without it the holder's ``heartbeat_at`` is judged on our clock,
    which is wrong by however much the two clocks disagree.
    """
    if lock.deploy_id and record is not None and record.deploy_id == lock.deploy_id:
        return LockState(
            lock,
            f"its deploy committed {record.version} (the record carries deploy {lock.deploy_id}) "
            "but could not remove its lock",
            committed=True,
        )
    if lock.abandoned:
        return LockState(lock, f"its deploy gave up ({lock.abandoned})", abandoned=True)
    here = rules.same_host(lock)
    if here and not rules.alive(lock.pid):
        return LockState(lock, f"its process {lock.pid} on this host ({lock.host}) is gone")
    if age is None:
        age = lock.heartbeat_age_seconds(rules.now())
    limit = rules.stale_minutes * 60
    if age >= limit:
        return LockState(
            lock,
            f"its heartbeat is {_minutes(age)} old (lock_stale_minutes: {rules.stale_minutes})",
        )
    if here:
        where = f"its process {lock.pid} on this host is running"
    elif lock.host == rules.this_host():
        where = f"it runs on a host named {lock.host} (another container or boot)"
    else:
        where = f"it runs on another host ({lock.host})"
    return LockState(
        lock,
        None,
        live=f"its heartbeat is younger than lock_stale_minutes ({rules.stale_minutes}) and {where}",
    )


def _minutes(seconds: float) -> str:
    if seconds == float("inf"):
        return "unknown"
    return f"{int(seconds // 60)} min" if seconds >= 60 else f"{int(seconds)} s"


def remove_stale(
    folder: Folder,
    current: Lock,
    record: Record | None,
    rules: LockRules,
    *,
    break_lock: bool,
    force: bool = False,
    age: float | None = None,
) -> LockState | None:
    """Remove ``current`` if the rules allow it; returns how it was judged, or None.

    A committed deploy's lock goes without asking (with a warning), as does one its deploy
    gave up; a stale one with ``break_lock``; a live one only with ``force`` as well.
    ``age``: the lock's age by the workspace's clock (`Folder.lock_age`), if known.
    """
    state = judge(current, record, rules, age=age)
    if state.committed:
        folder.events.warning(f"removed the lock of {current.describe()}: {state.stale}")
    elif state.abandoned:
        folder.events.warning(
            f"taking over the lock of {current.describe()}: {state.stale}; converging from "
            "what it left"
        )
    elif break_lock and (state.stale is not None or force):
        why = state.stale or f"--force ({state.live})"
        folder.events.warning(f"breaking the lock of {current.describe()}: {why}")
    else:
        return None
    # Delete only the lock we judged, not one another run just took.
    if folder.read_lock() == current:
        folder.delete_lock()
    return state


def new_lock(
    deploy_id: str,
    holder: str,
    started_at: str,
    *,
    version: str,
    digest: str,
    intent: dict[str, str],
    jupyter: list[str],
    new_dirs: list[str],
    previous: Record | None,
    owner: Owner | None = None,
) -> Lock:
    """Our lock document: who we are, whose folder it becomes (``owner``: project and
    env) and what we are about to write."""
    user, host = local_identity()
    return Lock(
        holder=holder or user,
        started_at=started_at,
        host=host,
        pid=os.getpid(),
        version=version,
        digest=digest,
        run_url=(pipeline_context() or {}).get("run_url"),
        deploy_id=deploy_id,
        user=user,
        heartbeat_at=started_at,
        from_version=previous.version if previous else None,
        from_digest=previous.digest if previous else None,
        intent=intent,
        jupyter=jupyter,
        new_dirs=new_dirs,
        host_id=host_identity(),
        project=owner.project if owner else "",
        env=owner.env if owner else "",
    )


class DeployLock:
    """Holds ``lock`` in ``folder`` for the duration of a ``with`` block.

    Args:
        folder: the deployment folder.
        lock: our lock document.
        env_name: for messages.
        record: the folder's record as last read (for the committed-deploy rule).
        break_lock: break a stale lock; with ``force`` any lock.
        rules: the stale rules.
        heartbeat_seconds: how often to refresh ``heartbeat_at`` while held.
        heartbeat_join_seconds: how long the release waits for a heartbeat in flight.
        on_left_behind: called when our lock could not be removed at the end.
    """

    def __init__(
        self,
        folder: Folder,
        lock: Lock,
        *,
        env_name: str,
        record: Record | None = None,
        break_lock: bool = False,
        force: bool = False,
        rules: LockRules | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        heartbeat_join_seconds: float = HEARTBEAT_JOIN_SECONDS,
        on_left_behind: Callable[[Lock], str | None] | None = None,
    ) -> None:
        self.folder = folder
        self.lock = lock
        self.env_name = env_name
        self.record = record
        self.break_lock = break_lock
        self.force = force
        self.rules = rules or LockRules()
        self.heartbeat_seconds = heartbeat_seconds
        self.heartbeat_join_seconds = heartbeat_join_seconds
        self.on_left_behind = on_left_behind
        #: The lock of a dead deploy this one broke: its intent tells what it wrote.
        self.broken: Lock | None = None
        #: Why we may no longer hold the lock (the heartbeat found it taken over, or could
        #: not refresh it for lock_stale_minutes); None while it is surely ours.
        self.lost: str | None = None
        self._held = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._writing = threading.Lock()  # the heartbeat and `amend` rewrite the document
        self._read_back: Future[Lock | None] | None = None

    def __enter__(self) -> DeployLock:
        self._acquire()
        self._beat = threading.Thread(
            target=self._heartbeat, name="dbx-promote-heartbeat", daemon=True
        )
        self._beat.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(self.heartbeat_join_seconds)
        self._release()

    def is_ours(self, other: Lock | None) -> bool:
        if other is None:
            return False
        if self.lock.deploy_id:
            return other.deploy_id == self.lock.deploy_id
        return other == self.lock

    # --- taking it ---------------------------------------------------------------------

    def _acquire(self) -> None:
        for attempt in (1, 2):
            try:
                self.folder.create_lock(self.lock)
                self._held = True
                return
            except ObjectExists:
                current = self.folder.read_lock()
                if current is None:
                    continue  # released between our two calls: try again
                if self.is_ours(current):
                    self._held = True  # our own write, answered by a retry
                    return
                age = self.folder.lock_age()
                if attempt == 1 and self._may_break(current, age):
                    continue
                raise self._refusal(current, age) from None
            except WorkspaceError:
                # The create may have landed before the connection dropped.
                if self.is_ours(self.folder.read_lock()):
                    self._held = True
                    return
                raise
        raise LockHeld(f"could not take the lock of '{self.env_name}'; try again")

    def _may_break(self, current: Lock, age: float | None) -> bool:
        state = remove_stale(
            self.folder,
            current,
            self.record,
            self.rules,
            break_lock=self.break_lock,
            force=self.force,
            age=age,
        )
        if state is None:
            return False
        if not state.committed:
            self.broken = current
        return True

    def _refusal(self, current: Lock, age: float | None) -> LockHeld:
        state = judge(current, self.record, self.rules, age=age)
        held = f"'{self.env_name}' is locked by {current.describe()}"
        if state.stale is not None and not self.break_lock:
            hint = (
                f"the lock is stale ({state.stale}); if that deploy is over, rerun with "
                "--break-lock"
            )
        elif self.break_lock:
            hint = (
                f"not broken: {state.live}; wait for it, or use --break-lock --force if you "
                "know it is dead"
            )
        else:
            hint = f"{state.live}; wait for it to finish, or if it crashed, rerun with --break-lock"
        return LockHeld(f"{held}; {hint}")

    # --- while held ------------------------------------------------------------------

    def _heartbeat(self) -> None:
        refreshed = self.rules.now()
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                current = self.folder.read_lock()
                if not self.is_ours(current):
                    self._lose(
                        "our lock was broken by another run"
                        + (f" ({current.describe()})" if current else "")
                    )
                    return
                with self._writing:
                    if self._stop.is_set():
                        return  # released meanwhile: a write now would bring the lock back
                    beat = replace(self.lock, heartbeat_at=utc_now())
                    self.folder.write_lock(beat)
                    self.lock = beat
                refreshed = self.rules.now()
            except DbxPromoteError as exc:
                self.folder.events.warning(f"could not refresh the lock's heartbeat: {exc}")
                failing = (self.rules.now() - refreshed).total_seconds()
                if failing >= self.rules.stale_minutes * 60:
                    # Others now judge our lock stale and may break it: we cannot know.
                    self._lose(
                        f"its heartbeat could not be refreshed for {_minutes(failing)} "
                        f"(lock_stale_minutes: {self.rules.stale_minutes})"
                    )
                    return

    def _lose(self, why: str) -> None:
        self.lost = why
        self.folder.events.warning(
            f"{why}; stopped refreshing the lock, this deploy will not commit"
        )

    def ensure_held(self) -> None:
        """Raise `LockLost` when the heartbeat found that we may no longer hold the lock:
        called before the commit, which only the holder may write."""
        if self.lost is not None:
            raise LockLost(f"lost the lock of '{self.env_name}': {self.lost}")

    def abandon(self, why: str) -> str:
        """Give up: leave our lock in place as the intent of what we wrote, marked with
        ``why`` so `status` and the next deploy know at once (the next deploy takes it
        over). Returns "marked"; "unmarked" when the mark could not be written (the lock
        still stays, and turns stale like a dead deploy's); "theirs" when another run
        has taken the lock over meanwhile (it is left alone)."""
        self._held = False  # whatever happens, the release must not delete it
        self._stop.set()
        if self._beat is not None:
            self._beat.join(self.heartbeat_join_seconds)
        try:
            with self._writing:
                if not self.is_ours(self.folder.read_lock()):
                    return "theirs"
                given_up = replace(self.lock, abandoned=why, heartbeat_at=utc_now())
                self.folder.write_lock(given_up)
                self.lock = given_up
        except DbxPromoteError as exc:
            self.folder.events.warning(f"could not mark the lock as given up: {exc}")
            return "unmarked"
        return "marked"

    def amend(self, new_dirs: list[str]) -> None:
        """Rewrite our lock with the folders the plan creates, before any write.

        A lock taken before the plan was complete (deploy.py) names them this way, so a
        deploy that dies later still tells the next one which folders it created."""
        with self._writing:
            amended = replace(self.lock, new_dirs=new_dirs)
            self.folder.write_lock(amended)
            self.lock = amended

    # --- letting go ------------------------------------------------------------------

    def read_back_now(self) -> None:
        """Start reading the lock back for the release, beside the writes still to come
        (the history): the release then only deletes it, one round trip later."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbx-promote-lock")
        self._read_back = pool.submit(self.folder.read_lock)
        pool.shutdown(wait=False)

    def _release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            early, self._read_back = self._read_back, None
            current = early.result() if early is not None else self.folder.read_lock()
            if not self.is_ours(current):
                # Someone broke our lock with --break-lock and may hold their own now.
                if current is not None:
                    self.folder.events.warning(
                        f"the lock is now held by {current.describe()}; left it"
                    )
                return
            # Not while a heartbeat writes: it would bring the deleted lock back.
            with self._writing:
                self.folder.delete_lock()
        except DbxPromoteError as exc:
            left = self.on_left_behind(self.lock) if self.on_left_behind else None
            self.folder.events.warning(
                f"could not release the lock {self.folder.abs(LOCK_FILE)} ({exc}); "
                + (left or "remove it with --break-lock once this run is over")
            )
