"""An in-memory workspace that speaks the engine's `WorkspaceApi`: fast unit tests of the
lock, the release store, backups and restore, with no HTTP and no SDK.

The emulator (real SDK over real HTTP) stays the ground truth; this fake only keeps the
rules the engine depends on: paths, types, exclusive create, `modified_at` moving on
every write, parents created by `mkdirs`, non-empty folders refusing a plain delete.
"""

from __future__ import annotations

import fnmatch
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dbx_promote.errors import BulkImportRefused, ObjectExists, ObjectNotFound, WorkspaceError
from dbx_promote.remote import RemoteObject


@dataclass
class _Entry:
    object_type: str
    language: str | None = None
    content: bytes = b""
    object_id: int = 0
    modified_at: int = 0


@dataclass
class _Throttle:
    max_limit: int = 4
    throttled: int = 0


class Killed(BaseException):
    """The process died here (SIGKILL): nothing after it runs, not even `finally` writes."""


@dataclass
class FakeFailure:
    """Refuse matching requests: ``op`` (import, delete, mkdirs, get, list) and a glob."""

    op: str
    glob: str = "*"
    error: Callable[[str], Exception] = lambda path: WorkspaceError(f"{path}: refused")
    times: int = -1  # -1: every matching request


@dataclass
class FakeWorkspace:
    """A workspace held in a dict, counting requests like the real adapter."""

    user: str = "fake@example.com"
    tree: dict[str, _Entry] = field(default_factory=lambda: {"/": _Entry("DIRECTORY")})
    failures: list[FakeFailure] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    attempts: int = 1
    patience: float = 0.0  # the seconds a `patient` copy was given (the fake never waits)
    throttle: _Throttle = field(default_factory=_Throttle)
    kill_at: int | None = None  # the request number at which the process "dies"
    _clock: itertools.count = field(default_factory=lambda: itertools.count(1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what the engine reads of the adapter itself ---------------------------------

    @property
    def requests(self) -> int:
        return len(self.log)

    @property
    def retries(self) -> int:
        return 0

    def patient(self, seconds: float) -> FakeWorkspace:
        return replace(self, patience=seconds)  # shares tree, log, failures

    # --- the API ---------------------------------------------------------------------

    def current_user(self) -> str:
        self._request("me", "")
        return self.user

    def get_status(self, path: str) -> RemoteObject | None:
        self._request("get", path)
        entry = self.tree.get(path)
        return None if entry is None else self._remote(path, entry)

    def age_of(self, path: str) -> float | None:
        self._request("get", path)
        return None  # its modified_at is a counter, not a time: the client's clock judges

    def list_dir(self, path: str) -> list[RemoteObject] | None:
        self._request("list", path)
        if path not in self.tree:
            return None
        return [self._remote(p, e) for p, e in sorted(self.tree.items()) if _parent(p) == path]

    def list_tree(
        self, root: str, *, skip: tuple[str, ...] = (".dbx-promote",)
    ) -> list[RemoteObject]:
        if self.list_dir(root) is None:
            return []
        found = []
        for p, e in sorted(self.tree.items()):
            if not p.startswith(root + "/"):
                continue
            rel = p[len(root) + 1 :]
            if rel.split("/", 1)[0] in skip and "/" in rel:
                continue
            found.append(self._remote(p, e))
        return found

    def download(self, path: str, *, jupyter: bool = False) -> bytes:
        self._request("get", path)
        entry = self.tree.get(path)
        if entry is None or entry.object_type == "DIRECTORY":
            raise ObjectNotFound(f"{path}: not found", status=404)
        return entry.content

    def read_optional(self, path: str) -> bytes | None:
        try:
            return self.download(path)
        except ObjectNotFound:
            return None

    def mkdirs(self, path: str) -> None:
        self._request("mkdirs", path)
        for p in [*_ancestors(path), path]:
            entry = self.tree.get(p)
            if entry is not None and entry.object_type != "DIRECTORY":
                raise ObjectExists(f"{p} is not a folder", status=400)
            self.tree.setdefault(p, _Entry("DIRECTORY", object_id=self._tick()))

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        self._request("delete", path)
        if path not in self.tree:
            return False
        children = [p for p in self.tree if p.startswith(path + "/")]
        if children and not recursive:
            raise WorkspaceError(f"{path}: folder is not empty", error_code="DIRECTORY_NOT_EMPTY")
        for p in [path, *children]:
            del self.tree[p]
        return True

    def import_notebook(
        self, path: str, content: bytes, *, language: str, jupyter: bool = False
    ) -> None:
        self._write(path, _Entry("NOTEBOOK", language, content), overwrite=True)

    def import_file(self, path: str, content: bytes, *, overwrite: bool = True) -> None:
        self._write(path, _Entry("FILE", None, content), overwrite=overwrite)

    def create_file_exclusive(self, path: str, content: bytes) -> None:
        self._write(path, _Entry("FILE", None, content), overwrite=False)

    def import_directory(self, path: str, archive: bytes) -> None:
        # Like a workspace that refuses directory imports: the engine falls back per object.
        self._request("import", path)
        raise BulkImportRefused(f"{path}: directory import is not supported here", status=400)

    def statuses(self, paths: list[str]) -> dict[str, RemoteObject | None]:
        return {p: self.get_status(p) for p in paths}

    # --- test helpers ----------------------------------------------------------------

    def hand_edit(self, path: str, content: bytes) -> None:
        """Change an object as a person would (its modified_at moves)."""
        entry = self.tree[path]
        entry.content = content
        entry.modified_at = self._tick()

    def files(self, under: str) -> dict[str, bytes]:
        """{path relative to ``under``: content} of every non-folder object below it."""
        return {
            p[len(under) + 1 :]: e.content
            for p, e in self.tree.items()
            if p.startswith(under + "/") and e.object_type != "DIRECTORY"
        }

    # --- internals ---------------------------------------------------------------------

    def _write(self, path: str, entry: _Entry, *, overwrite: bool) -> None:
        self._request("import", path)
        if _parent(path) not in self.tree:
            raise ObjectNotFound(f"{_parent(path)}: parent folder does not exist", status=404)
        old = self.tree.get(path)
        if old is not None and not overwrite:
            raise ObjectExists(f"{path}: already exists", status=400)
        if old is not None and old.object_type != entry.object_type:
            raise WorkspaceError(f"{path}: cannot overwrite a {old.object_type}")
        entry.object_id = old.object_id if old else self._tick()
        entry.modified_at = self._tick()
        self.tree[path] = entry

    def _request(self, op: str, path: str) -> None:
        with self._lock:
            if self.kill_at is not None and len(self.log) + 1 >= self.kill_at:
                raise Killed(f"killed at request {len(self.log) + 1} ({op} {path})")
            self.log.append((op, path))
            for f in self.failures:
                if f.op == op and f.times != 0 and fnmatch.fnmatch(path, f.glob):
                    f.times -= 1 if f.times > 0 else 0
                    raise f.error(path)

    def _tick(self) -> int:
        return next(self._clock)

    @staticmethod
    def _remote(path: str, e: _Entry) -> RemoteObject:
        return RemoteObject(path, e.object_type, e.language, e.object_id, e.modified_at or None)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
