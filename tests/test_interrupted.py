"""A deploy that dies without running its `finally` (SIGKILL, a lost agent), against the
in-memory workspace: at every request of a v1 -> v2 deploy the process "dies"; then the
next `deploy --break-lock` converges on v2 with no false drift and no backup of our own
objects, and `rollback` (here: deploying the record's release) lands exactly on v1."""

from __future__ import annotations

import json

import pytest

from dbx_promote.deploy import Deployer, DeployOptions, target_from_artifact
from dbx_promote.lock import LockRules
from dbx_promote.operations import is_interrupted
from fake_workspace import FakeFailure, FakeWorkspace, Killed

from deploy_helpers import ROOT, V1, V2, build, environment

DEAD = LockRules(alive=lambda pid: False)  # every holder on this host is gone


def engine(ws: FakeWorkspace, **env_kw) -> Deployer:
    env = environment(**env_kw)
    return Deployer(ws, env, ROOT, ws.user, lock_rules=DEAD)


def deploy(ws, artifact, **options):
    d = engine(ws)
    return d.deploy(target_from_artifact(artifact, d.env, d.user), DeployOptions(**options))


def objects(ws: FakeWorkspace) -> dict[str, bytes]:
    return {p: c for p, c in ws.files(ROOT).items() if not p.startswith(".dbx-promote")}


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("releases")
    v1, v2 = build(tmp, V1, "1.0.0"), build(tmp, V2, "2.0.0")
    ws = FakeWorkspace()
    deploy(ws, v1)
    v1_objects, start = objects(ws), ws.requests
    deploy(ws, v2)
    return v1, v2, v1_objects, objects(ws), ws.requests - start


def killed_between(releases, index: int) -> FakeWorkspace:
    v1, v2, *_ = releases
    ws = FakeWorkspace()
    deploy(ws, v1)
    ws.kill_at = ws.requests + index
    with pytest.raises(Killed):
        deploy(ws, v2)
    ws.kill_at = None
    return ws


def test_after_a_kill_at_any_request_deploy_break_lock_converges_without_false_drift(releases):
    _, v2, _, v2_objects, n = releases
    for index in range(1, n + 1):
        ws = killed_between(releases, index)
        result = deploy(ws, v2, break_lock=True)
        assert objects(ws) == v2_objects, index
        assert result.plan.drift == [], (index, result.plan.drift)
        assert result.backups == [], (index, result.backups)
        assert ws.read_optional(f"{ROOT}/.dbx-promote/lock.json") is None, index


def test_after_a_kill_at_any_request_going_back_lands_exactly_on_the_record(releases):
    v1, v2, v1_objects, _, n = releases
    for index in range(1, n + 1):
        ws = killed_between(releases, index)
        d = engine(ws)
        record, lock = d.read_record(), d.read_lock()
        back_to = v1 if record.version == "1.0.0" else v2
        assert is_interrupted(lock, record) == (lock is not None and record.version == "1.0.0")
        result = deploy(ws, back_to, break_lock=True, kind="rollback")
        expected = v1_objects if back_to is v1 else objects(ws)
        assert objects(ws) == expected, index
        assert result.backups == [], index


def test_a_hand_edit_made_after_the_crash_is_still_backed_up(releases, tmp_path):
    _, v2, _, _, n = releases
    ws = killed_between(releases, n // 2)
    ws.hand_edit(f"{ROOT}/etl/clean", b"-- Databricks notebook source\nSELECT 'hotfix'\n")
    result = deploy(ws, v2, break_lock=True)
    assert result.plan.drift and [c.path for c in result.plan.drift] == ["etl/clean"]
    assert len(result.backups) == 1


def test_without_break_lock_the_dead_deploys_lock_is_refused_naming_the_rule(releases):
    from dbx_promote.errors import LockHeld

    _, v2, *_ = releases
    ws = killed_between(releases, 6)
    with pytest.raises(LockHeld, match=r"is gone.*--break-lock"):
        deploy(ws, v2)


def test_a_lock_delete_refused_for_good_exits_ok_and_the_next_no_op_removes_it(releases):
    v1, v2, *_ = releases
    ws = FakeWorkspace()
    deploy(ws, v1)
    ws.failures.append(FakeFailure("delete", "*/lock.json", times=-1))
    assert deploy(ws, v2).verified is True
    assert ws.read_optional(f"{ROOT}/.dbx-promote/lock.json") is not None
    record = json.loads(ws.read_optional(f"{ROOT}/.dbx-promote/deployment.json"))
    assert record["lock_left"] == record["deploy_id"]
    ws.failures.clear()

    assert deploy(ws, v2).noop is True
    assert ws.read_optional(f"{ROOT}/.dbx-promote/lock.json") is None


def test_a_committed_deploys_lock_is_removed_by_the_next_changing_deploy(releases):
    v1, v2, *_ = releases
    ws = FakeWorkspace()
    deploy(ws, v1)
    ws.failures.append(FakeFailure("delete", "*/lock.json", times=1))
    deploy(ws, v2)
    # Even when the record could not say so, the record's deploy_id names the lock's deploy.
    path = f"{ROOT}/.dbx-promote/deployment.json"
    record = json.loads(ws.read_optional(path))
    ws.import_file(path, json.dumps({**record, "lock_left": None}).encode())

    deploy(ws, v1)

    assert ws.read_optional(f"{ROOT}/.dbx-promote/lock.json") is None
    assert json.loads(ws.read_optional(path))["version"] == "1.0.0"


def test_backups_of_only_the_last_keep_backups_deploys_are_kept(tmp_path):
    v1 = build(tmp_path, V1, "1.0.0")
    ws = FakeWorkspace()
    deploy(ws, v1)
    for i in range(4):
        ws.hand_edit(f"{ROOT}/etl/clean", f"-- Databricks notebook source\nSELECT {i}\n".encode())
        d = Deployer(
            ws,
            environment(keep_backups=2),
            ROOT,
            ws.user,
            now=lambda i=i: f"2026-01-0{i + 1}T00:00:00Z",
        )
        d.deploy(target_from_artifact(v1, d.env, d.user))
    stamps = {p.split("/")[2] for p in ws.files(ROOT) if p.startswith(".dbx-promote/backups/")}
    assert stamps == {"20260103T000000Z", "20260104T000000Z"}


def test_pruning_never_removes_the_backup_of_the_run_that_prunes_even_on_a_slow_clock(tmp_path):
    """keep_backups: 1 and a deploy whose clock is behind the last one's: the stamp of this
    run sorts below the older ones, and still this run's backup is the one kept."""
    v1 = build(tmp_path, V1, "1.0.0")
    ws = FakeWorkspace()
    deploy(ws, v1)
    for day in (3, 2):  # the second deploy's clock is a day behind the first's
        ws.hand_edit(f"{ROOT}/etl/clean", f"-- Databricks notebook source\nSELECT {day}\n".encode())
        d = Deployer(
            ws,
            environment(keep_backups=1),
            ROOT,
            ws.user,
            now=lambda day=day: f"2026-01-0{day}T00:00:00Z",
        )
        d.deploy(target_from_artifact(v1, d.env, d.user))
    stamps = {p.split("/")[2] for p in ws.files(ROOT) if p.startswith(".dbx-promote/backups/")}
    assert stamps == {"20260102T000000Z"}


def test_what_a_given_up_restore_put_back_is_recognised_by_the_records_own_content(releases):
    """A restore that gave up part-way rewrote some objects with the record's content (their
    modified_at moved): they are ours, like the dead deploy's intent; a real edit is not."""
    from dbx_promote.events import Silent
    from dbx_promote.layout import Layout
    from dbx_promote.record import Lock
    from dbx_promote.recovery import recognise
    from dbx_promote.state import Folder

    v1, v2, *_ = releases
    ws = FakeWorkspace()
    deploy(ws, v1)
    folder = Folder(ws, Layout(ROOT), Silent())
    record = folder.read_record()
    assert record is not None
    put_back = f"{ROOT}/reports/summary"  # only in v1: the restore recreated it
    ws.hand_edit(put_back, ws.download(put_back))
    ws.hand_edit(f"{ROOT}/etl/clean", b"-- Databricks notebook source\nSELECT 'by hand'\n")
    d = engine(ws)
    dead = Lock(
        "ci",
        "2026-01-01T00:00:00Z",
        "agent",
        1,
        "2.0.0",
        v2.digest,
        deploy_id="x",
        intent=target_from_artifact(v2, d.env, d.user).hashes,
    )
    adopted = recognise(folder, dead, record, folder.listing())
    assert "reports/summary" in adopted.objects and "etl/clean" not in adopted.objects


def test_a_deploy_whose_lock_is_taken_over_mid_way_does_not_commit_nor_restore(releases):
    """Another run broke our lock (it judged it stale) while we applied: we must neither
    write the record nor undo anything, since that run now owns the folder."""
    from dbx_promote.errors import DeployInterrupted
    from dbx_promote.record import Lock

    v1, v2, *_ = releases
    ws = FakeWorkspace()
    deploy(ws, v1)
    d = Deployer(ws, environment(), ROOT, ws.user, lock_rules=DEAD, heartbeat_seconds=0.01)
    lock_path = f"{ROOT}/.dbx-promote/lock.json"
    theirs = Lock(
        "other@example.com",
        "2026-01-01T00:00:00Z",
        "agent-9",
        9,
        "3.0.0",
        "sha256:x",
        deploy_id="theirs",
    )
    original = ws.import_notebook

    def taken_over_meanwhile(path, content, **kw):
        if ws.tree.get(lock_path) and b"theirs" not in ws.tree[lock_path].content:
            ws.tree[lock_path].content = theirs.to_json()
            import time

            time.sleep(0.3)  # our heartbeat notices
        original(path, content, **kw)

    ws.import_notebook = taken_over_meanwhile  # type: ignore[method-assign]
    with pytest.raises(DeployInterrupted, match="did not commit: lost the lock of 'test'"):
        d.deploy(target_from_artifact(v2, d.env, d.user))
    record = json.loads(ws.read_optional(f"{ROOT}/.dbx-promote/deployment.json"))
    assert record["version"] == "1.0.0"
    assert json.loads(ws.read_optional(lock_path))["deploy_id"] == "theirs"
