"""An environment's tests, run by the real SDK against the emulator's Jobs API.

Notebooks execute for real in the emulator (widgets, `%run`, a workspace-file import,
`dbutils.notebook.exit`); job rules and faults script what real notebooks cannot (a run
that never starts in time, a lost answer, a refused cancel).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dbx_promote.config import Environment, EnvTestSettings, load_config
from dbx_promote.emulator import Emulator, Fault, JobRule
from dbx_promote.envtests import PollPolicy, SuiteRunner, plan_suite, run_suite
from dbx_promote.errors import TestsInterrupted
from dbx_promote.record import Record
from dbx_promote.remote import JobRun
from dbx_promote.testresults import NotebookResult, SuiteEvents, SuiteResult
from dbx_promote.workspace import Workspace

from cli_helpers import TOKEN, assert_error, ctrl_c_reaches_python
from conftest import FakeClock
from deploy_helpers import ROOT, build, deploy, deployer

FAST = PollPolicy(first=0.05, factor=1.5, longest=0.3, timeout_grace=0.5, cancel_wait=10)
H = "# Databricks notebook source\n"
SEP = "\n# COMMAND ----------\n"
CHECK_ENV = (
    H + "# MAGIC %run ../_environment\n" + SEP + "import json\n"
    'dbutils.widgets.text("env", "")\n'
    "cases = [\n"
    '    {"name": "env widget", "status": "passed" if dbutils.widgets.get("env") == ENV else "failed"},\n'
    '    {"name": "catalog", "status": "passed" if CONFIG["catalog"] == "test_cat" else "failed"},\n'
    '    {"name": "version widget", "status": "passed" if dbutils.widgets.get("version") else "failed"},\n'
    '    {"name": "rows widget", "status": "passed" if dbutils.widgets.get("rows") == "7" else "failed"},\n'
    "]\n"
    'dbutils.notebook.exit(json.dumps({"cases": cases}))\n'
)
TEST_MATH = (
    H + "import os, sys\nsys.path.append(os.path.abspath('..'))\n"
    "from lib.helpers import double\n" + SEP + "assert double(2) == 4, double(2)\n"
    "dbutils.notebook.exit('math ok')\n"
)
FAILS = H + "total = 2\nassert total == 3, f'expected 3 orders, got {total}'\n"
SLEEPS = H + "import time\ntime.sleep(60)\n"
RELEASE = {
    "lib/helpers.py": "def double(x):\n    return 2 * x\n",
    "etl/ingest.py": H + "print('ingest')\n",
    "tests/check_env.py": CHECK_ENV,
    "tests/test_math.py": TEST_MATH,
}


def settings(**kw: object) -> EnvTestSettings:
    base: dict[str, object] = {
        "notebooks": ("tests/*",),
        "compute": {"serverless": True},
        "parameters": {"rows": "7"},
    }
    return EnvTestSettings(**{**base, **kw})  # type: ignore[arg-type]


def deploy_release(
    emu: Emulator,
    clock: FakeClock,
    tmp: Path,
    extra: dict[str, str] | None = None,
    tests: EnvTestSettings | None = None,
) -> tuple[Workspace, Environment, Record]:
    env = Environment(
        name="test", root=ROOT, parameters={"catalog": "test_cat"}, tests=tests or settings()
    )
    deploy(emu, clock, build(tmp, {**RELEASE, **(extra or {})}, "1.0.0"), env=env)
    d = deployer(emu, clock, env)
    record = d.read_record()
    assert record is not None
    return d.ws, env, record


def by_notebook(result: SuiteResult) -> dict[str, NotebookResult]:
    return {t.notebook: t for t in result.tests}


# --- verdicts from real runs ------------------------------------------------------------


def test_all_pass_with_widgets_cases_and_workspace_imports(emulator, fake_clock, tmp_path):
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path)
    result = run_suite(ws, env, ROOT, record, policy=FAST)
    assert result.outcome == "passed", result.summary()
    assert (result.env, result.version, result.digest) == ("test", "1.0.0", record.digest)
    check, math = result.tests
    assert check.notebook == "tests/check_env"
    assert [(c.name, c.status) for c in check.cases] == [
        ("env widget", "passed"),
        ("catalog", "passed"),
        ("version widget", "passed"),
        ("rows widget", "passed"),
    ]
    assert math.result == "math ok" and math.result_state == "SUCCESS"
    assert math.run_page_url and str(math.run_id) in math.run_page_url
    # One run per notebook, each on the deployed path with env, version and digest.
    runs = emulator.job_runs()
    assert len(runs) == 2
    task = runs[0]["tasks"][0]
    assert task["notebook_task"]["notebook_path"] == f"{ROOT}/tests/check_env"
    assert task["notebook_task"]["base_parameters"] == {
        "env": "test",
        "version": "1.0.0",
        "digest": record.digest,
        "rows": "7",
    }
    assert "existing_cluster_id" not in task and "new_cluster" not in task  # serverless


def test_one_failing_notebook_fails_the_suite_naming_it_and_its_error(
    emulator, fake_clock, tmp_path
):
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path, {"tests/orders.py": FAILS})
    result = run_suite(ws, env, ROOT, record, policy=FAST)
    assert result.outcome == "failed"
    orders = by_notebook(result)["tests/orders"]
    assert orders.status == "failed" and orders.result_state == "FAILED"
    assert orders.error_line == "AssertionError: expected 3 orders, got 2"
    assert orders.trace and "Traceback" in orders.trace
    assert result.summary() == (
        "1 of 3 tests failed: tests/orders (AssertionError: expected 3 orders, got 2)"
    )


def test_a_run_past_its_timeout_is_timedout_and_a_failure(emulator, fake_clock, tmp_path):
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path, {"tests/slow.py": SLEEPS})
    plan = plan_suite(
        env, ROOT, version="1.0.0", digest=record.digest, notebooks=record.objects, only="*slow"
    )
    # Minutes are the config's unit; the service-side limit is shortened here for speed.
    plan = replace(
        plan, tests=tuple(replace(t, spec=replace(t.spec, timeout_seconds=1)) for t in plan.tests)
    )
    (slow,) = SuiteRunner(ws, policy=replace(FAST, timeout_grace=30)).run(plan).tests
    assert (slow.status, slow.result_state) == ("failed", "TIMEDOUT")


def test_the_client_cancels_a_run_that_outlives_its_timeout(emulator, fake_clock, tmp_path):
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path)
    emulator.configure_jobs(start_delay_s=60)  # stuck PENDING: the service never starts it
    plan = plan_suite(
        env, ROOT, version="1.0.0", digest=record.digest, notebooks=record.objects, only="*math"
    )
    plan = replace(
        plan, tests=tuple(replace(t, spec=replace(t.spec, timeout_seconds=1)) for t in plan.tests)
    )
    (math,) = SuiteRunner(ws, policy=FAST).run(plan).tests
    assert (math.status, math.result_state) == ("failed", "TIMEDOUT")
    assert "cancelled by dbx-promote" in (math.error or "")
    assert emulator.job_runs()[0]["state"]["result_state"] == "CANCELED"


def test_a_missing_cluster_is_an_error_with_the_services_message(emulator, fake_clock, tmp_path):
    tests = settings(compute={"existing_cluster_id": "0601-182128-gone"})
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path, tests=tests)
    result = run_suite(ws, env, ROOT, record, policy=FAST)
    assert result.outcome == "errored"
    assert {t.status for t in result.tests} == {"errored"}
    assert "Cluster 0601-182128-gone does not exist" in result.tests[0].error_line
    assert result.summary().startswith(
        "2 of 2 tests could not run: tests/check_env (could not start"
    )


def test_a_notebook_gone_from_the_workspace_cannot_start(emulator, fake_clock, tmp_path):
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path)
    ws.delete(f"{ROOT}/tests/test_math")  # removed by hand after the deploy
    math = by_notebook(run_suite(ws, env, ROOT, record, policy=FAST))["tests/test_math"]
    assert math.status == "errored"
    assert math.error_line.startswith("could not start: ")
    assert "Unable to access the notebook" in math.error_line


def test_a_lost_submit_answer_is_resent_without_starting_a_second_run(
    emulator, fake_clock, tmp_path
):
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path)
    # The first submit lands, then its connection drops before the answer.
    emulator.add_fault(Fault(endpoint="jobs/runs/submit", after=True, drop=True))
    result = run_suite(ws, env, ROOT, record, policy=FAST)
    assert result.outcome == "passed", result.summary()
    runs = emulator.job_runs()
    assert len(runs) == 2, [r["run_name"] for r in runs]
    assert {t.run_id for t in result.tests} == {r["run_id"] for r in runs}
    submits = [e for e in emulator.request_log() if e["endpoint"] == "jobs/runs/submit"]
    assert len(submits) == 3  # the dropped one, its resend, the other notebook


def test_parallel_limits_the_runs_in_flight(emulator, fake_clock, tmp_path):
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path, tests=settings(parallel=1))
    emulator.add_job_rule(JobRule(path_glob="*/tests/*", duration_s=0.3))
    result = run_suite(ws, env, ROOT, record, policy=FAST)
    assert result.outcome == "passed"
    first, second = sorted(emulator.job_runs(), key=lambda r: r["start_time"])
    assert second["start_time"] >= first["end_time"]


# --- interrupts -------------------------------------------------------------------------


class _InterruptWhenRunning(SuiteEvents):
    def __init__(self, expected: int) -> None:
        self.running: set[str] = set()
        self.expected = expected

    def test_state(self, notebook: str, run: JobRun) -> None:
        if run.state == "RUNNING":
            self.running.add(notebook)
        if len(self.running) == self.expected:
            raise KeyboardInterrupt


def test_an_interrupt_cancels_the_runs_and_names_one_that_could_not_be_cancelled(
    emulator, fake_clock, tmp_path
):
    ws, env, record = deploy_release(emulator, fake_clock, tmp_path)
    emulator.add_job_rule(JobRule(path_glob="*/tests/*", duration_s=60))
    emulator.add_fault(
        Fault(endpoint="jobs/runs/cancel", status=403, error_code="PERMISSION_DENIED")
    )
    with pytest.raises(TestsInterrupted) as err:
        run_suite(ws, env, ROOT, record, events=_InterruptWhenRunning(2), policy=FAST)
    message = str(err.value)
    assert message.startswith("interrupted; cancelled the test runs in flight (tests/test_math)")
    first = min(r["run_id"] for r in emulator.job_runs())
    assert f"could not cancel run {first} of tests/check_env" in message
    assert "cancel it in the workspace" in message


# --- the CLI ----------------------------------------------------------------------------

CONFIG = """project: app
environments:
  test:
    root: /Shared/app/test
    parameters: {catalog: test_cat}
    tests:
      notebooks: ["tests/*"]
      compute: {serverless: true}
      parameters: {rows: "7"}
"""


def cli_env(emu: Emulator) -> dict[str, str]:
    return {
        **os.environ,
        "DATABRICKS_HOST": emu.url,
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_CONFIG_FILE": "/nonexistent",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "DBX_PROMOTE_POLL_MAX_SECONDS": "0.05",
    }


def deploy_for_cli(emu: Emulator, clock: FakeClock, tmp: Path, extra: dict[str, str]) -> Path:
    cfg = tmp / "dbx-promote.yml"
    cfg.write_text(CONFIG)
    deploy(
        emu,
        clock,
        build(tmp, {**RELEASE, **extra}, "1.0.0"),
        env=load_config(cfg).environment("test"),
    )
    return cfg


def run_cli(emu: Emulator, cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbx_promote", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        env=cli_env(emu),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_cli_test_json_junit_and_exit_1_naming_the_failure(emulator, fake_clock, tmp_path):
    cfg = deploy_for_cli(emulator, fake_clock, tmp_path, {"tests/orders.py": FAILS})
    junit = tmp_path / "out" / "TEST-test.xml"
    result = run_cli(
        emulator, cfg, "test", "--env", "test", "--output", "json", "--junit", str(junit)
    )
    line = assert_error(result, 1, "tests in test (1.0.0): 1 of 3 tests failed: tests/orders")
    assert "AssertionError: expected 3 orders, got 2" in line
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("env", "version", "outcome")} == {
        "env": "test", "version": "1.0.0", "outcome": "failed",
    }  # fmt: skip
    orders = next(t for t in data["tests"] if t["notebook"] == "tests/orders")
    assert set(orders) >= {
        "run_id",
        "run_page_url",
        "result_state",
        "duration_s",
        "result",
        "error",
    }
    assert orders["run_page_url"].startswith(emulator.url)
    assert junit.read_text().count("<testcase") == 6  # 4 cases + 2 notebooks


def test_cli_test_text_output_lines_and_only(emulator, fake_clock, tmp_path):
    cfg = deploy_for_cli(emulator, fake_clock, tmp_path, {"tests/orders.py": FAILS})
    result = run_cli(emulator, cfg, "test", "--env", "test", "--only", "tests/check_*")
    assert result.returncode == 0, result.stderr
    assert "passed   tests/check_env" in result.stdout
    assert "test (1.0.0): 1 of 1 test passed" in result.stdout
    assert result.stderr == ""


def test_ctrl_c_in_the_cli_cancels_the_runs_it_started(emulator, fake_clock, tmp_path):
    cfg = deploy_for_cli(emulator, fake_clock, tmp_path, {})
    emulator.add_job_rule(JobRule(path_glob="*/tests/*", duration_s=120))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbx_promote", "--config", str(cfg), "test", "--env", "test"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(emulator),
        stdin=subprocess.DEVNULL,
        preexec_fn=ctrl_c_reaches_python,
    )
    try:
        deadline = time.monotonic() + 60
        while sum(r["state"]["life_cycle_state"] == "RUNNING" for r in emulator.job_runs()) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the runs never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert (
        "interrupted; cancelled the test runs in flight (tests/check_env, tests/test_math)" in err
    )
    deadline = time.monotonic() + 30
    while {r["state"].get("result_state") for r in emulator.job_runs()} != {"CANCELED"}:
        assert time.monotonic() < deadline, emulator.job_runs()
        time.sleep(0.05)
