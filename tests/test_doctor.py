"""`dbx-promote doctor` against the emulator: each finding, its fix, and never a write."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.service.workspace import (
    WorkspaceObjectAccessControlRequest,
    WorkspaceObjectPermissionLevel,
)

from dbx_promote.azure.auth import AzurePipelinesTokenSource
from dbx_promote.cli import main
from dbx_promote.config import load_config
from dbx_promote.doctor import FAIL, OK, UNKNOWN, Diagnosis, diagnose
from dbx_promote.emulator import Emulator, Fault
from dbx_promote.errors import UnknownEnvironment
from dbx_promote.record import Lock

from conftest import TEST_TOKEN, FakeClock
from deploy_helpers import V1, build, deploy
from fake_entra import FakeEntra

CONFIG = """\
project: app
source: notebooks
environments:
  test:
    root: /Shared/app/test
  prod:
    root: /Shared/app/prod
    requires: test
"""


@pytest.fixture
def cfg(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABRICKS_HOST", emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TEST_TOKEN)
    path = tmp_path / "dbx-promote.yml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def deployed(cfg: Path, emulator: Emulator, fake_clock: FakeClock, tmp_path: Path) -> Path:
    """v1 deployed and verified in test; prod's parent folder exists."""
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    return cfg


def run_doctor(emulator: Emulator, cfg: Path, env: str | None = None, **kw: object) -> Diagnosis:
    """Diagnose and assert that not one write request was sent (only GETs)."""
    before = len(emulator.request_log())
    result = diagnose(load_config(cfg), env, environ={}, **kw)  # type: ignore[arg-type]
    sent = emulator.request_log()[before:]
    assert sent, "doctor asked the workspace nothing"
    assert [r for r in sent if r["method"] != "GET"] == []
    return result


def find(d: Diagnosis, env: str, name: str) -> tuple[str, str, str]:
    [check] = [c for c in d.checks if c.env == env and c.name == name]
    return check.status, check.detail, check.fix


def statuses(d: Diagnosis, env: str) -> dict[str, str]:
    return {c.name: c.status for c in d.checks if c.env == env}


def test_healthy_setup_passes_every_check(emulator: Emulator, deployed: Path) -> None:
    d = run_doctor(emulator, deployed)
    assert d.ok, d.to_dict()
    assert statuses(d, "test") == {
        "sign-in": OK,
        "root": OK,
        "access": OK,
        "state": OK,
        "lock": OK,
    }
    detail = find(d, "test", "sign-in")[1]
    assert detail.startswith("emulator@example.com (user) via pat on http://127.0.0.1:")
    assert "1.0.0" in find(d, "test", "state")[1] and "verified" in find(d, "test", "state")[1]
    assert find(d, "prod", "root")[:2] == (
        OK,
        "/Shared/app/prod does not exist yet; the first deploy creates it",
    )
    assert find(d, "prod", "requires")[:2] == (OK, "'test' is reachable and runs 1.0.0 (verified)")


def test_a_refused_token_fails_sign_in_and_skips_the_rest(emulator: Emulator, cfg: Path) -> None:
    emulator.add_fault(
        Fault(endpoint="preview/scim/v2/Me", status=401, error_code="UNAUTHENTICATED", times=-1)
    )
    d = run_doctor(emulator, cfg, "test")
    status, detail, fix = find(d, "test", "sign-in")
    assert status == FAIL and "refused the credentials (401)" in detail
    assert "DATABRICKS_TOKEN" in fix
    assert statuses(d, "test") == {
        "sign-in": FAIL,
        "root": UNKNOWN,
        "access": UNKNOWN,
        "state": UNKNOWN,
        "lock": UNKNOWN,
    }


def test_a_missing_root_parent_fails_with_the_folder_to_create(
    emulator: Emulator, cfg: Path
) -> None:
    d = run_doctor(emulator, cfg, "test")
    status, detail, fix = find(d, "test", "root")
    assert status == FAIL
    assert (
        detail == "/Shared/app/test does not exist and its parent folder /Shared/app does not exist"
    )
    assert "databricks workspace mkdirs /Shared/app" in fix
    assert find(d, "test", "access")[0] == UNKNOWN


def test_a_corrupt_record_fails_the_state_check(emulator: Emulator, deployed: Path) -> None:
    emulator.hand_edit("/Shared/app/test/.dbx-promote/deployment.json", b"{not json")
    d = run_doctor(emulator, deployed, "test")
    status, detail, fix = find(d, "test", "state")
    assert status == FAIL
    assert detail == "/Shared/app/test/.dbx-promote/deployment.json is corrupt (not valid JSON)"
    assert fix.startswith("fix or delete it in the workspace")


def test_a_missing_stored_release_fails_the_state_check(
    emulator: Emulator, deployed: Path, workspace_client: object
) -> None:
    releases = [p for p in emulator.tree("/Shared/app/test") if "/releases/" in p]
    for path in releases:
        workspace_client.workspace.delete(path)  # type: ignore[attr-defined]
    status, detail, fix = find(run_doctor(emulator, deployed, "test"), "test", "state")
    assert status == FAIL and "stored release is missing" in detail
    assert "deploy that version's build artifact" in fix


def _put_lock(workspace_client: object, started_at: str) -> None:
    lock = Lock("ci-agent", started_at, "agent-7", 4242, "2.0.0", "sha256:ab", None)
    workspace_client.workspace.upload(  # type: ignore[attr-defined]
        "/Shared/app/test/.dbx-promote/lock.json", lock.to_json(), format=_auto(), overwrite=True
    )


def _auto() -> object:
    from databricks.sdk.service.workspace import ImportFormat

    return ImportFormat.AUTO


def test_a_stale_lock_is_reported_as_an_interrupted_deploy(
    emulator: Emulator, deployed: Path, workspace_client: object
) -> None:
    _put_lock(workspace_client, "2020-01-01T00:00:00Z")
    # The workspace too saw it written long ago: staleness is judged on its clock.
    emulator.backdate("/Shared/app/test/.dbx-promote/lock.json", 3600)
    status, detail, fix = find(run_doctor(emulator, deployed, "test"), "test", "lock")
    assert status == FAIL
    assert "stale lock, an interrupted deploy: held by ci-agent on agent-7" in detail
    assert "deploying 2.0.0" in detail and "lock_stale_minutes: 3" in detail
    assert "dbx-promote deploy --env test --break-lock" in fix


def test_a_fresh_lock_is_a_running_deploy_not_a_failure(
    emulator: Emulator, deployed: Path, workspace_client: object
) -> None:
    from dbx_promote.record import utc_now

    _put_lock(workspace_client, utc_now())
    status, detail, _ = find(run_doctor(emulator, deployed, "test"), "test", "lock")
    assert status == OK and detail.startswith("a deploy is running: ci-agent on agent-7")


def test_a_lock_just_written_by_a_holder_with_a_slow_clock_is_a_running_deploy(
    emulator: Emulator, deployed: Path, workspace_client: object
) -> None:
    _put_lock(workspace_client, "2020-01-01T00:00:00Z")  # its clock says long ago
    status, detail, _ = find(run_doctor(emulator, deployed, "test"), "test", "lock")
    assert status == OK and detail.startswith("a deploy is running: ci-agent on agent-7")


# --- access, with emulator principals ---------------------------------------------------

OWNER = "owner@example.com"
SP = "9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f"
APP = f"/Users/{OWNER}/app/test"


@pytest.fixture
def as_(emulator: Emulator, fake_clock: FakeClock) -> Callable[[str], WorkspaceClient]:
    """Principals on the emulator (an owner, a reader, a stranger, a deployer, an admin)
    and a client factory by token; APP is the owner's, readers may read it."""
    for spec in [
        f"owner-token={OWNER}",
        "reader-token=reader@example.com:readers",
        "nobody-token=nobody@example.com",
        f"sp-token={SP}:deployers",
        "admin-token=ops@example.com:admins",
    ]:
        emulator.add_principal(spec)

    def make(token: str) -> WorkspaceClient:
        cfg = Config(host=emulator.url, token=token, auth_type="pat", clock=fake_clock)
        return WorkspaceClient(config=cfg)

    owner = make("owner-token")
    owner.workspace.mkdirs(APP)
    share(owner, APP, group_name="readers", level="CAN_READ")
    return make


def share(w: WorkspaceClient, path: str, level: str, **who: str) -> None:
    w.workspace.update_permissions(
        "directories",
        str(w.workspace.get_status(path).object_id),
        access_control_list=[
            WorkspaceObjectAccessControlRequest(
                permission_level=WorkspaceObjectPermissionLevel(level), **who
            )
        ],
    )


def doctor_as(
    token: str, cfg: Path, root: str, monkeypatch: pytest.MonkeyPatch, extra: str = ""
) -> Path:
    monkeypatch.setenv("DATABRICKS_TOKEN", token)
    cfg.write_text(
        f"project: app\nsource: notebooks\nenvironments:\n  test:\n    root: {root}\n{extra}"
    )
    return cfg


def test_no_write_permission_fails_access_with_the_grant_to_ask_for(
    emulator: Emulator,
    cfg: Path,
    as_: Callable[[str], WorkspaceClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = len(emulator.request_log())
    d = run_doctor(emulator, doctor_as("reader-token", cfg, APP, monkeypatch), "test")
    assert find(d, "test", "sign-in")[1].startswith("reader@example.com (user) via pat")
    assert find(d, "test", "root")[:2] == (OK, f"{APP} exists")
    status, detail, fix = find(d, "test", "access")
    assert status == FAIL
    assert detail == (
        f"reader@example.com may not read the permissions of {APP}, so it does not hold "
        "CAN_MANAGE there"
    )
    assert fix == (
        f"have a workspace admin or an owner of {APP} grant user reader@example.com "
        "CAN_MANAGE on it (Share in the workspace UI)"
    )
    sent = emulator.request_log()[before:]
    refused = [r for r in sent if r["endpoint"] == "permissions/directories"]
    assert [(r["method"], r["status"]) for r in refused] == [("GET", 403)]


def test_a_token_no_principal_has_fails_sign_in(
    emulator: Emulator,
    cfg: Path,
    as_: Callable[[str], WorkspaceClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = run_doctor(emulator, doctor_as("dapi-revoked-token", cfg, APP, monkeypatch), "test")
    status, detail, fix = find(d, "test", "sign-in")
    assert (status, detail) == (
        FAIL,
        "the workspace refused the credentials (401); check the token or service principal",
    )
    assert "dapi-revoked-token" not in detail + fix
    assert fix.startswith("give 'test' credentials of a principal of this workspace")
    assert [c.name for c in d.failed] == ["sign-in"]


def test_no_read_permission_fails_root_and_checks_nothing_under_it(
    emulator: Emulator,
    cfg: Path,
    as_: Callable[[str], WorkspaceClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = run_doctor(emulator, doctor_as("nobody-token", cfg, APP, monkeypatch), "test")
    status, detail, fix = find(d, "test", "root")
    assert status == FAIL and "nobody@example.com" in detail and "Read" in detail
    assert "grant user nobody@example.com CAN_MANAGE" in fix
    assert {k: v for k, v in statuses(d, "test").items() if k not in ("sign-in", "root")} == {
        "access": UNKNOWN,
        "state": UNKNOWN,
        "lock": UNKNOWN,
    }
    assert [c.name for c in d.failed] == ["root"]


def test_a_manager_of_root_passes_access(
    emulator: Emulator,
    cfg: Path,
    as_: Callable[[str], WorkspaceClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    share(as_("owner-token"), APP, service_principal_name=SP, level="CAN_MANAGE")
    d = run_doctor(emulator, doctor_as("sp-token", cfg, APP, monkeypatch), "test")
    assert find(d, "test", "sign-in")[1].startswith(f"{SP} (service principal) via pat")
    assert find(d, "test", "access")[:2] == (OK, f"{SP} holds CAN_MANAGE on {APP}")
    assert d.ok


def test_creating_root_needs_edit_on_its_parent(
    emulator: Emulator,
    cfg: Path,
    as_: Callable[[str], WorkspaceClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = run_doctor(emulator, doctor_as("sp-token", cfg, f"/Users/{SP}/test", monkeypatch))
    assert find(d, "test", "access")[:2] == (
        OK,
        f"{SP} holds CAN_MANAGE on /Users/{SP}; the creator gets CAN_MANAGE on root",
    )


PERMISSIONS = "    permissions: [{group: readers, level: CAN_READ}]\n"


def test_permissions_that_would_lock_the_caller_out_fail_with_the_entry_to_add(
    emulator: Emulator,
    cfg: Path,
    as_: Callable[[str], WorkspaceClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # /Apps gives nobody CAN_MANAGE by inheritance: only root's direct grant keeps the deployer
    admin = as_("admin-token")
    admin.workspace.mkdirs("/Apps/prod/app")
    share(admin, "/Apps/prod/app", service_principal_name=SP, level="CAN_MANAGE")
    path = doctor_as("sp-token", cfg, "/Apps/prod/app", monkeypatch, PERMISSIONS)
    d = run_doctor(emulator, path, "test")
    assert find(d, "test", "access")[0] == OK
    status, detail, fix = find(d, "test", "permissions")
    assert status == FAIL
    assert detail.startswith(
        f"the permissions would leave the signed-in service principal {SP} without CAN_MANAGE"
    )
    assert fix == (
        f"add `{{service_principal: {SP}, level: CAN_MANAGE}}` (or a group of it) to "
        "`permissions` of 'test'"
    )


def test_permissions_that_keep_the_caller_a_manager_pass(
    emulator: Emulator,
    cfg: Path,
    as_: Callable[[str], WorkspaceClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = doctor_as("sp-token", cfg, f"/Users/{SP}/test", monkeypatch, PERMISSIONS)
    status, detail, _ = find(run_doctor(emulator, path, "test"), "test", "permissions")
    assert (status, detail) == (
        OK,
        f"the configured permissions keep {SP} CAN_MANAGE on root; the next deploy: grant "
        f"group readers: CAN_READ; revoke service principal {SP}: CAN_MANAGE",
    )


TESTS_CONFIG = CONFIG.replace(
    "    root: /Shared/app/test\n",
    "    root: /Shared/app/test\n"
    "    tests: {notebooks: [tests/*], compute: {existing_cluster_id: 0601-182128-abc}}\n",
)


def test_an_existing_test_cluster_passes(emulator: Emulator, deployed: Path) -> None:
    deployed.write_text(TESTS_CONFIG)
    emulator.configure_jobs(clusters=["0601-182128-abc"])
    status, detail, _ = find(run_doctor(emulator, deployed, "test"), "test", "tests")
    assert (status, detail) == (OK, "test cluster 0601-182128-abc exists (RUNNING)")


def test_a_missing_test_cluster_fails_with_the_setting_to_fix(
    emulator: Emulator, deployed: Path
) -> None:
    deployed.write_text(TESTS_CONFIG)
    status, detail, fix = find(run_doctor(emulator, deployed, "test"), "test", "tests")
    assert status == FAIL
    assert detail == "the test cluster 0601-182128-abc does not exist in this workspace"
    assert "tests.compute.existing_cluster_id" in fix


def test_serverless_tests_need_only_the_jobs_api(emulator: Emulator, deployed: Path) -> None:
    deployed.write_text(
        TESTS_CONFIG.replace("{existing_cluster_id: 0601-182128-abc}", "{serverless: true}")
    )
    status, detail, _ = find(run_doctor(emulator, deployed, "test"), "test", "tests")
    assert (status, detail) == (OK, "test runs on serverless; the Jobs API answers")


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


def test_an_unreachable_required_environment_fails_requires(
    emulator: Emulator, deployed: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBX_PROMOTE_TEST_HOST", f"http://127.0.0.1:{closed_port}")
    d = run_doctor(emulator, deployed, "prod")
    status, detail, fix = find(d, "prod", "requires")
    assert status == FAIL
    assert detail.startswith("required environment 'test' is unreachable: cannot reach workspace")
    assert "DBX_PROMOTE_TEST_HOST" in fix
    assert {c.env for c in d.checks} == {"prod"}


def test_a_required_environment_without_a_record_fails_requires(
    emulator: Emulator, cfg: Path
) -> None:
    status, detail, fix = find(run_doctor(emulator, cfg, "prod"), "prod", "requires")
    assert (status, detail) == (FAIL, "required environment 'test' has nothing deployed yet")
    assert fix.startswith("deploy to 'test' first")


def test_an_unreachable_host_fails_sign_in_with_the_host_fix(
    cfg: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{closed_port}")
    d = diagnose(load_config(cfg), "test", environ={})
    status, detail, fix = find(d, "test", "sign-in")
    assert status == FAIL and detail.startswith("cannot reach workspace")
    assert "DBX_PROMOTE_TEST_HOST or DATABRICKS_HOST" in fix


def test_an_unknown_environment_is_bad_input(cfg: Path) -> None:
    with pytest.raises(UnknownEnvironment):
        diagnose(load_config(cfg), "staging", environ={})


# --- CI identity ----------------------------------------------------------------------------


def test_github_actions_without_id_token_permission_is_reported(
    emulator: Emulator, deployed: Path
) -> None:
    before = len(emulator.request_log())
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "org/repo", "GITHUB_RUN_ID": "9"}
    d = diagnose(load_config(deployed), "test", environ=env)
    assert all(r["method"] == "GET" for r in emulator.request_log()[before:])
    status, detail, _ = find(d, "", "pipeline")
    assert status == OK and "GitHub Actions" in detail and "org/repo" in detail
    assert find(d, "", "federation")[0] == UNKNOWN


AZURE_ENV = {
    "TF_BUILD": "True",
    "BUILD_BUILDNUMBER": "20261201.3",
    "BUILD_DEFINITIONNAME": "app-ci",
    "AZURESUBSCRIPTION_TENANT_ID": "11111111-2222-3333-4444-555555555555",
    "AZURESUBSCRIPTION_CLIENT_ID": "app-client-id",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": "sc-id-42",
    "SYSTEM_ACCESSTOKEN": "system-access-token-0123456789",
}


@pytest.fixture
def entra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEntra]:
    fake = FakeEntra(system_access_token=AZURE_ENV["SYSTEM_ACCESSTOKEN"])
    fake.start(tmp_path)
    monkeypatch.setenv("SYSTEM_OIDCREQUESTURI", f"{fake.url}/oidc")
    yield fake
    fake.stop()


def _azure_source(entra: FakeEntra) -> object:
    return AzurePipelinesTokenSource.from_env(
        AZURE_ENV, authority=entra.url, connection_verify=str(entra.cafile)
    )


def test_azure_devops_federated_credential_is_exchanged(
    emulator: Emulator, deployed: Path, entra: FakeEntra
) -> None:
    d = diagnose(
        load_config(deployed),
        "test",
        environ=AZURE_ENV,
        azure_token_source=lambda: _azure_source(entra),
    )
    assert find(d, "", "pipeline")[:2] == (OK, "Azure DevOps pipeline app-ci run 20261201.3")
    assert find(d, "", "federation")[0] == OK
    assert len(entra.token_requests()) == 1
    assert d.ok


def test_a_refused_federated_credential_fails_with_the_service_connection_fix(
    emulator: Emulator, deployed: Path, entra: FakeEntra
) -> None:
    entra.fail_token_with = (400, {"error": "invalid_client", "error_description": "AADSTS700213"})
    d = diagnose(
        load_config(deployed),
        "test",
        environ=AZURE_ENV,
        azure_token_source=lambda: _azure_source(entra),
    )
    status, detail, fix = find(d, "", "federation")
    assert status == FAIL and "azure-pipelines auth failed" in detail
    assert AZURE_ENV["SYSTEM_ACCESSTOKEN"] not in detail
    assert "AzureCLI@2" in fix


def test_azure_devops_without_a_service_connection_is_named(
    emulator: Emulator, deployed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBX_PROMOTE_AUTH", "azure-pipelines")
    d = diagnose(
        load_config(deployed),
        "test",
        environ={"TF_BUILD": "True", "DBX_PROMOTE_AUTH": "azure-pipelines"},
    )
    status, detail, _ = find(d, "", "federation")
    assert status == FAIL and "AZURESUBSCRIPTION_TENANT_ID" in detail


def test_outside_ci_there_is_no_pipeline_check(emulator: Emulator, deployed: Path) -> None:
    d = run_doctor(emulator, deployed, "test")
    assert [c for c in d.checks if c.env == ""] == []


# --- the command --------------------------------------------------------------------------


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code: object = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return (code if isinstance(code, int) else 1), out, err


def test_cli_prints_the_table_and_exits_1_naming_the_failed_checks(
    emulator: Emulator, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["--config", str(cfg), "doctor", "--env", "test"], capsys)
    assert code == 1
    assert "✘" in out and "fix:" in out and "mkdirs /Shared/app" in out
    assert err.strip() == "error: 1 check(s) failed: test root"


def test_cli_json_is_one_object(
    emulator: Emulator, deployed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(["--config", str(deployed), "doctor", "--output", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and data["failed"] == 0
    assert {c["check"] for c in data["checks"]} >= {"sign-in", "root", "state", "lock", "requires"}


def test_cli_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "dbx-promote.yml"
    bad.write_text("project: app\nenvironments: {test: {root: relative}}\n")
    code, _, err = run_main(["--config", str(bad), "doctor"], capsys)
    assert code == 2 and err.startswith("error: dbx-promote.yml has 1 problem")
