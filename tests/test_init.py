"""`dbx-promote init` in a scratch repository of notebooks: what it finds, what it writes, and
that what it writes works (config validates, a dry run plans, pipelines pass their schemas)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dbx_promote.config import load_config
from dbx_promote.emulator import Emulator
from dbx_promote.errors import BadInput
from dbx_promote.scaffold import InitOptions, default_ci, init_project

from ci_helpers import azure_schema_errors, github_schema_errors, load_workflow
from cli_helpers import HEADER, TOKEN, run_cli

IPYNB = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "a1",
            "metadata": {},
            "outputs": [],
            "source": ["print(1)"],
        }
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "py"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def scratch_repo(root: Path) -> Path:
    """A repository with Python, SQL and ipynb notebooks below src/notebooks, and things
    init must not count: a virtual env, a hidden folder, a plain module, a README."""
    nb = root / "src" / "notebooks"
    (nb / "etl").mkdir(parents=True)
    (nb / "reports").mkdir()
    (nb / "etl" / "ingest.py").write_text(HEADER + "print('ingest')\n")
    (nb / "etl" / "clean.sql").write_text("-- Databricks notebook source\nSELECT 1\n")
    (nb / "reports" / "summary.ipynb").write_text(json.dumps(IPYNB))
    (nb / "etl" / "helpers.py").write_text("def helper():\n    return 1\n")
    venv = root / "env"
    (venv / "lib").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib" / "vendored.py").write_text(HEADER)
    (root / ".scratch").mkdir()
    (root / ".scratch" / "draft.py").write_text(HEADER)
    (root / "README.md").write_text("# analytics\n")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return scratch_repo(tmp_path / "Sales Analytics")


def test_init_finds_the_notebooks_folder_and_writes_everything(repo: Path) -> None:
    result = init_project(InitOptions(root=repo, ci="both"))
    assert (result.project, result.source, result.notebooks) == (
        "Sales-Analytics",
        "src/notebooks",
        3,
    )
    assert result.written == (
        "dbx-promote.yml",
        "azure-pipelines.yml",
        ".github/workflows/dbx-promote.yml",
        "src/notebooks/tests/smoke_test.py",
    )
    assert len(result.next_steps) == 3
    assert "deploy --env dev --dry-run" in result.next_steps[0]
    config = load_config(repo / "dbx-promote.yml")
    assert config.project == "Sales-Analytics"
    assert config.source == (repo / "src" / "notebooks").resolve()
    assert list(config.environments) == ["dev", "test", "prod"]
    envs = config.environments
    assert envs["dev"].root == "/Users/{user}/Sales-Analytics"
    assert envs["test"].root == "/Shared/Sales-Analytics/test"
    assert envs["prod"].root == "/Shared/Sales-Analytics/prod"
    assert envs["prod"].requires == "test"


def test_the_config_carries_tests_for_test_and_prod(repo: Path) -> None:
    """The shape of DESIGN.md's "Tests in an environment" (validated by config.py)."""
    import yaml

    init_project(InitOptions(root=repo, ci="github"))
    raw = yaml.safe_load((repo / "dbx-promote.yml").read_text())["environments"]
    assert raw["test"]["tests"] == {
        "notebooks": ["tests/*"],
        "compute": {"serverless": True},
        "timeout_minutes": 30,
    }
    assert raw["prod"]["tests"] == {
        "notebooks": ["tests/smoke_*"],
        "compute": {"serverless": True},
        "on_failure": "rollback",
    }
    envs = load_config(repo / "dbx-promote.yml").environments
    test, prod = envs["test"].tests, envs["prod"].tests
    assert test is not None and prod is not None
    assert (test.notebooks, test.compute_kind, test.timeout_minutes) == (
        ("tests/*",),
        "serverless",
        30,
    )
    assert (prod.notebooks, prod.on_failure) == (("tests/smoke_*",), "rollback")


def test_the_generated_pipelines_pass_their_schemas(repo: Path) -> None:
    init_project(InitOptions(root=repo, ci="both"))
    workflow = (repo / ".github" / "workflows" / "dbx-promote.yml").read_text()
    assert github_schema_errors(workflow) == []
    assert azure_schema_errors((repo / "azure-pipelines.yml").read_text()) == []
    from dbx_promote import __version__

    assert f"dbx-promote=={__version__}" in workflow


def test_the_generated_pipelines_keep_each_deploys_test_results(repo: Path) -> None:
    """Both pipelines write JUnit after each deploy and keep it even when a test failed."""
    init_project(InitOptions(root=repo, ci="both"))
    github = load_workflow((repo / ".github" / "workflows" / "dbx-promote.yml").read_text())
    for job in ("test", "prod"):
        steps = github["jobs"][job]["steps"]
        assert f"--junit test-results/TEST-dbx-{job}.xml" in steps[-2]["run"]
        assert steps[-1]["uses"].startswith("actions/upload-artifact@")
        assert (steps[-1]["if"], steps[-1]["with"]["name"]) == (
            "${{ !cancelled() }}",
            f"test-results-{job}",
        )
    azure = (repo / "azure-pipelines.yml").read_text()
    for env in ("test", "prod"):
        assert f'--junit "$(Common.TestResultsDirectory)/TEST-dbx-{env}.xml"' in azure
    assert azure.count("task: PublishTestResults@2") == 2
    assert azure.count("condition: always()") == 2


def test_init_ci_github_writes_only_the_workflow(repo: Path) -> None:
    result = init_project(InitOptions(root=repo, ci="github"))
    assert ".github/workflows/dbx-promote.yml" in result.written
    assert not (repo / "azure-pipelines.yml").exists()
    assert github_schema_errors((repo / ".github/workflows/dbx-promote.yml").read_text()) == []


def test_a_dry_run_of_the_generated_config_works_against_the_emulator(
    repo: Path, emulator: Emulator
) -> None:
    proc = run_cli(
        repo / "dbx-promote.yml", "deploy", "--env", "dev", "--dry-run", "--output", "json",
        host=None, extra_env={"DATABRICKS_HOST": emulator.url},
    )  # fmt: skip
    assert proc.returncode == 2  # no config yet: bad input
    init = run_cli(repo / "dbx-promote.yml", "init", host=None, cwd=repo)
    assert init.returncode == 0, init.stderr
    proc = run_cli(
        repo / "dbx-promote.yml", "deploy", "--env", "dev", "--dry-run", "--output", "json",
        host=emulator.url,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    created = set(plan["changes"]["create"])
    assert {"etl/ingest", "etl/clean", "reports/summary", "tests/smoke_test"} <= created
    assert emulator.counters()["writes"] == 0


def test_the_cli_prints_what_it_wrote_and_three_next_steps(repo: Path) -> None:
    proc = run_cli(repo / "dbx-promote.yml", "init", "--ci", "azure", host=None, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "project Sales-Analytics: 3 notebooks in src/notebooks/" in out
    for rel in ("dbx-promote.yml", "azure-pipelines.yml", "src/notebooks/tests/smoke_test.py"):
        assert re.search(rf"^wrote\s+{re.escape(rel)}$", out, flags=re.MULTILINE), out
    assert re.findall(r"^  (\d)\. ", out, flags=re.MULTILINE) == ["1", "2", "3"]
    assert "ado ensure-environments" in out


def test_init_twice_refuses_and_writes_nothing(repo: Path) -> None:
    run_cli(repo / "dbx-promote.yml", "init", host=None, cwd=repo)
    (repo / "dbx-promote.yml").write_text("# mine\n")
    (repo / ".github" / "workflows" / "dbx-promote.yml").unlink()
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    proc = run_cli(repo / "dbx-promote.yml", "init", "--ci", "github", host=None, cwd=repo)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: dbx-promote.yml, "), proc.stderr
    assert "src/notebooks/tests/smoke_test.py already exist" in lines[0]
    assert "--force" in lines[0]
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
    assert not (repo / ".github" / "workflows" / "dbx-promote.yml").exists()


def test_force_overwrites_and_says_so(repo: Path) -> None:
    init_project(InitOptions(root=repo, ci="github"))
    (repo / "dbx-promote.yml").write_text("# mine\n")
    result = init_project(InitOptions(root=repo, ci="github", force=True))
    assert set(result.overwritten) == set(result.written)
    assert load_config(repo / "dbx-promote.yml").project == "Sales-Analytics"


def test_notebooks_at_the_repository_root_package_only_their_folders(tmp_path: Path) -> None:
    root = tmp_path / "nbrepo"
    (root / "jobs").mkdir(parents=True)
    (root / "jobs" / "daily.py").write_text(HEADER + "print(1)\n")
    (root / "explore.sql").write_text("-- Databricks notebook source\nSELECT 1\n")
    (root / "README.md").write_text("readme\n")
    (root / "requirements.txt").write_text("pandas\n")
    result = init_project(InitOptions(root=root, ci="github", project="nb"))
    assert result.source == "."
    assert "tests/smoke_test.py" in result.written
    proc = run_cli(root / "dbx-promote.yml", "build", "--version", "1.0.0", host=None, cwd=root)
    assert proc.returncode == 0, proc.stderr
    from dbx_promote.artifact import open_artifact

    paths = {
        o.workspace_path for o in open_artifact(root / "dist" / "nb-1.0.0.zip").manifest.objects
    }
    assert paths == {"explore", "jobs/daily", "tests/smoke_test"}


def test_source_option_and_its_mistakes(repo: Path, tmp_path: Path) -> None:
    result = init_project(InitOptions(root=repo, ci="github", source=Path("src/notebooks/etl")))
    assert (result.source, result.notebooks) == ("src/notebooks/etl", 2)
    with pytest.raises(BadInput, match="no such folder"):
        init_project(InitOptions(root=repo, source=Path("nope"), force=True))
    with pytest.raises(BadInput, match="outside the repository"):
        init_project(InitOptions(root=repo, source=tmp_path, force=True))
    with pytest.raises(BadInput, match="--project"):
        init_project(InitOptions(root=repo, project="bad name", force=True))


def test_a_repository_without_notebooks_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "empty" / ".venv").mkdir(parents=True)
    (tmp_path / "empty" / ".venv" / "x.py").write_text(HEADER)
    proc = run_cli(
        tmp_path / "empty" / "dbx-promote.yml", "init", host=None, cwd=tmp_path / "empty"
    )
    assert proc.returncode == 2
    assert "no Databricks notebooks found" in proc.stderr and "--source" in proc.stderr
    assert list((tmp_path / "empty").iterdir()) == [tmp_path / "empty" / ".venv"]


def test_default_ci_follows_the_repository(tmp_path: Path) -> None:
    assert default_ci(tmp_path) == "both"
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text(
        '[remote "origin"]\n url = https://dev.azure.com/o/p/_git/r\n'
    )
    assert default_ci(tmp_path) == "azure"
    (tmp_path / ".github").mkdir()
    assert default_ci(tmp_path) == "github"


def test_no_token_in_any_generated_file(repo: Path) -> None:
    init_project(InitOptions(root=repo, ci="both"))
    for rel in ("dbx-promote.yml", "azure-pipelines.yml", ".github/workflows/dbx-promote.yml"):
        text = (repo / rel).read_text()
        assert TOKEN not in text
        assert not re.search(r"dapi[0-9a-f]{32}", text)
        assert "DATABRICKS_TOKEN" not in text and "secrets." not in text
        assert not re.search(r"(?i)client_secret|password", text)
    # The build's own credential scan finds nothing either.
    assert run_cli(repo / "dbx-promote.yml", "build", "--version", "1", host=None).returncode == 0


def test_the_smoke_test_passes_in_test_and_lands_in_the_step_summary(
    repo: Path, emulator: Emulator
) -> None:
    """The generated smoke test runs for real in the emulator (as a one-time job run), and
    under GitHub Actions its result is appended to the step summary."""
    init_project(InitOptions(root=repo, ci="github"))
    cfg = repo / "dbx-promote.yml"
    text = cfg.read_text().replace("/Shared/Sales-Analytics/test", "/Shared/init-smoke/test")
    cfg.write_text(text)
    deployed = run_cli(cfg, "deploy", "--env", "test", host=emulator.url)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    summary = repo.parent / "step_summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    proc = run_cli(cfg, "test", "--env", "test", host=emulator.url, extra_env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    markdown = summary.read_text()
    assert "## dbx-promote tests: test — passed" in markdown
    assert "| `tests/smoke_test` | passed |" in markdown
