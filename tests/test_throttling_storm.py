"""A long 429 storm (issue 13, item 4): the restore of a failed deploy keeps going for
`restore_budget_minutes`, honouring Retry-After, and either ends exactly on the old
release, or gives up and leaves the folder *reported* interrupted — its lock kept as the
intent — which the next deploy (the storm over) converges with no false drift.

The real SDK talks to the emulator; retry sleeps advance a fake clock, and the storm (the
emulator's faults) ends when that clock has run its length, so minutes take milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbx_promote import operations
from dbx_promote.config import Config, load_config
from dbx_promote.deploy import Deployer, DeployOptions, target_from_artifact
from dbx_promote.emulator import Emulator, Fault
from dbx_promote.errors import DeployFailed, DeployInterrupted, WorkspaceError
from dbx_promote.lock import LockRules, judge
from dbx_promote.workspace import RetryPolicy, Workspace

from cli_helpers import assert_error, run_cli
from conftest import FakeClock, make_client
from deploy_helpers import ROOT, V1, V2, build, managed_state

LOCK = f"{ROOT}/.dbx-promote/lock.json"
GONE = LockRules(alive=lambda pid: False)  # the failed deploy's process has exited


class Storm:
    """Imports refused with 429 and ``Retry-After`` from the storm's first refusal until
    ``minutes`` of the fake clock later; with ``everywhere``, once it starts it also
    refuses the writes of our state folder (the lock, the record)."""

    def __init__(
        self, emu: Emulator, clock: FakeClock, minutes: float, *, everywhere: bool = False
    ) -> None:
        self.emu, self.clock, self.minutes, self.everywhere = emu, clock, minutes, everywhere
        self.ends_at: float | None = None

    def start(self) -> None:
        """Arm it: the first notebook import under etl/ still lands, the rest are refused."""
        self.emu.add_fault(self._fault(f"{ROOT}/etl/*", nth=2))

    def sleep(self, seconds: float) -> None:
        if self.ends_at is None:  # the first retry: the storm has begun
            self.ends_at = self.clock.now + self.minutes * 60
            if self.everywhere:
                self.emu.add_fault(self._fault(f"{ROOT}/.dbx-promote/*", nth=1))
        self.clock.sleep(seconds)
        if self.clock.now >= self.ends_at:
            self.emu.clear_faults()

    @staticmethod
    def _fault(glob: str, nth: int) -> Fault:
        return Fault(
            endpoint="import",
            path_glob=glob,
            nth=nth,
            times=-1,
            status=429,
            error_code="REQUEST_LIMIT_EXCEEDED",
            retry_after=30,
        )


def config(tmp: Path, budget_minutes: float = 10) -> Config:
    path = tmp / "dbx-promote.yml"
    path.write_text(
        "project: app\nsource: notebooks\nenvironments:\n  test:\n"
        f"    root: {ROOT}\n    parallel: 1\n    restore_budget_minutes: {budget_minutes}\n"
        "    parameters: {catalog: test_cat}\n"
    )
    return load_config(path)


@pytest.fixture
def fresh(emulator, fake_clock, tmp_path):
    """An empty folder: the config, connect, deploy and storm helpers, and v1, v2."""
    v1, v2 = build(tmp_path, V1, "1.0.0"), build(tmp_path, V2, "2.0.0")
    cfg = config(tmp_path)
    storms: list[Storm] = []

    def connect(env):
        sleep = storms[-1].sleep if storms else fake_clock.sleep
        return Workspace(
            make_client(emulator.url, fake_clock),
            sleep=sleep,
            retry=RetryPolicy(attempts=4),
            parallel=env.parallel,
            clock=fake_clock.time,
        )

    def deploy(artifact, **options):
        return operations.deploy(cfg, "test", artifact, DeployOptions(**options), connect=connect)

    def storm(minutes: float, **kw: bool) -> Storm:
        s = Storm(emulator, fake_clock, minutes, **kw)
        storms.append(s)
        s.start()
        return s

    return cfg, connect, deploy, storm, v1, v2


@pytest.fixture
def world(fresh, emulator):
    """The folder on v1: ``fresh`` plus v1's managed state."""
    fresh[2](fresh[4])
    return (*fresh, managed_state(emulator))


def test_a_storm_shorter_than_the_restore_budget_ends_exactly_on_the_old_release(
    world, emulator, fake_clock
):
    _, _, deploy, storm, _, v2, v1_state = world
    s = storm(minutes=8)  # longer than the deploy waits (4 attempts), shorter than 10 min
    with pytest.raises(DeployFailed, match=r"restored the previous release 1\.0\.0") as err:
        deploy(v2)
    assert not isinstance(err.value, DeployInterrupted)
    assert s.ends_at is not None and fake_clock.now >= s.ends_at  # it waited the storm out
    assert managed_state(emulator) == v1_state
    assert LOCK not in emulator.tree(ROOT)


def test_a_storm_longer_than_the_budget_is_reported_interrupted_then_converged(
    world, emulator, fake_clock
):
    cfg, connect, deploy, storm, _, v2, v1_state = world
    s = storm(minutes=60)
    with pytest.raises(DeployInterrupted) as err:
        deploy(v2)
    message = str(err.value)
    assert "restore_budget_minutes: 10" in message
    assert "The folder is INTERRUPTED: it may hold parts of 1.0.0 and 2.0.0" in message
    assert "the next deploy takes the lock over" in message
    assert s.ends_at is not None and fake_clock.now < s.ends_at  # it gave up in the storm
    assert managed_state(emulator) != v1_state  # mixed: the first etl import landed

    st = operations.status(cfg, "test", connect=connect)
    assert st.interrupted and st.lock is not None and st.lock.version == "2.0.0"
    assert "its deploy gave up" in st.to_dict()["interrupted"]["why"]
    assert st.drifted == []  # what it wrote is its own, not a hand edit

    emulator.clear_faults()  # the storm is over
    result = deploy(v2)  # no --break-lock: the lock was marked as given up
    assert result.verified and result.plan.changes_summary()["drift"] == []
    assert result.backups == []
    assert LOCK not in emulator.tree(ROOT)
    assert not operations.status(cfg, "test", connect=connect).interrupted


def test_a_storm_that_also_refuses_the_lock_leaves_it_unmarked_and_break_lock_converges(
    world, emulator, fake_clock
):
    cfg, connect, deploy, storm, _, v2, _ = world
    storm(minutes=60, everywhere=True)
    with pytest.raises(DeployInterrupted, match=r"the next `deploy --break-lock` takes the lock"):
        deploy(v2)
    st = operations.status(cfg, "test", connect=connect)
    assert st.lock is not None and not st.lock.abandoned  # the mark could not be written
    # Once its holder is gone it is a dead deploy's intent, as after a crash.
    dead = judge(st.lock, st.record, GONE)
    assert dead.stale is not None and not dead.committed

    emulator.clear_faults()
    # The next deploy runs in a process of its own: the holder is gone.
    ws = connect(cfg.environment("test"))
    d = Deployer(ws, cfg.environment("test"), ROOT, ws.current_user(), lock_rules=GONE)
    result = d.deploy(target_from_artifact(v2, d.env, d.user), DeployOptions(break_lock=True))
    assert result.verified and result.plan.changes_summary()["drift"] == []
    assert result.backups == []
    assert LOCK not in emulator.tree(ROOT)


def test_a_first_deploy_cut_by_a_long_storm_of_imports_ends_on_nothing(fresh, emulator):
    """With no release before it, the restore only deletes what the deploy created: a storm
    that refuses imports does not stop it, and the folder ends as it was, empty."""
    _, _, deploy, storm, v1, _ = fresh
    storm(minutes=60)
    with pytest.raises(DeployFailed, match="removed what it had created") as err:
        deploy(v1, no_bulk=True)
    assert not isinstance(err.value, DeployInterrupted)
    assert managed_state(emulator) == {} and LOCK not in emulator.tree(ROOT)
    emulator.clear_faults()
    assert deploy(v1).verified


def test_the_restore_retries_against_its_own_deadline_not_the_deploys_attempts(
    emulator, fake_clock
):
    """The patient adapter retries a refused request until its budget is spent, however
    many attempts that takes, sleeping what Retry-After asks (never past the deadline)."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        fake_clock.sleep(seconds)

    ws = Workspace(
        make_client(emulator.url, fake_clock),
        sleep=sleep,
        retry=RetryPolicy(attempts=2),
        clock=fake_clock.time,
    )
    emulator.add_fault(
        Fault(
            endpoint="mkdirs",
            status=429,
            error_code="REQUEST_LIMIT_EXCEEDED",
            retry_after=7,
            times=-1,
        )
    )
    start = fake_clock.now
    with pytest.raises(WorkspaceError, match="kept failing"):
        ws.patient(60).mkdirs("/Shared/x")
    # The SDK's own retry of a throttled JSON request may overrun by one Retry-After.
    assert 60 <= fake_clock.now - start < 60 + 7 + 1
    assert all(s <= 7.5 for s in sleeps)
    emulator.clear_faults()
    ws.patient(60).mkdirs("/Shared/x")


def _cli_project(tmp: Path, budget: str) -> Path:
    cfg = tmp / "cli" / "dbx-promote.yml"
    cfg.parent.mkdir()
    cfg.write_text(
        "project: app\nsource: src\nenvironments:\n  test:\n"
        f"    root: {ROOT}\n    restore_budget_minutes: {budget}\n"
        "    parameters: {catalog: test_cat}\n"
    )
    return cfg


@pytest.mark.parametrize("budget", ["0", "-1", "soon", ".nan", ".inf", "1441", "true"])
def test_a_bad_restore_budget_is_refused_with_one_line_and_exit_2(tmp_path, budget):
    cfg = _cli_project(tmp_path, budget)
    proc = run_cli(cfg, "status", "--env", "test", host="http://127.0.0.1:9")
    assert_error(proc, 2, "environments.test.restore_budget_minutes must be a number of minutes")


def test_the_cli_under_a_storm_past_its_budget_reports_interrupted_then_converges(
    emulator, tmp_path
):
    """Real time, small numbers: the SDK gives up on a throttled request after 1 s, the
    restore after 3 s (0.05 min); the storm refuses every notebook import under etl/."""
    cfg = _cli_project(tmp_path, "0.05")
    v1, v2 = build(tmp_path, V1, "1.0.0"), build(tmp_path, V2, "2.0.0")
    env = {"DBX_PROMOTE_RETRY_TIMEOUT": "1"}

    def cli(*args: str):
        return run_cli(cfg, *args, host=emulator.url, extra_env=env)

    assert cli("deploy", str(v1.path), "--env", "test").returncode == 0
    emulator.add_fault(
        Fault(
            endpoint="import",
            path_glob=f"{ROOT}/etl/*",
            times=-1,
            status=429,
            error_code="REQUEST_LIMIT_EXCEEDED",
            retry_after=0,
        )
    )
    failed = cli("deploy", str(v2.path), "--env", "test")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    (line,) = [x for x in failed.stderr.splitlines() if x.startswith("error: ")]
    assert "The folder is INTERRUPTED" in line and "the next deploy takes the lock over" in line
    assert "restore_budget_minutes: 0.05" in line

    shown = cli("status", "--env", "test")
    assert "INTERRUPTED" in shown.stdout and "gave up" in shown.stdout
    assert cli("status", "--env", "test", "--check").returncode == 1

    emulator.clear_faults()
    again = cli("deploy", str(v2.path), "--env", "test", "--output", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changes"]["drift"] == []
    assert cli("status", "--env", "test", "--check").returncode == 0
