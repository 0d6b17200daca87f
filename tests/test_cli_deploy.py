"""`dbx-promote deploy` end to end: the CLI (in-process) against the emulator.

Bad input exits 2 with one line on stderr and changes nothing; no token ever appears in
any output, `--debug` included.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import run_main
from deploy_helpers import V1, V2, build

TOKEN = "dapi0123456789abcdef0123456789abcdef"


def write_config(tmp: Path, body: str | None = None) -> Path:
    cfg = tmp / "dbx-promote.yml"
    cfg.write_text(
        body
        or """
project: app
source: src
environments:
  test:
    root: /Shared/app/test
    parameters: {catalog: test_cat}
  prod:
    root: /Shared/app/prod
    requires: test
"""
    )
    src = tmp / "src"
    for rel, text in V1.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return cfg


def run(args: list[str], *, url: str | None, extra_env: dict[str, str] | None = None):
    """The CLI in-process, as a pipeline step would run it."""
    env = {k: v for k, v in os.environ.items()}
    if url:
        env["DATABRICKS_HOST"] = url
        env["DATABRICKS_TOKEN"] = TOKEN
    env.update(extra_env or {})
    return run_main(args, env=env)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_deploy_json_prints_one_object_with_the_documented_fields(emulator, tmp_path):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")

    proc = run(
        ["--config", str(cfg), "deploy", str(art.path), "--env", "test", "--output", "json"],
        url=emulator.url,
    )

    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["env"] == "test" and data["version"] == "1.0.0" and data["digest"] == art.digest
    assert data["dry_run"] is False and data["verified"] is True
    assert len(data["changes"]["create"]) == 5
    assert data["requests"] > 0
    assert data["bulk"] == {"imports": 2, "refused": False, "per_object": [], "repaired": []}


def test_no_bulk_imports_new_folders_one_object_at_a_time(emulator, tmp_path):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")

    args = ["--config", str(cfg), "deploy", str(art.path), "--env", "test", "--no-bulk"]
    proc = run([*args, "--output", "json"], url=emulator.url)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bulk"]["imports"] == 0
    assert "/Shared/app/test/etl" not in [
        r["path"] for r in emulator.request_log() if r["endpoint"] == "import"
    ]


def test_dry_run_without_artifact_plans_the_working_tree(emulator, tmp_path):
    cfg = write_config(tmp_path)

    proc = run(
        ["--config", str(cfg), "deploy", "--env", "test", "--dry-run", "--output", "json"],
        url=emulator.url,
    )

    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["dry_run"] is True
    assert data["version"] == "0.0.0+worktree"
    assert emulator.counters()["writes"] == 0


def test_plan_out_then_plan_applies_the_reviewed_plan(emulator, tmp_path):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V2, "2.0.0")
    plan = tmp_path / "plan.json"

    first = run(
        [
            "--config",
            str(cfg),
            "deploy",
            str(art.path),
            "--env",
            "test",
            "--dry-run",
            "--plan-out",
            str(plan),
        ],
        url=emulator.url,
    )
    second = run(
        ["--config", str(cfg), "deploy", str(art.path), "--env", "test", "--plan", str(plan)],
        url=emulator.url,
    )

    assert first.returncode == 0 and plan.exists(), first.stderr
    assert second.returncode == 0, second.stderr


def test_stale_reviewed_plan_exits_1_with_the_difference(emulator, tmp_path):
    cfg = write_config(tmp_path)
    v1, v2 = build(tmp_path, V1, "1.0.0"), build(tmp_path, V2, "2.0.0")
    plan = tmp_path / "plan.json"
    run(
        [
            "--config",
            str(cfg),
            "deploy",
            str(v2.path),
            "--env",
            "test",
            "--dry-run",
            "--plan-out",
            str(plan),
        ],
        url=emulator.url,
    )
    run(["--config", str(cfg), "deploy", str(v1.path), "--env", "test"], url=emulator.url)

    proc = run(
        ["--config", str(cfg), "deploy", str(v2.path), "--env", "test", "--plan", str(plan)],
        url=emulator.url,
    )

    assert proc.returncode == 1
    assert "changed since the plan was reviewed" in one_line_error(proc)


def test_prod_refuses_an_artifact_not_verified_in_test(emulator, tmp_path):
    cfg = write_config(tmp_path)
    v1, v2 = build(tmp_path, V1, "1.0.0"), build(tmp_path, V2, "2.0.0")
    assert (
        run(
            ["--config", str(cfg), "deploy", str(v1.path), "--env", "test"], url=emulator.url
        ).returncode
        == 0
    )

    proc = run(["--config", str(cfg), "deploy", str(v2.path), "--env", "prod"], url=emulator.url)

    assert proc.returncode == 1
    line = one_line_error(proc)
    assert v1.digest in line and v2.digest in line
    assert emulator.tree("/Shared/app/prod") == {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("project: app\nenvironments: {test: {root: /Shared}}\n", "shared top-level folder"),
        ("project: app\nenvironments: {test: {root: relative/path}}\n", "absolute"),
        ("project: app\nenvironments: {test: {root: /Users/me}}\n", "home folder"),
        ("project: app\nenvironments: {test: {root: /Shared/x, token: abc}}\n", "credential"),
        (
            "project: app\nenvironments: {test: {root: /Shared/x, colour: red}}\n",
            "unknown key 'colour'",
        ),
        (
            "project: app\nenvironments: {test: {root: /Shared/x, requires: qa}}\n",
            "unknown environment 'qa'",
        ),
        ("project: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_exits_2_with_one_line(emulator, tmp_path, body, expected):
    cfg = write_config(tmp_path, body)
    proc = run(["--config", str(cfg), "deploy", "--env", "test", "--dry-run"], url=emulator.url)
    assert proc.returncode == 2
    assert expected in one_line_error(proc)


def test_unknown_environment_exits_2_naming_the_known_ones(emulator, tmp_path):
    cfg = write_config(tmp_path)
    proc = run(["--config", str(cfg), "deploy", "--env", "staging", "--dry-run"], url=emulator.url)
    assert proc.returncode == 2
    assert "unknown environment 'staging'" in one_line_error(proc)
    assert "prod, test" in proc.stderr


def test_missing_credentials_exit_2_quickly(tmp_path):
    cfg = write_config(tmp_path)
    started = time.monotonic()
    proc = run(["--config", str(cfg), "deploy", "--env", "test", "--dry-run"], url=None)
    assert proc.returncode == 2
    assert "credentials" in one_line_error(proc) or "host" in proc.stderr
    assert time.monotonic() - started < 20


def test_unreachable_host_fails_in_seconds_not_minutes(tmp_path):
    cfg = write_config(tmp_path)
    started = time.monotonic()
    proc = run(
        ["--config", str(cfg), "deploy", "--env", "test", "--dry-run"],
        url="http://127.0.0.1:9",
    )
    assert proc.returncode == 2
    assert "cannot reach workspace" in one_line_error(proc)
    assert time.monotonic() - started < 20


def test_tampered_artifact_exits_2_and_changes_nothing(emulator, tmp_path):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")
    data = bytearray(art.path.read_bytes())
    data[40] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))

    proc = run(["--config", str(cfg), "deploy", str(bad), "--env", "test"], url=emulator.url)

    assert proc.returncode == 2
    one_line_error(proc)
    assert emulator.counters()["writes"] == 0


def test_plan_out_needs_dry_run(emulator, tmp_path):
    cfg = write_config(tmp_path)
    proc = run(
        ["--config", str(cfg), "deploy", "--env", "test", "--plan-out", "p.json"], url=emulator.url
    )
    assert proc.returncode == 2
    assert "--dry-run" in one_line_error(proc)


def test_no_token_in_any_output_even_with_debug(emulator, tmp_path):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")
    outputs = []
    for args in (
        ["--debug", "--config", str(cfg), "deploy", str(art.path), "--env", "test"],
        ["--debug", "--config", str(cfg), "deploy", str(art.path), "--env", "prod"],
        ["--debug", "--config", str(cfg), "status"],
    ):
        proc = run(args, url=emulator.url, extra_env={"TF_BUILD": "True"})
        outputs.append(proc.stdout + proc.stderr)
    text = "\n".join(outputs)
    assert "GET" in text or "POST" in text or "retry" in text or "phase" in text  # debug logged
    assert TOKEN not in text
    assert TOKEN[4:] not in text


def test_in_azure_pipelines_errors_become_logissue_and_the_plan_a_summary(emulator, tmp_path):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")
    env = {"TF_BUILD": "True"}

    ok = run(
        ["--config", str(cfg), "deploy", str(art.path), "--env", "test"],
        url=emulator.url,
        extra_env=env,
    )
    bad = run(["--config", str(cfg), "deploy", "--env", "nope"], url=emulator.url, extra_env=env)

    assert ok.returncode == 0, ok.stderr
    assert "##vso[task.uploadsummary]" in ok.stdout
    assert "##vso[task.setvariable variable=dbxPromoteVersion;isOutput=true;]1.0.0" in ok.stdout
    assert "##[group]" in ok.stdout
    assert "##vso[task.logissue type=error;]unknown environment" in bad.stdout


def test_a_held_lock_exits_1_naming_the_holder(emulator, tmp_path, workspace_client):
    from databricks.sdk.service.workspace import ImportFormat

    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")
    workspace_client.workspace.mkdirs("/Shared/app/test/.dbx-promote")
    lock = {
        "holder": "bob@example.com",
        "started_at": "2999-01-01T00:00:00Z",
        "host": "agent-7",
        "pid": 1,
        "version": "0.9",
        "digest": "sha256:x",
        "run_url": None,
        "extra": {},
    }
    workspace_client.workspace.upload(
        "/Shared/app/test/.dbx-promote/lock.json",
        json.dumps(lock).encode(),
        format=ImportFormat.AUTO,
    )

    proc = run(["--config", str(cfg), "deploy", str(art.path), "--env", "test"], url=emulator.url)

    assert proc.returncode == 1
    assert "bob@example.com" in one_line_error(proc)


def test_per_environment_hosts_from_variables_reach_two_workspaces(
    emulator, second_emulator, tmp_path
):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")
    hosts = {
        "DBX_PROMOTE_TEST_HOST": emulator.url,
        "DBX_PROMOTE_PROD_HOST": second_emulator.url,
        "DBX_PROMOTE_PROD_TOKEN": "dapi-prod-only-token-value",
        "DATABRICKS_TOKEN": TOKEN,
    }

    to_test = run(
        ["--config", str(cfg), "deploy", str(art.path), "--env", "test"], url=None, extra_env=hosts
    )
    to_prod = run(
        ["--config", str(cfg), "deploy", str(art.path), "--env", "prod"], url=None, extra_env=hosts
    )

    assert to_test.returncode == 0, to_test.stderr
    assert to_prod.returncode == 0, to_prod.stderr
    assert "/Shared/app/prod/etl/ingest" in second_emulator.tree("/Shared/app/prod")
    assert emulator.tree("/Shared/app/prod") == {}
    assert "dapi-prod-only-token-value" not in to_prod.stdout + to_prod.stderr


def test_a_plan_made_for_another_environment_is_refused(emulator, tmp_path):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")
    plan = tmp_path / "plan.json"
    run(
        [
            "--config",
            str(cfg),
            "deploy",
            str(art.path),
            "--env",
            "test",
            "--dry-run",
            "--plan-out",
            str(plan),
        ],
        url=emulator.url,
    )
    run(["--config", str(cfg), "deploy", str(art.path), "--env", "test"], url=emulator.url)

    proc = run(
        ["--config", str(cfg), "deploy", str(art.path), "--env", "prod", "--plan", str(plan)],
        url=emulator.url,
    )

    assert proc.returncode == 2
    assert "made for environment 'test'" in one_line_error(proc)


def test_a_damaged_plan_file_is_refused(emulator, tmp_path):
    cfg = write_config(tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "kind": "dbx-promote-plan",
                "schema_version": 1,
                "signature": {"digest": "x", "root": "/", "changes": [1, 2]},
            }
        )
    )
    proc = run(
        ["--config", str(cfg), "deploy", "--env", "test", "--plan", str(plan)], url=emulator.url
    )
    assert proc.returncode == 2
    assert "damaged" in one_line_error(proc)


def test_json_output_stays_one_object_in_azure_pipelines(emulator, tmp_path):
    cfg = write_config(tmp_path)
    art = build(tmp_path, V1, "1.0.0")
    proc = run(
        ["--config", str(cfg), "deploy", str(art.path), "--env", "test", "--output", "json"],
        url=emulator.url,
        extra_env={"TF_BUILD": "True"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verified"] is True


def test_promote_to_the_same_environment_is_bad_usage(emulator, tmp_path):
    cfg = write_config(tmp_path)
    proc = run(
        ["--config", str(cfg), "promote", "--from", "test", "--to", "test", "--yes"],
        url=emulator.url,
    )
    assert proc.returncode == 2
    assert "two environments" in one_line_error(proc)
