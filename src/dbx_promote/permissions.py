"""Permissions as code, the pure part: desired vs actual ACLs, drift and the lockout guard.

Nothing here talks to a workspace. `workspace.py` reads ACLs into `ObjectAcl` values and
the SCIM ``Me`` document into an `Identity`; this module decides what differs, which
direct grants on managed objects are drift, which inherited grants the config cannot take
away, and whether the signed-in principal would lock itself out of root.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

LEVELS = ("CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE")
RANK = {level: rank for rank, level in enumerate(LEVELS, 1)}
# config key -> the access-control field of the Permissions API that names the principal
PRINCIPAL_FIELDS = {
    "group": "group_name",
    "user": "user_name",
    "service_principal": "service_principal_name",
}
_KIND_OF_FIELD = {v: k for k, v in PRINCIPAL_FIELDS.items()}
ADMINS = "admins"
USERS = "users"
# A service principal signs in under its application id, a UUID; people under a user name.
_APPLICATION_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


@dataclass(frozen=True, order=True)
class Grant:
    """One principal's level: ``kind`` is ``group``, ``user`` or ``service_principal``."""

    kind: str
    name: str
    level: str

    @property
    def principal(self) -> tuple[str, str]:
        """(kind, name): who the grant is for, whatever the level."""
        return (self.kind, self.name)

    def describe(self) -> str:
        """``group readers: CAN_READ``."""
        return f"{self.kind.replace('_', ' ')} {self.name}: {self.level}"

    def to_json(self) -> dict[str, str]:
        """The config's spelling: ``{"group": "readers", "level": "CAN_READ"}``."""
        return {self.kind: self.name, "level": self.level}


@dataclass(frozen=True)
class InheritedGrant:
    """A grant an object inherits; ``source`` names the folder it comes from."""

    grant: Grant
    source: str


@dataclass(frozen=True)
class ObjectAcl:
    """What the workspace says about one object's permissions."""

    path: str
    object_type: str  # directories | notebooks | files (the Permissions API's spelling)
    object_id: int
    direct: tuple[Grant, ...] = ()
    inherited: tuple[InheritedGrant, ...] = ()


@dataclass(frozen=True)
class Identity:
    """The signed-in principal: a user or a service principal, with its SCIM groups."""

    name: str
    kind: str = "user"  # user | service_principal
    groups: frozenset[str] = field(default_factory=frozenset)

    def holds(self, grant: Grant) -> bool:
        """Whether ``grant`` applies to this principal (directly or through a group)."""
        if grant.kind == "group":
            return grant.name in self.groups or grant.name == USERS
        return grant.principal == (self.kind, self.name)

    @property
    def is_admin(self) -> bool:
        """Workspace admins always have CAN_MANAGE."""
        return ADMINS in self.groups

    @classmethod
    def named(cls, name: str, groups: Iterable[str] = ()) -> Identity:
        """The principal signed in as ``name``: a UUID is a service principal's application id."""
        kind = "service_principal" if _APPLICATION_ID.match(name) else "user"
        return cls(name, kind, frozenset(groups))


@dataclass(frozen=True)
class DriftGrant:
    """A direct grant found on a managed object under root (someone granted it by hand)."""

    path: str
    grant: Grant

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, **self.grant.to_json()}


@dataclass(frozen=True)
class Change:
    """One principal whose level on root differs from the config."""

    before: Grant
    after: Grant

    def to_json(self) -> dict[str, str]:
        return {self.after.kind: self.after.name, "from": self.before.level, "to": self.after.level}


@dataclass(frozen=True)
class Cleanup:
    """A managed object to clean of drift with one PUT: keep ``keep``, restore ``before``."""

    path: str
    object_type: str
    object_id: int
    keep: tuple[Grant, ...]
    before: tuple[Grant, ...]


@dataclass(frozen=True)
class PermissionsPlan:
    """What a deploy would do to permissions; ``known`` is False when the ACL was unreadable.

    ``desired`` is the configured list, ``current`` root's direct grants now (what a
    restore puts back), ``root_id`` its object id (None while root does not exist), and
    ``lockout`` why the signed-in principal would lose CAN_MANAGE on root, if it would.
    """

    known: bool = True
    desired: tuple[Grant, ...] = ()
    current: tuple[Grant, ...] = ()
    root_id: int | None = None
    grant: tuple[Grant, ...] = ()
    revoke: tuple[Grant, ...] = ()
    change: tuple[Change, ...] = ()
    drift: tuple[DriftGrant, ...] = ()
    warnings: tuple[str, ...] = ()
    cleanups: tuple[Cleanup, ...] = ()
    lockout: str | None = None

    @property
    def root_differs(self) -> bool:
        """True when root's ACL needs its one PUT."""
        return bool(self.grant or self.revoke or self.change)

    @property
    def in_sync(self) -> bool:
        """Known and nothing to do: root as configured, no drift."""
        return self.known and not self.root_differs and not self.drift

    def rows(self, root: str = "") -> list[tuple[str, str]]:
        """(action, what) per change: grant, revoke, change, drift; the plan's table rows
        (drift paths relative to ``root`` when given)."""
        out = [("grant", g.describe()) for g in self.grant]
        out += [("revoke", g.describe()) for g in self.revoke]
        out += [("change", f"{c.before.describe()} -> {c.after.level}") for c in self.change]
        for d in self.drift:
            path = d.path.removeprefix(root + "/") if root else d.path
            out.append(("drift", f"{path}: {d.grant.describe()} (removed)"))
        return out

    def status_json(self) -> dict[str, Any]:
        """What `status` shows: as configured, or what is missing, extra, changed, drifted."""
        return {
            "as_configured": self.in_sync,
            "known": self.known,
            "missing": [g.to_json() for g in self.grant],
            "extra": [g.to_json() for g in self.revoke],
            "changed": [c.to_json() for c in self.change],
            "drift": [d.to_json() for d in self.drift],
            "warnings": list(self.warnings),
        }

    def to_json(self) -> dict[str, Any]:
        """``{grant, revoke, change, drift}`` (plus ``known`` and ``warnings``)."""
        return {
            "known": self.known,
            "grant": [g.to_json() for g in self.grant],
            "revoke": [g.to_json() for g in self.revoke],
            "change": [c.to_json() for c in self.change],
            "drift": [d.to_json() for d in self.drift],
            "warnings": list(self.warnings),
        }


def diff_acl(
    desired: Sequence[Grant], actual: Sequence[Grant]
) -> tuple[tuple[Grant, ...], tuple[Grant, ...], tuple[Change, ...]]:
    """(grant, revoke, change) that turn the direct grants ``actual`` into ``desired``."""
    have = {g.principal: g for g in actual}
    want = {g.principal: g for g in desired}
    grant = tuple(sorted(g for p, g in want.items() if p not in have))
    revoke = tuple(sorted(g for p, g in have.items() if p not in want))
    change = tuple(
        Change(have[p], g) for p, g in sorted(want.items()) if p in have and have[p] != g
    )
    return grant, revoke, change


def is_own_creator_grant(grant: Grant, *deployers: Identity) -> bool:
    """The workspace gives creators CAN_MANAGE: a deployer's own is not drift.

    ``deployers`` are whoever may have created the managed objects: the principal the
    record names and the one signed in now (another admin planning or redeploying).
    """
    return grant.level == "CAN_MANAGE" and any(
        grant.principal == (d.kind, d.name) for d in deployers
    )


def find_drift(
    managed: Iterable[ObjectAcl], *deployers: Identity, desired: Sequence[Grant] = ()
) -> tuple[tuple[DriftGrant, ...], tuple[Cleanup, ...]]:
    """Direct grants on managed objects, and per object what a cleanup PUT keeps.

    Not drift: a deployer's creator CAN_MANAGE, and CAN_MANAGE for a principal that
    ``desired`` gives CAN_MANAGE on root (it inherits that anyway), so a deploy by one
    admin never strips what an earlier deployer created.
    """
    managers = [g.principal for g in desired if g.level == "CAN_MANAGE"]

    def kept(g: Grant) -> bool:
        return is_own_creator_grant(g, *deployers) or (
            g.level == "CAN_MANAGE" and g.principal in managers
        )

    drift: list[DriftGrant] = []
    cleanups: list[Cleanup] = []
    for acl in sorted(managed, key=lambda a: a.path):
        extra = [g for g in acl.direct if not kept(g)]
        if extra:
            drift.extend(DriftGrant(acl.path, g) for g in sorted(extra))
            keep = tuple(g for g in acl.direct if kept(g))
            cleanups.append(Cleanup(acl.path, acl.object_type, acl.object_id, keep, acl.direct))
    return tuple(drift), tuple(cleanups)


def broader_inherited(
    desired: Sequence[Grant], root: ObjectAcl, *deployers: Identity
) -> tuple[str, ...]:
    """Warnings for inherited grants on root that give more than the config does.

    A PUT on root cannot take them away (everything under /Shared inherits
    ``users: CAN_MANAGE``), so the config alone does not lock root down. A deployer's
    own CAN_MANAGE from a folder it created above root (/Shared/app) is no such news.
    """
    configured = {g.principal: RANK[g.level] for g in desired}
    out: list[str] = []
    for inh in sorted(set(root.inherited), key=lambda i: (i.grant, i.source)):
        g = inh.grant
        if g.principal == ("group", ADMINS) or RANK[g.level] <= configured.get(g.principal, 0):
            continue
        if is_own_creator_grant(g, *deployers):
            continue
        given = next((d.level for d in desired if d.principal == g.principal), "nothing")
        out.append(
            f"inherited grant {g.describe()} from {inh.source} is broader than the config "
            f"({given}); a grant on root cannot remove it"
        )
    return tuple(out)


def lockout_problem(
    desired: Sequence[Grant],
    me: Identity,
    inherited: Iterable[InheritedGrant] = (),
) -> str | None:
    """Why ``desired`` would leave ``me`` without CAN_MANAGE on root, or None if it keeps it.

    It keeps it when it is an admin, when the list grants it (or one of its groups)
    CAN_MANAGE, or when it inherits CAN_MANAGE from above root (a PUT keeps those).
    """
    if me.is_admin:
        return None
    keeping = [*desired, *(i.grant for i in inherited)]
    if any(g.level == "CAN_MANAGE" and me.holds(g) for g in keeping):
        return None
    kind = me.kind.replace("_", " ")
    groups = ", ".join(sorted(me.groups)) or "none"
    return (
        f"the permissions would leave the signed-in {kind} {me.name} without CAN_MANAGE on "
        f"root, so it could not deploy again; grant it (or one of its groups: {groups}) "
        "CAN_MANAGE"
    )


def parse_grants(raw: Any, where: str, problems: list[str]) -> tuple[Grant, ...]:
    """Validate a config ``permissions:`` list; problems are appended, not raised."""
    if not isinstance(raw, list):
        problems.append(f"{where} must be a list of {{group|user|service_principal, level}}")
        return ()
    grants: list[Grant] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(raw):
        here = f"{where}[{i}]"
        grant = _parse_grant(entry, here, problems)
        if grant is None:
            continue
        if grant.principal in seen:
            problems.append(f"{here}: {grant.kind} {grant.name} is listed more than once")
            continue
        seen.add(grant.principal)
        grants.append(grant)
    return tuple(grants)


def _parse_grant(entry: Any, here: str, problems: list[str]) -> Grant | None:
    if not isinstance(entry, dict):
        problems.append(f"{here} must be a mapping like {{group: readers, level: CAN_READ}}")
        return None
    unknown = sorted(set(map(str, entry)) - {*PRINCIPAL_FIELDS, "level"})
    if unknown:
        problems.append(f"{here}: unknown key '{unknown[0]}'")
        return None
    keys = [k for k in PRINCIPAL_FIELDS if k in entry]
    if len(keys) != 1:
        problems.append(f"{here} needs exactly one of group, user, service_principal")
        return None
    name, level = entry[keys[0]], entry.get("level")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{here}.{keys[0]} must be a non-empty name")
        return None
    if level not in LEVELS:
        problems.append(f"{here}.level must be one of {', '.join(LEVELS)}")
        return None
    if (keys[0], name.strip()) == ("group", ADMINS):
        problems.append(f"{here}: admins always have CAN_MANAGE; leave them out")
        return None
    return Grant(keys[0], name.strip(), str(level))


def acl_from_response(path: str, kind: str, object_id: int, perms: Any) -> ObjectAcl:
    """An `ObjectAcl` from the SDK's ``WorkspaceObjectPermissions`` (read by attribute)."""
    direct: list[Grant] = []
    inherited: list[InheritedGrant] = []
    for entry in perms.access_control_list or []:
        who = next(
            ((k, getattr(entry, f)) for f, k in _KIND_OF_FIELD.items() if getattr(entry, f)),
            None,
        )
        if who is None:
            continue
        for p in entry.all_permissions or []:
            if p.permission_level is None:
                continue
            grant = Grant(who[0], str(who[1]), str(p.permission_level.value))
            if p.inherited:
                for source in p.inherited_from_object or ["(unknown)"]:
                    inherited.append(InheritedGrant(grant, str(source)))
            else:
                direct.append(grant)
    return ObjectAcl(path, kind, object_id, tuple(sorted(direct)), tuple(inherited))
