"""The deploy engine against the emulator, through the real databricks-sdk over HTTP."""

from __future__ import annotations

import json
import threading
import time

import pytest
from databricks.sdk.service.workspace import ImportFormat

from dbx_promote.deploy import DeployOptions, target_from_artifact
from dbx_promote.emulator import Fault
from dbx_promote.errors import DeployFailed, LockHeld, StalePlan
from dbx_promote.record import Lock
from dbx_promote.reviewed import load_plan, save_plan

from deploy_helpers import ROOT, V1, V2, build, deploy, deployer, environment, managed_state

WRITES = {"import", "mkdirs", "delete"}


def writes(emu, since: int = 0) -> list[dict]:
    return [r for r in emu.request_log()[since:] if r["endpoint"] in WRITES]


def test_first_deploy_creates_exactly_the_artifact_plus_environment(emulator, fake_clock, tmp_path):
    v1 = build(tmp_path, V1, "1.0.0")
    result = deploy(emulator, fake_clock, v1)

    state = managed_state(emulator)
    assert sorted(state) == [
        "_environment",
        "etl/clean",
        "etl/ingest",
        "lib/helpers.py",
        "reports/summary",
    ]
    assert state["lib/helpers.py"][0] == "FILE"
    assert state["etl/clean"][0] == "NOTEBOOK"
    assert result.verified is True
    assert result.plan.counts()["create"] == 5
    tree = emulator.tree(ROOT)
    assert tree[f"{ROOT}/etl/clean"]["language"] == "SQL"
    assert f"{ROOT}/.dbx-promote/lock.json" not in tree


def test_record_and_history_describe_the_deploy(emulator, fake_clock, tmp_path):
    v1 = build(tmp_path, V1, "1.0.0")
    deploy(emulator, fake_clock, v1)

    record = json.loads(emulator.read(f"{ROOT}/.dbx-promote/deployment.json"))
    assert record["version"] == "1.0.0"
    assert record["digest"] == v1.digest
    assert record["verified"] is True
    assert record["deployed_by"] == "emulator@example.com"
    live = emulator.tree(ROOT)[f"{ROOT}/etl/ingest"]
    assert record["objects"]["etl/ingest"]["object_id"] == live["object_id"]
    assert record["objects"]["etl/ingest"]["modified_at"] == live["modified_at"]
    history = json.loads(emulator.read(f"{ROOT}/.dbx-promote/history.json"))
    assert [h["version"] for h in history["deployments"]] == ["1.0.0"]
    assert emulator.read(f"{ROOT}/{record['releases'][0]['file']}") == v1.path.read_bytes()


def test_environment_notebook_carries_env_name_and_parameters(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))

    source = emulator.read(f"{ROOT}/_environment").decode()
    namespace: dict = {}
    exec(source, namespace)
    assert namespace["ENV"] == "test"
    assert namespace["CONFIG"] == {"catalog": "test_cat"}


def test_unchanged_redeploy_makes_no_write_and_few_reads(emulator, fake_clock, tmp_path):
    v1 = build(tmp_path, V1, "1.0.0")
    deploy(emulator, fake_clock, v1)
    directories = 1 + len({p.rsplit("/", 1)[0] for p in V1})  # root + etl, reports, lib
    before = emulator.counters()

    result = deploy(emulator, fake_clock, v1)

    after = emulator.counters()
    assert result.noop is True
    assert after["writes"] == before["writes"]
    assert after["total"] - before["total"] <= directories + 4


def test_one_changed_notebook_is_one_import_plus_bookkeeping(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    changed = dict(V1, **{"etl/ingest.py": V2["etl/ingest.py"]})
    start = len(emulator.request_log())

    deploy(emulator, fake_clock, build(tmp_path, changed, "1.0.1"))

    done = writes(emulator, start)
    content = [w for w in done if ".dbx-promote" not in (w["path"] or "")]
    assert [(w["endpoint"], w["path"]) for w in content] == [("import", f"{ROOT}/etl/ingest")]
    bookkeeping = sorted(
        (w["endpoint"], w["path"].split("/.dbx-promote/")[1].split("/")[0])
        for w in done
        if "/.dbx-promote/" in w["path"]
    )
    assert bookkeeping == sorted(
        [
            ("import", "lock.json"),
            ("import", "releases"),
            ("import", "deployment.json"),
            ("import", "history.json"),
            ("delete", "lock.json"),
        ]
    )


def test_v1_to_v2_updates_creates_deletes_and_removes_empty_folders(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))

    result = deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"))

    changes = result.plan.changes_summary()
    assert changes["create"] == ["etl/enrich"]
    assert changes["update"] == ["etl/ingest"]
    assert changes["delete"] == ["reports/summary"]
    assert f"{ROOT}/reports" not in emulator.tree(ROOT)
    assert sorted(managed_state(emulator)) == [
        "_environment",
        "etl/clean",
        "etl/enrich",
        "etl/ingest",
        "lib/helpers.py",
    ]
    assert emulator.read(f"{ROOT}/etl/ingest").decode().endswith("print('ingest v2')\n")


def test_hand_edits_are_reported_backed_up_and_overwritten(emulator, fake_clock, tmp_path):
    v1 = build(tmp_path, V1, "1.0.0")
    deploy(emulator, fake_clock, v1)
    emulator.hand_edit(f"{ROOT}/etl/clean", b"-- Databricks notebook source\nSELECT 'hotfix'\n")

    plan = deploy(emulator, fake_clock, v1, DeployOptions(dry_run=True)).plan
    assert [c.path for c in plan.drift] == ["etl/clean"]
    result = deploy(emulator, fake_clock, v1)

    assert len(result.backups) == 1
    backup = next(p for p in emulator.tree(ROOT) if "/backups/" in p and p.endswith("etl/clean"))
    assert b"hotfix" in emulator.read(backup)
    assert b"hotfix" not in emulator.read(f"{ROOT}/etl/clean")


def test_unmanaged_objects_are_reported_and_never_touched(
    emulator, fake_clock, tmp_path, workspace_client
):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    workspace_client.workspace.mkdirs(f"{ROOT}/scratch")
    workspace_client.workspace.upload(
        f"{ROOT}/scratch/mine.txt", b"my notes", format=ImportFormat.AUTO
    )
    before = emulator.tree(f"{ROOT}/scratch")

    result = deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"))

    assert result.plan.unmanaged == ("scratch/mine.txt",)
    assert emulator.tree(f"{ROOT}/scratch") == before


def test_nothing_is_written_outside_root(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"))

    paths = [w["path"] for w in writes(emulator)]
    assert paths
    assert all(p == ROOT or p.startswith(ROOT + "/") for p in paths), paths


def test_dry_run_writes_nothing_and_takes_no_lock(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    start = len(emulator.request_log())

    result = deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"), DeployOptions(dry_run=True))

    assert result.dry_run is True
    assert writes(emulator, start) == []
    assert result.plan.counts()["create"] == 1


def test_a_held_lock_stops_a_deploy_and_names_the_holder(emulator, fake_clock, tmp_path):
    v1 = build(tmp_path, V1, "1.0.0")
    deploy(emulator, fake_clock, v1)
    d = deployer(emulator, fake_clock)
    held = Lock("alice@example.com", "2999-01-01T00:00:00Z", "laptop", 1, "0.9", "sha256:x")
    d.ws.create_file_exclusive(d.abs(".dbx-promote/lock.json"), held.to_json())

    with pytest.raises(LockHeld, match=r"alice@example\.com"):
        deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"))
    with pytest.raises(LockHeld, match="younger than"):
        deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"), DeployOptions(break_lock=True))
    assert managed_state(emulator).keys() == {
        "_environment",
        "etl/clean",
        "etl/ingest",
        "lib/helpers.py",
        "reports/summary",
    }


def test_break_lock_breaks_a_stale_lock(emulator, fake_clock, tmp_path):
    d = deployer(emulator, fake_clock)
    d.ws.mkdirs(d.abs(".dbx-promote"))
    stale = Lock("ci", "2000-01-01T00:00:00Z", "agent", 1, "0.9", "sha256:x")
    d.ws.create_file_exclusive(d.abs(".dbx-promote/lock.json"), stale.to_json())
    emulator.backdate(d.abs(".dbx-promote/lock.json"), 3600)  # the workspace saw it long ago

    result = deploy(
        emulator, fake_clock, build(tmp_path, V1, "1.0.0"), DeployOptions(break_lock=True)
    )

    assert result.verified is True
    assert f"{ROOT}/.dbx-promote/lock.json" not in emulator.tree(ROOT)


def test_two_simultaneous_deploys_one_wins_one_names_the_holder(emulator, fake_clock, tmp_path):
    v1 = build(tmp_path, V1, "1.0.0")
    v2 = build(tmp_path, V2, "2.0.0")
    emulator.set_latency(30)  # keep both inside the critical section at the same time
    outcomes: list[object] = []

    def run(artifact):
        try:
            outcomes.append(deploy(emulator, fake_clock, artifact))
        except LockHeld as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in (v1, v2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    errors = [o for o in outcomes if isinstance(o, LockHeld)]
    assert len(errors) == 1
    assert "emulator@example.com" in str(errors[0])
    winner = next(o for o in outcomes if not isinstance(o, LockHeld))
    expected = V1 if winner.version == "1.0.0" else V2
    assert len(managed_state(emulator)) == len(expected) + 1


def test_reviewed_plan_applies_when_nothing_changed(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    v2 = build(tmp_path, V2, "2.0.0")
    plan_file = save_plan(
        deploy(emulator, fake_clock, v2, DeployOptions(dry_run=True)).plan, tmp_path / "p.json"
    )

    result = deploy(emulator, fake_clock, v2, DeployOptions(reviewed_plan=load_plan(plan_file)))

    assert result.verified is True


def test_reviewed_plan_is_refused_when_the_folder_changed(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    v2 = build(tmp_path, V2, "2.0.0")
    plan_file = save_plan(
        deploy(emulator, fake_clock, v2, DeployOptions(dry_run=True)).plan, tmp_path / "p.json"
    )
    emulator.hand_edit(f"{ROOT}/etl/clean")

    with pytest.raises(StalePlan, match="etl/clean"):
        deploy(emulator, fake_clock, v2, DeployOptions(reviewed_plan=load_plan(plan_file)))
    assert emulator.read(f"{ROOT}/etl/ingest").decode().endswith("'ingest v1')\n")


def test_throttling_is_retried_and_lowers_concurrency(emulator, fake_clock, tmp_path):
    many = {f"nb/n{i:02}.py": f"# Databricks notebook source\nprint({i})\n" for i in range(40)}
    emulator.set_import_rate_limit(20)
    # The emulator's rate limit runs on real time, so this engine really waits.
    d = deployer(emulator, fake_clock, attempts=20, sleep=time.sleep)

    # One import per notebook (a new folder would otherwise be one directory import).
    result = d.deploy(
        target_from_artifact(build(tmp_path, many, "1.0.0"), d.env, d.user),
        DeployOptions(no_bulk=True),
    )

    assert result.verified is True
    assert result.throttled > 0
    assert len(managed_state(emulator)) == 41


def test_a_failed_first_deploy_removes_what_it_created(emulator, fake_clock, tmp_path):
    # Refuses the folder's directory import, then the single import it falls back to.
    emulator.add_fault(
        Fault(
            endpoint="import",
            path_glob="*/reports*",
            status=400,
            error_code="INVALID_STATE",
            times=-1,
        )
    )

    with pytest.raises(DeployFailed, match="no previous release"):
        deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))

    assert managed_state(emulator) == {}
    assert f"{ROOT}/.dbx-promote/lock.json" not in emulator.tree(ROOT)


def test_a_failed_deploy_restores_the_previous_release(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    v1_state = managed_state(emulator)
    emulator.add_fault(
        Fault(endpoint="import", path_glob="*/etl/enrich", status=400, error_code="INVALID_STATE")
    )

    with pytest.raises(DeployFailed, match=r"restored the previous release 1\.0\.0"):
        deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"))

    assert managed_state(emulator) == v1_state
    history = json.loads(emulator.read(f"{ROOT}/.dbx-promote/history.json"))["deployments"]
    assert [(h["version"], h["kind"], h["outcome"]) for h in history[:3]] == [
        ("1.0.0", "restore", "succeeded"),
        ("2.0.0", "deploy", "failed"),
        ("1.0.0", "deploy", "succeeded"),
    ]


def test_user_root_expands_to_the_signed_in_user(emulator, fake_clock, tmp_path):
    env = environment(root="/Users/{user}/app")
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"), env=env)
    assert "/Users/emulator@example.com/app/etl/ingest" in emulator.tree("/Users")


def test_deploy_result_json_has_the_documented_fields(emulator, fake_clock, tmp_path):
    result = deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    data = result.to_dict()
    assert {"env", "version", "digest", "dry_run", "changes", "verified", "requests"} <= set(data)
    assert set(data["changes"]) == {"create", "update", "delete", "unchanged", "drift", "unmanaged"}
    assert data["requests"] > 0
    json.dumps(data)


def test_releases_over_the_import_limit_are_stored_in_parts_and_restored_whole(
    emulator, fake_clock, tmp_path
):
    root = ROOT
    v1, v2 = build(tmp_path, V1, "1.0.0"), build(tmp_path, V2, "2.0.0")
    d = deployer(emulator, fake_clock)
    small = type(d)(d.ws, d.env, d.root, d.user, release_part_bytes=500)
    small.deploy(target_from_artifact(v1, d.env, d.user))
    v1_state = managed_state(emulator)
    small.deploy(target_from_artifact(v2, d.env, d.user))

    record = json.loads(emulator.read(f"{root}/.dbx-promote/deployment.json"))
    ref = next(r for r in record["releases"] if r["version"] == "1.0.0")
    parts = sorted(p for p in emulator.tree(root) if p.startswith(f"{root}/{ref['file']}.part"))
    assert ref["parts"] == len(parts) > 1
    assert b"".join(emulator.read(p) for p in parts) == v1.path.read_bytes()

    with small.fetch_release(small.read_record().releases[1]) as fetched:
        assert fetched.digest == v1.digest
        small.deploy(target_from_artifact(fetched, d.env, d.user))
    assert managed_state(emulator) == v1_state


def test_ctrl_c_during_apply_restores_and_releases_the_lock(emulator, tmp_path):
    """The real CLI, interrupted mid-import, ends on v1 with no lock left behind."""
    import os
    import signal
    import subprocess
    import sys

    many_v1 = {f"nb/n{i:02}.py": f"# Databricks notebook source\nprint({i})\n" for i in range(30)}
    many_v2 = {k: v.replace("print(", "print('v2', ") for k, v in many_v1.items()}
    v1, v2 = build(tmp_path, many_v1, "1.0.0"), build(tmp_path, many_v2, "2.0.0")
    cfg = tmp_path / "dbx-promote.yml"
    cfg.write_text(f"project: app\nenvironments:\n  test: {{root: {ROOT}, parallel: 2}}\n")
    env = dict(os.environ, DATABRICKS_HOST=emulator.url, DATABRICKS_TOKEN="dapi-x-not-a-secret")
    cmd = [sys.executable, "-m", "dbx_promote", "--config", str(cfg), "deploy"]
    subprocess.run([*cmd, str(v1.path), "--env", "test"], env=env, check=True, capture_output=True)
    v1_state = managed_state(emulator)
    emulator.set_latency(150)
    start = len(emulator.request_log())

    proc = subprocess.Popen(
        [*cmd, str(v2.path), "--env", "test"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = emulator.request_log()[start:]
        if any(r["endpoint"] == "import" and "/nb/" in (r["path"] or "") for r in log):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    emulator.set_latency(0)

    assert proc.returncode == 1, stderr
    assert "interrupted" in stderr and "restored the previous release 1.0.0" in stderr
    assert managed_state(emulator) == v1_state
    assert f"{ROOT}/.dbx-promote/lock.json" not in emulator.tree(ROOT)


def test_a_failed_deploy_puts_back_an_object_it_had_overwritten(
    emulator, fake_clock, tmp_path, workspace_client
):
    from databricks.sdk.service.workspace import Language

    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    mine = b"// Databricks notebook source\nprintln(1)  // mine\n"
    workspace_client.workspace.upload(f"{ROOT}/etl/enrich", mine, language=Language.SCALA)
    emulator.add_fault(
        Fault(endpoint="import", path_glob="*/etl/ingest", status=400, error_code="INVALID_STATE")
    )

    with pytest.raises(DeployFailed):
        deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"))

    assert emulator.read(f"{ROOT}/etl/enrich") == mine


def test_without_a_stored_release_a_failure_removes_only_what_it_created(
    emulator, fake_clock, tmp_path, workspace_client
):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    record = json.loads(emulator.read(f"{ROOT}/.dbx-promote/deployment.json"))
    record["releases"] = []
    workspace_client.workspace.upload(
        f"{ROOT}/.dbx-promote/deployment.json",
        json.dumps(record).encode(),
        format=ImportFormat.AUTO,
        overwrite=True,
    )
    emulator.add_fault(
        Fault(endpoint="import", path_glob="*/etl/new", status=400, error_code="INVALID_STATE")
    )
    changed = dict(V1, **{"etl/new.py": "# Databricks notebook source\n1\n"})

    with pytest.raises(DeployFailed, match="not in the release store"):
        deploy(emulator, fake_clock, build(tmp_path, changed, "1.1.0"), env=environment())

    state = managed_state(emulator)
    assert "etl/new" not in state
    assert {"etl/clean", "etl/ingest", "reports/summary", "lib/helpers.py"} <= set(state)


def test_once_the_record_is_written_a_history_failure_only_warns(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    emulator.add_fault(
        Fault(endpoint="import", path_glob="*/history.json", status=400, error_code="INVALID_STATE")
    )

    result = deploy(
        emulator, fake_clock, build(tmp_path, V2, "2.0.0"), env=environment(keep_releases=1)
    )

    assert result.verified is True
    record = json.loads(emulator.read(f"{ROOT}/.dbx-promote/deployment.json"))
    assert record["version"] == "2.0.0"
    stored = {p.rsplit("/", 1)[1] for p in emulator.tree(f"{ROOT}/.dbx-promote/releases")}
    assert {r["file"].rsplit("/", 1)[1] for r in record["releases"]} <= stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("releases", [{"version": "0", "digest": "sha256:x", "file": "/Shared/victim/x.json"}]),
        ("releases", [{"version": "0", "digest": "sha256:x", "file": ".dbx-promote/../x"}]),
        ("directories", ["../elsewhere"]),
        ("schema_version", "1"),
    ],
)
def test_a_record_pointing_outside_the_folder_is_refused(
    emulator, fake_clock, tmp_path, workspace_client, field, value
):
    from dbx_promote.errors import RecordCorrupt

    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    record = json.loads(emulator.read(f"{ROOT}/.dbx-promote/deployment.json"))
    record[field] = value
    workspace_client.workspace.upload(
        f"{ROOT}/.dbx-promote/deployment.json",
        json.dumps(record).encode(),
        format=ImportFormat.AUTO,
        overwrite=True,
    )
    with pytest.raises(RecordCorrupt):
        deploy(emulator, fake_clock, build(tmp_path, V2, "2.0.0"))
    assert "/Shared/victim" not in emulator.tree("/Shared")
