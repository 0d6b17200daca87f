"""The real databricks-sdk against the emulator's Permissions API and its enforcement.

Every Permissions endpoint (GET, PUT, PATCH, permissionLevels) for directories, notebooks
and files: success, an unknown object, a bad level, insufficient permission; principals
(tokens, SCIM Me, homes, 401); and each Workspace write refused without CAN_EDIT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import (
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.service.workspace import (
    ImportFormat,
    Language,
    WorkspaceObjectAccessControlRequest,
    WorkspaceObjectPermissionLevel,
)

from dbx_promote.emulator import ApiError, Emulator, EmulatorControl, parse_principal

from conftest import FakeClock

SP = "9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f"
PRINCIPALS = [
    "admin-token=admin@example.com:admins",
    "dev-token=dev@example.com:data-engineers",
    "reader-token=reader@example.com:readers",
    "nobody-token=nobody@example.com",
    f"sp-token={SP}:deployers",
]
PROD = f"/Users/{SP}/prod"
NB = b"# Databricks notebook source\nprint(1)"
Level = WorkspaceObjectPermissionLevel

Client = Callable[[str], WorkspaceClient]


@pytest.fixture
def as_(emulator: Emulator, fake_clock: FakeClock) -> Client:
    """A client factory by token for the session emulator, with principals configured."""
    for spec in PRINCIPALS:
        emulator.add_principal(spec)

    def make(token: str) -> WorkspaceClient:
        cfg = Config(
            host=emulator.url,
            token=token,
            auth_type="pat",
            retry_timeout_seconds=5,
            http_timeout_seconds=5,
            clock=fake_clock,
        )
        return WorkspaceClient(config=cfg)

    return make


def acl_req(**kwargs: Any) -> WorkspaceObjectAccessControlRequest:
    level = kwargs.pop("level")
    return WorkspaceObjectAccessControlRequest(permission_level=Level(level), **kwargs)


def direct(perms: Any) -> dict[str, str]:
    """principal -> level of the direct (not inherited) grants in a permissions answer."""
    out = {}
    for entry in perms.access_control_list or []:
        who = entry.user_name or entry.group_name or entry.service_principal_name
        for p in entry.all_permissions or []:
            if not p.inherited:
                out[who] = p.permission_level.value
    return out


def inherited(perms: Any) -> dict[str, list[tuple[str, list[str]]]]:
    """principal -> [(level, inherited_from_object)] of the inherited grants."""
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for entry in perms.access_control_list or []:
        who = entry.user_name or entry.group_name or entry.service_principal_name
        for p in entry.all_permissions or []:
            if p.inherited:
                out.setdefault(who, []).append(
                    (p.permission_level.value, list(p.inherited_from_object))
                )
    return out


def oid(w: WorkspaceClient, path: str) -> str:
    return str(w.workspace.get_status(path).object_id)


@pytest.fixture
def prod(as_: Client) -> WorkspaceClient:
    """PROD under the service principal's home, readers CAN_READ, with one notebook."""
    sp = as_("sp-token")
    sp.workspace.mkdirs(PROD)
    sp.workspace.upload(f"{PROD}/etl.py", NB, format=ImportFormat.AUTO)
    sp.workspace.set_permissions(
        "directories",
        oid(sp, PROD),
        access_control_list=[
            acl_req(group_name="readers", level="CAN_READ"),
            acl_req(service_principal_name=SP, level="CAN_MANAGE"),
        ],
    )
    return sp


# --- GET --------------------------------------------------------------------------------


def test_get_directory_permissions_shape(prod: WorkspaceClient) -> None:
    perms = prod.workspace.get_permissions("directories", oid(prod, PROD))
    assert perms.object_id == f"/directories/{oid(prod, PROD)}"
    assert perms.object_type == "directory"
    assert direct(perms) == {"readers": "CAN_READ", SP: "CAN_MANAGE"}
    home = oid(prod, f"/Users/{SP}")
    assert inherited(perms)["admins"] == [("CAN_MANAGE", ["/directories/"])]
    assert inherited(perms)[SP] == [("CAN_MANAGE", [f"/directories/{home}"])]


def test_objects_inherit_their_folders_grants(prod: WorkspaceClient) -> None:
    perms = prod.workspace.get_permissions("notebooks", oid(prod, f"{PROD}/etl"))
    assert perms.object_type == "notebook"
    assert inherited(perms)["readers"] == [("CAN_READ", [f"/directories/{oid(prod, PROD)}"])]
    # the creator's own CAN_MANAGE is a direct grant on what it created
    assert direct(perms) == {SP: "CAN_MANAGE"}


def test_shared_gives_users_can_manage(as_: Client) -> None:
    dev = as_("dev-token")
    dev.workspace.mkdirs("/Shared/team")
    perms = dev.workspace.get_permissions("directories", oid(dev, "/Shared/team"))
    shared = oid(dev, "/Shared")
    assert inherited(perms)["users"] == [("CAN_MANAGE", [f"/directories/{shared}"])]
    assert direct(perms) == {"dev@example.com": "CAN_MANAGE"}


def test_file_permissions(as_: Client) -> None:
    dev = as_("dev-token")
    dev.workspace.upload("/Shared/data.csv", b"a,b\n", format=ImportFormat.RAW)
    perms = dev.workspace.get_permissions("files", oid(dev, "/Shared/data.csv"))
    assert perms.object_type == "file" and direct(perms) == {"dev@example.com": "CAN_MANAGE"}


def test_user_entries_carry_a_display_name(prod: WorkspaceClient) -> None:
    perms = prod.workspace.get_permissions("directories", oid(prod, PROD))
    sp_entry = [e for e in perms.access_control_list or [] if e.service_principal_name == SP]
    assert sp_entry and sp_entry[0].display_name


@pytest.mark.parametrize("kind", ["directories", "notebooks", "files"])
def test_get_unknown_object_is_resource_does_not_exist(prod: WorkspaceClient, kind: str) -> None:
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.get_permissions(kind, "999")


def test_object_id_of_another_type_is_unknown(prod: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.get_permissions("notebooks", oid(prod, PROD))


def test_reading_an_acl_needs_can_manage(prod: WorkspaceClient, as_: Client) -> None:
    with pytest.raises(PermissionDenied) as exc:
        as_("reader-token").workspace.get_permissions("directories", oid(prod, PROD))
    assert exc.value.error_code == "PERMISSION_DENIED"
    assert str(exc.value).startswith(
        f"User reader@example.com does not have Manage permissions on /directories/{oid(prod, PROD)}."
    )


def test_unknown_permissions_type_is_endpoint_not_found(prod: WorkspaceClient) -> None:
    with pytest.raises(NotFound) as exc:
        prod.api_client.do("GET", "/api/2.0/permissions/clusters/1")
    assert exc.value.error_code == "ENDPOINT_NOT_FOUND"


# --- PUT --------------------------------------------------------------------------------


def test_put_replaces_direct_grants_and_keeps_admins(prod: WorkspaceClient) -> None:
    got = prod.workspace.set_permissions(
        "directories",
        oid(prod, PROD),
        access_control_list=[acl_req(group_name="deployers", level="CAN_MANAGE")],
    )
    assert direct(got) == {"deployers": "CAN_MANAGE"}
    assert "admins" in inherited(got)
    assert direct(prod.workspace.get_permissions("directories", oid(prod, PROD))) == direct(got)


def test_put_without_entries_deletes_all_direct_grants(prod: WorkspaceClient) -> None:
    got = prod.workspace.set_permissions("directories", oid(prod, PROD), access_control_list=[])
    assert direct(got) == {}
    # the owner keeps its home's inherited CAN_MANAGE, so it is not locked out
    assert inherited(got)[SP] == [("CAN_MANAGE", [f"/directories/{oid(prod, f'/Users/{SP}')}"])]


def test_put_on_a_notebook(prod: WorkspaceClient) -> None:
    got = prod.workspace.set_permissions(
        "notebooks",
        oid(prod, f"{PROD}/etl"),
        access_control_list=[acl_req(user_name="dev@example.com", level="CAN_EDIT")],
    )
    assert direct(got) == {"dev@example.com": "CAN_EDIT"}


def test_put_unknown_object(prod: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.set_permissions("directories", "424242", access_control_list=[])


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    "entry",
    [
        {"group_name": "readers", "permission_level": "CAN_FLY"},
        {"group_name": "readers"},
        {"group_name": "readers", "user_name": "dev@example.com", "permission_level": "CAN_READ"},
        {"group_name": "no-such-group", "permission_level": "CAN_READ"},
        {"user_name": "ghost@example.com", "permission_level": "CAN_READ"},
        {"group_name": "admins", "permission_level": "CAN_READ"},
    ],
    ids=["bad-level", "no-level", "two-principals", "unknown-group", "unknown-user", "admins"],
)
def test_bad_entries_are_invalid_parameter_value(
    prod: WorkspaceClient, method: str, entry: dict[str, str]
) -> None:
    before = direct(prod.workspace.get_permissions("directories", oid(prod, PROD)))
    with pytest.raises(InvalidParameterValue):
        prod.api_client.do(
            method,
            f"/api/2.0/permissions/directories/{oid(prod, PROD)}",
            body={"access_control_list": [entry]},
        )
    assert direct(prod.workspace.get_permissions("directories", oid(prod, PROD))) == before


def test_duplicate_principals_are_refused(prod: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue):
        prod.workspace.set_permissions(
            "directories",
            oid(prod, PROD),
            access_control_list=[
                acl_req(group_name="readers", level="CAN_READ"),
                acl_req(group_name="readers", level="CAN_EDIT"),
            ],
        )


@pytest.mark.parametrize("token", ["reader-token", "dev-token", "nobody-token"])
def test_changing_an_acl_needs_can_manage(prod: WorkspaceClient, as_: Client, token: str) -> None:
    w = as_(token)
    with pytest.raises(PermissionDenied):
        w.workspace.set_permissions("directories", oid(prod, PROD), access_control_list=[])
    with pytest.raises(PermissionDenied):
        w.workspace.update_permissions(
            "directories",
            oid(prod, PROD),
            access_control_list=[acl_req(group_name="readers", level="CAN_MANAGE")],
        )
    assert direct(prod.workspace.get_permissions("directories", oid(prod, PROD)))["readers"] == (
        "CAN_READ"
    )


def test_admins_may_change_any_acl(prod: WorkspaceClient, as_: Client) -> None:
    got = as_("admin-token").workspace.set_permissions(
        "directories", oid(prod, PROD), access_control_list=[]
    )
    assert direct(got) == {}


# --- PATCH ------------------------------------------------------------------------------


def test_patch_adds_and_changes_and_keeps_the_rest(prod: WorkspaceClient) -> None:
    got = prod.workspace.update_permissions(
        "directories",
        oid(prod, PROD),
        access_control_list=[
            acl_req(group_name="readers", level="CAN_RUN"),
            acl_req(user_name="dev@example.com", level="CAN_EDIT"),
        ],
    )
    assert direct(got) == {"readers": "CAN_RUN", "dev@example.com": "CAN_EDIT", SP: "CAN_MANAGE"}


def test_patch_unknown_object(prod: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.update_permissions("notebooks", "424242", access_control_list=[])


# --- permissionLevels -------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "path"), [("directories", PROD), ("notebooks", f"{PROD}/etl")])
def test_permission_levels(prod: WorkspaceClient, as_: Client, kind: str, path: str) -> None:
    got = as_("reader-token").workspace.get_permission_levels(kind, oid(prod, path))
    levels = [p.permission_level.value for p in got.permission_levels or []]
    assert levels == ["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"]


def test_permission_levels_of_unknown_object(prod: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.get_permission_levels("directories", "424242")


def test_permission_levels_need_read(prod: WorkspaceClient, as_: Client) -> None:
    with pytest.raises(PermissionDenied):
        as_("nobody-token").workspace.get_permission_levels("directories", oid(prod, PROD))


# --- principals -------------------------------------------------------------------------


def test_unlisted_token_is_unauthenticated(as_: Client) -> None:
    with pytest.raises(Unauthenticated):
        as_("stolen-token").workspace.get_status("/")


def test_scim_me_answers_for_the_caller_with_groups(as_: Client) -> None:
    me = as_("dev-token").current_user.me()
    assert me.user_name == "dev@example.com"
    assert [g.display for g in me.groups or []] == ["data-engineers"]
    sp = as_("sp-token").current_user.me()
    assert sp.user_name == SP and [g.display for g in sp.groups or []] == ["deployers"]


def test_every_principal_has_a_home_it_manages(as_: Client) -> None:
    for token, name in [("dev-token", "dev@example.com"), ("sp-token", SP)]:
        w = as_(token)
        w.workspace.mkdirs(f"/Users/{name}/scratch")
        w.workspace.upload(f"/Users/{name}/scratch/nb.py", b"1")
    with pytest.raises(PermissionDenied):
        as_("dev-token").workspace.mkdirs(f"/Users/{SP}/intruder")


def test_group_grants_apply_to_members(prod: WorkspaceClient, as_: Client) -> None:
    prod.workspace.update_permissions(
        "directories",
        oid(prod, PROD),
        access_control_list=[acl_req(group_name="data-engineers", level="CAN_EDIT")],
    )
    as_("dev-token").workspace.upload(f"{PROD}/new.py", b"1")
    with pytest.raises(PermissionDenied):
        as_("reader-token").workspace.upload(f"{PROD}/new2.py", b"1")


def test_without_principals_every_token_is_an_admin(
    emulator: Emulator, workspace_client: WorkspaceClient
) -> None:
    workspace_client.workspace.mkdirs("/Users/someone-else/x")
    perms = workspace_client.workspace.get_permissions(
        "directories", oid(workspace_client, "/Users/someone-else/x")
    )
    assert direct(perms) == {emulator.user: "CAN_MANAGE"}
    me = workspace_client.current_user.me()
    assert [g.display for g in me.groups or []] == ["admins"]


def test_principals_over_the_control_api(emulator: Emulator) -> None:
    control = EmulatorControl(emulator.url)
    control.add_principal("t1=ci@example.com:ops,admins")
    assert control.principals() == [
        {"name": "ci@example.com", "kind": "user", "groups": ["ops", "admins"]}
    ]
    assert emulator.caller("t1") is not None and emulator.caller("other") is None
    with pytest.raises(ApiError) as exc:
        control.add_principal("no-equals-sign")
    assert exc.value.status == 400
    control.clear_principals()
    assert emulator.caller("other") is not None


def test_parse_principal_never_quotes_the_token() -> None:
    with pytest.raises(ValueError) as exc:
        parse_principal("secret-token-123")
    assert "secret-token-123" not in str(exc.value)
    assert parse_principal(f"t={SP}:a, b").is_service_principal
    assert parse_principal("t=me@x.com:users,a").groups == ("a",)


def test_cli_serve_with_principals(tmp_path: Any) -> None:
    cmd = [sys.executable, "-m", "dbx_promote", "emulator", "serve", "--port", "0"]
    cmd += ["--principal", "tok-a=a@example.com:readers", "--principal", f"tok-b={SP}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().split()[-1]
        names = {p["name"]: p["kind"] for p in EmulatorControl(url).principals()}
        assert names == {"a@example.com": "user", SP: "service_principal"}
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


def test_cli_serve_refuses_a_bad_principal_in_one_line() -> None:
    cmd = [sys.executable, "-m", "dbx_promote", "emulator", "serve", "--principal", "tok-only"]
    proc = subprocess.run(cmd, capture_output=True, timeout=30, env=os.environ)
    assert proc.returncode == 2
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "tok-only" not in err[0]


# --- enforcement on the Workspace API ---------------------------------------------------


def test_reader_can_read_under_prod(prod: WorkspaceClient, as_: Client) -> None:
    reader = as_("reader-token")
    assert reader.workspace.get_status(f"{PROD}/etl").object_id
    assert [o.path for o in reader.workspace.list(PROD)] == [f"{PROD}/etl"]
    with reader.workspace.download(f"{PROD}/etl") as f:
        assert b"print(1)" in f.read()


@pytest.mark.parametrize(
    "read",
    [
        lambda w: w.workspace.get_status(f"{PROD}/etl"),
        lambda w: list(w.workspace.list(PROD)),
        lambda w: w.workspace.export(f"{PROD}/etl"),
    ],
    ids=["get-status", "list", "export"],
)
def test_reads_need_can_read(
    prod: WorkspaceClient, as_: Client, read: Callable[[WorkspaceClient], Any]
) -> None:
    with pytest.raises(PermissionDenied) as exc:
        read(as_("nobody-token"))
    assert "does not have Read permissions on" in str(exc.value)


def test_everyone_may_list_the_top_folders(as_: Client) -> None:
    w = as_("nobody-token")
    assert w.workspace.get_status("/").object_id
    assert {o.path for o in w.workspace.list("/Users")} >= {f"/Users/{SP}"}


WRITES: dict[str, Callable[[WorkspaceClient], Any]] = {
    "import": lambda w: w.workspace.import_(
        f"{PROD}/new", content="MQ==", language=Language.PYTHON, format=ImportFormat.SOURCE
    ),
    "import-overwrite": lambda w: w.workspace.import_(
        f"{PROD}/etl",
        content="MQ==",
        language=Language.PYTHON,
        format=ImportFormat.SOURCE,
        overwrite=True,
    ),
    "upload": lambda w: w.workspace.upload(f"{PROD}/new.py", b"1", format=ImportFormat.AUTO),
    "upload-overwrite": lambda w: w.workspace.upload(
        f"{PROD}/etl.py",
        b"# Databricks notebook source\n1",
        format=ImportFormat.AUTO,
        overwrite=True,
    ),
    "mkdirs": lambda w: w.workspace.mkdirs(f"{PROD}/sub"),
    "delete": lambda w: w.workspace.delete(f"{PROD}/etl"),
    "delete-folder": lambda w: w.workspace.delete(PROD, recursive=True),
}


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("token", ["reader-token", "nobody-token"])
def test_writes_need_can_edit(
    prod: WorkspaceClient, emulator: Emulator, as_: Client, write: str, token: str
) -> None:
    before = emulator.tree(PROD)
    with pytest.raises(PermissionDenied) as exc:
        WRITES[write](as_(token))
    assert exc.value.error_code == "PERMISSION_DENIED"
    assert "does not have Edit permissions on /Users/" in str(exc.value)
    assert emulator.tree(PROD) == before


@pytest.mark.parametrize("write", list(WRITES))
def test_writes_with_can_edit_succeed(prod: WorkspaceClient, as_: Client, write: str) -> None:
    prod.workspace.update_permissions(
        "directories",
        oid(prod, PROD),
        access_control_list=[acl_req(group_name="readers", level="CAN_EDIT")],
    )
    WRITES[write](as_("reader-token"))


def test_mkdirs_of_an_existing_folder_needs_nothing(prod: WorkspaceClient, as_: Client) -> None:
    as_("reader-token").workspace.mkdirs(PROD)


def test_permission_requests_are_counted_and_logged_by_object(
    prod: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.controls.reset()
    prod.workspace.get_permissions("directories", oid(prod, PROD))
    prod.workspace.set_permissions("directories", oid(prod, PROD), access_control_list=[])
    counters = emulator.counters()
    assert counters["by_endpoint"]["permissions/directories"] == 2
    assert counters["writes"] == 1
    assert [e["path"] for e in emulator.request_log() if e["endpoint"].startswith("perm")] == [
        PROD,
        PROD,
    ]


def test_a_fault_can_target_the_permissions_put(prod: WorkspaceClient, emulator: Emulator) -> None:
    from dbx_promote.emulator import Fault

    emulator.add_fault(Fault(endpoint="permissions/directories", method="PUT", path_glob=PROD))
    prod.workspace.get_permissions("directories", oid(prod, PROD))
    with pytest.raises(Exception) as exc:
        prod.workspace.set_permissions("directories", oid(prod, PROD), access_control_list=[])
    assert "Fault injected" in str(exc.value)


def test_deleting_an_object_drops_its_grants(prod: WorkspaceClient, emulator: Emulator) -> None:
    nb = oid(prod, f"{PROD}/etl")
    prod.workspace.delete(f"{PROD}/etl")
    prod.workspace.upload(f"{PROD}/etl.py", NB, format=ImportFormat.AUTO)
    assert oid(prod, f"{PROD}/etl") != nb
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.get_permissions("notebooks", nb)
    assert json.dumps(emulator.tree(PROD))  # tree still serialises
