"""Permissions as code, end to end: the real CLI and SDK against the emulator with principals.

Prod lives under the deploying service principal's home; its config grants a readers group
CAN_READ and the service principal CAN_MANAGE. The deploy sets that ACL once, leaves it
alone while it matches, puts it right in one PUT when the list changes, removes direct
grants someone made on managed objects (never on anything else), refuses a list that
would lock the deployer out, and puts notebooks and ACLs back when a permissions write
fails. Writes are counted from the emulator's request log.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import PermissionDenied
from databricks.sdk.service.workspace import (
    ExportFormat,
    ImportFormat,
    Language,
    WorkspaceObjectAccessControlRequest,
    WorkspaceObjectPermissionLevel,
)

from dbx_promote import operations
from dbx_promote.artifact import Artifact
from dbx_promote.ci.markdown import plan_summary_markdown
from dbx_promote.config import Environment, load_config
from dbx_promote.deploy import DeployOptions
from dbx_promote.emulator import Emulator, Fault
from dbx_promote.envtests import PollPolicy
from dbx_promote.operations import TestOptions
from dbx_promote.workspace import Workspace

from cli_helpers import run_cli
from conftest import FakeClock
from deploy_helpers import V1, V2, build, managed_state

SP = "9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f"
PROD = f"/Users/{SP}/prod/app"
READERS = {"group": "readers", "level": "CAN_READ"}
DEPLOYER = {"service_principal": SP, "level": "CAN_MANAGE"}
ANALYST = {"user": "analyst@example.com", "level": "CAN_RUN"}
PRINCIPALS = [
    f"sp-token={SP}:deployers",
    "reader-token=reader@example.com:readers",
    "analyst-token=analyst@example.com",
    "ops-token=ops@example.com:admins",
]

Client = Callable[[str], WorkspaceClient]


@pytest.fixture
def as_(emulator: Emulator, fake_clock: FakeClock) -> Client:
    """An SDK client by token; the emulator enforces the principals' permissions."""
    for spec in PRINCIPALS:
        emulator.add_principal(spec)

    def make(token: str) -> WorkspaceClient:
        cfg = Config(host=emulator.url, token=token, auth_type="pat", clock=fake_clock)
        return WorkspaceClient(config=cfg)

    return make


def write_config(tmp: Path, grants: list[dict[str, str]], root: str = PROD) -> Path:
    cfg = tmp / "dbx-promote.yml"
    cfg.write_text(
        json.dumps(
            {
                "project": "app",
                "environments": {"prod": {"root": root, "permissions": grants}},
            }
        )
    )
    return cfg


def cli(
    emulator: Emulator, cfg: Path, *args: str, token: str = "sp-token"
) -> subprocess.CompletedProcess[str]:
    return run_cli(cfg, *args, host=emulator.url, extra_env={"DATABRICKS_TOKEN": token})


def deploy_json(
    emulator: Emulator, cfg: Path, artifact: Artifact, *args: str, token: str = "sp-token"
) -> dict[str, Any]:
    result = cli(
        emulator,
        cfg,
        "deploy",
        str(artifact.path),
        "--env",
        "prod",
        "--output",
        "json",
        *args,
        token=token,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def direct_grants(client: WorkspaceClient, path: str) -> list[dict[str, str]]:
    """The direct (not inherited) grants of ``path``, in the config's spelling, sorted."""
    info = client.workspace.get_status(path)
    kind = {"DIRECTORY": "directories", "NOTEBOOK": "notebooks", "FILE": "files"}[
        info.object_type.value  # type: ignore[union-attr]
    ]
    perms = client.workspace.get_permissions(kind, str(info.object_id))
    out = []
    for entry in perms.access_control_list or []:
        for p in entry.all_permissions or []:
            if p.inherited:
                continue
            who = (
                ("user", entry.user_name)
                if entry.user_name
                else ("service_principal", entry.service_principal_name)
                if entry.service_principal_name
                else ("group", entry.group_name)
            )
            out.append({who[0]: str(who[1]), "level": p.permission_level.value})  # type: ignore[union-attr]
    return sorted(out, key=lambda g: json.dumps(g, sort_keys=True))


def by_json(grants: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(grants, key=lambda g: json.dumps(g, sort_keys=True))


def hand_grant(client: WorkspaceClient, path: str, user: str, level: str = "CAN_EDIT") -> None:
    """What a person does in the UI: add a direct grant on one object (a PATCH)."""
    info = client.workspace.get_status(path)
    kind = "notebooks" if info.object_type.value == "NOTEBOOK" else "directories"  # type: ignore[union-attr]
    client.workspace.update_permissions(
        kind,
        str(info.object_id),
        access_control_list=[
            WorkspaceObjectAccessControlRequest(
                user_name=user, permission_level=WorkspaceObjectPermissionLevel(level)
            )
        ],
    )


def permission_writes(emulator: Emulator, since: int = 0) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.request_log()[since:]
        if r["endpoint"].startswith("permissions/") and r["method"] in ("PUT", "PATCH")
    ]


def all_writes(emulator: Emulator, since: int = 0) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.request_log()[since:]
        if r["endpoint"] in ("import", "mkdirs", "delete")
        or (r["endpoint"].startswith("permissions/") and r["method"] in ("PUT", "PATCH"))
    ]


@pytest.fixture
def v1(tmp_path: Path) -> Artifact:
    return build(tmp_path, V1, "1.0.0")


@pytest.fixture
def v2(tmp_path: Path) -> Artifact:
    return build(tmp_path, V2, "2.0.0")


# --- first deploy, no-op, a changed list --------------------------------------------------


def test_the_first_deploy_sets_roots_acl_to_exactly_the_list(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    data = deploy_json(emulator, cfg, v1)
    assert data["permissions"]["grant"] == [READERS]  # the creator already has CAN_MANAGE
    assert data["permissions"]["revoke"] == [] and data["permissions"]["drift"] == []
    assert "**Permissions: grant on root** (1)" in plan_summary_markdown(data)
    assert direct_grants(as_("sp-token"), PROD) == by_json([READERS, DEPLOYER])
    puts = permission_writes(emulator)
    assert [(r["method"], r["endpoint"], r["path"]) for r in puts] == [
        ("PUT", "permissions/directories", PROD)
    ]


def test_an_unchanged_redeploy_makes_no_permissions_write(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    deploy_json(emulator, cfg, v1)
    start = len(emulator.request_log())
    again = deploy_json(emulator, cfg, v1)
    assert again["noop"] is True
    assert again["permissions"] == {
        "known": True,
        "grant": [],
        "revoke": [],
        "change": [],
        "drift": [],
        "warnings": [],
    }
    assert all_writes(emulator, start) == []
    assert "**Permissions:** as configured" in plan_summary_markdown(again)


def test_an_unchanged_redeploy_reads_root_and_each_managed_acl_once(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    """The cost of permissions on a no-op: one ACL read per managed object (here 9: five
    folders with the state folder, three notebooks, one file), root's status and ACL once
    (the preflight's read serves the first plan), SCIM Me once."""
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    deploy_json(emulator, cfg, v1)
    start = len(emulator.request_log())
    assert deploy_json(emulator, cfg, v1)["noop"] is True
    log = emulator.request_log()[start:]
    reads = Counter(
        (r["endpoint"], r["path"]) for r in log if r["endpoint"].startswith("permissions/")
    )
    assert reads[("permissions/directories", PROD)] == 1
    assert len(reads) == 10 and set(reads.values()) == {1}
    assert [r["path"] for r in log if r["endpoint"] == "get-status"] == [PROD]
    assert sum(r["endpoint"].endswith("scim/v2/Me") for r in log) == 1
    assert len(log) == 17  # 6 without permissions: SCIM Me, 4 listing pages, the record
    start = len(emulator.request_log())
    cli(emulator, cfg, "status", "--env", "prod")
    assert sum(r["endpoint"].endswith("scim/v2/Me") for r in emulator.request_log()[start:]) == 1


def test_a_changed_list_is_exactly_one_put_on_root(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    deploy_json(emulator, write_config(tmp_path, [READERS, DEPLOYER]), v1)
    start = len(emulator.request_log())
    changed = [{"group": "readers", "level": "CAN_RUN"}, DEPLOYER, ANALYST]
    data = deploy_json(emulator, write_config(tmp_path, changed), v1)
    assert data["permissions"]["grant"] == [ANALYST]
    assert data["permissions"]["change"] == [
        {"group": "readers", "from": "CAN_READ", "to": "CAN_RUN"}
    ]
    puts = permission_writes(emulator, start)
    assert [(r["method"], r["path"]) for r in puts] == [("PUT", PROD)]
    assert direct_grants(as_("sp-token"), PROD) == by_json(changed)


def test_a_revoked_grant_is_a_plan_row_and_goes(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    deploy_json(emulator, write_config(tmp_path, [READERS, DEPLOYER, ANALYST]), v1)
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    plan = cli(emulator, cfg, "deploy", str(v1.path), "--env", "prod", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "revoke" in plan.stdout and "user analyst@example.com: CAN_RUN" in plan.stdout
    assert "1 permission change(s)" in plan.stdout
    deploy_json(emulator, cfg, v1)
    assert direct_grants(as_("sp-token"), PROD) == by_json([READERS, DEPLOYER])


# --- drift: direct grants on managed objects ------------------------------------------------


def test_a_hand_grant_on_a_managed_notebook_is_reported_then_removed_by_the_next_deploy(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    deploy_json(emulator, cfg, v1)
    hand_grant(as_("ops-token"), f"{PROD}/etl/ingest", "reader@example.com")
    hand = {"path": f"{PROD}/etl/ingest", "user": "reader@example.com", "level": "CAN_EDIT"}

    status = cli(emulator, cfg, "status", "--env", "prod", "--output", "json")
    assert status.returncode == 0, status.stderr
    perms = json.loads(status.stdout)["permissions"]
    assert perms["as_configured"] is False and perms["drift"] == [hand]
    text = cli(emulator, cfg, "status", "--env", "prod").stdout
    assert "grant drift etl/ingest: user reader@example.com: CAN_EDIT" in text
    check = cli(emulator, cfg, "status", "--check", "--env", "prod")
    assert check.returncode == 1
    assert "1 direct grant(s) made by hand on managed objects: etl/ingest" in check.stdout

    plan = cli(
        emulator, cfg, "deploy", str(v1.path), "--env", "prod", "--dry-run", "--output", "json"
    )
    assert json.loads(plan.stdout)["permissions"]["drift"] == [hand]
    # The run summary an approver reads shows it too.
    summary = plan_summary_markdown(json.loads(plan.stdout))
    assert "**Permission drift (direct grants removed)** (1)" in summary
    assert f"- `{PROD}/etl/ingest: user reader@example.com: CAN_EDIT`" in summary
    table = cli(emulator, cfg, "deploy", str(v1.path), "--env", "prod", "--dry-run").stdout
    assert "etl/ingest: user reader@example.com: CAN_EDIT (removed)" in table
    assert "permission drift" in table

    start = len(emulator.request_log())
    data = deploy_json(emulator, cfg, v1)
    assert data["noop"] is False and data["permissions"]["drift"] == [hand]
    assert direct_grants(as_("sp-token"), f"{PROD}/etl/ingest") == [DEPLOYER]
    assert [(r["endpoint"], r["path"]) for r in permission_writes(emulator, start)] == [
        ("permissions/notebooks", f"{PROD}/etl/ingest")
    ]
    after = json.loads(cli(emulator, cfg, "status", "--env", "prod", "--output", "json").stdout)
    assert after["permissions"]["as_configured"] is True
    assert "permissions as configured" in cli(emulator, cfg, "status", "--env", "prod").stdout
    assert cli(emulator, cfg, "status", "--check", "--env", "prod").returncode == 0


def test_a_hand_grant_on_an_unmanaged_object_is_left_alone(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact, v2: Artifact
) -> None:
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    deploy_json(emulator, cfg, v1)
    ops = as_("ops-token")
    ops.workspace.import_(
        f"{PROD}/scratch",
        content="cHJpbnQoMSk=",
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
    )
    hand_grant(ops, f"{PROD}/scratch", "reader@example.com")
    before = direct_grants(ops, f"{PROD}/scratch")
    status = json.loads(cli(emulator, cfg, "status", "--env", "prod", "--output", "json").stdout)
    assert status["permissions"]["as_configured"] is True
    data = deploy_json(emulator, cfg, v2)
    assert data["permissions"]["drift"] == []
    assert direct_grants(ops, f"{PROD}/scratch") == before
    assert {"user": "reader@example.com", "level": "CAN_EDIT"} in before


# --- what people may do in Prod --------------------------------------------------------------


def test_a_readers_token_can_export_prod_and_is_refused_every_write(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    deploy_json(emulator, write_config(tmp_path, [READERS, DEPLOYER]), v1)
    reader = as_("reader-token")
    before = managed_state(emulator, PROD)
    exported = reader.workspace.export(f"{PROD}/etl/ingest", format=ExportFormat.SOURCE)
    assert exported.content
    with pytest.raises(PermissionDenied) as refused:
        reader.workspace.import_(
            f"{PROD}/etl/ingest",
            content="cHJpbnQoMik=",
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
    assert "reader@example.com does not have Edit permissions" in str(refused.value)
    with pytest.raises(PermissionDenied):
        reader.workspace.delete(f"{PROD}/etl/ingest")
    assert managed_state(emulator, PROD) == before


def test_a_reader_plans_with_permissions_unknown_and_a_dry_run_writes_nothing(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact, v2: Artifact
) -> None:
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    deploy_json(emulator, cfg, v1)
    start = len(emulator.request_log())
    result = cli(
        emulator,
        cfg,
        "deploy",
        str(v2.path),
        "--env",
        "prod",
        "--dry-run",
        "--output",
        "json",
        token="reader-token",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["permissions"]["known"] is False and data["changes"]["create"]
    assert "permissions of" in result.stderr and "unknown" in result.stderr
    sp_plan = cli(emulator, cfg, "deploy", str(v2.path), "--env", "prod", "--dry-run")
    assert "permissions as configured" in sp_plan.stdout
    assert all_writes(emulator, start) == []


def test_a_saved_plan_goes_stale_when_the_acl_changed(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact, v2: Artifact
) -> None:
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    deploy_json(emulator, cfg, v1)
    saved = tmp_path / "plan.json"
    made = cli(
        emulator,
        cfg,
        "deploy",
        str(v2.path),
        "--env",
        "prod",
        "--dry-run",
        "--plan-out",
        str(saved),
    )
    assert made.returncode == 0, made.stderr
    hand_grant(as_("ops-token"), f"{PROD}/etl/clean", "reader@example.com")
    start = len(emulator.request_log())
    applied = cli(emulator, cfg, "deploy", str(v2.path), "--env", "prod", "--plan", str(saved))
    assert applied.returncode == 1, applied.stderr
    assert "permissions" in applied.stderr and "Review a new plan" in applied.stderr
    # Only the deploy lock was taken and released: no notebook, no ACL was written.
    assert {r["path"] for r in all_writes(emulator, start)} == {f"{PROD}/.dbx-promote/lock.json"}


# --- the lockout guard --------------------------------------------------------------------------

APPS = "/Apps/prod/app"


def apps_root(admin: WorkspaceClient) -> None:
    """A root outside the service principal's home, where an admin gave it CAN_MANAGE: there
    it holds CAN_MANAGE only through root's ACL."""
    admin.workspace.mkdirs(APPS)
    info = admin.workspace.get_status(APPS)
    admin.workspace.set_permissions(
        "directories",
        str(info.object_id),
        access_control_list=[
            WorkspaceObjectAccessControlRequest(
                service_principal_name=SP,
                permission_level=WorkspaceObjectPermissionLevel.CAN_MANAGE,
            )
        ],
    )


@pytest.mark.parametrize("redeploy", [False, True], ids=["first-deploy", "new-release"])
def test_the_lockout_guard_refuses_with_exit_2_before_any_write(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact, v2: Artifact, redeploy: bool
) -> None:
    apps_root(as_("ops-token"))
    if redeploy:
        deploy_json(emulator, write_config(tmp_path, [READERS, DEPLOYER], APPS), v1)
    before = managed_state(emulator, APPS)
    start = len(emulator.request_log())
    result = cli(
        emulator, write_config(tmp_path, [READERS], APPS), "deploy", str(v2.path), "--env", "prod"
    )
    assert result.returncode == 2, result.stderr
    assert f"service principal {SP} without CAN_MANAGE" in result.stderr
    assert "nothing was written" in result.stderr
    assert all_writes(emulator, start) == []
    assert managed_state(emulator, APPS) == before


def test_a_dry_run_only_warns_about_a_lockout(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    apps_root(as_("ops-token"))
    cfg = write_config(tmp_path, [READERS], APPS)
    start = len(emulator.request_log())
    result = cli(emulator, cfg, "deploy", str(v1.path), "--env", "prod", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"warning: the permissions would leave the signed-in service principal {SP}" in (
        result.stderr
    )
    assert all_writes(emulator, start) == []


# --- a failed permissions write -------------------------------------------------------------------


@pytest.mark.parametrize("after", [False, True], ids=["refused", "landed-then-failed"])
@pytest.mark.parametrize("object_type", ["directories", "notebooks"])
def test_a_fault_on_a_permissions_put_leaves_notebooks_and_acls_as_before(
    emulator: Emulator,
    as_: Client,
    tmp_path: Path,
    v1: Artifact,
    v2: Artifact,
    object_type: str,
    after: bool,
) -> None:
    deploy_json(emulator, write_config(tmp_path, [READERS, DEPLOYER]), v1)
    sp = as_("sp-token")
    hand_grant(as_("ops-token"), f"{PROD}/etl/clean", "reader@example.com")
    notebooks = managed_state(emulator, PROD)
    root_acl = direct_grants(sp, PROD)
    clean_acl = direct_grants(sp, f"{PROD}/etl/clean")
    emulator.add_fault(
        Fault(
            endpoint=f"permissions/{object_type}",
            method="PUT",
            status=400,
            error_code="INVALID_STATE",
            after=after,
        )
    )
    changed = write_config(tmp_path, [READERS, DEPLOYER, ANALYST])
    result = cli(emulator, changed, "deploy", str(v2.path), "--env", "prod")
    emulator.clear_faults()
    assert result.returncode == 1, result.stderr
    assert "restored" in result.stderr and "the permissions were put back" in result.stderr
    assert managed_state(emulator, PROD) == notebooks
    assert direct_grants(sp, PROD) == root_acl
    assert direct_grants(sp, f"{PROD}/etl/clean") == clean_acl
    # The next deploy converges: new release, new list, drift gone.
    deploy_json(emulator, changed, v2)
    assert direct_grants(sp, PROD) == by_json([READERS, DEPLOYER, ANALYST])
    assert direct_grants(sp, f"{PROD}/etl/clean") == [DEPLOYER]


# --- someone other than the deployer plans and redeploys ----------------------------------------


def test_another_admins_dry_run_and_redeploy_keep_the_deployers_own_grants(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    cfg = write_config(tmp_path, [READERS, DEPLOYER])
    deploy_json(emulator, cfg, v1)  # the service principal creates every managed object
    ops = as_("ops-token")
    hand_grant(ops, f"{PROD}/etl/ingest", "reader@example.com")
    hand = {"path": f"{PROD}/etl/ingest", "user": "reader@example.com", "level": "CAN_EDIT"}

    plan = cli(
        emulator, cfg, "deploy", str(v1.path), "--env", "prod", "--dry-run", "--output", "json",
        token="ops-token",
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["permissions"]["drift"] == [hand]
    status = cli(emulator, cfg, "status", "--env", "prod", "--output", "json", token="ops-token")
    assert json.loads(status.stdout)["permissions"]["drift"] == [hand]

    start = len(emulator.request_log())
    data = deploy_json(emulator, cfg, v1, token="ops-token")
    assert data["permissions"]["drift"] == [hand]
    assert [r["path"] for r in permission_writes(emulator, start)] == [f"{PROD}/etl/ingest"]
    assert direct_grants(ops, f"{PROD}/etl/ingest") == [DEPLOYER]
    # In sync now, for either of them: an unchanged redeploy by the admin writes nothing.
    start = len(emulator.request_log())
    again = deploy_json(emulator, cfg, v1, token="ops-token")
    assert again["noop"] is True and again["permissions"]["drift"] == []
    assert all_writes(emulator, start) == []
    for token in ("ops-token", "sp-token"):
        shown = cli(emulator, cfg, "status", "--env", "prod", "--output", "json", token=token)
        assert json.loads(shown.stdout)["permissions"]["as_configured"] is True


# --- a root under /Shared ---------------------------------------------------------------------


def test_under_shared_only_what_others_inherit_is_warned_about(
    emulator: Emulator, as_: Client, tmp_path: Path, v1: Artifact
) -> None:
    """The deployer creates /Shared/app, so root inherits its CAN_MANAGE from there: that
    is its own grant, not a broader one; `users: CAN_MANAGE` from /Shared is."""
    cfg = write_config(tmp_path, [READERS], "/Shared/app/prod")
    users = (
        "inherited grant group users: CAN_MANAGE from /Shared is broader than the config "
        "(nothing); a grant on root cannot remove it"
    )
    assert deploy_json(emulator, cfg, v1)["permissions"]["warnings"] == [users]
    assert deploy_json(emulator, cfg, v1)["permissions"]["warnings"] == [users]
    status = cli(emulator, cfg, "status", "--env", "prod", "--output", "json")
    assert json.loads(status.stdout)["permissions"]["warnings"] == [users]
    dry = cli(emulator, cfg, "deploy", str(v1.path), "--env", "prod", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.strip().splitlines() == [f"warning: {users}"]


# --- a rollback after failed tests, on the same deployer ---------------------------------------

PASSES = "# Databricks notebook source\nassert 1 + 1 == 2\n"
FAILS = "# Databricks notebook source\nassert 1 + 1 == 3, 'v3 is broken'\n"


def test_a_failed_rollback_never_puts_back_what_the_committed_deploy_removed(
    emulator: Emulator, as_: Client, tmp_path: Path, fake_clock: FakeClock
) -> None:
    """testgate rolls back with the same Deployer; a rollback that fails before writing any
    ACL has no permissions to put back (the deploy before it committed its own)."""
    cfg = tmp_path / "dbx-promote.yml"
    tests = {"notebooks": ["tests/*"], "compute": {"serverless": True}, "on_failure": "rollback"}
    prod = {"root": PROD, "permissions": [READERS, DEPLOYER], "tests": tests}
    cfg.write_text(json.dumps({"project": "app", "environments": {"prod": prod}}))
    config = load_config(cfg)

    def connect(env: Environment) -> Workspace:
        sdk = Config(host=emulator.url, token="sp-token", auth_type="pat", clock=fake_clock)
        return Workspace(WorkspaceClient(config=sdk), sleep=fake_clock.sleep)

    v1 = build(
        tmp_path, {**V1, "etl/legacy.py": V1["etl/ingest.py"], "tests/smoke.py": PASSES}, "1.0.0"
    )
    v3 = build(tmp_path, {**V1, "tests/smoke.py": FAILS}, "3.0.0")  # etl/legacy goes
    fast = TestOptions(policy=PollPolicy(first=0.05, longest=0.3))
    operations.deploy(config, "prod", v1, DeployOptions(), connect=connect, tests=fast)
    hand_grant(as_("ops-token"), f"{PROD}/etl/ingest", "reader@example.com")
    # The rollback to 1.0.0 recreates etl/legacy: that import fails, before any ACL write.
    emulator.add_fault(
        Fault(endpoint="import", path_glob=f"{PROD}/etl/legacy", status=400,
              error_code="INVALID_STATE")
    )  # fmt: skip
    result = operations.deploy(config, "prod", v3, DeployOptions(), connect=connect, tests=fast)
    emulator.clear_faults()
    assert result.tests is not None and result.tests.outcome == "failed"
    assert result.rollback_error is not None and "rollback to 1.0.0 failed" in result.rollback_error
    assert "permissions" not in result.rollback_error
    assert direct_grants(as_("sp-token"), f"{PROD}/etl/ingest") == [DEPLOYER]
    assert direct_grants(as_("sp-token"), PROD) == by_json([READERS, DEPLOYER])
