"""The emulator's principals and Permissions API: what is the emulator's own (the control
API, `--principal`, open mode, counters, faults) and the unknown-object answers.

The behaviours of the service it claims (every Permissions endpoint for directories,
notebooks and files, principals, each Workspace read and write refused without its level)
are rows of the conformance suite, tests/conformance_permissions.py, which the live mode
can replay against a real workspace.
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
    ResourceDoesNotExist,
)
from databricks.sdk.service.workspace import (
    ImportFormat,
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


# --- unknown objects ----------------------------------------------------------------------


def test_put_unknown_object(prod: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.set_permissions("directories", "424242", access_control_list=[])


def test_patch_unknown_object(prod: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.update_permissions("notebooks", "424242", access_control_list=[])


def test_permission_levels_of_unknown_object(prod: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist):
        prod.workspace.get_permission_levels("directories", "424242")


# --- principals -------------------------------------------------------------------------


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


# --- counters, faults, deletion ---------------------------------------------------------


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
