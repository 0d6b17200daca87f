"""Permissions as code, pure part: config validation, ACL diff, drift, inherited warnings, lockout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from dbx_promote.access import AclWriter, managed_objects, plan_permissions, refuse_lockout
from dbx_promote.config import load_config
from dbx_promote.emulator import Emulator
from dbx_promote.errors import ConfigError, LockoutRefused, PermissionDenied
from dbx_promote.permissions import (
    Change,
    Cleanup,
    DriftGrant,
    Grant,
    Identity,
    InheritedGrant,
    ObjectAcl,
    broader_inherited,
    diff_acl,
    find_drift,
    lockout_problem,
)
from dbx_promote.remote import RemoteObject
from dbx_promote.workspace import Workspace

from conftest import FakeClock

SP = "9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f"
READERS = Grant("group", "readers", "CAN_READ")
DEPLOYER = Grant("service_principal", SP, "CAN_MANAGE")
ME = Identity(SP, "service_principal", frozenset({"deployers"}))


def config_with(tmp_path: Path, permissions: str) -> Path:
    p = tmp_path / "dbx-promote.yml"
    p.write_text(
        "project: app\nenvironments:\n  prod:\n    root: /Users/x@example.com/app\n"
        f"    permissions: {permissions}\n"
    )
    return p


def test_config_reads_the_permission_list(tmp_path: Path) -> None:
    cfg = load_config(
        config_with(
            tmp_path,
            f"[{{group: readers, level: CAN_READ}}, {{service_principal: {SP}, level: CAN_MANAGE}},"
            " {user: a@example.com, level: CAN_RUN}]",
        )
    )
    assert cfg.environment("prod").permissions == (
        READERS,
        DEPLOYER,
        Grant("user", "a@example.com", "CAN_RUN"),
    )


def test_without_permissions_they_are_not_managed(tmp_path: Path) -> None:
    p = tmp_path / "dbx-promote.yml"
    p.write_text("project: app\nenvironments:\n  prod: {root: /Shared/app}\n")
    assert load_config(p).environment("prod").permissions is None


def test_an_empty_list_means_no_direct_grants(tmp_path: Path) -> None:
    assert load_config(config_with(tmp_path, "[]")).environment("prod").permissions == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{group: readers}", "must be a list"),
        ("[{group: readers, level: CAN_FLY}]", "level must be one of CAN_READ, CAN_RUN"),
        ("[{level: CAN_READ}]", "exactly one of group, user, service_principal"),
        ("[{group: a, user: b, level: CAN_READ}]", "exactly one of group, user"),
        ("[{group: a, level: CAN_READ}, {group: a, level: CAN_EDIT}]", "listed more than once"),
        ("[{group: a, level: CAN_READ, note: x}]", "unknown key 'note'"),
        ("[{group: '', level: CAN_READ}]", "non-empty name"),
        ("[readers]", "must be a mapping"),
        ("[{group: admins, level: CAN_MANAGE}]", "admins always have CAN_MANAGE"),
    ],
)
def test_bad_permissions_are_one_config_error(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(config_with(tmp_path, value))
    assert message in str(exc.value)
    assert "environments.prod.permissions" in str(exc.value)
    assert exc.value.exit_code == 2


def test_every_permission_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(config_with(tmp_path, "[{group: a, level: X}, {level: CAN_READ}]"))
    assert "has 2 problems" in str(exc.value)


# --- diff ---------------------------------------------------------------------------------


def test_diff_of_equal_lists_is_empty() -> None:
    assert diff_acl([READERS, DEPLOYER], [DEPLOYER, READERS]) == ((), (), ())


def test_diff_grants_revokes_and_changes() -> None:
    editor = Grant("user", "hand@example.com", "CAN_EDIT")
    grant, revoke, change = diff_acl(
        [Grant("group", "readers", "CAN_RUN"), DEPLOYER], [READERS, editor]
    )
    assert grant == (DEPLOYER,)
    assert revoke == (editor,)
    assert change == (Change(READERS, Grant("group", "readers", "CAN_RUN")),)


# --- drift --------------------------------------------------------------------------------


def test_the_deployers_own_can_manage_is_not_drift() -> None:
    acl = ObjectAcl("/p/etl", "notebooks", 7, direct=(DEPLOYER,))
    assert find_drift([acl], ME) == ((), ())


def test_hand_grants_on_managed_objects_are_drift_and_cleanup_keeps_the_creator() -> None:
    hand = Grant("user", "hand@example.com", "CAN_EDIT")
    acl = ObjectAcl("/p/etl", "notebooks", 7, direct=(DEPLOYER, hand))
    drift, cleanups = find_drift([acl], ME)
    assert drift == (DriftGrant("/p/etl", hand),)
    assert cleanups == (Cleanup("/p/etl", "notebooks", 7, (DEPLOYER,), (DEPLOYER, hand)),)


def test_another_principals_creator_grant_is_drift() -> None:
    other = Grant("user", "someone@example.com", "CAN_MANAGE")
    drift, _ = find_drift([ObjectAcl("/p/etl", "notebooks", 7, direct=(other,))], ME)
    assert [d.grant for d in drift] == [other]


def test_the_deployers_lower_grant_is_drift() -> None:
    mine = Grant("service_principal", SP, "CAN_READ")
    drift, _ = find_drift([ObjectAcl("/p/etl", "notebooks", 7, direct=(mine,))], ME)
    assert [d.grant for d in drift] == [mine]


def test_whoever_plans_the_recorded_deployers_creator_grant_is_not_drift() -> None:
    admin = Identity("ops@example.com", groups=frozenset({"admins"}))
    hand = Grant("user", "reader@example.com", "CAN_EDIT")
    acl = ObjectAcl("/p/etl", "notebooks", 7, direct=(DEPLOYER, hand))
    drift, cleanups = find_drift([acl], admin, ME)
    assert [d.grant for d in drift] == [hand]
    assert cleanups[0].keep == (DEPLOYER,)  # the cleanup PUT keeps the deployer's grant


def test_manage_for_a_principal_the_config_gives_manage_on_root_is_not_drift() -> None:
    """It inherits CAN_MANAGE from root anyway: an admin's deploy keeps an earlier
    deployer's creator grants even once the record names the admin."""
    hand = Grant("user", "reader@example.com", "CAN_EDIT")
    acl = ObjectAcl("/p/etl", "notebooks", 7, direct=(DEPLOYER, hand))
    admin = Identity("ops@example.com", groups=frozenset({"admins"}))
    drift, cleanups = find_drift([acl], admin, desired=[READERS, DEPLOYER])
    assert [d.grant for d in drift] == [hand] and cleanups[0].keep == (DEPLOYER,)
    drift, _ = find_drift([acl], admin, desired=[READERS])
    assert [d.grant for d in drift] == [DEPLOYER, hand]


# --- inherited grants ---------------------------------------------------------------------


def test_inherited_grants_broader_than_the_config_are_warned_about() -> None:
    root = ObjectAcl(
        "/Shared/app/prod",
        "directories",
        1,
        inherited=(
            InheritedGrant(Grant("group", "users", "CAN_MANAGE"), "/Shared"),
            InheritedGrant(Grant("group", "admins", "CAN_MANAGE"), "the workspace"),
            InheritedGrant(Grant("group", "readers", "CAN_READ"), "/Shared/app"),
        ),
    )
    warnings = broader_inherited([READERS], root)
    assert warnings == (
        "inherited grant group users: CAN_MANAGE from /Shared is broader than the config "
        "(nothing); a grant on root cannot remove it",
    )


def test_an_inherited_grant_the_config_matches_is_fine() -> None:
    root = ObjectAcl("/r", "directories", 1, inherited=(InheritedGrant(DEPLOYER, "/Users/sp"),))
    assert broader_inherited([DEPLOYER], root) == ()


def test_the_deployers_own_manage_inherited_from_a_folder_it_created_is_no_warning() -> None:
    root = ObjectAcl(
        "/Shared/app/prod",
        "directories",
        1,
        inherited=(
            InheritedGrant(Grant("group", "users", "CAN_MANAGE"), "/Shared"),
            InheritedGrant(DEPLOYER, "/Shared/app"),
        ),
    )
    assert [w.split(" from ")[0] for w in broader_inherited([READERS], root, ME)] == [
        "inherited grant group users: CAN_MANAGE"
    ]


# --- lockout guard ------------------------------------------------------------------------


def test_listed_directly_keeps_can_manage() -> None:
    assert lockout_problem([READERS, DEPLOYER], ME) is None


def test_through_a_group_keeps_can_manage() -> None:
    assert lockout_problem([Grant("group", "deployers", "CAN_MANAGE")], ME) is None


def test_admins_keep_can_manage() -> None:
    assert lockout_problem([], Identity("a@example.com", groups=frozenset({"admins"}))) is None


def test_an_inherited_can_manage_keeps_it() -> None:
    assert lockout_problem([READERS], ME, [InheritedGrant(DEPLOYER, "/Users/x")]) is None


@pytest.mark.parametrize(
    "desired",
    [
        [READERS],
        [Grant("service_principal", SP, "CAN_EDIT")],
        [Grant("group", "other", "CAN_MANAGE")],
        [Grant("user", SP, "CAN_MANAGE")],
    ],
)
def test_a_list_without_the_deployer_is_a_lockout(desired: list[Grant]) -> None:
    problem = lockout_problem(desired, ME)
    assert problem is not None
    assert f"service principal {SP} without CAN_MANAGE" in problem
    assert "deployers" in problem


def test_users_group_counts_for_everyone() -> None:
    assert lockout_problem([Grant("group", "users", "CAN_MANAGE")], ME) is None


# --- the workspace adapter ----------------------------------------------------------------


@pytest.fixture
def ws_as(emulator: Emulator, fake_clock: FakeClock) -> Callable[[str], Workspace]:
    for spec in (f"sp-token={SP}:deployers", "reader-token=reader@example.com:readers"):
        emulator.add_principal(spec)

    def make(token: str) -> Workspace:
        cfg = Config(host=emulator.url, token=token, auth_type="pat", clock=fake_clock)
        return Workspace(WorkspaceClient(config=cfg), sleep=lambda _: None)

    return make


def test_identity_is_the_scim_me_principal_with_groups(ws_as: Callable[[str], Workspace]) -> None:
    assert ws_as("sp-token").identity() == ME
    assert ws_as("reader-token").identity() == Identity(
        "reader@example.com", "user", frozenset({"readers"})
    )


def test_acl_round_trip(ws_as: Callable[[str], Workspace]) -> None:
    ws = ws_as("sp-token")
    root = f"/Users/{SP}/app"
    ws.mkdirs(root)
    obj = ws.get_status(root)
    assert obj is not None and obj.object_id is not None
    assert ws.get_acl(obj).direct == (DEPLOYER,)
    ws.set_acl("directories", obj.object_id, (READERS, DEPLOYER), root)
    acl = ws.get_acl(obj)
    assert acl.direct == (READERS, DEPLOYER) and acl.object_type == "directories"
    sources = {(i.grant.name, i.source) for i in acl.inherited}
    assert ("admins", "/directories/") in sources


def test_an_acl_read_refused_is_permission_denied(ws_as: Callable[[str], Workspace]) -> None:
    ws = ws_as("sp-token")
    root = f"/Users/{SP}/app"
    ws.mkdirs(root)
    ws.set_acl("directories", ws.get_status(root).object_id or 0, (READERS, DEPLOYER), root)
    obj = ws_as("reader-token").get_status(root)
    assert obj is not None
    with pytest.raises(PermissionDenied):
        ws_as("reader-token").get_acl(obj)


# --- reading into a plan, applying, restoring ---------------------------------------------

ROOT = f"/Users/{SP}/app/prod"


def test_plan_for_a_root_that_does_not_exist_grants_everything_but_the_creator(
    ws_as: Callable[[str], Workspace],
) -> None:
    plan = plan_permissions(ws_as("sp-token"), ROOT, (READERS, DEPLOYER), [])
    assert plan.known and plan.root_id is None
    assert plan.grant == (READERS,) and plan.revoke == () and plan.lockout is None


def test_plan_apply_then_plan_again_is_in_sync(ws_as: Callable[[str], Workspace]) -> None:
    ws = ws_as("sp-token")
    ws.mkdirs(ROOT)
    plan = plan_permissions(ws, ROOT, (READERS, DEPLOYER), [])
    assert AclWriter(ws, ROOT).apply(plan) == 1
    again = plan_permissions(ws, ROOT, (READERS, DEPLOYER), [])
    assert again.in_sync and AclWriter(ws, ROOT).apply(again) == 0


def test_hand_grants_on_managed_objects_are_cleaned_and_restored(
    ws_as: Callable[[str], Workspace], emulator: Emulator
) -> None:
    ws = ws_as("sp-token")
    ws.mkdirs(ROOT)
    ws.import_notebook(f"{ROOT}/etl", b"1", language="PYTHON")
    nb = ws.get_status(f"{ROOT}/etl")
    assert nb is not None and nb.object_id is not None
    hand = Grant("user", "reader@example.com", "CAN_EDIT")
    ws.set_acl("notebooks", nb.object_id, (DEPLOYER, hand), "etl")
    plan = plan_permissions(ws, ROOT, (READERS, DEPLOYER), [nb])
    assert plan.drift == (DriftGrant(f"{ROOT}/etl", hand),)
    writer = AclWriter(ws, ROOT)
    assert writer.apply(plan) == 2
    assert ws.get_acl(nb).direct == (DEPLOYER,)
    root = ws.get_status(ROOT)
    assert root is not None
    before_root = ws.get_acl(root).direct
    assert writer.restore() == []
    assert ws.get_acl(nb).direct == (DEPLOYER, hand)
    assert ws.get_acl(root).direct != before_root


def test_a_refused_acl_read_makes_permissions_unknown(ws_as: Callable[[str], Workspace]) -> None:
    ws = ws_as("sp-token")
    ws.mkdirs(ROOT)
    AclWriter(ws, ROOT).apply(plan_permissions(ws, ROOT, (READERS, DEPLOYER), []))
    plan = plan_permissions(ws_as("reader-token"), ROOT, (READERS, DEPLOYER), [])
    assert not plan.known and "unknown" in plan.warnings[0]
    with pytest.raises(PermissionDenied):
        AclWriter(ws_as("reader-token"), ROOT).apply(plan)


def test_lockout_is_found_and_refused(ws_as: Callable[[str], Workspace]) -> None:
    ws = ws_as("reader-token")
    home = "/Users/reader@example.com/app/prod"
    plan = plan_permissions(ws, home, (READERS,), [])
    # the home's inherited CAN_MANAGE survives a PUT on root: no lockout
    assert plan.lockout is None
    plan = plan_permissions(ws_as("sp-token"), f"/Shared/{SP}/x", (READERS,), [])
    assert plan.lockout is None  # /Shared gives users CAN_MANAGE
    assert any("group users: CAN_MANAGE from /Shared" in w for w in plan.warnings)


def test_a_list_without_the_deployer_under_another_home_is_refused(
    ws_as: Callable[[str], Workspace], emulator: Emulator
) -> None:
    emulator.add_principal("ops-token=ops@example.com:admins")
    ops = ws_as("ops-token")
    ops.mkdirs("/Apps/prod/app")
    app = ops.get_status("/Apps/prod/app")
    assert app is not None and app.object_id is not None
    ops.set_acl("directories", app.object_id, (DEPLOYER,), "/Apps/prod/app")
    plan = plan_permissions(ws_as("sp-token"), "/Apps/prod/app", (READERS,), [])
    assert plan.known and plan.revoke == (DEPLOYER,)
    assert plan.lockout is not None
    with pytest.raises(LockoutRefused) as exc:
        refuse_lockout(plan, "prod")
    assert exc.value.exit_code == 2 and SP in str(exc.value)


def test_managed_objects_are_the_records_objects_their_folders_and_the_state_folder() -> None:
    def obj(path: str, kind: str = "NOTEBOOK") -> RemoteObject:
        return RemoteObject(path=f"/r/{path}", object_type=kind, language=None, object_id=1)

    listing = [
        obj("etl"),
        obj("lib", "DIRECTORY"),
        obj("lib/util"),
        obj("mine"),
        obj("scratch", "DIRECTORY"),
        obj(".dbx-promote", "DIRECTORY"),
    ]
    got = managed_objects("/r", listing, ["etl", "lib/util"])
    assert [o.path for o in got] == ["/r/etl", "/r/lib", "/r/lib/util", "/r/.dbx-promote"]
