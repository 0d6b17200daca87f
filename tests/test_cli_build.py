"""`dbx-promote build`, `verify` and `inspect` as a user runs them: a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import run_main

SAMPLE = Path(__file__).parent.parent / "notebooks"
SCENARIOS = Path(__file__).parent / "scenarios"
CONFIG = """\
project: sales-analytics
source: notebooks
{build}environments:
  test:
    root: /Shared/sales-analytics/test
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed git repository with the sample notebooks and a config, tagged v1.2.0."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.delenv("DBX_PROMOTE_CONFIG", raising=False)
    monkeypatch.delenv("TF_BUILD", raising=False)
    root = tmp_path / "project"
    shutil.copytree(SAMPLE, root / "notebooks")
    (root / "dbx-promote.yml").write_text(CONFIG.format(build=""))
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "sample"],
        ["tag", "v1.2.0"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_main(list(args), cwd=cwd, env={**os.environ, "COLUMNS": "200"})


def test_the_console_script_runs(project: Path) -> None:
    """The installed `dbx-promote` entry point (a real process) builds like `main`."""
    script = Path(sys.executable).parent / "dbx-promote"
    result = subprocess.run(
        [str(script), "build", "--output", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"] == "1.2.0"


def test_build_prints_path_version_and_digest(project: Path) -> None:
    result = run(project, "build")
    assert result.returncode == 0, result.stderr
    artifact = project / "dist" / "sales-analytics-1.2.0.zip"
    assert artifact.is_file()
    lines = result.stdout.splitlines()
    assert lines[0] == f"built   {artifact}"
    assert lines[1] == "version 1.2.0"
    assert lines[2].startswith("digest  sha256:")


def test_build_json_prints_artifact_version_digest_objects(project: Path, tmp_path: Path) -> None:
    result = run(project, "build", "--out", str(tmp_path / "out"), "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"artifact", "version", "digest", "objects"}
    assert report["artifact"] == str(tmp_path / "out" / "sales-analytics-1.2.0.zip")
    assert (report["version"], report["objects"]) == ("1.2.0", 11)


def test_two_builds_of_one_commit_have_one_digest(project: Path, tmp_path: Path) -> None:
    digests = {
        json.loads(run(project, "build", "--out", str(tmp_path / d), "--output", "json").stdout)[
            "digest"
        ]
        for d in ("a", "b")
    }
    assert len(digests) == 1


def test_verify_prints_ok_digest_and_object_count(project: Path) -> None:
    built = json.loads(run(project, "build", "--output", "json").stdout)
    result = run(project, "verify", built["artifact"])
    assert result.returncode == 0
    assert result.stdout == f"OK {built['digest']} 11 objects\n"


def test_inspect_json_is_the_manifest_plus_digest(project: Path) -> None:
    built = json.loads(run(project, "build", "--output", "json").stdout)
    result = run(project, "inspect", built["artifact"], "--output", "json")
    manifest = json.loads(result.stdout)
    assert manifest["digest"] == built["digest"]
    assert manifest["version"] == "1.2.0" and manifest["schema_version"] == 1
    kinds = {o["workspace_path"]: (o["kind"], o["language"]) for o in manifest["objects"]}
    assert kinds["lib/helpers.py"] == ("file", None)
    assert kinds["reports/region_trend"] == ("notebook", "R")
    assert kinds["exploration/revenue_check"] == ("notebook", "PYTHON")


def test_inspect_shows_a_table(project: Path) -> None:
    built = json.loads(run(project, "build", "--output", "json").stdout)
    result = run(project, "inspect", built["artifact"])
    assert result.returncode == 0
    assert "sales-analytics 1.2.0" in result.stdout
    assert "transform/clean_orders" in result.stdout


def test_version_option_overrides_git(project: Path) -> None:
    result = run(project, "build", "--version", "2.0.0-rc1", "--output", "json")
    assert json.loads(result.stdout)["version"] == "2.0.0-rc1"


def test_release_build_of_a_dirty_tree_exits_2_with_one_line(project: Path) -> None:
    (project / "notebooks" / "lib" / "helpers.py").write_text("changed = True\n")
    result = run(project, "build", "--release")
    assert result.returncode == 2
    assert result.stderr.startswith("error: uncommitted changes in the source folder")
    assert result.stderr.count("\n") == 1
    assert run(project, "build", "--output", "json").returncode == 0  # without --release: .dirty


def test_build_outside_git_needs_a_version(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE, tmp_path / "notebooks")
    (tmp_path / "dbx-promote.yml").write_text(CONFIG.format(build=""))
    result = run(tmp_path, "build")
    assert result.returncode == 2
    assert "not in a git repository with commits; pass --version" in result.stderr
    assert run(tmp_path, "build", "--version", "0.1.0").returncode == 0


def test_config_build_settings_are_honoured(project: Path) -> None:
    build = "build:\n  exclude: ['exploration/**']\n  allow_files: false\n"
    (project / "dbx-promote.yml").write_text(CONFIG.format(build=build))
    result = run(project, "build", "--output", "json")
    assert result.returncode == 2
    assert "lib/helpers.py: not a notebook" in result.stderr
    build = "build:\n  exclude: ['exploration/**', 'lib/**']\n"
    (project / "dbx-promote.yml").write_text(CONFIG.format(build=build))
    assert json.loads(run(project, "build", "--output", "json").stdout)["objects"] == 9


def test_keep_outputs_changes_the_stored_notebook(project: Path, tmp_path: Path) -> None:
    shutil.copy(SCENARIOS / "discovery" / "with_outputs.ipynb", project / "notebooks")
    digests = []
    for flag in ("--strip-outputs", "--keep-outputs"):
        out = str(tmp_path / flag)
        result = run(project, "build", flag, "--version", "1", "--out", out, "--output", "json")
        digests.append(json.loads(result.stdout)["digest"])
    assert digests[0] != digests[1]


def test_build_refusal_lists_every_problem_on_one_line(project: Path) -> None:
    for name in ("a.py", "a.sql", "broken.ipynb", "_environment.py"):
        shutil.copy(SCENARIOS / "many_problems" / name, project / "notebooks")
    result = run(project, "build")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: cannot build: 3 problems: ")
    assert not (project / "dist").exists()


def test_verify_of_a_tampered_artifact_exits_2(project: Path) -> None:
    built = json.loads(run(project, "build", "--output", "json").stdout)
    path = Path(built["artifact"])
    path.write_bytes(path.read_bytes()[:-30])
    result = run(project, "verify", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
