"""`status --check`: exit 1 naming each problem in one line, 0 when every environment is clean
(never deployed is a note, not a failure); under CI the findings become annotations.

Setup deploys go through the Python API; the checks run the real command in-process
(click's runner) against the emulator.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import (
    ImportFormat,
    WorkspaceObjectAccessControlRequest,
    WorkspaceObjectPermissionLevel,
)

from dbx_promote import operations
from dbx_promote.artifact import Artifact, BuildOptions, build_artifact
from dbx_promote.cli import cli
from dbx_promote.config import load_config
from dbx_promote.deploy import DeployOptions
from dbx_promote.emulator import Emulator
from dbx_promote.record import Lock

from ci_helpers import parse_command
from cli_helpers import HEADER, TOKEN

CONFIG = """\
project: watch
source: notebooks
environments:
  dev:
    root: /Users/{user}/watch
  test:
    root: /Shared/watch/test
  prod:
    root: /Shared/watch/prod
    requires: test
    lock_timeout_minutes: 30
"""
PROD = "/Shared/watch/prod"


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Path:
    monkeypatch.setenv("DATABRICKS_HOST", emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "a.py").write_text(HEADER + "print('a')\n")
    (tmp_path / "notebooks" / "b.py").write_text(HEADER + "print('b')\n")
    path = tmp_path / "dbx-promote.yml"
    path.write_text(CONFIG)
    return path


def release(cfg: Path) -> Artifact:
    config = load_config(cfg)
    options = BuildOptions.from_config(config, version="1.0.0")
    return build_artifact(options, cfg.parent / "dist")


def deploy_everywhere(cfg: Path) -> None:
    config = load_config(cfg)
    artifact = release(cfg)
    operations.deploy(config, "test", artifact, DeployOptions())
    operations.promote(config, "test", "prod", DeployOptions())


def check(*args: str, env: dict[str, str] | None = None, cfg: Path) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(cfg), "status", "--check", *args], env=env, catch_exceptions=False
    )


def test_clean_environments_pass(cfg: Path) -> None:
    deploy_everywhere(cfg)
    result = check(cfg=cfg)
    assert result.exit_code == 0, result.output
    assert "ok    test: runs 1.0.0, clean" in result.stdout
    assert "ok    prod: runs 1.0.0, clean" in result.stdout
    assert "note  dev: skipped ({user} sandbox)" in result.stdout
    assert result.stdout.rstrip().endswith("check passed")


def test_never_deployed_is_reported_not_a_failure(cfg: Path) -> None:
    result = check(cfg=cfg)
    assert result.exit_code == 0, result.output
    assert "note  test: nothing deployed yet" in result.stdout
    assert "note  prod: nothing deployed yet" in result.stdout


def test_a_hand_edit_and_a_deletion_fail_the_check_each_in_one_line(
    cfg: Path, emulator: Emulator, workspace_client: WorkspaceClient
) -> None:
    deploy_everywhere(cfg)
    emulator.hand_edit(f"{PROD}/a", HEADER.encode() + b"print('hotfix')\n")
    workspace_client.workspace.delete(f"{PROD}/b")
    result = check(cfg=cfg)
    assert result.exit_code == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == [
        "FAIL  prod: drift: 1 object(s) edited by hand since the deploy: a (the next deploy "
        "backs them up and puts the release back)",
        "FAIL  prod: drift: 1 deployed object(s) missing: b (redeploy, or roll back, to "
        "restore them)",
    ]
    assert "ok    test: runs 1.0.0, clean" in result.stdout
    assert "check failed: 2 findings" in result.stdout


def test_a_grant_on_root_made_by_hand_is_permission_drift(
    cfg: Path, workspace_client: WorkspaceClient
) -> None:
    """Root's ACL is configured; someone shares the folder by hand afterwards."""
    cfg.write_text(
        CONFIG.replace(
            "    root: /Shared/watch/prod\n",
            "    root: /Shared/watch/prod\n    permissions: [{group: readers, level: CAN_READ}]\n",
        )
    )
    deploy_everywhere(cfg)
    assert check(cfg=cfg).exit_code == 0
    root = str(workspace_client.workspace.get_status(PROD).object_id)
    workspace_client.workspace.update_permissions(
        "directories",
        root,
        access_control_list=[
            WorkspaceObjectAccessControlRequest(
                group_name="analysts", permission_level=WorkspaceObjectPermissionLevel.CAN_EDIT
            )
        ],
    )
    result = check(cfg=cfg)
    assert result.exit_code == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == [
        "FAIL  prod: permissions: root's permissions are not as configured (0 missing, 1 "
        "extra, 0 at another level); the next deploy sets them"
    ]


def plant_lock(client: WorkspaceClient, started_at: str, emulator: Emulator | None = None) -> None:
    """A lock as a deploy that is running (or died) leaves it; with ``emulator``, the
    workspace too saw it written at ``started_at`` (staleness is judged on its clock)."""
    lock = Lock(
        holder="agent@example.com", started_at=started_at, host="agent-7", pid=1,
        version="1.1.0", digest="sha256:" + "0" * 64, run_url="https://ci.example/run/9",
    )  # fmt: skip
    client.workspace.upload(
        f"{PROD}/.dbx-promote/lock.json", lock.to_json(), format=ImportFormat.AUTO, overwrite=True
    )
    if emulator is not None:
        then = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
        emulator.backdate(
            f"{PROD}/.dbx-promote/lock.json", (datetime.now(timezone.utc) - then).total_seconds()
        )


def test_a_stale_lock_is_an_interrupted_deploy(
    cfg: Path, workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    deploy_everywhere(cfg)
    plant_lock(workspace_client, "2020-01-01T00:00:00Z", emulator)
    result = check("--env", "prod", cfg=cfg)
    assert result.exit_code == 1
    (fail,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fail.startswith("FAIL  prod: interrupted: the deploy by agent@example.com on agent-7")
    # The engine's own judgement says why: the heartbeat is older than lock_stale_minutes.
    assert "never finished (its heartbeat is" in fail and "lock_stale_minutes: 30" in fail
    assert "parts of two releases" in fail and "--break-lock" in fail


def test_a_running_deploy_is_a_note(cfg: Path, workspace_client: WorkspaceClient) -> None:
    deploy_everywhere(cfg)
    plant_lock(workspace_client, "2999-01-01T00:00:00Z")
    result = check("--env", "prod", cfg=cfg)
    assert result.exit_code == 0, result.output
    assert "note  prod: a deploy is running: agent@example.com" in result.stdout


def test_an_unreachable_environment_fails_the_check(cfg: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DBX_PROMOTE_PROD_HOST", "http://127.0.0.1:9")
    result = check(cfg=cfg)
    assert result.exit_code == 1
    (fail,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fail.startswith("FAIL  prod: unreadable: ")


def test_json_carries_the_findings(cfg: Path, emulator: Emulator) -> None:
    deploy_everywhere(cfg)
    emulator.hand_edit(f"{PROD}/a", HEADER.encode() + b"print('hotfix')\n")
    result = check("--output", "json", cfg=cfg)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["check"]["ok"] is False
    assert [(f["env"], f["kind"]) for f in data["check"]["findings"]] == [("prod", "drift")]
    assert [e["env"] for e in data["environments"]] == ["test", "prod"]


def test_under_github_actions_each_finding_is_an_error_annotation(
    cfg: Path, emulator: Emulator, workspace_client: WorkspaceClient
) -> None:
    deploy_everywhere(cfg)
    emulator.hand_edit(f"{PROD}/a", HEADER.encode() + b"print('hotfix')\n")
    plant_lock(workspace_client, "2020-01-01T00:00:00Z", emulator)
    result = check(cfg=cfg, env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1
    annotations = [parse_command(x) for x in result.stderr.splitlines() if x.startswith("::")]
    assert [(name, message.split(":")[:2]) for name, _, message in annotations] == [
        ("error", ["prod", " drift"]),
        ("error", ["prod", " interrupted"]),
    ]


def test_under_azure_pipelines_each_finding_is_a_logged_issue(
    cfg: Path, emulator: Emulator
) -> None:
    deploy_everywhere(cfg)
    emulator.hand_edit(f"{PROD}/a", HEADER.encode() + b"print('hotfix')\n")
    result = check(cfg=cfg, env={"TF_BUILD": "True"})
    assert result.exit_code == 1
    issues = [x for x in result.stdout.splitlines() if x.startswith("##vso[task.logissue")]
    assert issues == [
        "##vso[task.logissue type=error;]prod: drift: 1 object(s) edited by hand since the "
        "deploy: a (the next deploy backs them up and puts the release back)"
    ]


def test_outside_ci_no_annotation_is_printed(cfg: Path, emulator: Emulator) -> None:
    deploy_everywhere(cfg)
    emulator.hand_edit(f"{PROD}/a", HEADER.encode() + b"print('hotfix')\n")
    result = check(cfg=cfg)
    assert result.exit_code == 1
    assert "::error" not in result.output and "##vso" not in result.output
