"""Pure planning: (what we want, what is there, what we recorded) -> Plan.

No I/O here. The plan is computed from one listing of the folder and the record, so it
works the same on a laptop, on a fresh CI agent, and inside `rollback`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dbx_promote.config import normalize_workspace_path
from dbx_promote.layout import ENVIRONMENT_NOTEBOOK as ENVIRONMENT_NOTEBOOK  # re-exported
from dbx_promote.layout import FolderContent, Layout
from dbx_promote.permissions import PermissionsPlan
from dbx_promote.record import ManagedObject, Record
from dbx_promote.remote import RemoteObject

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class DesiredObject:
    """An object the folder must hold after the deploy."""

    path: str  # relative to root
    kind: str  # notebook | file
    language: str | None
    format: str  # SOURCE | JUPYTER | AUTO
    sha256: str
    size: int = 0

    @property
    def object_type(self) -> str:
        return "NOTEBOOK" if self.kind == "notebook" else "FILE"


@dataclass(frozen=True)
class Change:
    """One line of the plan."""

    action: str
    path: str
    kind: str
    language: str | None = None
    reason: str = ""
    drift: bool = False
    # The object exists with another type or language: it must be deleted first,
    # because the workspace refuses to overwrite across types.
    replace: bool = False
    # Overwriting or deleting content we cannot vouch for (edited by hand, or never
    # recorded): export it to the backups folder first.
    backup: bool = False


@dataclass(frozen=True)
class PlanRow:
    """A line of the plan about something other than an object (a grant, a setting).

    Added by a deploy step (`DeployStep.extend_plan`); a plan with rows is not a no-op,
    and a reviewed plan covers its rows.
    """

    kind: str  # e.g. "permission"
    action: str  # e.g. grant | revoke | change
    subject: str
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    """What a deploy will do, and the facts it was computed from."""

    env: str
    root: str
    version: str
    digest: str
    previous_version: str | None
    previous_digest: str | None
    changes: tuple[Change, ...]
    unmanaged: tuple[str, ...]
    conflicts: tuple[str, ...]
    mkdirs: tuple[str, ...]  # leaves only: mkdirs creates parents
    new_dirs: tuple[str, ...]  # every folder this deploy creates
    rmdirs: tuple[str, ...]
    directories: tuple[str, ...]
    listing_fingerprint: str
    record_verified: bool = False
    end_state: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    rows: tuple[PlanRow, ...] = ()
    # What the permissions step found (None: the environment does not manage them).
    permissions: PermissionsPlan | None = None

    def with_rows(self, *rows: PlanRow) -> Plan:
        """This plan with more rows (see `PlanRow`)."""
        return replace(self, rows=(*self.rows, *rows))

    def by_action(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.action in (CREATE, UPDATE)]

    @property
    def deletes(self) -> list[Change]:
        return self.by_action(DELETE)

    @property
    def drift(self) -> list[Change]:
        return [c for c in self.changes if c.drift]

    @property
    def has_object_changes(self) -> bool:
        return any(c.action != UNCHANGED for c in self.changes) or bool(self.rmdirs or self.rows)

    @property
    def is_noop(self) -> bool:
        """Nothing to write at all: same artifact, verified, nothing drifted or missing."""
        return (
            not self.has_object_changes
            and self.previous_digest == self.digest
            and self.record_verified
        )

    def counts(self) -> dict[str, int]:
        return {
            CREATE: len(self.by_action(CREATE)),
            UPDATE: len(self.by_action(UPDATE)),
            DELETE: len(self.by_action(DELETE)),
            UNCHANGED: len(self.by_action(UNCHANGED)),
            "drift": len(self.drift),
            "unmanaged": len(self.unmanaged),
        }

    def signature(self) -> dict[str, Any]:
        """What a reviewer approved: the artifact and every change (not timestamps)."""
        return {
            "digest": self.digest,
            "root": self.root,
            "changes": sorted(
                [c.action, c.path, c.drift, c.replace]
                for c in self.changes
                if c.action != UNCHANGED
            ),
            "rmdirs": sorted(self.rmdirs),
            **(
                {"rows": sorted([r.kind, r.action, r.subject] for r in self.rows)}
                if self.rows
                else {}
            ),
        }

    def identity(self) -> dict[str, Any]:
        """Where, and from which release to which (the head of every plan document)."""
        return {
            "env": self.env,
            "root": self.root,
            "version": self.version,
            "digest": self.digest,
            "previous_version": self.previous_version,
            "previous_digest": self.previous_digest,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.identity(),
            "listing_fingerprint": self.listing_fingerprint,
            "changes": [asdict(c) for c in self.changes],
            "unmanaged": list(self.unmanaged),
            "conflicts": list(self.conflicts),
            "mkdirs": list(self.mkdirs),
            "rmdirs": list(self.rmdirs),
            "rows": [asdict(r) for r in self.rows],
            "permissions": self.permissions.to_json() if self.permissions else None,
        }

    def changes_summary(self) -> dict[str, Any]:
        """The `changes` object of the JSON output: paths per action, counts for the rest."""
        return {
            CREATE: [c.path for c in self.by_action(CREATE)],
            UPDATE: [c.path for c in self.by_action(UPDATE)],
            DELETE: [c.path for c in self.by_action(DELETE)],
            UNCHANGED: len(self.by_action(UNCHANGED)),
            "drift": [c.path for c in self.drift],
            "unmanaged": list(self.unmanaged),
        }


def fingerprint(listing: Iterable[RemoteObject], record: Record | None) -> str:
    """A hash of exactly what the plan was computed from."""
    rows = sorted(
        (o.path, o.object_type, o.language or "", o.object_id or 0, o.modified_at or 0)
        for o in listing
    )
    payload = json.dumps(
        [rows, record.digest if record else None, record.deployed_at if record else None]
    )
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Adopted:
    """Objects and folders an interrupted deploy of ours wrote (recognised by path and
    content hash, see recovery.py): planned as if the record named them."""

    objects: Mapping[str, ManagedObject] = field(default_factory=dict)
    dirs: frozenset[str] = frozenset()


def make_plan(
    desired: Iterable[DesiredObject],
    listing: Iterable[RemoteObject],
    record: Record | None,
    *,
    env: str,
    root: str,
    version: str,
    digest: str,
    adopted: Adopted | None = None,
) -> Plan:
    """Compare the desired objects with the folder and the record.

    Args:
        desired: the artifact's objects plus generated ones, paths relative to ``root``.
        listing: one recursive listing of ``root`` (our state folder not descended into).
        record: the folder's deployment record, if any.
        adopted: what an interrupted deploy wrote, owned as if recorded.
    """
    listing = list(listing)
    live = Layout(normalize_workspace_path(root)).content(listing)
    adopted = adopted or Adopted()
    recorded = {**(record.objects if record else {}), **adopted.objects}
    wanted = {d.path: d for d in desired}
    changes: list[Change] = []
    conflicts: list[str] = []
    for path in sorted(wanted):
        d = wanted[path]
        if path in live.dirs:
            conflicts.append(f"{path} is a folder in the workspace but a {d.kind} in the artifact")
            continue
        changes.append(_compare(d, live.objects.get(path), recorded.get(path)))
    changes += _removals(recorded, wanted, live)
    for folder in sorted(folders_of(wanted)):
        if folder in live.objects and folder not in recorded:
            conflicts.append(f"{folder} is an object in the workspace but a folder in the artifact")
    return assemble_plan(
        PlanHead(
            env,
            normalize_workspace_path(root),
            version,
            digest,
            record,
            fingerprint(listing, record),
        ),
        changes,
        wanted,
        live,
        candidate_rmdirs=set(record.directories if record else ()) | adopted.dirs,
        owned=recorded,
        conflicts=conflicts,
    )


def _removals(
    recorded: Mapping[str, ManagedObject],
    wanted: Mapping[str, DesiredObject],
    live: FolderContent,
) -> list[Change]:
    """Recorded objects the artifact no longer has, still in the folder: deleted."""
    out = []
    for path in sorted(set(recorded) - set(wanted)):
        r = live.objects.get(path)
        if r is None:
            continue
        rec = recorded[path]
        drift = is_drift(rec, r)
        reason = (
            "edited by hand, removed from the artifact" if drift else "removed from the artifact"
        )
        out.append(Change(DELETE, path, rec.kind, rec.language, reason, drift, backup=drift))
    return out


def is_drift(rec: ManagedObject | None, live: RemoteObject) -> bool:
    """Whether ``live`` was edited since we recorded it (its modification time moved)."""
    return rec is not None and rec.modified_at is not None and live.modified_at != rec.modified_at


def needs_replace(d: DesiredObject, live: RemoteObject) -> bool:
    """The workspace cannot overwrite across types or notebook languages: delete first."""
    return live.object_type != d.object_type or (
        d.kind == "notebook" and live.language is not None and live.language != d.language
    )


def _compare(d: DesiredObject, r: RemoteObject | None, rec: ManagedObject | None) -> Change:
    path = d.path
    if r is None:
        reason = "missing from the workspace" if rec else "new"
        return Change(CREATE, path, d.kind, d.language, reason)
    drift = is_drift(rec, r)
    if needs_replace(d, r):
        reason = f"was a {r.object_type.lower()} ({r.language or 'no language'})"
        return Change(UPDATE, path, d.kind, d.language, reason, drift, True, drift or rec is None)
    if rec is None:
        return Change(UPDATE, path, d.kind, d.language, "not in the record", backup=True)
    if rec.sha256 != d.sha256:
        return Change(UPDATE, path, d.kind, d.language, "changed", drift, backup=drift)
    if drift:
        return Change(UPDATE, path, d.kind, d.language, "edited by hand", True, backup=True)
    return Change(UNCHANGED, path, d.kind, d.language)


@dataclass(frozen=True)
class PlanHead:
    """What a plan is about: where, from what, to what."""

    env: str
    root: str
    version: str
    digest: str
    record: Record | None
    fingerprint: str


def assemble_plan(
    head: PlanHead,
    changes: list[Change],
    wanted: Mapping[str, DesiredObject],
    live: FolderContent,
    *,
    candidate_rmdirs: set[str],
    owned: Mapping[str, object],
    conflicts: list[str] | None = None,
    end_state: bool = True,
) -> Plan:
    """A `Plan` from its object rows: folders to create and remove, what is unmanaged.

    ``candidate_rmdirs`` are folders we created that may go once empty; ``owned`` the
    paths we may touch (anything else under root is unmanaged).
    """
    want_dirs = folders_of(wanted)
    deleted = {c.path for c in changes if c.action == DELETE}
    to_create = sorted(d for d in want_dirs if d not in live.dirs)
    record = head.record
    return Plan(
        env=head.env,
        root=head.root,
        version=head.version,
        digest=head.digest,
        previous_version=record.version if record else None,
        previous_digest=record.digest if record else None,
        changes=tuple(changes),
        unmanaged=tuple(sorted(p for p in live.objects if p not in wanted and p not in owned)),
        conflicts=tuple(conflicts or ()),
        mkdirs=tuple(d for d in to_create if not any(o.startswith(d + "/") for o in to_create)),
        new_dirs=tuple(to_create),
        rmdirs=tuple(
            _removable_dirs(
                previous_dirs=candidate_rmdirs,
                want_dirs=want_dirs,
                remote_dirs=set(live.dirs),
                remaining={p for p in live.objects if p not in deleted},
            )
        ),
        directories=tuple(sorted(want_dirs)),
        listing_fingerprint=head.fingerprint,
        record_verified=bool(record and record.verified),
        end_state={
            p: (d.object_type, d.language if d.kind == "notebook" else None)
            for p, d in wanted.items()
        }
        if end_state
        else {},
    )


def folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder the paths need (relative to root)."""
    return {a for p in paths for a in _ancestors(p)}


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _removable_dirs(
    *, previous_dirs: set[str], want_dirs: set[str], remote_dirs: set[str], remaining: set[str]
) -> list[str]:
    """Folders we created before, no longer wanted, that will be empty: deepest first."""
    candidates = sorted(
        (d for d in previous_dirs if d not in want_dirs and d in remote_dirs),
        key=lambda d: (-d.count("/"), d),
    )
    removable: list[str] = []
    for d in candidates:
        has_objects = any(p.startswith(d + "/") for p in remaining)
        has_kept_dirs = any(sub.startswith(d + "/") and sub not in removable for sub in remote_dirs)
        if not has_objects and not has_kept_dirs:
            removable.append(d)
    return removable


def environment_notebook(env: str, parameters: Mapping[str, Any], user: str) -> bytes:
    """The generated `_environment` notebook: `%run ./_environment` gives ENV and CONFIG."""
    params = _expand_user(dict(parameters), user)
    payload = json.dumps(params, sort_keys=True, indent=2, default=str)
    text = (
        "# Databricks notebook source\n"
        f"# Generated by dbx-promote for environment {env!r}. Do not edit: every deploy\n"
        "# rewrites this notebook. Use it with `%run ./_environment`, then read ENV and CONFIG.\n"
        "import json as _json\n\n"
        f"ENV = {env!r}\n"
        f"CONFIG = _json.loads({payload!r})\n"
    )
    return text.encode()


def _expand_user(value: Any, user: str) -> Any:
    if isinstance(value, str):
        return value.replace("{user}", user)
    if isinstance(value, dict):
        return {k: _expand_user(v, user) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_user(v, user) for v in value]
    return value
