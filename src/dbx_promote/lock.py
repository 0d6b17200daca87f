"""The deploy lock, `.dbx-promote/lock.json`, as a context manager.

Created with `overwrite=false`, so two deploys cannot both hold it. A create whose answer
was lost (a dropped connection) is resolved by reading the lock back: if it is ours, we
hold it. On exit the lock is deleted only if it is still ours.
"""

from __future__ import annotations

from types import TracebackType

from dbx_promote.errors import DbxPromoteError, LockHeld, ObjectExists, WorkspaceError
from dbx_promote.layout import LOCK_FILE
from dbx_promote.record import Lock
from dbx_promote.state import Folder


class DeployLock:
    """Holds ``lock`` in ``folder`` for the duration of a ``with`` block.

    Args:
        folder: the deployment folder.
        lock: our lock document.
        env_name: for messages.
        break_lock: break a lock older than ``timeout_minutes``.
        timeout_minutes: when a lock counts as stale.
    """

    def __init__(
        self,
        folder: Folder,
        lock: Lock,
        *,
        env_name: str,
        break_lock: bool,
        timeout_minutes: int,
    ) -> None:
        self.folder = folder
        self.lock = lock
        self.env_name = env_name
        self.break_lock = break_lock
        self.timeout_minutes = timeout_minutes
        self._held = False

    def __enter__(self) -> DeployLock:
        self._acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

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
                if current == self.lock:
                    self._held = True  # our own write, answered by a retry
                    return
                if attempt == 1 and self._may_break(current):
                    continue
                raise self._refusal(current) from None
            except WorkspaceError:
                # The create may have landed before the connection dropped.
                if self.folder.read_lock() == self.lock:
                    self._held = True
                    return
                raise
        raise LockHeld(f"could not take the lock of '{self.env_name}'; try again")

    def _may_break(self, current: Lock) -> bool:
        if not self.break_lock or current.age_seconds() < self.timeout_minutes * 60:
            return False
        # Delete only the lock we judged stale, not one another run just took.
        if self.folder.read_lock() == current:
            self.folder.events.warning(f"breaking a stale lock held by {current.describe()}")
            self.folder.delete_lock()
        return True

    def _refusal(self, current: Lock) -> LockHeld:
        hint = (
            f"it is younger than lock_timeout_minutes ({self.timeout_minutes})"
            if self.break_lock
            else "wait for it to finish, or if it crashed, rerun with --break-lock"
        )
        return LockHeld(f"'{self.env_name}' is locked by {current.describe()}; {hint}")

    def _release(self) -> None:
        if not self._held:
            return
        try:
            current = self.folder.read_lock()
            if current != self.lock:
                # Someone broke our lock with --break-lock and may hold their own now.
                if current is not None:
                    self.folder.events.warning(
                        f"the lock is now held by {current.describe()}; left it"
                    )
                return
            self.folder.delete_lock()
        except DbxPromoteError as exc:
            self.folder.events.warning(
                f"could not release the lock {self.folder.abs(LOCK_FILE)} ({exc}); the next "
                "deploy will report it: remove it with --break-lock once this run is over"
            )
        finally:
            self._held = False
