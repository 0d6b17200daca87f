"""Permissions as code, the I/O part: read ACLs into a plan, apply it, put it back.

`plan_permissions` reads root's ACL, the ACLs of the managed objects under it and the
signed-in principal (all through the workspace adapter) and lets `permissions` decide.
`AclWriter` sends the writes: one PUT on root when it differs, one per object carrying
drift, and remembers what it changed so a failed deploy can restore it.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, replace

from dbx_promote.config import relative_to_root
from dbx_promote.errors import DbxPromoteError, LockoutRefused, PermissionDenied
from dbx_promote.permissions import (
    Grant,
    Identity,
    InheritedGrant,
    ObjectAcl,
    PermissionsPlan,
    broader_inherited,
    diff_acl,
    find_drift,
    lockout_problem,
)
from dbx_promote.record import STATE_DIR
from dbx_promote.remote import RemoteObject
from dbx_promote.workspace import Workspace

log = logging.getLogger("dbx_promote.access")

WORKSPACE_SOURCE = "/directories/"


def managed_objects(
    root: str, listing: Iterable[RemoteObject], owned: Iterable[str]
) -> list[RemoteObject]:
    """The objects under ``root`` that dbx-promote manages: what the record owns, the
    folders holding them, and its state folder. Everything else is never touched."""
    files = set(owned)
    folders = {STATE_DIR}
    for name in files:
        parts = name.split("/")[:-1]
        folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    out = []
    for obj in listing:
        rel = relative_to_root(root, obj.path)
        if rel and (rel in folders if obj.is_dir else rel in files):
            out.append(obj)
    return out


@dataclass(frozen=True)
class RootRead:
    """Root's ACL as read (before root exists: as it will be) and its object id (None then)."""

    acl: ObjectAcl
    object_id: int | None


def read_root(ws: Workspace, root: str, me: Identity) -> RootRead:
    """Root's status and ACL; `PermissionDenied` when the workspace refuses to show them."""
    root_obj = ws.get_status(root)
    if root_obj is not None and root_obj.object_id is not None:
        return RootRead(ws.get_acl(root_obj), root_obj.object_id)
    return RootRead(_future_root_acl(ws, root, me), None)


def check_root(
    ws: Workspace, root: str, desired: tuple[Grant, ...], me: Identity, env: str
) -> RootRead:
    """Root read for a deploy's preflight: an unreadable ACL (PermissionDenied) or a list
    that would lock ``me`` out (LockoutRefused, exit 2) refuses before any write."""
    try:
        read = read_root(ws, root, me)
    except PermissionDenied:
        raise PermissionDenied(
            f"cannot manage the permissions of '{env}' ({root}): the workspace refused "
            "to show them; the deploying principal needs CAN_MANAGE on it. Nothing was written"
        ) from None
    problem = lockout_problem(desired, me, read.acl.inherited)
    refuse_lockout(PermissionsPlan(desired=desired, lockout=problem), env)
    return read


def plan_permissions(
    ws: Workspace,
    root: str,
    desired: tuple[Grant, ...],
    managed: Iterable[RemoteObject],
    me: Identity | None = None,
    *,
    deployed_by: str | None = None,
    root_read: RootRead | None = None,
) -> PermissionsPlan:
    """What it takes to give ``root`` exactly ``desired`` and its managed objects no grants.

    Root's ACL is read unless ``root_read`` is given (read moments ago in the same run).
    The CAN_MANAGE that ``me`` or ``deployed_by`` (the record's deployer) hold as creators
    is never drift (see `find_drift`): whoever plans, the same folder gets the same plan.
    A workspace that refuses to show an ACL (403: the caller lacks CAN_MANAGE, as a
    read-only reviewer does) gives a plan with ``known=False`` instead of an error.
    """
    me = me or ws.identity()
    try:
        read = root_read or read_root(ws, root, me)
        acls = ws.get_acls([o for o in managed if o.object_id is not None])
    except PermissionDenied:
        return PermissionsPlan(
            known=False,
            desired=desired,
            warnings=(
                f"permissions of {root} are unknown: the workspace refused to show them "
                "(reading an ACL needs CAN_MANAGE)",
            ),
        )
    creators = (me, *([Identity.named(deployed_by)] if deployed_by else []))
    grant, revoke, change = diff_acl(desired, read.acl.direct)
    drift, cleanups = find_drift(acls, *creators, desired=desired)
    warnings = broader_inherited(desired, read.acl, *creators)
    if warnings:
        warnings = _name_sources(ws, root, warnings)
    return PermissionsPlan(
        desired=desired,
        current=read.acl.direct,
        root_id=read.object_id,
        grant=grant,
        revoke=revoke,
        change=change,
        drift=drift,
        warnings=warnings,
        cleanups=cleanups,
        lockout=lockout_problem(desired, me, read.acl.inherited),
    )


def _future_root_acl(ws: Workspace, root: str, me: Identity) -> ObjectAcl:
    """Root's ACL once the deploy creates it: the creator's CAN_MANAGE, plus what it inherits
    from the nearest existing folder above it."""
    creator = Grant(me.kind, me.name, "CAN_MANAGE")
    parent = posixpath.dirname(root)
    while parent not in ("", "/"):
        try:
            obj = ws.get_status(parent)
            above = ws.get_acl(obj) if obj is not None and obj.object_id is not None else None
        except PermissionDenied:
            # Not allowed to see what it will inherit: plan without it (no warnings).
            break
        if obj is not None and above is not None:
            source = f"/directories/{obj.object_id}"
            inherited = (*above.inherited, *(InheritedGrant(g, source) for g in above.direct))
            return ObjectAcl(root, "directories", 0, (creator,), tuple(inherited))
        parent = posixpath.dirname(parent)
    return ObjectAcl(root, "directories", 0, (creator,), ())


def _name_sources(ws: Workspace, root: str, warnings: tuple[str, ...]) -> tuple[str, ...]:
    """Replace ``/directories/<id>`` in warnings by the folder's path (root's ancestors)."""
    names = {WORKSPACE_SOURCE: "the workspace (admins)"}
    parent = posixpath.dirname(root)
    while parent not in ("", "/"):
        try:
            obj = ws.get_status(parent)
        except PermissionDenied:
            obj = None  # a folder the caller may not read keeps its /directories/<id> name
        if obj is not None and obj.object_id is not None:
            names[f"/directories/{obj.object_id}"] = parent
        parent = posixpath.dirname(parent)
    out = []
    for w in warnings:
        for ref, path in names.items():
            w = w.replace(f" from {ref} ", f" from {path} ")
        out.append(w)
    return tuple(out)


def refuse_lockout(plan: PermissionsPlan, env: str) -> None:
    """Raise `LockoutRefused` (exit 2) when the plan would lock the deployer out of root."""
    if plan.known and plan.lockout:
        raise LockoutRefused(f"environment '{env}': {plan.lockout}; nothing was written")


class AclWriter:
    """Applies a `PermissionsPlan` and can put back every ACL it changed."""

    def __init__(self, ws: Workspace, root: str) -> None:
        self.ws = ws
        self.root = root
        # (object type, id, what, grants it had) for every PUT sent, in order.
        self._sent: list[tuple[str, int, str, tuple[Grant, ...]]] = []

    @property
    def changed(self) -> bool:
        """True once any ACL write was sent."""
        return bool(self._sent)

    def apply(self, plan: PermissionsPlan) -> int:
        """Send the plan's writes (none when it is in sync); returns how many PUTs were sent.

        Root must exist by now (the lock lives in it); `WorkspaceError` on a refused write.
        """
        if not plan.known:
            raise PermissionDenied(
                f"cannot manage the permissions of {self.root}: the workspace refused to show "
                "them; the deploying principal needs CAN_MANAGE on it"
            )
        sent = 0
        if plan.root_differs:
            root_id = plan.root_id if plan.root_id is not None else self._root_id()
            self._put("directories", root_id, self.root, plan.desired, plan.current)
            sent += 1
        for c in plan.cleanups:
            self._put(c.object_type, c.object_id, c.path, c.keep, c.before)
            sent += 1
        return sent

    def _root_id(self) -> int:
        obj = self.ws.get_status(self.root)
        if obj is None or obj.object_id is None:
            raise PermissionDenied(f"{self.root} vanished before its permissions could be set")
        return obj.object_id

    def _put(
        self,
        kind: str,
        object_id: int,
        what: str,
        grants: tuple[Grant, ...],
        before: tuple[Grant, ...],
    ) -> None:
        # Remember before sending: a PUT that fails may still have landed.
        self._sent.append((kind, object_id, what, before))
        self.ws.set_acl(kind, object_id, grants, what)

    def restore(self) -> list[str]:
        """Put back every ACL this writer changed, newest first; returns what could not be."""
        failed: list[str] = []
        for kind, object_id, what, before in reversed(self._sent):
            try:
                self.ws.set_acl(kind, object_id, before, what)
            except DbxPromoteError as exc:
                log.warning("could not restore the permissions of %s: %s", what, exc)
                failed.append(what)
        self._sent.clear()
        return failed


def with_lockout_checked(plan: PermissionsPlan, dry_run: bool) -> PermissionsPlan:
    """A dry run only warns about a lockout (a reviewer's identity is not the deployer's)."""
    if dry_run and plan.lockout:
        return replace(plan, warnings=(*plan.warnings, plan.lockout))
    return plan
