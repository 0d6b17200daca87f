"""One deployment folder through one workspace adapter: its paths and its state documents.

`Folder` is the only reader and writer of `deployment.json`, `history.json` and
`lock.json`; everything else asks it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dbx_promote.errors import RecordCorrupt
from dbx_promote.events import Events
from dbx_promote.layout import HISTORY_FILE, LOCK_FILE, RECORD_FILE, STATE_DIR, Layout
from dbx_promote.ports import WorkspaceApi
from dbx_promote.record import HistoryEntry, Lock, Record, history_from_json, history_to_json
from dbx_promote.remote import RemoteObject


@dataclass(frozen=True)
class Folder:
    """A deployment folder: the workspace adapter, the layout, and where events go."""

    ws: WorkspaceApi
    layout: Layout
    events: Events

    @property
    def root(self) -> str:
        return self.layout.root

    def abs(self, rel: str) -> str:
        return self.layout.abs(rel)

    def with_workspace(self, ws: WorkspaceApi) -> Folder:
        return replace(self, ws=ws)

    @property
    def workers(self) -> int:
        """How many requests to keep in flight at most."""
        return self.ws.throttle.max_limit

    def listing(self) -> list[RemoteObject]:
        """Everything under root, our state folder reported but not descended into."""
        return self.ws.list_tree(self.root)

    # --- the record ------------------------------------------------------------------

    def read_record(self) -> Record | None:
        """The folder's deployment record, or None for a folder never deployed to."""
        raw = self.ws.read_optional(self.abs(RECORD_FILE))
        if raw is None:
            return None
        return Record.from_json(raw, where=self.abs(RECORD_FILE))

    def write_record(self, record: Record) -> None:
        self.ws.import_file(self.abs(RECORD_FILE), record.to_json())

    # --- the history -----------------------------------------------------------------

    def read_history(self) -> list[HistoryEntry]:
        raw = self.ws.read_optional(self.abs(HISTORY_FILE))
        if raw is None:
            return []
        return history_from_json(raw, where=self.abs(HISTORY_FILE))

    def read_history_or_new(self) -> list[HistoryEntry]:
        """The history, or an empty one (with a warning) when it is unreadable."""
        try:
            return self.read_history()
        except RecordCorrupt as exc:
            self.events.warning(f"{exc}; starting a new history")
            return []

    def write_history(self, entries: list[HistoryEntry]) -> None:
        self.ws.import_file(self.abs(HISTORY_FILE), history_to_json(entries))

    # --- the lock --------------------------------------------------------------------

    def read_lock(self) -> Lock | None:
        """The lock document; an unreadable one is reported as held by 'unknown'."""
        raw = self.ws.read_optional(self.abs(LOCK_FILE))
        if raw is None:
            return None
        try:
            return Lock.from_json(raw, where=self.abs(LOCK_FILE))
        except RecordCorrupt:
            return Lock("unknown (unreadable lock file)", "1970-01-01T00:00:00Z", "?", 0, "?", "?")

    def create_lock(self, lock: Lock) -> None:
        """Create the lock only if there is none (`ObjectExists` otherwise)."""
        self.ws.create_file_exclusive(self.abs(LOCK_FILE), lock.to_json())

    def lock_age(self) -> float | None:
        """Seconds since the lock was last written (its heartbeat), by the workspace's own
        clock; None when unknown (then its ``heartbeat_at`` is judged on our clock)."""
        return self.ws.age_of(self.abs(LOCK_FILE))

    def write_lock(self, lock: Lock) -> None:
        """Overwrite our own lock (the heartbeat)."""
        self.ws.import_file(self.abs(LOCK_FILE), lock.to_json())

    def delete_lock(self) -> None:
        self.ws.delete(self.abs(LOCK_FILE))

    def ensure_state_dir(self) -> None:
        self.ws.mkdirs(self.abs(STATE_DIR))
