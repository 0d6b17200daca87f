"""kill -9 at many points of a v1 -> v2 deploy: the real CLI in a subprocess, SIGKILLed
once the emulator's request log reaches a chosen index. Nothing of its `finally` runs.

After each kill, `status` reports the interruption (or a clean v1/v2 when the kill fell
outside the apply); `deploy --break-lock` then lands on v2 with no false drift and no
backup of our own objects, or — in the other variant — `rollback --break-lock` lands
exactly on v1. The recovery runs in-process; only the killed deploy needs a process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cli_helpers import cli_env, run_main
from deploy_helpers import ROOT, V1, V2, build, managed_state

POINTS = (
    6  # kill points spread over the deploy (every index is swept on the fake: test_interrupted.py)
)


@pytest.fixture
def setup(emulator, tmp_path):
    cfg = tmp_path / "dbx-promote.yml"
    cfg.write_text(
        f"project: app\nenvironments:\n  test: {{root: {ROOT}, parameters: {{catalog: test_cat}}}}\n"
    )
    v1, v2 = build(tmp_path, V1, "1.0.0"), build(tmp_path, V2, "2.0.0")
    env = cli_env(emulator.url)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_main(["--config", str(cfg), *args], env=env)

    assert cli("deploy", str(v1.path), "--env", "test").returncode == 0
    v1_state = managed_state(emulator)
    start = len(emulator.request_log())
    assert cli("deploy", str(v2.path), "--env", "test").returncode == 0
    n = len(emulator.request_log()) - start
    v2_state = managed_state(emulator)
    return cfg, v1, v2, env, cli, v1_state, v2_state, n


def kill_at(emulator, cfg, artifact, env, index: int) -> None:
    """Start the deploy in a process and SIGKILL it when request ``index`` is answered."""
    emulator.set_latency(80)  # requests in flight stay in flight while we aim
    start = len(emulator.request_log())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dbx_promote",
            "--config",
            str(cfg),
            "deploy",
            str(artifact.path),
            "--env",
            "test",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < deadline:
        if len(emulator.request_log()) - start >= index:
            break
        time.sleep(0.01)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()  # reaped: its pid is really gone
    emulator.set_latency(0)


@pytest.mark.slow
def test_kill_9_at_many_points_then_status_tells_and_recovery_is_exact(emulator, setup):
    cfg, v1, v2, env, cli, v1_state, v2_state, n = setup
    points = sorted({max(1, round(n * (i + 0.5) / POINTS)) for i in range(POINTS)})
    for turn, index in enumerate(points):
        recovery = "deploy" if turn % 2 == 0 else "rollback"
        emulator.reset()
        assert cli("deploy", str(v1.path), "--env", "test").returncode == 0
        kill_at(emulator, cfg, v2, env, index)

        status = cli("status", "--env", "test", "--output", "json")
        assert status.returncode == 0, status.stderr
        st = json.loads(status.stdout)
        lock_state = st["lock_state"] or {}
        if st["lock"] is None or lock_state.get("committed"):
            assert st["interrupted"] is None, index
            assert managed_state(emulator) == (v1_state if st["version"] == "1.0.0" else v2_state)
        else:
            cut = st["interrupted"]
            assert cut and (cut["from"], cut["to"]) == ("1.0.0", "2.0.0"), (index, st)
            assert cut["since"] and "emulator@example.com" in cut["holder"]
            assert st["drift"]["edited"] == [], (index, st["drift"])  # its writes are not edits

        if recovery == "deploy":
            out = cli("deploy", str(v2.path), "--env", "test", "--break-lock", "--output", "json")
            assert out.returncode == 0, (index, out.stderr)
            result = json.loads(out.stdout)
            assert result["changes"]["drift"] == [] and result["backups"] == [], (index, result)
            assert managed_state(emulator) == v2_state, index
        elif st["lock"] is None and st["version"] == "1.0.0":
            continue  # killed before it locked: a clean v1, nothing to go back from
        else:
            out = cli("rollback", "--env", "test", "--break-lock", "--output", "json")
            assert out.returncode == 0, (index, out.stderr)
            assert json.loads(out.stdout)["backups"] == [], index
            assert managed_state(emulator) == v1_state, index
        assert f"{ROOT}/.dbx-promote/lock.json" not in emulator.tree(ROOT), index
