"""Tests after a deploy: recorded, shown by status, gating Prod, and smoke tests in Prod
that roll a bad release back — the real engine and SDK against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbx_promote import operations
from dbx_promote.artifact import Artifact
from dbx_promote.config import Config, load_config
from dbx_promote.deploy import DeployOptions
from dbx_promote.emulator import Emulator
from dbx_promote.envtests import PollPolicy
from dbx_promote.errors import ConfigError, LockHeld, RequiresNotMet
from dbx_promote.operations import TestOptions
from dbx_promote.workspace import RetryPolicy, Workspace
from test_cli_envtests import one_error_line, run_main

from conftest import FakeClock, make_client
from deploy_helpers import build, managed_state

FAST = TestOptions(policy=PollPolicy(first=0.05, longest=0.3))
H = "# Databricks notebook source\n"
CONFIG = """project: app
environments:
  test:
    root: /Shared/app/test
    parameters: {catalog: test_cat, new_setting: "on"}
    tests:
      notebooks: ["tests/*"]
      compute: {serverless: true}
  prod:
    root: /Shared/app/prod
    requires: test
    parameters: {catalog: main}
    tests:
      notebooks: ["tests/smoke_*"]
      compute: {serverless: true}
      on_failure: rollback
"""
SMOKE = H + "# MAGIC %run ../_environment\n# COMMAND ----------\nassert CONFIG['catalog'], CONFIG\n"
V1 = {
    "etl/ingest.py": H + "print('ingest v1')\n",
    "tests/check.py": H + "assert 1 + 1 == 2\n",
    "tests/smoke_orders.py": SMOKE,
}
# v2 breaks its own test: it fails in test and never reaches prod.
V2 = {
    **V1,
    "etl/ingest.py": H + "print('ingest v2')\n",
    "tests/check.py": H + "assert 1 + 1 == 3, 'arithmetic is broken'\n",
}
# v3 passes test, but needs a setting only test has: prod's smoke test fails.
V3 = {
    **V1,
    "etl/ingest.py": H + "print('ingest v3')\n",
    "tests/smoke_orders.py": SMOKE
    + "assert CONFIG.get('new_setting') == 'on', f\"{ENV} lacks new_setting\"\n",
}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    p = tmp_path / "dbx-promote.yml"
    p.write_text(CONFIG)
    return load_config(p)


@pytest.fixture
def connect(emulator: Emulator, fake_clock: FakeClock):
    return lambda env: Workspace(
        make_client(emulator.url, fake_clock), sleep=fake_clock.sleep, retry=RetryPolicy(attempts=4)
    )


def release(tmp: Path, files: dict[str, str], version: str) -> Artifact:
    return build(tmp, files, version)


def deploy(config, connect, artifact, env="test", tests=FAST, **kw):
    return operations.deploy(
        config, env, artifact, DeployOptions(**kw), connect=connect, tests=tests
    )


def promote(config, connect, tests=FAST):
    return operations.promote(config, "test", "prod", DeployOptions(), connect=connect, tests=tests)


def test_passing_tests_are_recorded_shown_and_let_the_release_through(config, connect, tmp_path):
    result = deploy(config, connect, release(tmp_path, V1, "1.0.0"))
    assert result.tests is not None and result.tests.outcome == "passed"
    st = operations.status(config, "test", connect=connect)
    assert st.record is not None and st.record.tests is not None
    assert st.record.tests["digest"] == result.digest
    assert st.to_dict()["tests"]["outcome"] == "passed"
    entry = operations.history(config, "test", connect=connect)[0]
    assert (entry.kind, entry.outcome, entry.version) == ("test", "passed", "1.0.0")
    promoted = promote(config, connect)
    assert promoted.tests is not None and promoted.tests.outcome == "passed"
    assert [t.notebook for t in promoted.tests.tests] == ["tests/smoke_orders"]
    assert promoted.to_dict()["tests"]["outcome"] == "passed"


def test_a_failing_test_keeps_the_release_deployed_and_unpromotable(config, connect, tmp_path):
    v2 = release(tmp_path, V2, "2.0.0")
    result = deploy(config, connect, v2)
    assert result.tests is not None and result.tests.outcome == "failed"
    assert operations.status(config, "test", connect=connect).record.version == "2.0.0"  # type: ignore[union-attr]
    with pytest.raises(RequiresNotMet) as refused:
        promote(config, connect)
    assert "'prod' only takes what passed its tests in 'test': 2.0.0 did not" in str(refused.value)
    assert "tests/check (AssertionError: arithmetic is broken)" in str(refused.value)
    with pytest.raises(RequiresNotMet, match="did not: 1 of 2 tests failed"):
        deploy(config, connect, v2, env="prod")
    # The emergency exit stays.
    assert deploy(
        config, connect, v2, env="prod", skip_requires=True, tests=TestOptions(run=False)
    ).verified


def test_no_test_is_recorded_as_skipped_and_does_not_meet_requires(config, connect, tmp_path):
    result = deploy(config, connect, release(tmp_path, V1, "1.0.0"), tests=TestOptions(run=False))
    assert result.tests is not None and result.tests.outcome == "skipped"
    assert operations.history(config, "test", connect=connect)[0].outcome == "skipped"
    with pytest.raises(
        RequiresNotMet, match=r"tests of 1\.0\.0 .* were skipped there \(--no-test\)"
    ):
        promote(config, connect)


def test_running_the_tests_again_records_them_and_a_pass_opens_the_gate(config, connect, tmp_path):
    deploy(config, connect, release(tmp_path, V1, "1.0.0"), tests=TestOptions(run=False))
    outcome = operations.run_tests(config, "test", connect=connect, policy=FAST.policy)
    assert outcome.outcome == "passed"
    assert operations.history(config, "test", connect=connect)[0].outcome == "passed"
    assert promote(config, connect).verified


def plant_lock(client, started_at: str, deploy_id: str = "d-other") -> None:
    from databricks.sdk.service.workspace import ImportFormat

    from dbx_promote.record import Lock

    lock = Lock(
        holder="agent@example.com", started_at=started_at, host="agent-7", pid=1,
        version="1.1.0", digest="sha256:" + "0" * 64, deploy_id=deploy_id,
    )  # fmt: skip
    client.workspace.upload(
        "/Shared/app/test/.dbx-promote/lock.json",
        lock.to_json(),
        format=ImportFormat.AUTO,
        overwrite=True,
    )


@pytest.mark.parametrize(
    ("started_at", "refusal"),
    [
        ("2999-01-01T00:00:00Z", "a deploy to 'test' is under way (agent@example.com on agent-7"),
        ("2020-01-01T00:00:00Z", "a deploy to 'test' was interrupted (its heartbeat is"),
    ],
)
def test_tests_refuse_a_running_or_interrupted_deploy(
    config, connect, tmp_path, workspace_client, started_at, refusal
):
    deploy(config, connect, release(tmp_path, V1, "1.0.0"), tests=TestOptions(run=False))
    plant_lock(workspace_client, started_at)
    with pytest.raises(LockHeld) as refused:
        operations.run_tests(config, "test", connect=connect, policy=FAST.policy)
    assert str(refused.value).startswith(refusal), str(refused.value)


def test_a_committed_deploys_left_over_lock_does_not_stop_the_tests(
    config, connect, tmp_path, workspace_client
):
    deploy(config, connect, release(tmp_path, V1, "1.0.0"), tests=TestOptions(run=False))
    record = operations.status(config, "test", connect=connect).record
    assert record is not None
    plant_lock(workspace_client, "2999-01-01T00:00:00Z", deploy_id=record.deploy_id)
    assert operations.run_tests(config, "test", connect=connect, policy=FAST.policy).passed


def test_a_failed_smoke_test_rolls_prod_back_exactly_to_the_previous_release(
    config, connect, tmp_path, emulator
):
    deploy(config, connect, release(tmp_path, V1, "1.0.0"))
    promote(config, connect)
    before = managed_state(emulator, "/Shared/app/prod")
    deploy(config, connect, release(tmp_path, V3, "3.0.0"))
    result = promote(config, connect)
    assert result.tests is not None and result.tests.outcome == "failed"
    assert result.rolled_back_to == "1.0.0"
    assert "prod lacks new_setting" in result.tests.failures()
    assert managed_state(emulator, "/Shared/app/prod") == before
    record = operations.status(config, "prod", connect=connect).record
    assert record is not None and (record.version, record.kind) == ("1.0.0", "rollback")
    kinds = [
        (e.kind, e.version, e.outcome) for e in operations.history(config, "prod", connect=connect)
    ]
    # The restored release's smoke tests run again: Prod is proven to work on it.
    assert kinds[:4] == [
        ("test", "1.0.0", "passed"),
        ("rollback", "1.0.0", "succeeded"),
        ("test", "3.0.0", "failed"),
        ("promote", "3.0.0", "succeeded"),
    ]
    assert result.rollback_tests is not None and result.rollback_tests.passed
    assert result.to_dict()["rollback_tests"]["outcome"] == "passed"
    assert record.tests is not None and record.tests["outcome"] == "passed"
    reason = operations.history(config, "prod", connect=connect)[1].detail
    assert reason.startswith(
        "tests failed after promote of 3.0.0: 1 of 1 test failed: tests/smoke_orders"
    )


def test_a_restored_release_whose_smoke_tests_fail_too_is_reported_not_rolled_back_again(
    config, connect, tmp_path, cli
):
    deploy(config, connect, release(tmp_path, V1, "1.0.0"))
    promote(config, connect)
    deploy(config, connect, release(tmp_path, V3, "3.0.0"))
    # Prod's settings change under it: the restored 1.0.0 is deployed with an empty catalog.
    config.path.write_text(
        CONFIG.replace("parameters: {catalog: main}", 'parameters: {catalog: ""}')
    )
    code, _, err = cli("promote", "--from", "test", "--to", "prod", "--yes")
    assert code == 1
    assert one_error_line(err).endswith(
        "; rolled back to 1.0.0, whose tests fail too: tests/smoke_orders "
        "(AssertionError: {'catalog': ''}); the environment needs a fix"
    )
    history = operations.history(config, "prod", connect=connect)
    assert [(e.kind, e.version, e.outcome) for e in history[:2]] == [
        ("test", "1.0.0", "failed"),
        ("rollback", "1.0.0", "succeeded"),
    ]


def test_without_a_previous_release_the_new_one_stays_and_says_so(config, connect, tmp_path):
    deploy(config, connect, release(tmp_path, V3, "3.0.0"))
    result = promote(config, connect)
    assert result.rolled_back_to is None
    assert result.rollback_error == "no previous release to roll back to"
    assert operations.status(config, "prod", connect=connect).record.version == "3.0.0"  # type: ignore[union-attr]


def test_a_glob_matching_no_notebook_of_the_artifact_is_refused_before_any_write(
    config, connect, tmp_path, emulator
):
    no_tests = {"etl/ingest.py": H + "print(1)\n"}
    with pytest.raises(ConfigError, match=r"'tests/\*' match no notebook of 1\.0\.0"):
        deploy(config, connect, release(tmp_path, no_tests, "1.0.0"))
    assert emulator.tree("/Shared/app") == {} or all(
        not p.startswith("/Shared/app/test/") for p in emulator.tree("/Shared/app")
    )


# --- the CLI: exit 1 lines --------------------------------------------------------------


@pytest.fixture
def cli(config, emulator, monkeypatch, capsys):
    monkeypatch.setenv("DATABRICKS_HOST", emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-test-token-not-secret")
    monkeypatch.setenv("DBX_PROMOTE_POLL_MAX_SECONDS", "0.1")
    return lambda *argv: run_main(capsys, "--config", str(config.path), *argv)


def test_cli_deploy_whose_tests_fail_exits_1_naming_them(cli, tmp_path):
    v2 = release(tmp_path, V2, "2.0.0")
    code, out, err = cli(
        "deploy", str(v2.path), "--env", "test", "--junit", str(tmp_path / "j.xml")
    )
    assert code == 1
    assert one_error_line(err) == (
        "error: deployed 2.0.0 to test; 1 of 2 tests failed: tests/check "
        "(AssertionError: arithmetic is broken)"
    )
    assert "deployed 2.0.0 to test and verified" in out
    assert "failed   tests/check" in out
    assert (tmp_path / "j.xml").read_text().count("<failure") == 1


def test_cli_smoke_failure_in_prod_rolls_back_and_says_so(cli, tmp_path):
    v1, v3 = release(tmp_path, V1, "1.0.0"), release(tmp_path, V3, "3.0.0")
    assert cli("deploy", str(v1.path), "--env", "test")[0] == 0
    assert cli("promote", "--from", "test", "--to", "prod", "--yes")[0] == 0
    assert cli("deploy", str(v3.path), "--env", "test")[0] == 0
    code, _, err = cli("promote", "--from", "test", "--to", "prod", "--yes", "--output", "json")
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("error: smoke tests failed in prod: tests/smoke_orders (AssertionError")
    assert line.endswith("; rolled back to 1.0.0, whose tests pass again")
    code, out, _ = cli("status", "--env", "prod", "--output", "json")
    assert json.loads(out)["version"] == "1.0.0"


def test_cli_no_test_warns_loudly_and_status_shows_it(cli, tmp_path):
    v1 = release(tmp_path, V1, "1.0.0")
    code, out, err = cli("deploy", str(v1.path), "--env", "test", "--no-test")
    assert code == 0
    assert "--no-test: the tests of 'test' are skipped" in err
    code, out, _ = cli("status", "--env", "test")
    assert "tests    SKIPPED at" in out


def test_status_check_fails_when_the_last_tests_did_not_pass(cli, tmp_path):
    v2 = release(tmp_path, V2, "2.0.0")
    assert cli("deploy", str(v2.path), "--env", "test")[0] == 1
    code, out, err = cli("status", "--check", "--env", "test")
    assert code == 1, out + err
    assert "FAIL  test: tests: the last tests of 2.0.0 did not pass: 1 of 2 tests failed" in out


def test_promote_skip_requires_is_the_loud_recorded_emergency_exit(
    config, connect, tmp_path, emulator: Emulator
):
    from cli_helpers import run_cli

    v2 = release(tmp_path, V2, "2.0.0")
    assert deploy(config, connect, v2).tests.outcome == "failed"  # type: ignore[union-attr]
    cfg = tmp_path / "dbx-promote.yml"
    refused = run_cli(cfg, "promote", "--from", "test", "--to", "prod", "--yes", host=emulator.url)
    assert refused.returncode == 1 and "did not: 1 of 2 tests failed" in refused.stderr
    args = ("promote", "--from", "test", "--to", "prod", "--yes", "--skip-requires", "--no-test")
    result = run_cli(cfg, *args, host=emulator.url)
    assert result.returncode == 0, result.stderr
    assert "--skip-requires: deploying to 'prod'" in result.stderr
    prod = operations.status(config, "prod", connect=connect).record
    assert prod is not None and (prod.version, prod.skip_requires) == ("2.0.0", True)
