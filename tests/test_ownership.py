"""A folder belongs to the project and environment its record names (issue 13, item 1).

Another project's config pointing at an existing root, or a `{user}` root that expands to
another environment's root, is refused before the first write (exit 2, naming the owner);
a hand-over is explicit, `--adopt`, and the record and history keep it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dbx_promote.config import load_config
from dbx_promote.deploy import Deployer, DeployOptions, target_from_artifact
from dbx_promote.emulator import Emulator, Fault
from dbx_promote.errors import ConfigError, FolderOwned
from dbx_promote.ownership import Owner, check_owner, roots_may_meet
from dbx_promote.record import Lock

from cli_helpers import assert_error, run_cli
from deploy_helpers import V1, V2, build, deploy, deployer, environment, managed_state

ROOT = "/Shared/app/test"
RECORD = f"{ROOT}/.dbx-promote/deployment.json"
HISTORY = f"{ROOT}/.dbx-promote/history.json"


def config(tmp: Path, project: str) -> Path:
    """A config of ``project`` whose environment `test` is the shared folder."""
    path = tmp / f"{project}.yml"
    path.write_text(f"project: {project}\nsource: src\nenvironments:\n  test:\n    root: {ROOT}\n")
    return path


def writes(emu: Emulator, since: int) -> list[dict[str, Any]]:
    return [r for r in emu.request_log()[since:] if r["method"] != "GET"]


@pytest.fixture
def owned(emulator: Emulator, fake_clock: Any, tmp_path: Path) -> Emulator:
    """ROOT deployed by project `app`, environment `test`."""
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0", project="app"))
    return emulator


def test_another_project_is_refused_before_any_write_naming_the_owner(
    owned: Emulator, tmp_path: Path
) -> None:
    intruder = build(tmp_path, V2, "9.9.9", project="intruder")
    before, start = managed_state(owned), len(owned.request_log())

    for extra in ((), ("--dry-run",)):
        result = run_cli(
            config(tmp_path, "intruder"),
            "deploy",
            str(intruder.path),
            "--env",
            "test",
            *extra,
            host=owned.url,
        )
        assert_error(result, 2, ROOT, "project 'app', environment 'test'", "1.0.0", "--adopt")
    assert writes(owned, start) == []
    assert managed_state(owned) == before


def test_adopt_hands_the_folder_over_and_the_record_and_history_say_so(
    owned: Emulator, tmp_path: Path
) -> None:
    cfg = config(tmp_path, "intruder")
    intruder = build(tmp_path, V2, "9.9.9", project="intruder")
    args = ("deploy", str(intruder.path), "--env", "test", "--output", "json")

    dry = run_cli(cfg, *args, "--adopt", "--dry-run", host=owned.url)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["adopted_from"] == {"project": "app", "env": "test"}
    assert "--adopt" in dry.stderr  # a warning: this takes the folder over

    done = run_cli(cfg, *args, "--adopt", host=owned.url)

    assert done.returncode == 0, done.stderr
    record = json.loads(owned.read(RECORD))
    assert (record["project"], record["version"]) == ("intruder", "9.9.9")
    assert record["adopted_from"] == {"project": "app", "env": "test"}
    latest = json.loads(owned.read(HISTORY))["deployments"][0]
    assert "adopted from project 'app', environment 'test' (--adopt)" in latest["detail"]
    # Handed over: the new owner deploys without --adopt; the old one is refused.
    assert run_cli(cfg, *args[:4], host=owned.url).returncode == 0
    own = build(tmp_path, V2, "2.0.0", project="app")
    old = run_cli(config(tmp_path, "app"), "deploy", str(own.path), "--env", "test", host=owned.url)
    assert_error(old, 2, "project 'intruder'")


def test_an_adopt_of_the_same_release_is_still_recorded(
    owned: Emulator, fake_clock: Any, tmp_path: Path
) -> None:
    """The artifact already runs there, but under another environment: not a no-op."""
    same = build(tmp_path, V1, "1.0.0", project="app")
    d = deployer(owned, fake_clock, replace(environment(), name="staging"))
    target = target_from_artifact(same, d.env, d.user)

    with pytest.raises(FolderOwned):
        d.deploy(target)
    result = d.deploy(target, DeployOptions(adopt=True))

    assert not result.noop
    assert json.loads(owned.read(RECORD))["env"] == "staging"


def test_a_user_root_that_expands_to_another_environments_root_is_refused(
    emulator: Emulator, fake_clock: Any, tmp_path: Path
) -> None:
    test_root = f"/Shared/app/{emulator.user}"
    v1 = build(tmp_path, V1, "1.0.0")
    deploy(emulator, fake_clock, v1, env=environment(root=test_root))
    d = deployer(emulator, fake_clock, replace(environment(root="/Shared/app/{user}"), name="dev"))
    assert d.root == test_root
    start = len(emulator.request_log())

    with pytest.raises(FolderOwned, match="environment 'test'"):
        d.deploy(target_from_artifact(v1, d.env, d.user), DeployOptions(dry_run=True))
    with pytest.raises(FolderOwned):
        d.deploy(target_from_artifact(build(tmp_path, V2, "2.0.0"), d.env, d.user))
    assert writes(emulator, start) == []
    environment_nb = emulator.read(f"{test_root}/_environment").decode()
    assert "'test'" in environment_nb or '"test"' in environment_nb


@pytest.mark.parametrize(
    ("a", "b", "meet"),
    [
        ("/Shared/x/{user}", "/Shared/x/test", True),
        ("/Shared/x/{user}", "/Shared/x", True),  # test would hold every dev folder
        ("/Shared/x", "/Shared/x/{user}/app", True),
        ("/Shared/x/dev-{user}", "/Shared/x/dev-ci", True),
        ("/Shared/x/dev-{user}", "/Shared/x/test", False),
        ("/Users/{user}/app", "/Shared/app/test", False),
        ("/Users/{user}/app", "/Users/{user}/app", True),
        ("/Users/{user}/app", "/Users/{user}/app-sandbox", False),
        ("/Shared/app/test", "/Shared/app/prod", False),
        ("/Shared/app", "/Shared/app/prod", True),
    ],
)
def test_roots_that_can_be_one_folder_for_some_user(a: str, b: str, meet: bool) -> None:
    assert roots_may_meet(a, b) is meet
    assert roots_may_meet(b, a) is meet


def test_the_config_refuses_a_user_root_that_can_expand_to_another_root(tmp_path: Path) -> None:
    path = tmp_path / "dbx-promote.yml"
    path.write_text(
        "project: app\nenvironments:\n"
        "  dev: {root: '/Shared/x/{user}'}\n  test: {root: /Shared/x/test}\n"
    )

    with pytest.raises(ConfigError, match="'dev' and 'test' share a folder for some"):
        load_config(path)
    result = run_cli(path, "status", "--env", "test", host=None)
    assert_error(result, 2, "share a folder for some {user}")


def test_promote_into_another_projects_folder_is_refused_unless_adopted(
    emulator: Emulator, fake_clock: Any, tmp_path: Path
) -> None:
    prod = "/Shared/app/prod"
    deploy(
        emulator,
        fake_clock,
        build(tmp_path, V1, "0.1.0", project="legacy"),
        env=replace(environment(root=prod), name="prod"),
    )
    deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0", project="app"))
    cfg = tmp_path / "dbx-promote.yml"
    cfg.write_text(
        f"project: app\nsource: src\nenvironments:\n  test: {{root: {ROOT}}}\n"
        f"  prod: {{root: {prod}, requires: test}}\n"
    )
    args = ("promote", "--from", "test", "--to", "prod", "--yes")
    start = len(emulator.request_log())

    assert_error(run_cli(cfg, *args, host=emulator.url), 2, "project 'legacy'", "--adopt")
    assert writes(emulator, start) == []
    assert run_cli(cfg, *args, "--adopt", host=emulator.url).returncode == 0
    record = json.loads(emulator.read(f"{prod}/.dbx-promote/deployment.json"))
    assert record["adopted_from"] == {"project": "legacy", "env": "prod"}
    assert record["kind"] == "promote"


def test_the_tests_of_one_environment_do_not_run_in_another_environments_folder(
    emulator: Emulator, fake_clock: Any, tmp_path: Path
) -> None:
    """`test --env dev` would record its outcome in test's record."""
    root = f"/Shared/app/{emulator.user}"
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"), env=environment(root=root))
    cfg = tmp_path / "dbx-promote.yml"
    cfg.write_text(
        "project: app\nsource: src\nenvironments:\n  dev:\n    root: '/Shared/app/{user}'\n"
        "    tests: {notebooks: ['etl/*'], compute: {serverless: true}}\n"
    )
    start = len(emulator.request_log())

    result = run_cli(cfg, "test", "--env", "dev", host=emulator.url)

    assert_error(result, 2, "environment 'test'")
    assert writes(emulator, start) == []


NB = "# Databricks notebook source\n"
PASSES = {"etl/ingest.py": NB + "print('v1')\n", "tests/check.py": NB + "assert True\n"}
FAILS = {"etl/ingest.py": NB + "print('v2')\n", "tests/check.py": NB + "assert False, 'v2'\n"}
FAST_POLL = {"DBX_PROMOTE_POLL_MAX_SECONDS": "0.1"}


def config_with_tests(tmp: Path, project: str) -> Path:
    """``config`` whose environment runs tests/* after a deploy and rolls back on failure."""
    path = config(tmp, project)
    path.write_text(
        path.read_text() + "    tests: {notebooks: ['tests/*'], compute: {serverless: true}, "
        "on_failure: rollback}\n"
    )
    return path


def test_an_adopted_folder_rolls_back_to_the_release_from_before_the_adoption(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The folder's stored releases are its own, whichever project built them."""
    old, new = config_with_tests(tmp_path, "appa"), config_with_tests(tmp_path, "appc")
    v1 = build(tmp_path, PASSES, "1.0.0", project="appa")
    assert run_cli(old, "deploy", str(v1.path), "--env", "test", host=emulator.url).returncode == 0
    before = managed_state(emulator)
    v2 = build(tmp_path, FAILS, "2.0.0", project="appc")

    failed = run_cli(
        new, "deploy", str(v2.path), "--env", "test", "--adopt", host=emulator.url,
        extra_env=FAST_POLL,
    )  # fmt: skip

    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.splitlines()[-1].endswith(
        "tests/check (AssertionError: v2); rolled back to 1.0.0, whose tests pass again"
    )
    assert managed_state(emulator) == before
    record = json.loads(emulator.read(RECORD))
    assert (record["project"], record["version"], record["kind"]) == ("appc", "1.0.0", "rollback")
    # Still appc's folder: its next deploy needs no --adopt, appa's is refused.
    again = run_cli(new, "deploy", str(v2.path), "--env", "test", "--no-test", host=emulator.url)
    assert again.returncode == 0, again.stderr
    manual = run_cli(new, "rollback", "--env", "test", "--no-test", host=emulator.url)
    assert manual.returncode == 0, manual.stderr
    assert json.loads(emulator.read(RECORD))["version"] == "1.0.0"
    refused = run_cli(old, "deploy", str(v1.path), "--env", "test", host=emulator.url)
    assert_error(refused, 2, "project 'appc'", "--adopt")


class Died(BaseException):
    """The process dying: nothing of the deploy's own error handling runs."""


class DiesWhileVerifying:
    """Events of a deploy that dies after its imports, before its record is written."""

    def phase(self, name: str) -> None:
        if name == "verifying":
            raise Died(name)

    def progress(self, done: int, total: int) -> None:
        pass

    def warning(self, message: str) -> None:
        pass


def test_a_dead_first_deploys_lock_names_the_owner_a_broken_lock_does_not_hand_over(
    emulator: Emulator, fake_clock: Any, tmp_path: Path
) -> None:
    """A first deploy that died half-way leaves its notebooks and lock, but no record."""
    lock_kept = Fault(endpoint="delete", path_glob="*/lock.json", status=400, times=-1)
    emulator.add_fault(replace(lock_kept, error_code="INVALID_STATE"))
    ws = deployer(emulator, fake_clock).ws
    d = Deployer(ws, environment(), ROOT, ws.current_user(), events=DiesWhileVerifying())
    with pytest.raises(Died):
        d.deploy(target_from_artifact(build(tmp_path, V1, "1.0.0", project="appa"), d.env, d.user))
    emulator.clear_faults()
    left = managed_state(emulator)
    assert "etl/ingest" in left
    lock = json.loads(emulator.read(f"{ROOT}/.dbx-promote/lock.json"))
    assert (lock["project"], lock["env"]) == ("appa", "test")
    appb = build(tmp_path, V2, "2.0.0", project="appb")
    args = ("deploy", str(appb.path), "--env", "test", "--break-lock", "--force")

    refused = run_cli(config(tmp_path, "appb"), *args, host=emulator.url)

    assert_error(refused, 2, "project 'appa'", "lock", "--adopt")
    assert managed_state(emulator) == left
    adopted = run_cli(config(tmp_path, "appb"), *args, "--adopt", host=emulator.url)
    assert adopted.returncode == 0, adopted.stderr
    assert json.loads(emulator.read(RECORD))["adopted_from"] == {"project": "appa", "env": "test"}


def test_a_lock_written_before_locks_named_their_owner_is_still_read() -> None:
    old = Lock(holder="ci", started_at="2026-01-01T00:00:00Z", host="h", pid=1, version="1",
               digest="sha256:" + "0" * 64)  # fmt: skip
    raw = json.loads(old.to_json())
    del raw["project"], raw["env"]

    back = Lock.from_json(json.dumps(raw).encode(), where="lock.json")

    assert (back.project, back.env) == ("", "")
    assert check_owner(None, ROOT, Owner("appb", "test"), adopt=False, lock=back) is None
