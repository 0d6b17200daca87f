"""Backups: what a deploy overwrites or deletes without owning it is exported first.

`take_backups` returns an immutable `BackupSet`; if the deploy fails, the set puts back
the objects the deploy went on to change, exactly as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dbx_promote.errors import DbxPromoteError
from dbx_promote.layout import BACKUPS_DIR
from dbx_promote.parallel import run_parallel
from dbx_promote.plan import Change, Plan
from dbx_promote.state import Folder


@dataclass(frozen=True)
class BackupCopy:
    """Where one object was saved, and what it was (to import it back as it was)."""

    copy: str  # relative to root
    object_type: str
    language: str | None


@dataclass(frozen=True)
class BackupSet:
    """The copies one deploy took, by the path they were taken from."""

    copies: Mapping[str, BackupCopy] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def paths(self) -> list[str]:
        """The copies' paths (relative to root), sorted."""
        return sorted(c.copy for c in self.copies.values())

    def put_back(self, folder: Folder, changed: Iterable[str]) -> int:
        """Import the saved copy of every path in ``changed`` over it; returns how many."""
        todo = sorted(p for p in set(changed) if p in self.copies)
        for path in todo:
            c = self.copies[path]
            copy_object(folder, c.copy, path, c.object_type, c.language)
        return len(todo)


def take_backups(folder: Folder, plan: Plan, stamp: str) -> BackupSet:
    """Export every object the plan marks ``backup`` to `backups/<stamp>/`."""
    todo = [c for c in plan.changes if c.backup]
    if not todo:
        return BackupSet()
    folder.events.phase(f"backing up {len(todo)} object(s) edited outside dbx-promote")
    base = folder.layout.backup_dir(stamp)
    dirs = sorted({f"{base}/{c.path}".rsplit("/", 1)[0] for c in todo})
    for d in dirs:
        if not any(o.startswith(d + "/") for o in dirs):
            folder.ws.mkdirs(folder.abs(d))

    def save(c: Change) -> tuple[str, BackupCopy] | None:
        current = folder.ws.get_status(folder.abs(c.path))
        if current is None:
            return None
        dest = f"{base}/{c.path}"
        copy_object(folder, c.path, dest, current.object_type, current.language)
        return c.path, BackupCopy(dest, current.object_type, current.language)

    saved = [s for s in run_parallel(save, todo, folder.workers) if s is not None]
    return BackupSet(MappingProxyType(dict(saved)))


def prune_backups(folder: Folder, keep: int, current: str) -> None:
    """Keep the backups of the last ``keep`` deploys that made any (at least one), and
    always the ``current`` run's stamp; a failure only warns."""
    try:
        found = folder.ws.list_dir(folder.abs(BACKUPS_DIR)) or []
        mine = folder.abs(folder.layout.backup_dir(current))
        # Folder names are UTC timestamps of the deploys' clocks: a skewed clock can sort
        # this run's stamp below older ones, so it is kept apart and counted first.
        stamps = sorted(
            (o for o in found if o.is_dir and o.path != mine), key=lambda o: o.path, reverse=True
        )
        for old in stamps[max(1, keep) - 1 :]:
            folder.ws.delete(old.path, recursive=True)
    except DbxPromoteError as exc:
        folder.events.warning(f"could not prune old backups: {exc}")


def copy_object(
    folder: Folder, src: str, dest: str, object_type: str, language: str | None
) -> None:
    """Copy one object inside the folder (paths relative to root)."""
    content = folder.ws.download(folder.abs(src))
    if object_type == "NOTEBOOK":
        folder.ws.import_notebook(folder.abs(dest), content, language=language or "PYTHON")
    else:
        folder.ws.import_file(folder.abs(dest), content)
