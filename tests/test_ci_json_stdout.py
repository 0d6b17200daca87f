"""`--output json` under CI: standard output is exactly one JSON document (or nothing when
the command fails before it has one). Azure's ##vso logging commands are read from
standard output, so they are left out there; GitHub's workflow commands go to standard
error and stay."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import ImportFormat

from dbx_promote.cli import wants_json
from dbx_promote.emulator import Emulator
from dbx_promote.record import Lock

from ci_helpers import parse_command
from cli_helpers import HEADER, run_cli

CONFIG = """\
project: app
source: notebooks
environments:
  test:
    root: /Shared/app/test
"""
ROOT = "/Shared/app/test"

CI = {
    "github": {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "4711", "GITHUB_REPOSITORY": "o/r"},
    "azure": {"TF_BUILD": "True", "BUILD_BUILDID": "42", "SYSTEM_TEAMPROJECT": "proj"},
}


@pytest.fixture
def repo(tmp_path: Path, emulator: Emulator) -> Path:
    """A project deployed once to test (outside CI)."""
    root = tmp_path / "repo"
    (root / "notebooks" / "etl").mkdir(parents=True)
    (root / "notebooks" / "etl" / "ingest.py").write_text(HEADER + "print('ingest')\n")
    (root / "dbx-promote.yml").write_text(CONFIG)
    first = run_cli(root / "dbx-promote.yml", "deploy", "--env", "test", host=emulator.url)
    assert first.returncode == 0, first.stderr
    return root


def run(repo: Path, ci: str, emulator: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**CI[ci], "GITHUB_WORKSPACE": str(repo), "BUILD_SOURCESDIRECTORY": str(repo)}
    return run_cli(repo / "dbx-promote.yml", *args, host=emulator.url, extra_env=env)


def github_commands(text: str) -> list[tuple[str, str]]:
    return [parse_command(x)[::2] for x in text.splitlines() if x.startswith("::")]


def assert_pure_json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert "##vso[" not in proc.stdout and "::" not in proc.stdout.replace('"::', "")
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


@pytest.mark.parametrize("ci", list(CI))
def test_status_check_findings_keep_stdout_pure_json(
    repo: Path, emulator: Emulator, ci: str
) -> None:
    emulator.hand_edit(f"{ROOT}/etl/ingest", b"# Databricks notebook source\nprint('hotfix')")
    proc = run(repo, ci, emulator, "status", "--check", "--output", "json")
    assert proc.returncode == 1, proc.stderr
    doc = assert_pure_json(proc)
    assert doc["check"]["ok"] is False  # type: ignore[index]
    if ci == "github":
        [(name, message)] = github_commands(proc.stderr)
        assert name == "error" and "drift" in message
    else:
        assert "##vso[" not in proc.stderr


@pytest.mark.parametrize("ci", list(CI))
def test_deploy_warnings_keep_stdout_pure_json(
    repo: Path, emulator: Emulator, workspace_client: WorkspaceClient, ci: str
) -> None:
    stale = Lock("ci-agent", "2020-01-01T00:00:00Z", "agent-7", 4242, "2.0.0", "sha256:ab", None)
    workspace_client.workspace.upload(
        f"{ROOT}/.dbx-promote/lock.json", stale.to_json(), format=ImportFormat.AUTO
    )
    # Stale on the workspace's clock too (the engine judges a lock's age by both).
    emulator.backdate(f"{ROOT}/.dbx-promote/lock.json", 10 * 24 * 3600)
    (repo / "notebooks" / "etl" / "ingest.py").write_text(HEADER + "print('v2')\n")
    proc = run(repo, ci, emulator, "deploy", "--env", "test", "--break-lock", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert assert_pure_json(proc)["verified"] is True
    assert "warning: breaking the lock of ci-agent" in proc.stderr
    if ci == "github":
        assert [n for n, m in github_commands(proc.stderr) if "breaking the lock" in m] == [
            "warning"
        ]
    else:
        assert "##vso[" not in proc.stderr


@pytest.mark.parametrize("ci", list(CI))
def test_a_failed_command_leaves_stdout_empty(repo: Path, emulator: Emulator, ci: str) -> None:
    proc = run(repo, ci, emulator, "deploy", "--env", "nope", "--output", "json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    if ci == "github":
        [(name, message)] = github_commands(proc.stderr)
        assert name == "error" and "unknown environment" in message


def test_without_json_azure_still_logs_its_issues_on_stdout(repo: Path, emulator: Emulator) -> None:
    proc = run(repo, "azure", emulator, "deploy", "--env", "nope")
    assert proc.returncode == 2
    assert proc.stdout.startswith("##vso[task.logissue type=error")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["status", "--output", "json"], True),
        (["status", "--output=json"], True),
        (["status", "--output", "text"], False),
        (["status", "json"], False),
        (["status", "--output"], False),
    ],
)
def test_which_command_lines_ask_for_json(args: list[str], expected: bool) -> None:
    assert wants_json(args) is expected
