"""The real CLI under GITHUB_ACTIONS=true: annotations, step summary, outputs, the run in the
record -- and none of it outside GitHub Actions, even with the runner's files present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbx_promote.emulator import Emulator

from ci_helpers import parse_command, read_outputs
from cli_helpers import HEADER, TOKEN, run_cli

CONFIG = """\
project: app
source: notebooks
environments:
  test:
    root: /Shared/app/test
"""

RUN = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "contoso/notebooks",
    "GITHUB_RUN_ID": "4711",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_WORKFLOW": "dbx-promote",
    "GITHUB_JOB": "deploy-test",
    "GITHUB_ACTOR": "jane",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_SHA": "0123456789abcdef",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "notebooks" / "etl").mkdir(parents=True)
    (root / "notebooks" / "etl" / "ingest.py").write_text(HEADER + "print('ingest')\n")
    (root / "dbx-promote.yml").write_text(CONFIG)
    return root


def runner_env(repo: Path, *, active: bool = True) -> dict[str, str]:
    files = repo.parent / "runner"
    files.mkdir(exist_ok=True)
    env = {
        **RUN,
        "GITHUB_WORKSPACE": str(repo),
        "GITHUB_STEP_SUMMARY": str(files / "step_summary.md"),
        "GITHUB_OUTPUT": str(files / "output"),
    }
    if active:
        env["GITHUB_ACTIONS"] = "true"
    return env


def commands(text: str) -> list[tuple[str, dict[str, str], str]]:
    return [parse_command(line) for line in text.splitlines() if line.startswith("::")]


def test_build_and_deploy_report_to_github(repo: Path, emulator: Emulator) -> None:
    env = runner_env(repo)
    cfg = repo / "dbx-promote.yml"
    build = run_cli(cfg, "build", "--version", "1.0.0", host=None, extra_env=env)
    assert build.returncode == 0, build.stderr
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["version"] == "1.0.0" and outputs["digest"].startswith("sha256:")
    artifact = repo / "dist" / "app-1.0.0.zip"

    deploy = run_cli(
        cfg, "deploy", str(artifact), "--env", "test", host=emulator.url, extra_env=env
    )
    assert deploy.returncode == 0, deploy.stderr
    # The plan is folded into a group on stdout; the outcome line stays outside it.
    out = deploy.stdout.splitlines()
    start = out.index(next(x for x in out if x.startswith("::group::")))
    end = out.index("::endgroup::")
    assert "dbx-promote plan for test: 2 create" in out[start]
    assert any("deployed 1.0.0 to test and verified" in x for x in out[end:])
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "## dbx-promote test: 1.0.0" in summary
    assert "| create | 2 |" in summary and "`etl/ingest`" in summary
    assert read_outputs(Path(env["GITHUB_OUTPUT"]))["digest"] == outputs["digest"]

    st = run_cli(cfg, "status", "--env", "test", "--output", "json", host=emulator.url)
    pipeline = json.loads(st.stdout)["pipeline"]
    assert pipeline["run_url"] == "https://github.com/contoso/notebooks/actions/runs/4711"
    assert (pipeline["actor"], pipeline["ref"], pipeline["sha"]) == (
        "jane",
        "refs/heads/main",
        "0123456789abcdef",
    )
    text = run_cli(cfg, "status", "--env", "test", host=emulator.url).stdout
    assert "for jane via https://github.com/contoso/notebooks/actions/runs/4711" in text
    assert TOKEN not in deploy.stdout + deploy.stderr + summary


def test_json_output_stays_one_object_and_still_reports(repo: Path, emulator: Emulator) -> None:
    env = runner_env(repo)
    cfg = repo / "dbx-promote.yml"
    proc = run_cli(
        cfg, "deploy", "--env", "test", "--dry-run", "--output", "json", host=emulator.url,
        extra_env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["dry_run"] is True
    assert "dbx-promote plan: test" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "version" in read_outputs(Path(env["GITHUB_OUTPUT"]))


def test_build_problems_become_annotations_at_their_lines(repo: Path) -> None:
    env = runner_env(repo)
    leaked = "dapi" + "0123456789abcdef" * 2
    (repo / "notebooks" / "etl" / "ingest.py").write_text(
        HEADER + f"token = '{leaked}'\n"  # dbx-promote: allow-secret is NOT on this line
    )
    proc = run_cli(repo / "dbx-promote.yml", "build", "--version", "1", host=None, extra_env=env)
    assert proc.returncode == 2
    (name, props, message), *rest = commands(proc.stderr)
    assert (name, props["file"], props["line"]) == ("error", "notebooks/etl/ingest.py", "2")
    assert "looks like a Databricks" in message
    assert rest == []
    assert leaked not in proc.stdout + proc.stderr


def test_a_bad_environment_is_one_error_annotation(repo: Path, emulator: Emulator) -> None:
    env = runner_env(repo)
    proc = run_cli(
        repo / "dbx-promote.yml", "deploy", "--env", "nope", host=emulator.url, extra_env=env
    )
    assert proc.returncode == 2
    ((name, _, message),) = commands(proc.stderr)
    assert name == "error" and "unknown environment" in message


def test_outside_github_actions_nothing_of_it_appears(repo: Path, emulator: Emulator) -> None:
    """The runner's files exist but GITHUB_ACTIONS is unset: no commands, no file touched."""
    env = runner_env(repo, active=False)
    cfg = repo / "dbx-promote.yml"
    procs = [
        run_cli(cfg, "build", "--version", "1.0.0", host=None, extra_env=env),
        run_cli(cfg, "deploy", "--env", "test", host=emulator.url, extra_env=env),
        run_cli(cfg, "deploy", "--env", "nope", host=emulator.url, extra_env=env),
    ]
    assert [p.returncode for p in procs] == [0, 0, 2]
    for p in procs:
        assert not commands(p.stdout + p.stderr)
        assert "##vso" not in p.stdout + p.stderr
    assert not Path(env["GITHUB_STEP_SUMMARY"]).exists()
    assert not Path(env["GITHUB_OUTPUT"]).exists()
    st = run_cli(cfg, "status", "--env", "test", "--output", "json", host=emulator.url)
    assert json.loads(st.stdout)["pipeline"] is None


def test_github_oidc_without_an_id_token_says_what_the_job_needs(
    repo: Path, emulator: Emulator
) -> None:
    """The SDK's github-oidc finds no token when the job lacks `id-token: write`."""
    env = {
        **runner_env(repo),
        "DBX_PROMOTE_AUTH": "github-oidc",
        "DATABRICKS_CLIENT_ID": "9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f",
        "DATABRICKS_TOKEN": "",
    }
    proc = run_cli(
        repo / "dbx-promote.yml", "deploy", "--env", "test", "--dry-run", host=emulator.url,
        extra_env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: environment 'test': GitHub OIDC sign-in failed")
    assert "grant it the `id-token` permission, set to `write`" in first
    assert "DATABRICKS_CLIENT_ID" in first
    ((name, _, message),) = commands(proc.stderr)
    assert name == "error" and "GitHub OIDC" in message
