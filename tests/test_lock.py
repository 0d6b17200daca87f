"""The deploy lock against the in-memory workspace: stale rules, refusals naming their
rule, the heartbeat, and a committed deploy's lock removed by itself."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from dbx_promote.errors import LockHeld
from dbx_promote.events import Silent
from dbx_promote.layout import LOCK_FILE, STATE_DIR, Layout
from dbx_promote.lock import DeployLock, LockRules, judge
from dbx_promote.record import Lock
from dbx_promote.state import Folder
from fake_workspace import FakeFailure, FakeWorkspace
from test_plan import record

ROOT = "/Shared/app"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


class Warnings(Silent):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def warning(self, message: str) -> None:
        self.seen.append(message)


def folder() -> tuple[Folder, Warnings]:
    ws = FakeWorkspace()
    events = Warnings()
    f = Folder(ws, Layout(ROOT), events)
    ws.mkdirs(f.abs(STATE_DIR))
    return f, events


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


HERE = "laptop/boot-1/pid:[4026531836]"  # this process's host identity in these tests


def lock(deploy_id="theirs", host="agent-7", pid=42, beat=0.5, host_id=None) -> Lock:
    return Lock(
        "ci@example.com",
        stamp(10),
        host,
        pid,
        "2.0.0",
        "sha256:b",
        deploy_id=deploy_id,
        heartbeat_at=stamp(beat),
        from_version="1.0.0",
        host_id=HERE if host_id is None and host == "laptop" else (host_id or ""),
    )


RULES = LockRules(
    stale_minutes=3, host="laptop", alive=lambda pid: pid == 42, now=lambda: NOW, host_id=HERE
)


def ours(**kw) -> Lock:
    return Lock(
        "me@example.com", stamp(0), "laptop", 7, "3.0.0", "sha256:c", deploy_id="ours", **kw
    )


def place(f: Folder, other: Lock) -> None:
    f.create_lock(other)


@pytest.mark.parametrize(
    ("other", "rec", "stale"),
    [
        (lock(beat=0.5), None, None),
        (lock(beat=4), None, "heartbeat is 4 min old (lock_stale_minutes: 3)"),
        (lock(host="laptop", pid=41), None, "process 41 on this host (laptop) is gone"),
        (lock(host="laptop", pid=42), None, None),
        (lock(deploy_id="d1"), "d1", "the record carries deploy d1"),
        # The same hostname in another container (or boot): its pid is not ours to judge.
        (lock(host="laptop", pid=41, host_id="laptop/boot-1/pid:[4026532999]"), None, None),
        (lock(host="laptop", pid=41, host_id="laptop/boot-2/pid:[4026531836]"), None, None),
        # A lock that does not say which machine it is from (an older dbx-promote).
        (lock(host="laptop", pid=41, host_id=""), None, None),
    ],
    ids=[
        "live",
        "old-heartbeat",
        "dead-pid-here",
        "live-pid-here",
        "committed",
        "same-hostname-other-container",
        "same-hostname-other-boot",
        "no-host-identity",
    ],
)
def test_stale_rules(other, rec, stale):
    from dataclasses import replace

    r = replace(record({}), deploy_id=rec) if rec else None
    state = judge(other, r, RULES)
    if stale is None:
        assert state.stale is None and "younger than lock_stale_minutes (3)" in state.live
    else:
        assert stale in state.stale
    assert state.committed == (rec is not None)


def test_a_lock_of_another_container_with_our_hostname_is_live_and_says_so():
    other = lock(host="laptop", pid=41, host_id="laptop/boot-1/pid:[4026532999]")
    assert "a host named laptop (another container or boot)" in judge(other, None, RULES).live


def test_this_host_is_named_by_hostname_boot_and_pid_namespace_or_not_at_all():
    import socket

    from dbx_promote.lock import host_identity

    here = host_identity()
    if here:  # Linux: /proc tells the boot and the pid namespace
        name, boot, namespace = here.split("/", 2)
        assert name == socket.gethostname() and boot and namespace.startswith("pid:")
    # A lock that names no machine is never judged by its pid.
    assert not LockRules(host_id="").same_host(lock(host_id=""))


def test_a_live_lock_is_not_broken_by_break_lock_and_the_refusal_names_the_rule():
    f, _ = folder()
    place(f, lock(beat=0.5))
    with pytest.raises(
        LockHeld,
        match=r"not broken: its heartbeat is younger than lock_stale_minutes \(3\) and it runs on another host \(agent-7\).*--force",
    ):
        with DeployLock(f, ours(), env_name="prod", break_lock=True, rules=RULES):
            pass
    assert json.loads(f.ws.read_optional(f.abs(LOCK_FILE)))["deploy_id"] == "theirs"


def test_a_stale_lock_without_break_lock_is_refused_saying_why_and_what_to_do():
    f, _ = folder()
    place(f, lock(beat=10))
    with pytest.raises(
        LockHeld, match=r"stale \(its heartbeat is 10 min old.*rerun with --break-lock"
    ):
        with DeployLock(f, ours(), env_name="prod", rules=RULES):
            pass


def test_break_lock_breaks_a_stale_lock_and_remembers_its_intent():
    f, events = folder()
    dead = lock(host="laptop", pid=41)
    place(f, dead)
    with DeployLock(f, ours(), env_name="prod", break_lock=True, rules=RULES) as held:
        assert held.broken == dead
        assert json.loads(f.ws.read_optional(f.abs(LOCK_FILE)))["deploy_id"] == "ours"
    assert f.ws.read_optional(f.abs(LOCK_FILE)) is None
    assert any("process 41 on this host" in w for w in events.seen)


def test_force_breaks_a_live_lock():
    f, events = folder()
    place(f, lock(beat=0.1))
    with DeployLock(f, ours(), env_name="prod", break_lock=True, force=True, rules=RULES):
        pass
    assert any("--force" in w for w in events.seen)


def test_a_committed_deploys_lock_is_removed_without_asking_with_a_warning():
    from dataclasses import replace

    f, events = folder()
    place(f, lock(deploy_id="d1", beat=0.1))
    rec = replace(record({}), deploy_id="d1")
    with DeployLock(f, ours(), env_name="prod", record=rec, rules=RULES) as held:
        assert held.broken is None  # nothing of its writes to recognise: it committed
    assert any("committed" in w for w in events.seen)


def test_the_heartbeat_refreshes_the_lock_while_it_is_held():
    f, _ = folder()
    beats = threading.Event()
    ws = f.ws
    original = ws.import_file

    def watch(path, content, *, overwrite=True):
        original(path, content, overwrite=overwrite)
        if path.endswith("lock.json") and overwrite:
            beats.set()

    ws.import_file = watch  # type: ignore[method-assign]
    with DeployLock(f, ours(), env_name="prod", rules=RULES, heartbeat_seconds=0.01) as held:
        assert beats.wait(10)
        written = json.loads(ws.read_optional(f.abs(LOCK_FILE)))
        assert written["deploy_id"] == "ours" and written["heartbeat_at"]
        assert held.lock.heartbeat_at == written["heartbeat_at"]


def test_a_lock_that_cannot_be_removed_is_reported_with_what_happens_next():
    f, events = folder()
    f.ws.failures.append(FakeFailure("delete", "*/lock.json"))
    with DeployLock(
        f,
        ours(),
        env_name="prod",
        rules=RULES,
        on_left_behind=lambda lk: "the next deploy removes it by itself",
    ):
        pass
    assert f.ws.read_optional(f.abs(LOCK_FILE)) is not None
    assert any("the next deploy removes it by itself" in w for w in events.seen)


def test_a_lock_create_whose_answer_was_lost_is_ours_when_read_back():
    from dbx_promote.errors import WorkspaceError

    f, _ = folder()
    ws = f.ws
    original = ws.create_file_exclusive

    def lost(path, content):
        original(path, content)
        raise WorkspaceError("connection lost during lock create")

    ws.create_file_exclusive = lost  # type: ignore[method-assign]
    with DeployLock(f, ours(), env_name="prod", rules=RULES):
        assert json.loads(ws.read_optional(f.abs(LOCK_FILE)))["deploy_id"] == "ours"


def test_the_end_of_a_deploy_does_not_wait_for_a_stuck_heartbeat_nor_let_it_bring_the_lock_back():
    import time

    f, _ = folder()
    ws = f.ws
    stuck, release = threading.Event(), threading.Event()
    original = ws.read_optional

    def slow(path):
        data = original(path)
        if path.endswith("lock.json") and threading.current_thread().name.endswith("heartbeat"):
            stuck.set()
            release.wait(10)  # the answer of a read retrying a throttled workspace
        return data

    ws.read_optional = slow  # type: ignore[method-assign]
    started = time.monotonic()
    with DeployLock(
        f, ours(), env_name="prod", rules=RULES, heartbeat_seconds=0.01, heartbeat_join_seconds=0.2
    ):
        assert stuck.wait(10)
    assert time.monotonic() - started < 5
    assert original(f.abs(LOCK_FILE)) is None
    release.set()  # the beat's read comes back after the release: it must not write
    time.sleep(0.2)
    assert original(f.abs(LOCK_FILE)) is None


def _until(condition, seconds: float = 10) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_a_lock_taken_over_while_held_is_never_overwritten_and_the_holder_may_not_commit():
    from dbx_promote.errors import LockLost

    f, events = folder()
    with DeployLock(f, ours(), env_name="prod", rules=RULES, heartbeat_seconds=0.01) as held:
        held.ensure_held()  # ours: nothing to say
        f.write_lock(lock(deploy_id="theirs"))  # another run broke ours and took it
        assert _until(lambda: held.lost is not None)
        with pytest.raises(LockLost, match="lost the lock of 'prod': our lock was broken"):
            held.ensure_held()
    assert json.loads(f.ws.read_optional(f.abs(LOCK_FILE)))["deploy_id"] == "theirs"
    assert any("will not commit" in w for w in events.seen)


def test_a_heartbeat_failing_past_the_stale_threshold_means_the_lock_may_be_lost():
    from dataclasses import replace

    from dbx_promote.errors import LockLost

    f, _ = folder()
    clock = [NOW]
    rules = replace(RULES, now=lambda: clock[0])
    with DeployLock(f, ours(), env_name="prod", rules=rules, heartbeat_seconds=0.01) as held:
        f.ws.failures.append(FakeFailure("import", "*/lock.json"))  # every beat fails
        clock[0] = NOW + timedelta(minutes=2)
        assert not _until(lambda: held.lost is not None, seconds=0.2)  # within the threshold
        held.ensure_held()
        clock[0] = NOW + timedelta(minutes=4)
        assert _until(lambda: held.lost is not None)
        with pytest.raises(
            LockLost, match=r"could not be refreshed for 4 min \(lock_stale_minutes: 3\)"
        ):
            held.ensure_held()


def test_the_workspaces_clock_judges_a_locks_age_when_it_is_known():
    """Whatever the holder's clock wrote into heartbeat_at, the age the workspace saw wins."""
    assert "heartbeat is 10 min old" in (judge(lock(beat=0.5), None, RULES, age=600).stale or "")
    assert judge(lock(beat=10), None, RULES, age=30).stale is None


def test_a_fresh_lock_from_a_holder_whose_clock_is_behind_is_not_broken(emulator, fake_clock):
    """The holder's clock is 10 minutes slow: by ours its heartbeat looks stale, but the
    workspace wrote the lock a moment ago, so it is live and --break-lock leaves it."""
    from dbx_promote.workspace import Workspace

    from conftest import make_client

    ws = Workspace(make_client(emulator.url, fake_clock), sleep=fake_clock.sleep)
    f = Folder(ws, Layout(ROOT), Warnings())
    ws.mkdirs(f.abs(STATE_DIR))
    assert f.lock_age() is None  # no lock yet
    slow = datetime.now(timezone.utc) - timedelta(minutes=10)
    other = Lock(
        "ci@example.com",
        slow.isoformat(),
        "agent-7",
        42,
        "2.0.0",
        "sha256:b",
        deploy_id="theirs",
        heartbeat_at=slow.isoformat(),
    )
    f.create_lock(other)
    age = f.lock_age()
    assert age is not None and 0 <= age < 60
    with pytest.raises(LockHeld, match="not broken: its heartbeat is younger"):
        with DeployLock(f, ours(), env_name="prod", break_lock=True):
            pass
    assert json.loads(ws.read_optional(f.abs(LOCK_FILE)))["deploy_id"] == "theirs"
