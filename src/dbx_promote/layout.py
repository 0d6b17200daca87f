"""Where things live in a deployed folder, and which paths under its root are ours.

```
<root>/...notebooks...                the artifact's objects (and unmanaged ones we never touch)
<root>/_environment                   generated per environment, not in the artifact
<root>/.dbx-promote/deployment.json   the record (what runs here)
<root>/.dbx-promote/history.json      past deployments, newest first
<root>/.dbx-promote/lock.json         present while a deploy runs (or after one died: its intent)
<root>/.dbx-promote/releases/         the last `keep_releases` artifacts
<root>/.dbx-promote/backups/<ts>/     what a deploy overwrote that it could not vouch for
```

Every rule about these paths lives here; nothing else spells them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dbx_promote.config import join_workspace, normalize_workspace_path, relative_to_root
from dbx_promote.remote import RemoteObject

STATE_DIR = ".dbx-promote"
RECORD_FILE = f"{STATE_DIR}/deployment.json"
HISTORY_FILE = f"{STATE_DIR}/history.json"
LOCK_FILE = f"{STATE_DIR}/lock.json"
RELEASES_DIR = f"{STATE_DIR}/releases"
BACKUPS_DIR = f"{STATE_DIR}/backups"
ENVIRONMENT_NOTEBOOK = "_environment"

#: Names at the root that dbx-promote writes itself: an artifact may not use them.
RESERVED_NAMES = (ENVIRONMENT_NOTEBOOK, STATE_DIR)


def is_state_path(rel: str) -> bool:
    """Whether ``rel`` (relative to root) is our state folder or inside it."""
    return rel == STATE_DIR or rel.startswith(STATE_DIR + "/")


def reserved_name_problem(rel: str) -> str | None:
    """Why an artifact object may not live at ``rel``, or None when it may."""
    if rel == ENVIRONMENT_NOTEBOOK or is_state_path(rel):
        return (
            f"artifact object '{rel}' uses a name dbx-promote reserves "
            f"({ENVIRONMENT_NOTEBOOK}, {STATE_DIR}/); rename it in the source"
        )
    return None


def tree_problem(paths: Iterable[str]) -> str | None:
    """Why objects at these relative ``paths`` cannot all live in one folder, or None.

    Checked when a manifest is read (so `verify` says it too), not only by the deploy:
    a reserved name, or an object at a path that another object needs as its folder
    (``a`` and ``a/b``), which the deploy would only find half-way through, restoring.
    """
    paths = list(paths)
    folders = {p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)}
    for rel in paths:
        problem = reserved_name_problem(rel)
        if problem:
            return problem
        if rel in folders:
            return f"object '{rel}' is also the folder of another object ('{rel}/...')"
    return None


@dataclass(frozen=True)
class FolderContent:
    """What a listing shows under root, outside our state folder, by relative path."""

    objects: dict[str, RemoteObject]
    dirs: frozenset[str]


@dataclass(frozen=True)
class Layout:
    """The paths of one deployment folder."""

    root: str

    def abs(self, rel: str) -> str:
        """The workspace path of ``rel``; raises ValueError if ``rel`` leaves the root."""
        return join_workspace(self.root, rel)

    def relative(self, path: str) -> str | None:
        """``path`` relative to root ('' for root itself), None when outside it."""
        return relative_to_root(self.root, path)

    def content(self, listing: Iterable[RemoteObject]) -> FolderContent:
        """The listing's objects and folders, our state folder left out."""
        objects: dict[str, RemoteObject] = {}
        dirs: set[str] = set()
        root = normalize_workspace_path(self.root)
        for obj in listing:
            rel = relative_to_root(root, obj.path)
            if not rel or is_state_path(rel):
                continue
            if obj.is_dir:
                dirs.add(rel)
            else:
                objects[rel] = obj
        return FolderContent(objects, frozenset(dirs))

    def has_state_dir(self, listing: Iterable[RemoteObject]) -> bool:
        """Whether the listing shows our state folder."""
        return any(o.is_dir and self.relative(o.path) == STATE_DIR for o in listing)

    def backup_dir(self, stamp: str) -> str:
        """The backups folder of one deploy (relative to root)."""
        return f"{BACKUPS_DIR}/{stamp}"
