"""`ado ensure-environments` against a local fake Azure DevOps organization."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbx_promote.azure.environments import (
    APPROVAL_TYPE_ID,
    TASK_CHECK_TYPE_ID,
    ensure_environments,
)
from dbx_promote.config import Config, load_config
from dbx_promote.errors import ConfigError, CredentialsError

from cli_helpers import run_main
from fake_ado import FakeAzureDevOps

LEADS_ID = "6f1f6a3e-0000-4000-8000-000000000001"
ANN_ID = "6f1f6a3e-0000-4000-8000-000000000002"

CONFIG = """\
project: sales-analytics
source: notebooks
environments:
  dev:
    root: /Users/{user}/sales-analytics
  test:
    root: /Shared/sales-analytics/test
  prod:
    root: /Shared/sales-analytics/prod
    approval:
      approvers: [%(approvers)s]
      min_approvers: %(min)s
      instructions: Read the Prod plan in the run summary.
      branch_control: [refs/tags/v*]
"""


def write_config(tmp_path: Path, approvers: str = "data-leads@example.com", min: int = 1) -> Path:
    (tmp_path / "notebooks").mkdir(exist_ok=True)
    path = tmp_path / "dbx-promote.yml"
    path.write_text(CONFIG % {"approvers": approvers, "min": min})
    return path


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path))


@pytest.fixture
def ado(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzureDevOps]:
    """A fresh fake organization, with the azure-devops package's caches isolated.

    The package caches discovery answers on disk (~/.azure-devops) and per process; both
    would hide the discovery requests from the fake and leak between tests.
    """
    from azure.devops import _file_cache
    from azure.devops.client import Client

    for cache, name in ((_file_cache.OPTIONS_CACHE, "options"), (_file_cache.RESOURCE_CACHE, "r")):
        monkeypatch.setattr(cache, "file_name", str(tmp_path / f"{name}.json"))
        monkeypatch.setattr(cache, "data", {})
        monkeypatch.setattr(cache, "initial_load_occurred", True)
    monkeypatch.setattr(Client, "_locations_cache", {})
    fake = FakeAzureDevOps().start()
    yield fake
    fake.stop()


def run(config: Config, ado: FakeAzureDevOps, **kwargs: Any) -> list[tuple[str, str]]:
    changes = ensure_environments(
        config, organization_url=ado.url, project=ado.project, token=ado.pat or "", **kwargs
    )
    return [(c.kind, c.target) for c in changes]


def check_posts(ado: FakeAzureDevOps) -> list[Any]:
    return [
        r.body
        for r in ado.writes()
        if r.method == "POST" and r.path.endswith("/pipelines/checks/configurations")
    ]


def test_first_run_creates_environments_and_prod_checks(
    config: Config, ado: FakeAzureDevOps
) -> None:
    assert run(config, ado) == [
        ("create-environment", "dbx-test"),
        ("create-environment", "dbx-prod"),
        ("create-check", "dbx-prod/Approval"),
        ("create-check", "dbx-prod/Branch control"),
    ]
    assert sorted(e["name"] for e in ado.environments.values()) == ["dbx-prod", "dbx-test"]


def test_personal_sandboxes_get_no_azure_devops_environment(
    config: Config, ado: FakeAzureDevOps
) -> None:
    run(config, ado)
    assert "dbx-dev" not in {e["name"] for e in ado.environments.values()}


def test_approvers_reach_the_service_in_the_check_settings(
    config: Config, ado: FakeAzureDevOps
) -> None:
    """The azure-devops 7.1.0b4 model drops `settings`; our subclass must not."""
    run(config, ado)
    approval = next(b for b in check_posts(ado) if b["type"]["id"] == APPROVAL_TYPE_ID)
    assert approval["resource"] == {"type": "environment", "id": "2", "name": "dbx-prod"}
    assert approval["timeout"] == 43200
    settings = approval["settings"]
    assert [a["id"] for a in settings["approvers"]] == [LEADS_ID]
    assert settings["minRequiredApprovers"] == 1
    assert settings["instructions"] == "Read the Prod plan in the run summary."
    assert settings["requesterCannotBeApprover"] is True


def test_branch_control_allows_only_release_tags(config: Config, ado: FakeAzureDevOps) -> None:
    run(config, ado)
    branch = next(b for b in check_posts(ado) if b["type"]["id"] == TASK_CHECK_TYPE_ID)
    assert branch["type"]["name"] == "Task Check"
    assert branch["settings"]["definitionRef"] == {
        "id": "86b05a0c-73e6-4f7d-b3cf-e38f3b39a75b",
        "name": "evaluatebranchProtection",
        "version": "0.0.1",
    }
    assert branch["settings"]["inputs"] == {
        "allowedBranches": "refs/tags/v*",
        "ensureProtectionOfBranch": "false",
        "allowUnknownStatusBranches": "false",
    }


def test_client_discovers_resource_areas_and_locations(
    config: Config, ado: FakeAzureDevOps
) -> None:
    run(config, ado)
    seen = [(r.method, r.path) for r in ado.requests]
    assert ("GET", "/contoso/_apis/ResourceAreas") in seen
    assert ("OPTIONS", "/contoso/_apis") in seen
    # Identities live on another host (vssps); the client found it through discovery.
    assert ("OPTIONS", "/vssps/contoso/_apis") in seen
    lookup = next(r for r in ado.requests if r.path == "/vssps/contoso/_apis/Identities")
    assert lookup.query["searchFilter"] == "General"
    assert lookup.query["filterValue"] == "data-leads@example.com"


def test_second_run_changes_nothing(config: Config, ado: FakeAzureDevOps) -> None:
    run(config, ado)
    writes = len(ado.writes())
    assert run(config, ado) == [
        ("unchanged", "dbx-test"),
        ("unchanged", "dbx-prod"),
        ("unchanged", "dbx-prod/Approval"),
        ("unchanged", "dbx-prod/Branch control"),
    ]
    assert len(ado.writes()) == writes


def test_dry_run_only_reads(config: Config, ado: FakeAzureDevOps) -> None:
    assert run(config, ado, dry_run=True) == [
        ("create-environment", "dbx-test"),
        ("create-environment", "dbx-prod"),
        ("create-check", "dbx-prod/Approval"),
        ("create-check", "dbx-prod/Branch control"),
    ]
    assert ado.writes() == []
    assert {r.method for r in ado.requests} <= {"GET", "OPTIONS"}


def test_dry_run_reports_a_pending_check_update(
    tmp_path: Path, config: Config, ado: FakeAzureDevOps
) -> None:
    run(config, ado)
    writes = len(ado.writes())
    changed = load_config(write_config(tmp_path, approvers="ann@example.com"))
    assert ("update-check", "dbx-prod/Approval") in run(changed, ado, dry_run=True)
    assert len(ado.writes()) == writes


def test_changed_approvers_update_the_existing_check(
    tmp_path: Path, config: Config, ado: FakeAzureDevOps
) -> None:
    run(config, ado)
    changed = load_config(
        write_config(tmp_path, approvers="data-leads@example.com, ann@example.com", min=2)
    )
    assert run(changed, ado) == [
        ("unchanged", "dbx-test"),
        ("unchanged", "dbx-prod"),
        ("update-check", "dbx-prod/Approval"),
        ("unchanged", "dbx-prod/Branch control"),
    ]
    patch = [r for r in ado.writes() if r.method == "PATCH"]
    assert len(patch) == 1
    assert patch[0].path.endswith("/pipelines/checks/configurations/1")
    settings = patch[0].body["settings"]
    assert {a["id"] for a in settings["approvers"]} == {LEADS_ID, ANN_ID}
    assert settings["minRequiredApprovers"] == 2
    assert len(ado.checks) == 2  # updated in place, not duplicated


def test_existing_environment_is_kept(config: Config, ado: FakeAzureDevOps) -> None:
    ado.add_environment("DBX-PROD")  # names are case-insensitive in Azure DevOps
    kinds = run(config, ado)
    assert ("unchanged", "dbx-prod") in kinds
    assert len(ado.environments) == 2


def test_unknown_approver_is_a_config_error_before_any_write(
    tmp_path: Path, ado: FakeAzureDevOps
) -> None:
    config = load_config(write_config(tmp_path, approvers="nobody@example.com"))
    with pytest.raises(ConfigError, match=r"nobody@example\.com"):
        run(config, ado, only=["prod"])
    assert ado.writes() == []


def test_refused_token_is_a_credentials_error_without_the_token(
    config: Config, ado: FakeAzureDevOps
) -> None:
    with pytest.raises(CredentialsError) as err:
        ensure_environments(
            config, organization_url=ado.url, project=ado.project, token="wrong-pat-abcdefgh"
        )
    assert "wrong-pat-abcdefgh" not in str(err.value)
    assert err.value.exit_code == 2


def test_system_access_token_is_sent_as_bearer(config: Config, ado: FakeAzureDevOps) -> None:
    ado.pat, ado.bearer = None, "system-access-token-xyz"
    ensure_environments(
        config,
        organization_url=ado.url,
        project=ado.project,
        token="system-access-token-xyz",
        token_kind="bearer",
    )
    assert len(ado.environments) == 2


# --- the command line ---------------------------------------------------------------------


def cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_DEVOPS", "SYSTEM_", "TF_BUILD"))
    }
    clean["AZURE_DEVOPS_CACHE_DIR"] = str(tmp_path / "ado-cache")
    return run_main(["--config", str(write_config(tmp_path)), *args], env={**clean, **env})


def test_cli_without_a_token_exits_2_with_one_line(tmp_path: Path) -> None:
    result = cli(
        tmp_path,
        "ado",
        "ensure-environments",
        "--organization",
        "https://dev.azure.com/contoso",
        "--project",
        "sales",
        env={},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "AZURE_DEVOPS_PAT" in lines[0] and "SYSTEM_ACCESSTOKEN" in lines[0]


def test_cli_json_output_and_pipeline_variables(tmp_path: Path, ado: FakeAzureDevOps) -> None:
    env = {
        "AZURE_DEVOPS_PAT": ado.pat or "",
        "SYSTEM_COLLECTIONURI": ado.url + "/",
        "SYSTEM_TEAMPROJECT": ado.project,
    }
    result = cli(tmp_path, "ado", "ensure-environments", "--output", "json", env=env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is False
    assert [c["kind"] for c in doc["changes"]].count("create-check") == 2
    assert ado.pat not in result.stdout + result.stderr

    again = cli(
        tmp_path, "ado", "ensure-environments", "--dry-run", env={**env, "TF_BUILD": "True"}
    )
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout
    assert "##[group]ado ensure-environments" in again.stdout  # collapsible in the run log
    assert "##[endgroup]" in again.stdout
