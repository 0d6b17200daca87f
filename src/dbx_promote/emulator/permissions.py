"""Access control for the emulated workspace: the Permissions API and its enforcement.

Direct grants live in the store's ``acl`` table; everything else is computed here. An
object's effective grants are its direct grants, the built-in grants of the objects that
carry them (``admins`` everywhere, ``users`` on ``/Shared``, each owner on its
``/Users/<name>`` home) and everything granted on its ancestors ("objects in a folder
inherit all permissions settings of that folder"). With principals configured, the
Workspace API and the Permissions API enforce these: reads need ``CAN_READ``, writes
``CAN_EDIT``, ACL changes ``CAN_MANAGE``; ``admins`` may do anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbx_promote.emulator.principals import ADMINS, USERS, Principal, Principals, is_uuid
from dbx_promote.emulator.store import ApiError, Grant, Store, WsPath, invalid, parent_of

LEVELS = ("CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE")
RANK = {level: rank for rank, level in enumerate(LEVELS, 1)}
KINDS = ("user_name", "group_name", "service_principal_name")
LABELS = {"CAN_READ": "Read", "CAN_RUN": "Run", "CAN_EDIT": "Edit", "CAN_MANAGE": "Manage"}
DESCRIPTIONS = {
    "CAN_READ": "Can view and export the object",
    "CAN_RUN": "Can view the object and run it",
    "CAN_EDIT": "Can view, run and edit the object",
    "CAN_MANAGE": "Can do anything with the object, including changing its permissions",
}
# request object type -> (workspace object_type, response object_type)
OBJECT_TYPES = {
    "directories": ("DIRECTORY", "directory"),
    "notebooks": ("NOTEBOOK", "notebook"),
    "files": ("FILE", "file"),
}
PREFIX = "permissions/"
WORKSPACE_ROOT_SOURCE = "/directories/"
# Folders every principal may list and get the status of, without inheriting anything.
OPEN_FOLDERS = ("/", "/Users")


@dataclass(frozen=True)
class Effective:
    """One grant as an object sees it: direct (``source`` None) or inherited from ``source``."""

    kind: str
    name: str
    level: str
    source: str | None


def _matches(caller: Principal, kind: str, name: str) -> bool:
    if kind == "group_name":
        return name in caller.all_groups
    return kind == caller.principal_key and name == caller.name


def denied(caller: Principal, level: str, where: str) -> ApiError:
    """The 403 the service sends when ``caller`` lacks ``level`` on ``where``."""
    who = "Service principal" if caller.is_service_principal else "User"
    return ApiError(
        403,
        "PERMISSION_DENIED",
        f"{who} {caller.name} does not have {LABELS[level]} permissions on {where}. "
        "Please contact the owner or an administrator for access.",
    )


class Acls:
    """Effective permissions, the Permissions API and Workspace API checks over a `Store`."""

    def __init__(self, store: Store, principals: Principals) -> None:
        self.store = store
        self.principals = principals

    # --- effective grants ------------------------------------------------------------

    def _builtin(self, path: str) -> list[Grant]:
        if path == "/Shared":
            return [("group_name", USERS, "CAN_MANAGE")]
        owner = path.removeprefix("/Users/")
        if path.startswith("/Users/") and "/" not in owner and owner in self.store.home_owners:
            kind = "service_principal_name" if is_uuid(owner) else "user_name"
            return [(kind, owner, "CAN_MANAGE")]
        return []

    def effective(self, path: str) -> list[Effective]:
        """Every grant that applies to the object at ``path`` (which must exist)."""
        chain = self.store.chain(path)
        direct = self.store.grants([object_id for _, object_id in chain])
        out: list[Effective] = [
            Effective("group_name", ADMINS, "CAN_MANAGE", WORKSPACE_ROOT_SOURCE)
        ]
        for index, (carrier, object_id) in enumerate(chain):
            source = f"/directories/{object_id}"
            for kind, name, level in self._builtin(carrier):
                out.append(Effective(kind, name, level, source))
            for kind, name, level in direct[object_id]:
                out.append(Effective(kind, name, level, None if index == 0 else source))
        return out

    def level_of(self, caller: Principal, path: str) -> int:
        """The caller's highest level on ``path`` as a rank (0: none)."""
        if caller.is_admin:
            return RANK["CAN_MANAGE"]
        ranks = [RANK[g.level] for g in self.effective(path) if _matches(caller, g.kind, g.name)]
        return max(ranks, default=0)

    def _require(self, caller: Principal, path: str, level: str, where: str) -> None:
        if self.level_of(caller, path) < RANK[level]:
            raise denied(caller, level, where)

    # --- Workspace API checks --------------------------------------------------------

    def _enforced(self, caller: Principal) -> bool:
        return self.principals.enforcing and not caller.is_admin

    def _exists(self, path: str) -> bool:
        chain = self.store.chain(path)
        return bool(chain) and chain[0][0] == path

    def check_read(self, caller: Principal, req: WsPath) -> None:
        """get-status, list, export: ``CAN_READ`` on the object (a missing one is a 404 later)."""
        path = req.canonical
        if self._enforced(caller) and path not in OPEN_FOLDERS and self._exists(path):
            self._require(caller, path, "CAN_READ", req.echo(path))

    def check_write(self, caller: Principal, req: WsPath, targets: Iterable[str] = ()) -> None:
        """import, mkdirs, delete: ``CAN_EDIT`` on the object, or on its nearest existing folder.

        ``targets`` are other spellings of the object (an AUTO import strips the extension).
        """
        if not self._enforced(caller):
            return
        for path in (*targets, req.canonical):
            if self._exists(path):
                self._require(caller, path, "CAN_EDIT", req.echo(path))
                return
        chain = self.store.chain(parent_of(req.canonical))
        if chain:
            self._require(caller, chain[0][0], "CAN_EDIT", req.echo(chain[0][0]))

    def check_mkdirs(self, caller: Principal, req: WsPath) -> None:
        """mkdirs of an existing folder is a no-op anyone may make; else as `check_write`."""
        if not self._exists(req.canonical):
            self.check_write(caller, req)

    # --- Permissions API -------------------------------------------------------------

    def route_key(self, endpoint: str) -> tuple[str, str | None]:
        """(counted endpoint name, canonical path or None) of a permissions request."""
        parts = endpoint.split("/")
        name = "/".join(parts[:2] + parts[3:4])
        if len(parts) >= 3 and parts[2].isdigit():
            found = self.store.object_by_id(int(parts[2]))
            return name, (found[0] if found else None)
        return name, None

    def handle(self, caller: Principal, method: str, endpoint: str, body: dict[str, Any]) -> Any:
        """Answer ``/api/2.0/permissions/...``; raise `ApiError` for every refusal."""
        parts = endpoint[len(PREFIX) :].split("/")
        if parts[0] not in OBJECT_TYPES or len(parts) not in (2, 3):
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{endpoint}'")
        if len(parts) == 3 and parts[2] != "permissionLevels":
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{endpoint}'")
        request_type, raw_id = parts[0], parts[1]
        object_ref = f"/{request_type}/{raw_id}"
        path = self._resolve(request_type, raw_id)
        allowed = ("GET",) if len(parts) == 3 else ("GET", "PUT", "PATCH")
        if method not in allowed:
            raise ApiError(
                405, "METHOD_NOT_ALLOWED", f"Method {method} is not allowed on /{endpoint}"
            )
        if len(parts) == 3:
            self._checked(caller, path, "CAN_READ", object_ref)
            return {
                "permission_levels": [
                    {"permission_level": lvl, "description": DESCRIPTIONS[lvl]} for lvl in LEVELS
                ]
            }
        self._checked(caller, path, "CAN_MANAGE", object_ref)
        if method != "GET":
            grants = self._parse_acl(body)
            object_id = int(raw_id)
            self.store.set_grants(object_id, grants, replace=method == "PUT")
        return self.describe(request_type, raw_id, path)

    def _checked(self, caller: Principal, path: str, level: str, where: str) -> None:
        if self._enforced(caller):
            self._require(caller, path, level, where)

    def _resolve(self, request_type: str, raw_id: str) -> str:
        found = self.store.object_by_id(int(raw_id)) if raw_id.isdigit() else None
        if found is None or found[1] != OBJECT_TYPES[request_type][0]:
            kind = OBJECT_TYPES[request_type][1]
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"{kind.capitalize()} {raw_id} does not exist."
            )
        return found[0]

    def _parse_acl(self, body: dict[str, Any]) -> list[Grant]:
        entries = body.get("access_control_list", [])
        if not isinstance(entries, list):
            raise invalid("Field 'access_control_list' must be a list.")
        seen: set[tuple[str, str]] = set()
        grants: list[Grant] = []
        for entry in entries:
            kind, name, level = self._parse_entry(entry)
            if (kind, name) in seen:
                raise invalid(f"Principal {name} appears more than once in access_control_list.")
            seen.add((kind, name))
            if (kind, name) == ("group_name", ADMINS):
                if level != "CAN_MANAGE":
                    raise invalid(f"Cannot change permissions for group '{ADMINS}' to {level}.")
                continue  # admins always keep CAN_MANAGE; nothing to store
            grants.append((kind, name, level))
        return grants

    def _parse_entry(self, entry: Any) -> Grant:
        if not isinstance(entry, dict):
            raise invalid("Each access_control_list entry must be an object.")
        named = [k for k in KINDS if entry.get(k)]
        if len(named) != 1:
            raise invalid(
                "Each access_control_list entry needs exactly one of user_name, group_name, "
                "service_principal_name."
            )
        kind = named[0]
        name, level = entry[kind], entry.get("permission_level")
        if not isinstance(name, str):
            raise invalid(f"Field '{kind}' must be a string.")
        if level not in LEVELS:
            raise invalid(
                f"Permission level {level} is not supported; expected one of {', '.join(LEVELS)}."
            )
        self._check_principal_exists(kind, name)
        return kind, name, level

    def _check_principal_exists(self, kind: str, name: str) -> None:
        # Without principals the emulator knows nobody, so every name is accepted.
        known = self.principals.all()
        if not known:
            return
        if kind == "group_name":
            exists = name in {ADMINS, USERS} or any(name in p.groups for p in known)
        else:
            exists = any(p.principal_key == kind and p.name == name for p in known)
        if not exists:
            label = {"user_name": "UserName", "group_name": "GroupName"}.get(
                kind, "ServicePrincipal"
            )
            raise invalid(f"Principal: {label}({name}) does not exist")

    def describe(self, request_type: str, raw_id: str, path: str) -> dict[str, Any]:
        """The ``WorkspaceObjectPermissions`` document of the object at ``path``."""
        by_principal: dict[tuple[str, str], dict[tuple[str, bool], list[str]]] = {}
        for g in self.effective(path):
            items = by_principal.setdefault((g.kind, g.name), {})
            sources = items.setdefault((g.level, g.source is not None), [])
            if g.source is not None and g.source not in sources:
                sources.append(g.source)
        names = {p.name: p.display_name for p in self.principals.all()}
        acl: list[dict[str, Any]] = []
        for (kind, name), items in sorted(by_principal.items(), key=lambda kv: kv[0][1]):
            entry: dict[str, Any] = {kind: name, "all_permissions": []}
            if kind != "group_name" and name in names:
                entry["display_name"] = names[name]
            for (level, inherited), sources in sorted(items.items(), key=lambda kv: kv[0][1]):
                item: dict[str, Any] = {"permission_level": level, "inherited": inherited}
                if inherited:
                    item["inherited_from_object"] = sources
                entry["all_permissions"].append(item)
            acl.append(entry)
        return {
            "object_id": f"/{request_type}/{raw_id}",
            "object_type": OBJECT_TYPES[request_type][1],
            "access_control_list": acl,
        }
