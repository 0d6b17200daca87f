"""Conformance rows for the Permissions API of workspace objects and its enforcement on the
Workspace API (docs/emulator.md, "Principals and permissions").

Two kinds of rows:

- rows the caller alone can make, on objects it creates in its scratch folder, naming only
  itself and the built-in group ``users``: they run live too;
- rows that need other principals (a reader, a stranger, an admin): ``needs="principals"``.
  The emulator test configures `PRINCIPALS` and gives the probe a client per token
  (``Scratch.as_``); ``s.w`` is then the service principal that owns the scratch folder.
  A live run has one identity only, so these are emulator-only (``live=False``).

Object ids differ from run to run: answers name the folders that grant an inherited
permission by path (the scratch folder's parent is ``<base>``), and ids in messages are
``<id>``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import (
    ImportFormat,
    Language,
    WorkspaceObjectAccessControlRequest,
    WorkspaceObjectPermissionLevel,
)

from conformance_suite import Behaviour, Scratch, answer

SP = "9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f"
OWNER_TOKEN = "sp-token"
PRINCIPALS = [
    "admin-token=admin@example.com:admins",
    "dev-token=dev@example.com:data-engineers",
    "reader-token=reader@example.com:readers",
    "nobody-token=nobody@example.com",
    f"{OWNER_TOKEN}={SP}:deployers",
]
NB = b"# Databricks notebook source\nprint(1)"
LEVELS = ["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"]
INVALID = {"raises": "InvalidParameterValue", "error_code": "INVALID_PARAMETER_VALUE"}
DENIED = {"raises": "PermissionDenied", "error_code": "PERMISSION_DENIED"}


def entry(level: str, **who: str) -> WorkspaceObjectAccessControlRequest:
    return WorkspaceObjectAccessControlRequest(
        permission_level=WorkspaceObjectPermissionLevel(level), **who
    )


def oid(s: Scratch, rel: str = "") -> str:
    return str(s.w.workspace.get_status(s.path(rel)).object_id)


def _who(e: Any) -> str:
    return str(e.user_name or e.group_name or e.service_principal_name)


def direct(perms: Any) -> dict[str, str]:
    """principal -> level of the direct (not inherited) grants."""
    return {
        _who(e): p.permission_level.value
        for e in perms.access_control_list or []
        for p in e.all_permissions or []
        if not p.inherited
    }


def _sources(s: Scratch, start: str) -> dict[str, str]:
    """``/directories/<id>`` -> path of each folder from ``start`` up to ``/``."""
    base = posixpath.dirname(s.root)
    names = {"/directories/": "<workspace>"}
    path = start
    while True:
        label = "<base>" if path == base else path
        if path == s.root or path.startswith(s.root + "/"):
            label = "<scratch>" + path[len(s.root) :]
        names[f"/directories/{s.w.workspace.get_status(path).object_id}"] = label
        if path == "/":
            return names
        path = posixpath.dirname(path)


def inherited(s: Scratch, perms: Any, folder: str = "") -> dict[str, list[Any]]:
    """principal -> sorted [level, [granting folders by path]] of the inherited grants of an
    object in ``folder`` (relative to the scratch folder)."""
    names = _sources(s, s.path(folder))
    out: dict[str, list[Any]] = {}
    for e in perms.access_control_list or []:
        for p in e.all_permissions or []:
            if p.inherited:
                folders = sorted(names.get(x, x) for x in p.inherited_from_object or [])
                out.setdefault(_who(e), []).append([p.permission_level.value, folders])
    return {k: sorted(v) for k, v in sorted(out.items())}


def without_ids(value: Any) -> Any:
    """An answer whose messages name ``/directories/<id>`` (or ``Directory 42``) by ``<id>``."""
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        text = re.sub(
            r"(/(?:directories|notebooks|files)/|tory |book |File )\d+", r"\1<id>", value["message"]
        )
        return {**value, "message": text}
    return value


def _folder(s: Scratch, rel: str = "d") -> str:
    s.w.workspace.mkdirs(s.path(rel))
    return oid(s, rel)


# --- rows the caller alone can make ----------------------------------------------------------


def _directory_acl(s: Scratch) -> dict[str, Any]:
    d = _folder(s)
    perms = s.w.workspace.get_permissions("directories", d)
    return {
        "object_id": perms.object_id == f"/directories/{d}",
        "object_type": perms.object_type,
        "direct": direct(perms),
        "inherited": inherited(s, perms),
    }


def _notebook_inherits(s: Scratch) -> dict[str, Any]:
    d = _folder(s)
    s.w.workspace.update_permissions(
        "directories", d, access_control_list=[entry("CAN_READ", group_name="users")]
    )
    s.w.workspace.upload(s.path("d/nb.py"), NB, format=ImportFormat.AUTO)
    perms = s.w.workspace.get_permissions("notebooks", oid(s, "d/nb"))
    return {
        "object_type": perms.object_type,
        "direct": direct(perms),
        "users": inherited(s, perms, "d").get("users"),
    }


def _file_acl(s: Scratch) -> dict[str, Any]:
    s.w.workspace.upload(s.path("data.csv"), b"a,b\n", format=ImportFormat.RAW)
    perms = s.w.workspace.get_permissions("files", oid(s, "data.csv"))
    return {"object_type": perms.object_type, "direct": direct(perms)}


def _display_name(s: Scratch) -> bool:
    perms = s.w.workspace.get_permissions("directories", _folder(s))
    mine = [e for e in perms.access_control_list or [] if _who(e) == s.user]
    return bool(mine) and all(e.display_name for e in mine)


def _gone(kind: str) -> Callable[[Scratch], Any]:
    """An id that existed a moment ago: safe to ask about on a real workspace."""

    def probe(s: Scratch) -> Any:
        if kind == "directories":
            s.w.workspace.mkdirs(s.path("gone"))
            rel = "gone"
        elif kind == "notebooks":
            s.w.workspace.upload(s.path("gone.py"), NB, format=ImportFormat.AUTO)
            rel = "gone"
        else:
            s.w.workspace.upload(s.path("gone.txt"), b"x", format=ImportFormat.RAW)
            rel = "gone.txt"
        gone = oid(s, rel)
        s.w.workspace.delete(s.path(rel))
        return without_ids(answer(lambda: s.w.workspace.get_permissions(kind, gone)))

    return probe


def _another_type(s: Scratch) -> Any:
    d = _folder(s)
    return without_ids(answer(lambda: s.w.workspace.get_permissions("notebooks", d)))


def _put_replaces(s: Scratch) -> dict[str, Any]:
    d = _folder(s)
    got = s.w.workspace.set_permissions(
        "directories",
        d,
        access_control_list=[
            entry("CAN_READ", group_name="users"),
            entry("CAN_MANAGE", user_name=s.user),
        ],
    )
    again = s.w.workspace.get_permissions("directories", d)
    return {
        "answer": direct(got),
        "read_back": direct(again),
        "admins": inherited(s, again).get("admins"),
    }


def _put_empty(s: Scratch) -> dict[str, Any]:
    d = _folder(s)
    got = s.w.workspace.set_permissions("directories", d, access_control_list=[])
    return {"direct": direct(got), "mine": inherited(s, got).get(s.user)}


def _put_notebook(s: Scratch) -> dict[str, str]:
    s.w.workspace.upload(s.path("nb.py"), NB, format=ImportFormat.AUTO)
    got = s.w.workspace.set_permissions(
        "notebooks", oid(s, "nb"), access_control_list=[entry("CAN_EDIT", group_name="users")]
    )
    return direct(got)


def _patch_keeps(s: Scratch) -> dict[str, str]:
    d = _folder(s)
    got = s.w.workspace.update_permissions(
        "directories", d, access_control_list=[entry("CAN_RUN", group_name="users")]
    )
    return direct(got)


def _bad_entry(method: str, make: Callable[[Scratch], dict[str, Any]]) -> Callable[[Scratch], Any]:
    def probe(s: Scratch) -> dict[str, Any]:
        d = _folder(s)
        before = direct(s.w.workspace.get_permissions("directories", d))
        refused = answer(
            lambda: s.w.api_client.do(
                method,
                f"/api/2.0/permissions/directories/{d}",
                body={"access_control_list": [make(s)]},
            )
        )
        after = direct(s.w.workspace.get_permissions("directories", d))
        return {"refused": refused, "unchanged": after == before}

    return probe


BAD_ENTRIES: dict[str, Callable[[Scratch], dict[str, Any]]] = {
    "bad-level": lambda s: {"group_name": "users", "permission_level": "CAN_FLY"},
    "no-level": lambda s: {"group_name": "users"},
    "two-principals": lambda s: {
        "group_name": "users",
        "user_name": s.user,
        "permission_level": "CAN_READ",
    },
    "admins-below-manage": lambda s: {"group_name": "admins", "permission_level": "CAN_READ"},
}
BAD_ANSWERS = {
    "bad-level": "Permission level CAN_FLY is not supported; expected one of CAN_READ, "
    "CAN_RUN, CAN_EDIT, CAN_MANAGE.",
    "no-level": "Permission level None is not supported; expected one of CAN_READ, CAN_RUN, "
    "CAN_EDIT, CAN_MANAGE.",
    "two-principals": "Each access_control_list entry needs exactly one of user_name, "
    "group_name, service_principal_name.",
    "admins-below-manage": "Cannot change permissions for group 'admins' to CAN_READ.",
}


def _duplicates(s: Scratch) -> Any:
    d = _folder(s)
    return answer(
        lambda: s.w.workspace.set_permissions(
            "directories",
            d,
            access_control_list=[
                entry("CAN_READ", group_name="users"),
                entry("CAN_EDIT", group_name="users"),
            ],
        )
    )


def _levels(kind: str) -> Callable[[Scratch], list[str]]:
    def probe(s: Scratch) -> list[str]:
        if kind == "directories":
            ref = _folder(s)
        else:
            s.w.workspace.upload(s.path("nb.py"), NB, format=ImportFormat.AUTO)
            ref = oid(s, "nb")
        got = s.w.workspace.get_permission_levels(kind, ref)
        return [p.permission_level.value for p in got.permission_levels or []]  # type: ignore[union-attr]

    return probe


def _shared(s: Scratch) -> dict[str, Any]:
    path = f"/Shared/{posixpath.basename(s.root)}"
    s.w.workspace.mkdirs(path)
    perms = s.w.workspace.get_permissions(
        "directories", str(s.w.workspace.get_status(path).object_id)
    )
    shared = f"/directories/{s.w.workspace.get_status('/Shared').object_id}"
    users = [
        [p.permission_level.value, p.inherited_from_object == [shared]]
        for e in perms.access_control_list or []
        if e.group_name == "users"
        for p in e.all_permissions or []
    ]
    return {"users": users, "direct": direct(perms)}


# --- rows that need other principals (emulator only) -----------------------------------------


def _as(s: Scratch, token: str) -> WorkspaceClient:
    assert s.as_ is not None, "a principals row runs only where principals are configured"
    return s.as_(token)


def _prod(s: Scratch) -> str:
    """The owner's folder (the scratch folder) with one notebook; readers may read it."""
    s.w.workspace.upload(s.path("etl.py"), NB, format=ImportFormat.AUTO)
    root = oid(s)
    s.w.workspace.set_permissions(
        "directories",
        root,
        access_control_list=[
            entry("CAN_READ", group_name="readers"),
            entry("CAN_MANAGE", service_principal_name=SP),
        ],
    )
    return root


def _read_acl_needs_manage(s: Scratch) -> Any:
    root = _prod(s)
    return without_ids(
        answer(lambda: _as(s, "reader-token").workspace.get_permissions("directories", root))
    )


def _change_needs_manage(token: str) -> Callable[[Scratch], Any]:
    def probe(s: Scratch) -> dict[str, Any]:
        root = _prod(s)
        w = _as(s, token)
        put = answer(
            lambda: w.workspace.set_permissions("directories", root, access_control_list=[])
        )
        patch = answer(
            lambda: w.workspace.update_permissions(
                "directories", root, access_control_list=[entry("CAN_MANAGE", group_name="readers")]
            )
        )
        after = direct(s.w.workspace.get_permissions("directories", root))
        return {"put": put["error_code"], "patch": patch["error_code"], "readers": after["readers"]}

    return probe


def _admins_change_any(s: Scratch) -> dict[str, str]:
    root = _prod(s)
    return direct(
        _as(s, "admin-token").workspace.set_permissions("directories", root, access_control_list=[])
    )


def _levels_need_read(s: Scratch) -> Any:
    root = _prod(s)
    return without_ids(
        answer(lambda: _as(s, "nobody-token").workspace.get_permission_levels("directories", root))
    )


def _unlisted_token(s: Scratch) -> Any:
    return answer(lambda: _as(s, "stolen-token").workspace.get_status("/"))


def _scim_me(s: Scratch) -> list[Any]:
    out = []
    for token in ("dev-token", OWNER_TOKEN):
        me = _as(s, token).current_user.me()
        out.append([me.user_name, [g.display for g in me.groups or []]])
    return out


def _homes(s: Scratch) -> dict[str, Any]:
    for token, name in [("dev-token", "dev@example.com"), (OWNER_TOKEN, SP)]:
        w = _as(s, token)
        w.workspace.mkdirs(f"/Users/{name}/scratch")
        w.workspace.upload(f"/Users/{name}/scratch/nb.py", b"1")
    intruder = answer(lambda: _as(s, "dev-token").workspace.mkdirs(f"/Users/{SP}/intruder"))
    return {"own_homes": "written", "another_home": intruder}


def _group_grants(s: Scratch) -> dict[str, Any]:
    root = _prod(s)
    s.w.workspace.update_permissions(
        "directories", root, access_control_list=[entry("CAN_EDIT", group_name="data-engineers")]
    )
    _as(s, "dev-token").workspace.upload(s.path("new.py"), b"1")
    reader = answer(lambda: _as(s, "reader-token").workspace.upload(s.path("new2.py"), b"1"))
    return {"member": "written", "non_member": reader}


def _unknown_principal(method: str, body: dict[str, str]) -> Callable[[Scratch], Any]:
    def probe(s: Scratch) -> Any:
        root = _prod(s)
        return answer(
            lambda: s.w.api_client.do(
                method,
                f"/api/2.0/permissions/directories/{root}",
                body={"access_control_list": [body]},
            )
        )

    return probe


def _reader_reads(s: Scratch) -> dict[str, Any]:
    _prod(s)
    reader = _as(s, "reader-token")
    with reader.workspace.download(s.path("etl")) as f:
        content = f.read()
    return {
        "status": bool(reader.workspace.get_status(s.path("etl")).object_id),
        "list": [o.path for o in reader.workspace.list(s.path())],
        "export": b"print(1)" in content,
    }


READS: dict[str, Callable[[WorkspaceClient, Scratch], Any]] = {
    "get-status": lambda w, s: w.workspace.get_status(s.path("etl")),
    "list": lambda w, s: list(w.workspace.list(s.path())),
    "export": lambda w, s: w.workspace.export(s.path("etl")),
}


def _read_needs_read(name: str) -> Callable[[Scratch], Any]:
    def probe(s: Scratch) -> Any:
        _prod(s)
        return answer(lambda: READS[name](_as(s, "nobody-token"), s))

    return probe


def _top_folders(s: Scratch) -> dict[str, Any]:
    w = _as(s, "nobody-token")
    return {
        "root": bool(w.workspace.get_status("/").object_id),
        "owner_home_listed": f"/Users/{SP}" in {o.path for o in w.workspace.list("/Users")},
    }


WRITES: dict[str, Callable[[WorkspaceClient, Scratch], Any]] = {
    "import": lambda w, s: w.workspace.import_(
        s.path("new"), content="MQ==", language=Language.PYTHON, format=ImportFormat.SOURCE
    ),
    "import-overwrite": lambda w, s: w.workspace.import_(
        s.path("etl"),
        content="MQ==",
        language=Language.PYTHON,
        format=ImportFormat.SOURCE,
        overwrite=True,
    ),
    "upload": lambda w, s: w.workspace.upload(s.path("new.py"), b"1", format=ImportFormat.AUTO),
    "upload-overwrite": lambda w, s: w.workspace.upload(
        s.path("etl.py"),
        b"# Databricks notebook source\n1",
        format=ImportFormat.AUTO,
        overwrite=True,
    ),
    "mkdirs": lambda w, s: w.workspace.mkdirs(s.path("sub")),
    "delete": lambda w, s: w.workspace.delete(s.path("etl")),
    "delete-folder": lambda w, s: w.workspace.delete(s.path(), recursive=True),
}
# Where each refused write names the object it lacks Edit on.
WRITE_TARGETS = {
    "import": "<scratch>",
    "import-overwrite": "<scratch>/etl",
    "upload": "<scratch>",
    "upload-overwrite": "<scratch>/etl",
    "mkdirs": "<scratch>",
    "delete": "<scratch>/etl",
    "delete-folder": "<scratch>",
}


def _write_needs_edit(name: str, token: str) -> Callable[[Scratch], Any]:
    def probe(s: Scratch) -> dict[str, Any]:
        _prod(s)
        before = sorted(o.path for o in s.w.workspace.list(s.path(), recursive=True))
        refused = answer(lambda: WRITES[name](_as(s, token), s))
        after = sorted(o.path for o in s.w.workspace.list(s.path(), recursive=True))
        return {"refused": refused, "unchanged": after == before}

    return probe


def _write_with_edit(name: str) -> Callable[[Scratch], Any]:
    def probe(s: Scratch) -> str:
        root = _prod(s)
        s.w.workspace.update_permissions(
            "directories", root, access_control_list=[entry("CAN_EDIT", group_name="readers")]
        )
        WRITES[name](_as(s, "reader-token"), s)
        return "written"

    return probe


def _mkdirs_existing(s: Scratch) -> str:
    _prod(s)
    _as(s, "reader-token").workspace.mkdirs(s.path())
    return "no-op"


def _denied(who: str, level: str, where: str) -> dict[str, str]:
    return {
        **DENIED,
        "message": f"{who} does not have {level} permissions on {where}. Please contact the "
        "owner or an administrator for access.",
    }


# --- the rows ---------------------------------------------------------------------------------

MINE = {"<user>": "CAN_MANAGE"}
# What a folder in the scratch folder inherits: admins everywhere, the caller from its home
# and from the two folders above it that it created.
INHERITED = {
    "<user>": [["CAN_MANAGE", ["/Users/<user>", "<base>", "<scratch>"]]],
    "admins": [["CAN_MANAGE", ["<workspace>"]]],
}
# The model of docs/emulator.md, "The ACL model": its [UNV] lines.
CREATOR = "creator's grant | a direct `CAN_MANAGE` (not inherited) for whoever created the object"
BUILTIN = (
    "built-in grants | `users: CAN_MANAGE` on `/Shared`, each owner's `CAN_MANAGE` on its home"
)
SOURCES = "`inherited_from_object` | one item per level and direct/inherited, listing every folder"
UNKNOWN_ID = "unknown object id, or an id of another type | 404 `RESOURCE_DOES_NOT_EXIST`"
ADMINS_PUT = "`admins` in a PUT | `CAN_MANAGE` is accepted and ignored"
DUPLICATE = "duplicate principal in one ACL | 400 `INVALID_PARAMETER_VALUE`"
PATCH = "PATCH | sets each listed principal's level (may lower it); never removes a principal"
LEVEL_RULES = "what each level allows | reads `CAN_READ`, every Workspace write `CAN_EDIT`"
MESSAGE = '403 message | "User NAME does not have Edit permissions on PATH."'
UNKNOWN_PRINCIPAL = (
    'unknown principals | 400 `INVALID_PARAMETER_VALUE` "Principal: UserName(x) does not exist"'
)
LISTING = "listing | needs `CAN_READ` on the folder, except `/` and `/Users`"


def _missing(kind: str) -> dict[str, str]:
    return {
        "raises": "ResourceDoesNotExist",
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"{kind} <id> does not exist.",
    }


def _refused(message: str) -> dict[str, Any]:
    return {"refused": {**INVALID, "message": message}, "unchanged": True}


def row(name: str, request: str, expected: Any, probe: Any, **kw: Any) -> Behaviour:
    return Behaviour(f"permissions/{name}", "permissions", request, expected, probe, **kw)


def principals_row(name: str, request: str, expected: Any, probe: Any, **kw: Any) -> Behaviour:
    """A row that needs other identities: emulator only."""
    return row(name, request, expected, probe, live=False, needs="principals", **kw)


ACL_ROWS = [
    row(
        "directory-acl",
        "mkdirs, GET permissions/directories/<id>",
        {"object_id": True, "object_type": "directory", "direct": MINE, "inherited": INHERITED},
        _directory_acl,
        choice=CREATOR,
    ),
    row(
        "notebook-inherits-its-folder",
        "PATCH users CAN_READ on a folder, GET a notebook in it",
        {"object_type": "notebook", "direct": MINE, "users": [["CAN_READ", ["<scratch>/d"]]]},
        _notebook_inherits,
        choice=SOURCES,
    ),
    row(
        "file-acl",
        "upload a file, GET permissions/files/<id>",
        {"object_type": "file", "direct": MINE},
        _file_acl,
    ),
    row(
        "another-type-id",
        "GET permissions/notebooks/<folder id>",
        _missing("Notebook"),
        _another_type,
        choice=UNKNOWN_ID,
    ),
    row(
        "put-replaces-direct-grants",
        "PUT users CAN_READ + the caller CAN_MANAGE, GET",
        {
            "answer": {**MINE, "users": "CAN_READ"},
            "read_back": {**MINE, "users": "CAN_READ"},
            "admins": [["CAN_MANAGE", ["<workspace>"]]],
        },
        _put_replaces,
    ),
    row(
        "put-empty",
        "PUT an empty access_control_list",
        {"direct": {}, "mine": INHERITED["<user>"]},
        _put_empty,
        choice=BUILTIN,
    ),
    row("put-notebook", "PUT users CAN_EDIT on a notebook", {"users": "CAN_EDIT"}, _put_notebook),
    row(
        "patch-adds-and-keeps",
        "PATCH users CAN_RUN",
        {**MINE, "users": "CAN_RUN"},
        _patch_keeps,
        choice=PATCH,
    ),
    row(
        "duplicate-principal",
        "PUT users twice",
        {
            **INVALID,
            "message": "Principal users appears more than once in access_control_list.",
        },
        _duplicates,
        choice=DUPLICATE,
    ),
    row(
        "unknown-type",
        "GET /api/2.0/permissions/clusters/1",
        {
            "raises": "NotFound",
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": "No API found for 'GET /permissions/clusters/1'",
        },
        lambda s: s.w.api_client.do("GET", "/api/2.0/permissions/clusters/1"),
        live=False,  # asks about an object outside the scratch folder
    ),
    row(
        "shared-gives-users-can-manage",
        "mkdirs under /Shared, GET",
        {"users": [["CAN_MANAGE", True]], "direct": MINE},
        _shared,
        choice=BUILTIN,
        live=False,  # writes outside the scratch folder
    ),
]


def _refusal_rows() -> list[Behaviour]:
    rows = []
    for kind, label in (("directories", "Directory"), ("notebooks", "Notebook"), ("files", "File")):
        rows.append(
            row(
                f"deleted-{kind}-id",
                f"GET permissions/{kind}/<id of a deleted object>",
                _missing(label),
                _gone(kind),
                choice=UNKNOWN_ID,
            )
        )
    for kind in ("directories", "notebooks"):
        rows.append(
            row(
                f"levels-{kind}",
                f"GET permissions/{kind}/<id>/permissionLevels",
                LEVELS,
                _levels(kind),
            )
        )
    for method in ("PUT", "PATCH"):
        for name, make in BAD_ENTRIES.items():
            rows.append(
                row(
                    f"{method.lower()}-{name}",
                    f"{method} an entry: {name}",
                    _refused(BAD_ANSWERS[name]),
                    _bad_entry(method, make),
                    choice=ADMINS_PUT if name.startswith("admins") else None,
                )
            )
    return rows


def user(name: str) -> str:
    return f"User {name}@example.com"


PRINCIPAL_ROWS = [
    principals_row(
        "display-name", "GET: the owner's entry has a display_name", True, _display_name
    ),
    principals_row(
        "reading-an-acl-needs-manage",
        "a reader GETs the ACL",
        _denied(user("reader"), "Manage", "/directories/<id>"),
        _read_acl_needs_manage,
        choice=LEVEL_RULES,
    ),
    principals_row(
        "admins-change-any-acl", "an admin PUTs [] on another's folder", {}, _admins_change_any
    ),
    principals_row(
        "levels-need-read",
        "a stranger GETs permissionLevels",
        _denied(user("nobody"), "Read", "/directories/<id>"),
        _levels_need_read,
        choice=LEVEL_RULES,
    ),
    principals_row(
        "unlisted-token",
        "get-status / with a token no principal has",
        {
            "raises": "Unauthenticated",
            "error_code": "UNAUTHENTICATED",
            "message": "Invalid access token.",
        },
        _unlisted_token,
    ),
    principals_row(
        "scim-me-groups",
        "SCIM Me of a user and a service principal",
        [["dev@example.com", ["data-engineers"]], ["<user>", ["deployers"]]],
        _scim_me,
    ),
    principals_row(
        "homes",
        "each principal writes in its home; a user in another's",
        {"own_homes": "written", "another_home": _denied(user("dev"), "Edit", "/Users/<user>")},
        _homes,
    ),
    principals_row(
        "group-grants-apply-to-members",
        "CAN_EDIT for a group: a member and a non-member upload",
        {"member": "written", "non_member": _denied(user("reader"), "Edit", "<scratch>")},
        _group_grants,
    ),
    principals_row(
        "reader-reads",
        "a reader get-status, list and export",
        {"status": True, "list": ["<scratch>/etl"], "export": True},
        _reader_reads,
    ),
    principals_row(
        "everyone-lists-top-folders",
        "a stranger: get-status / and list /Users",
        {"root": True, "owner_home_listed": True},
        _top_folders,
        choice=LISTING,
    ),
    principals_row(
        "mkdirs-existing-needs-nothing",
        "a reader mkdirs an existing folder",
        "no-op",
        _mkdirs_existing,
    ),
]


def _enforcement_rows() -> list[Behaviour]:
    row = principals_row
    rows = []
    for who in ("reader", "dev", "nobody"):
        rows.append(
            row(
                f"changing-an-acl-needs-manage-{who}",
                f"PUT and PATCH as {who}",
                {"put": "PERMISSION_DENIED", "patch": "PERMISSION_DENIED", "readers": "CAN_READ"},
                _change_needs_manage(f"{who}-token"),
                choice=LEVEL_RULES,
            )
        )
    unknown = [
        ("unknown-group", {"group_name": "no-such-group"}, "GroupName(no-such-group)"),
        ("unknown-user", {"user_name": "ghost@example.com"}, "UserName(ghost@example.com)"),
    ]
    for method in ("PUT", "PATCH"):
        for name, who, label in unknown:
            rows.append(
                row(
                    f"{method.lower()}-{name}",
                    f"{method} an entry naming {name.replace('-', ' ')}",
                    {**INVALID, "message": f"Principal: {label} does not exist"},
                    _unknown_principal(method, {**who, "permission_level": "CAN_READ"}),
                    choice=UNKNOWN_PRINCIPAL,
                )
            )
    for name in READS:
        where = "<scratch>" if name == "list" else "<scratch>/etl"
        rows.append(
            row(
                f"read-needs-read-{name}",
                f"a stranger: {name}",
                _denied(user("nobody"), "Read", where),
                _read_needs_read(name),
                choice=LISTING if name == "list" else LEVEL_RULES,
            )
        )
    return rows


def _write_rows() -> list[Behaviour]:
    row = principals_row
    rows = []
    for who in ("reader", "nobody"):
        for name in WRITES:
            rows.append(
                row(
                    f"write-needs-edit-{name}-{who}",
                    f"{name} as {who}",
                    {"refused": _denied(user(who), "Edit", WRITE_TARGETS[name]), "unchanged": True},
                    _write_needs_edit(name, f"{who}-token"),
                    choice=MESSAGE,
                )
            )
    for name in WRITES:
        rows.append(
            row(
                f"write-with-edit-{name}",
                f"{name} by a reader granted CAN_EDIT",
                "written",
                _write_with_edit(name),
                choice=LEVEL_RULES,
            )
        )
    return rows


ROWS = [*ACL_ROWS, *_refusal_rows(), *PRINCIPAL_ROWS, *_enforcement_rows(), *_write_rows()]
