"""`requires` gating and `promote`: Prod only ever gets the bytes verified in Test (issue 6).

End-to-end cases drive the real CLI in a subprocess against the emulator; finer checks use
the Python API (`dbx_promote.operations`) against the same emulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import ImportFormat

from dbx_promote import operations
from dbx_promote.config import load_config
from dbx_promote.deploy import DeployOptions
from dbx_promote.emulator import Emulator
from dbx_promote.errors import RequiresNotMet

from cli_helpers import HEADER, TOKEN, Built, assert_error, build_releases, run_cli

TEST_ROOT = "/Shared/demo/test"
PROD_ROOT = "/Shared/demo/prod"

# Three releases of a tiny project: v2 changes one notebook and adds one, v3 changes another.
RELEASES: dict[str, dict[str, str]] = {
    "1.0.0": {
        "ingest/load.py": HEADER + 'print("load v1")\n',
        "clean.py": HEADER + 'print("clean v1")\n',
    },
    "1.1.0": {
        "ingest/load.py": HEADER + 'print("load v2")\n',
        "clean.py": HEADER + 'print("clean v1")\n',
        "report.sql": "-- Databricks notebook source\nSELECT 1\n",
    },
    "1.2.0": {
        "ingest/load.py": HEADER + 'print("load v2")\n',
        "clean.py": HEADER + 'print("clean v3")\n',
        "report.sql": "-- Databricks notebook source\nSELECT 1\n",
    },
}

CONFIG = """\
project: demo
source: notebooks
environments:
  test:
    root: /Shared/demo/test
  prod:
    root: /Shared/demo/prod
    requires: test
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """v1, v2, v3 built once with `dbx-promote build` (outside git, so --version)."""
    return build_releases(tmp_path_factory.mktemp("releases"), RELEASES, CONFIG)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "dbx-promote.yml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Emulator:
    """Credentials for the in-process Python API: the emulator via environment variables."""
    monkeypatch.setenv("DATABRICKS_HOST", emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    return emulator


def snapshot(emu: Emulator, root: str) -> dict[str, Any]:
    """Every object under ``root`` (metadata and bytes), the state folder included."""
    tree = emu.tree(root)
    return {
        path: (meta, None if meta["object_type"] == "DIRECTORY" else emu.read(path))
        for path, meta in sorted(tree.items())
    }


def notebooks(emu: Emulator, root: str) -> dict[str, bytes]:
    """Managed content under ``root``: path relative to root -> bytes (no state folder)."""
    out = {}
    for path, meta in emu.tree(root).items():
        rel = path[len(root) + 1 :]
        if meta["object_type"] == "DIRECTORY" or rel.startswith(".dbx-promote"):
            continue
        out[rel] = emu.read(path)
    return out


def deploy(cfg: Path, emu: Emulator, artifact: Built, env: str) -> None:
    result = run_cli(cfg, "deploy", str(artifact.path), "--env", env, host=emu.url)
    assert result.returncode == 0, result.stderr


def status_json(cfg: Path, emu: Emulator, env: str) -> dict[str, Any]:
    result = run_cli(cfg, "status", "--env", env, "--output", "json", host=emu.url)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# --- promote ------------------------------------------------------------------------------


def test_promote_lands_the_digest_verified_in_test_in_prod(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    result = run_cli(
        cfg, "promote", "--from", "test", "--to", "prod", "--yes", "--output", "json",
        host=emulator.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["env"], out["version"], out["digest"]) == ("prod", "1.0.0", built["1.0.0"].digest)
    assert out["verified"] is True
    prod = status_json(cfg, emulator, "prod")
    test = status_json(cfg, emulator, "test")
    assert prod["digest"] == test["digest"] == built["1.0.0"].digest
    assert prod["kind"] == "promote"
    assert prod["verified"] is True
    # Same notebook bytes; only the generated per-environment notebook differs.
    test_nb, prod_nb = notebooks(emulator, TEST_ROOT), notebooks(emulator, PROD_ROOT)
    assert test_nb.keys() == prod_nb.keys() == {"clean", "ingest/load", "_environment"}
    assert {k: v for k, v in test_nb.items() if k != "_environment"} == {
        k: v for k, v in prod_nb.items() if k != "_environment"
    }
    assert b"prod" in prod_nb["_environment"]


def test_promote_stores_the_identical_artifact_in_prods_release_store(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    result = run_cli(cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=emulator.url)
    assert result.returncode == 0, result.stderr
    zips = {
        root: [p for p in emulator.tree(root) if p.endswith(".zip")]
        for root in (TEST_ROOT, PROD_ROOT)
    }
    assert len(zips[TEST_ROOT]) == len(zips[PROD_ROOT]) == 1
    assert emulator.read(zips[PROD_ROOT][0]) == built["1.0.0"].path.read_bytes()
    assert emulator.read(zips[TEST_ROOT][0]) == built["1.0.0"].path.read_bytes()


def test_a_different_artifact_sent_straight_to_prod_is_refused_and_prod_untouched(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    assert (
        run_cli(
            cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=emulator.url
        ).returncode
        == 0
    )
    before = snapshot(emulator, PROD_ROOT)
    result = run_cli(cfg, "deploy", str(built["1.1.0"].path), "--env", "prod", host=emulator.url)
    assert_error(result, 1, built["1.1.0"].digest, built["1.0.0"].digest, "promote")
    assert snapshot(emulator, PROD_ROOT) == before


def test_deploy_to_prod_is_refused_while_test_has_nothing_deployed(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    result = run_cli(cfg, "deploy", str(built["1.0.0"].path), "--env", "prod", host=emulator.url)
    assert_error(result, 1, "'test'", built["1.0.0"].digest)
    assert emulator.tree(PROD_ROOT) == {}


def test_the_digest_verified_in_test_may_be_deployed_to_prod_directly(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    """`requires` is about the digest: the same artifact file passes the gate via `deploy`."""
    deploy(cfg, emulator, built["1.0.0"], "test")
    deploy(cfg, emulator, built["1.0.0"], "prod")
    assert status_json(cfg, emulator, "prod")["digest"] == built["1.0.0"].digest


def test_deploy_to_prod_is_refused_when_tests_record_is_not_verified(
    cfg: Path, api_env: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    deploy(cfg, api_env, built["1.0.0"], "test")
    record_path = f"{TEST_ROOT}/.dbx-promote/deployment.json"
    record = json.loads(api_env.read(record_path))
    record["verified"] = False
    workspace_client.workspace.upload(
        record_path, json.dumps(record).encode(), format=ImportFormat.AUTO, overwrite=True
    )
    result = run_cli(cfg, "deploy", str(built["1.0.0"].path), "--env", "prod", host=api_env.url)
    assert_error(result, 1, "not verified")
    with pytest.raises(RequiresNotMet, match="not verified"):
        operations.promote(load_config(cfg), "test", "prod", DeployOptions())
    assert api_env.tree(PROD_ROOT) == {}


def test_promote_moves_prod_to_the_newer_release_with_one_notebook_changed(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    run_cli(cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=emulator.url)
    deploy(cfg, emulator, built["1.1.0"], "test")
    result = run_cli(
        cfg, "promote", "--from", "test", "--to", "prod", "--yes", "--output", "json",
        host=emulator.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["previous_version"] == "1.0.0"
    assert out["digest"] == built["1.1.0"].digest
    assert "report" in json.dumps(out["changes"]["create"])
    assert (
        notebooks(emulator, PROD_ROOT)["ingest/load"]
        == notebooks(emulator, TEST_ROOT)["ingest/load"]
    )


def test_promote_without_yes_and_without_a_terminal_is_refused(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    result = run_cli(cfg, "promote", "--from", "test", "--to", "prod", host=emulator.url)
    assert_error(result, 2, "--yes")
    assert emulator.tree(PROD_ROOT) == {}


def test_promote_dry_run_shows_the_plan_and_writes_nothing(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    before_log = len(emulator.request_log())
    result = run_cli(
        cfg, "promote", "--from", "test", "--to", "prod", "--dry-run", "--output", "json",
        host=emulator.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["dry_run"] is True
    assert out["digest"] == built["1.0.0"].digest
    assert emulator.tree(PROD_ROOT) == {}
    endpoints = {r["endpoint"] for r in emulator.request_log()[before_log:]}
    assert endpoints
    assert not endpoints & {"import", "mkdirs", "delete"}


def test_promote_applies_a_reviewed_plan_and_refuses_a_stale_one(
    cfg: Path, emulator: Emulator, built: dict[str, Built], tmp_path: Path
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    plan = tmp_path / "prod-plan.json"
    result = run_cli(
        cfg, "promote", "--from", "test", "--to", "prod", "--dry-run", "--plan-out", str(plan),
        host=emulator.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert plan.is_file()
    result = run_cli(
        cfg, "promote", "--from", "test", "--to", "prod", "--plan", str(plan), host=emulator.url
    )
    assert result.returncode == 0, result.stderr
    assert status_json(cfg, emulator, "prod")["digest"] == built["1.0.0"].digest

    # Test moves on after the review: the saved plan no longer describes the promotion.
    deploy(cfg, emulator, built["1.1.0"], "test")
    stale = tmp_path / "stale.json"
    run_cli(
        cfg, "promote", "--from", "test", "--to", "prod", "--dry-run", "--plan-out", str(stale),
        host=emulator.url,
    )  # fmt: skip
    deploy(cfg, emulator, built["1.2.0"], "test")
    before = snapshot(emulator, PROD_ROOT)
    result = run_cli(
        cfg, "promote", "--from", "test", "--to", "prod", "--plan", str(stale), "--output", "json",
        host=emulator.url,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert snapshot(emulator, PROD_ROOT) == before


def test_promote_from_an_environment_with_nothing_deployed_fails(
    cfg: Path, emulator: Emulator
) -> None:
    result = run_cli(cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=emulator.url)
    assert_error(result, 1, "nothing is deployed in 'test'")


# --- two workspaces -------------------------------------------------------------------------


@pytest.fixture
def two_workspaces(tmp_path: Path, emulator: Emulator, second_emulator: Emulator) -> Path:
    """test in one workspace, prod in another, each named by its `host:` in the config."""
    path = tmp_path / "two.yml"
    path.write_text(
        "project: demo\nsource: notebooks\nenvironments:\n"
        f"  test:\n    host: {emulator.url}\n    root: {TEST_ROOT}\n"
        f"  prod:\n    host: {second_emulator.url}\n    root: {PROD_ROOT}\n    requires: test\n"
    )
    return path


def test_test_and_prod_in_two_workspaces_promote_across_them(
    two_workspaces: Path, emulator: Emulator, second_emulator: Emulator, built: dict[str, Built]
) -> None:
    cfg = two_workspaces
    result = run_cli(cfg, "deploy", str(built["1.0.0"].path), "--env", "test", host=None)
    assert result.returncode == 0, result.stderr
    result = run_cli(cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=None)
    assert result.returncode == 0, result.stderr
    assert emulator.tree(PROD_ROOT) == {}
    assert second_emulator.tree(TEST_ROOT) == {}
    prod_nb = notebooks(second_emulator, PROD_ROOT)
    assert prod_nb["ingest/load"] == notebooks(emulator, TEST_ROOT)["ingest/load"]

    result = run_cli(cfg, "status", "--output", "json", host=None)
    assert result.returncode == 0, result.stderr
    envs = {e["env"]: e for e in json.loads(result.stdout)["environments"]}
    assert envs["test"]["digest"] == envs["prod"]["digest"] == built["1.0.0"].digest
    assert envs["test"]["error"] is None and envs["prod"]["error"] is None


def test_requires_reads_the_record_from_the_other_workspace(
    two_workspaces: Path, emulator: Emulator, second_emulator: Emulator, built: dict[str, Built]
) -> None:
    cfg = two_workspaces
    assert (
        run_cli(cfg, "deploy", str(built["1.1.0"].path), "--env", "test", host=None).returncode == 0
    )
    result = run_cli(cfg, "deploy", str(built["1.0.0"].path), "--env", "prod", host=None)
    assert_error(result, 1, built["1.0.0"].digest, built["1.1.0"].digest)
    assert second_emulator.tree(PROD_ROOT) == {}
    result = run_cli(cfg, "deploy", str(built["1.1.0"].path), "--env", "prod", host=None)
    assert result.returncode == 0, result.stderr
    assert notebooks(second_emulator, PROD_ROOT).keys() == {
        "_environment",
        "clean",
        "ingest/load",
        "report",
    }


def test_two_workspaces_from_per_environment_variables_without_hosts_in_the_config(
    cfg: Path, emulator: Emulator, second_emulator: Emulator, built: dict[str, Built]
) -> None:
    """DBX_PROMOTE_<ENV>_HOST/_TOKEN (pipeline variable groups) point each env elsewhere."""
    hosts = {
        "DBX_PROMOTE_TEST_HOST": emulator.url,
        "DBX_PROMOTE_TEST_TOKEN": TOKEN,
        "DBX_PROMOTE_PROD_HOST": second_emulator.url,
        "DBX_PROMOTE_PROD_TOKEN": TOKEN,
    }
    deploy_v1 = run_cli(
        cfg, "deploy", str(built["1.0.0"].path), "--env", "test", host=None, extra_env=hosts
    )
    assert deploy_v1.returncode == 0, deploy_v1.stderr
    result = run_cli(
        cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=None, extra_env=hosts
    )
    assert result.returncode == 0, result.stderr
    assert emulator.tree(PROD_ROOT) == {}
    assert (
        notebooks(second_emulator, PROD_ROOT)["ingest/load"]
        == notebooks(emulator, TEST_ROOT)["ingest/load"]
    )


# --- --skip-requires ------------------------------------------------------------------------


def test_skip_requires_is_loud_and_written_into_the_record(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    result = run_cli(
        cfg, "deploy", str(built["1.1.0"].path), "--env", "prod", "--skip-requires",
        host=emulator.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--skip-requires" in result.stderr
    assert "record" in result.stderr
    prod = status_json(cfg, emulator, "prod")
    assert prod["skip_requires"] is True
    assert prod["digest"] == built["1.1.0"].digest
    text = run_cli(cfg, "status", "--env", "prod", host=emulator.url)
    assert "--skip-requires" in text.stdout

    # The next regular promotion clears the flag.
    run_cli(cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=emulator.url)
    assert status_json(cfg, emulator, "prod")["skip_requires"] is False


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("promote", "--from", "test", "--to", "staging", "--yes"),
        ("promote", "--from", "staging", "--to", "prod", "--yes"),
        ("deploy", "ARTIFACT", "--env", "staging"),
        ("rollback", "--env", "staging"),
        ("status", "--env", "staging"),
        ("history", "--env", "staging"),
    ],
)
def test_an_unknown_environment_is_bad_input(
    cfg: Path, emulator: Emulator, built: dict[str, Built], args: tuple[str, ...]
) -> None:
    args = tuple(str(built["1.0.0"].path) if a == "ARTIFACT" else a for a in args)
    result = run_cli(cfg, *args, host=emulator.url)
    assert_error(result, 2, "'staging'", "prod, test")
    assert emulator.request_log() == []


def test_requires_naming_an_unknown_environment_is_bad_config(
    tmp_path: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    cfg = tmp_path / "bad.yml"
    cfg.write_text(CONFIG.replace("requires: test", "requires: qa"))
    for args in (
        ("deploy", str(built["1.0.0"].path), "--env", "test"),
        ("promote", "--from", "test", "--to", "prod", "--yes"),
        ("status",),
    ):
        result = run_cli(cfg, *args, host=emulator.url)
        assert_error(result, 2, "requires", "'qa'")
    assert emulator.request_log() == []


def test_a_cycle_in_requires_is_bad_config(
    tmp_path: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    cfg = tmp_path / "cycle.yml"
    cfg.write_text(
        "project: demo\nsource: notebooks\nenvironments:\n"
        f"  test:\n    root: {TEST_ROOT}\n    requires: prod\n"
        f"  prod:\n    root: {PROD_ROOT}\n    requires: test\n"
    )
    result = run_cli(cfg, "deploy", str(built["1.0.0"].path), "--env", "test", host=emulator.url)
    assert_error(result, 2, "cycle")
    result = run_cli(cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=emulator.url)
    assert_error(result, 2, "cycle")
    assert emulator.request_log() == []


def test_a_self_requirement_is_a_cycle(tmp_path: Path, emulator: Emulator) -> None:
    cfg = tmp_path / "self.yml"
    cfg.write_text(
        f"project: demo\nsource: notebooks\nenvironments:\n  prod:\n    root: {PROD_ROOT}\n"
        "    requires: prod\n"
    )
    assert_error(run_cli(cfg, "status", host=emulator.url), 2, "cycle")


def test_promote_refuses_a_corrupt_record_in_the_source_environment(
    cfg: Path, emulator: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    deploy(cfg, emulator, built["1.0.0"], "test")
    workspace_client.workspace.upload(
        f"{TEST_ROOT}/.dbx-promote/deployment.json", b"{", format=ImportFormat.AUTO, overwrite=True
    )
    result = run_cli(cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=emulator.url)
    assert_error(result, 2, "deployment.json", "corrupt")
    assert emulator.tree(PROD_ROOT) == {}
