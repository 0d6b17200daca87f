"""The emulator's Jobs API one-time runs, driven by the real databricks-sdk over HTTP.

Notebooks are executed for real in a subprocess; job rules script outcomes without one.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service.jobs import (
    NotebookTask,
    Run,
    RunLifeCycleState,
    RunLifecycleStateV2State,
    RunResultState,
    SubmitTask,
    TerminationCodeCode,
    TerminationTypeType,
)
from databricks.sdk.service.workspace import ImportFormat, Language

from dbx_promote.emulator import Emulator, EmulatorControl, Fault, JobRule
from dbx_promote.emulator.notebook_exec import build_program
from dbx_promote.emulator.store import ImportRequest, Store, parse_path

ROOT = "/Shared/app/test"
ENVIRONMENT = """# Databricks notebook source
CONFIG = {"env": dbutils.widgets.get("env"), "catalog": "test_catalog"}
"""
HELPERS = b"def double(x):\n    return 2 * x\n"
CHECK_ENV = """# Databricks notebook source
# MAGIC %run ../_environment

# COMMAND ----------

# MAGIC %md
# MAGIC Checks the environment the release runs in.

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT 1

# COMMAND ----------

import json
import os
import sys

sys.path.append(os.path.abspath(".."))
from lib.helpers import double

dbutils.widgets.text("rows", "10")
dbutils.widgets.dropdown("mode", "fast", ["fast", "slow"])
display({"cwd": os.getcwd()})
print("mode", dbutils.widgets.get("mode"))
result = {
    "env": CONFIG["env"],
    "rows": double(int(dbutils.widgets.get("rows"))),
    "cwd_is_folder": os.getcwd().endswith("/Workspace/Shared/app/test/tests"),
}
dbutils.notebook.exit(json.dumps(result))

# COMMAND ----------

raise RuntimeError("cells after notebook.exit never run")
"""
RAISES = """# Databricks notebook source
print("before the failure")

# COMMAND ----------

def check(total):
    if total != 3:
        raise AssertionError(f"expected 3 orders, got {total}")

check(2)
"""
SLEEPS = """# Databricks notebook source
import pathlib
import time

marker = dbutils.widgets.get("marker")
if marker:
    pathlib.Path(marker).write_text("started")
time.sleep(60)
"""
TERMINAL = (RunLifeCycleState.TERMINATED, RunLifeCycleState.INTERNAL_ERROR)


def upload_notebook(w: WorkspaceClient, path: str, source: str) -> None:
    w.workspace.upload(
        path, source.encode(), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )


@pytest.fixture
def project(workspace_client: WorkspaceClient) -> WorkspaceClient:
    """A deployed-looking root: `_environment`, a workspace file and test notebooks."""
    w = workspace_client
    w.workspace.mkdirs(f"{ROOT}/tests")
    w.workspace.mkdirs(f"{ROOT}/lib")
    upload_notebook(w, f"{ROOT}/_environment", ENVIRONMENT)
    w.workspace.upload(f"{ROOT}/lib/helpers.py", HELPERS, format=ImportFormat.AUTO)
    upload_notebook(w, f"{ROOT}/tests/check_env", CHECK_ENV)
    upload_notebook(w, f"{ROOT}/tests/raises", RAISES)
    upload_notebook(w, f"{ROOT}/tests/sleeps", SLEEPS)
    return w


def submit(
    w: WorkspaceClient,
    notebook: str,
    params: dict[str, str] | None = None,
    **kwargs: object,
) -> int:
    task = SubmitTask(
        task_key="t",
        notebook_task=NotebookTask(
            notebook_path=notebook, base_parameters={"env": "test", **(params or {})}
        ),
    )
    return w.jobs.submit(run_name="emulated", tasks=[task], **kwargs).run_id  # type: ignore[arg-type]


def wait(w: WorkspaceClient, run_id: int, timeout: float = 30.0) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = w.jobs.get_run(run_id)
        assert run.state is not None
        if run.state.life_cycle_state in TERMINAL:
            return run
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not end within {timeout}s")


def task_id(run: Run) -> int:
    assert run.tasks and run.tasks[0].run_id is not None
    return run.tasks[0].run_id


# --- executing notebooks --------------------------------------------------------------


def test_python_notebook_with_run_widgets_exit_and_import_succeeds(
    project: WorkspaceClient,
) -> None:
    w = project
    run = wait(w, submit(w, f"{ROOT}/tests/check_env", {"rows": "21"}))
    assert run.state and run.state.life_cycle_state == RunLifeCycleState.TERMINATED
    assert run.state.result_state == RunResultState.SUCCESS
    assert run.status and run.status.state == RunLifecycleStateV2State.TERMINATED
    assert run.status.termination_details
    assert run.status.termination_details.code == TerminationCodeCode.SUCCESS
    out = w.jobs.get_run_output(task_id(run))
    assert out.notebook_output and out.notebook_output.result is not None
    assert json.loads(out.notebook_output.result) == {
        "env": "test",
        "rows": 42,
        "cwd_is_folder": True,
    }
    assert out.error is None
    assert out.logs and "mode fast" in out.logs


def test_raising_notebook_fails_with_its_error_in_get_output(project: WorkspaceClient) -> None:
    w = project
    run = wait(w, submit(w, f"{ROOT}/tests/raises"))
    assert run.state and run.state.life_cycle_state == RunLifeCycleState.INTERNAL_ERROR
    assert run.state.result_state == RunResultState.FAILED
    assert run.state.state_message == (
        "Task t failed with message: Workload failed, see run output for details."
    )
    assert run.status and run.status.state == RunLifecycleStateV2State.TERMINATED
    details = run.status.termination_details
    assert details and details.code == TerminationCodeCode.RUN_EXECUTION_ERROR
    assert details.type == TerminationTypeType.CLIENT_ERROR
    task = run.tasks[0] if run.tasks else None
    assert task and task.state and task.state.life_cycle_state == RunLifeCycleState.TERMINATED
    assert task.state.result_state == RunResultState.FAILED
    out = w.jobs.get_run_output(task_id(run))
    assert out.error == "AssertionError: expected 3 orders, got 2"
    assert out.error_trace and "check(2)" in out.error_trace
    assert "raises, cell 2" in out.error_trace
    assert out.logs and "before the failure" in out.logs


def test_spark_is_absent_with_a_clear_message(project: WorkspaceClient) -> None:
    w = project
    upload_notebook(w, f"{ROOT}/tests/spark", "# Databricks notebook source\nspark.range(3)\n")
    run = wait(w, submit(w, f"{ROOT}/tests/spark"))
    out = w.jobs.get_run_output(task_id(run))
    assert out.error and out.error.startswith("NameError: name 'spark' is not defined")
    assert "without Spark" in out.error


def test_missing_notebook_fails_to_start_with_a_message(project: WorkspaceClient) -> None:
    w = project
    run = wait(w, submit(w, f"{ROOT}/tests/nope"))
    assert run.state and run.state.life_cycle_state == RunLifeCycleState.INTERNAL_ERROR
    assert run.state.result_state == RunResultState.FAILED
    assert run.state.state_message and run.state.state_message.startswith(
        f'Task t failed with message: Unable to access the notebook "{ROOT}/tests/nope"'
    )
    details = run.status.termination_details if run.status else None
    assert details and details.code == TerminationCodeCode.RESOURCE_NOT_FOUND
    out = w.jobs.get_run_output(task_id(run))
    assert out.error and out.error.startswith("Unable to access the notebook")


def test_missing_run_target_fails_the_run(project: WorkspaceClient) -> None:
    w = project
    upload_notebook(
        w, f"{ROOT}/tests/bad_run", "# Databricks notebook source\n# MAGIC %run ./gone\n"
    )
    run = wait(w, submit(w, f"{ROOT}/tests/bad_run"))
    out = w.jobs.get_run_output(task_id(run))
    assert out.error and out.error.startswith("Exception: Notebook not found: ./gone.")


def test_timeout_ends_the_run_timedout(project: WorkspaceClient) -> None:
    w = project
    run = wait(w, submit(w, f"{ROOT}/tests/sleeps", {"marker": ""}, timeout_seconds=1))
    assert run.state and run.state.life_cycle_state == RunLifeCycleState.TERMINATED
    assert run.state.result_state == RunResultState.TIMEDOUT
    assert run.state.user_cancelled_or_timedout is True


def test_cancel_terminates_a_running_notebook(
    project: WorkspaceClient, tmp_path: pathlib.Path
) -> None:
    w = project
    marker = tmp_path / "started"
    run_id = submit(w, f"{ROOT}/tests/sleeps", {"marker": str(marker)})
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline, "the notebook never started"
        time.sleep(0.02)
    w.jobs.cancel_run(run_id)
    run = wait(w, run_id)
    assert run.state and run.state.result_state == RunResultState.CANCELED
    assert run.state.life_cycle_state == RunLifeCycleState.TERMINATED
    details = run.status.termination_details if run.status else None
    assert details and details.code == TerminationCodeCode.USER_CANCELED
    assert run.end_time and run.start_time and run.end_time - run.start_time < 30_000


# --- the API --------------------------------------------------------------------------


def test_idempotency_token_gives_the_same_run_and_starts_no_second(
    project: WorkspaceClient, emulator: Emulator
) -> None:
    w = project
    first = submit(w, f"{ROOT}/tests/check_env", idempotency_token="promote-1.4.2-b881")
    again = submit(w, f"{ROOT}/tests/check_env", idempotency_token="promote-1.4.2-b881")
    assert again == first
    assert [r["run_id"] for r in emulator.job_runs()] == [first]


def test_get_output_of_the_parent_run_is_invalid_parameter_value(
    project: WorkspaceClient,
) -> None:
    w = project
    run = wait(w, submit(w, f"{ROOT}/tests/check_env"))
    with pytest.raises(InvalidParameterValue) as exc:
        w.jobs.get_run_output(run.run_id)  # type: ignore[arg-type]
    assert "Retrieving the output of runs with multiple tasks is not supported" in str(exc.value)


def test_unknown_run_is_resource_does_not_exist(workspace_client: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist, match=r"Run 5 does not exist\."):
        workspace_client.jobs.get_run(5)


def test_run_page_url_and_task_run_ids(project: WorkspaceClient, emulator: Emulator) -> None:
    w = project
    run = wait(w, submit(w, f"{ROOT}/tests/check_env"))
    assert run.run_page_url == f"{emulator.url}/?o=424242#job/run/{run.run_id}"
    assert task_id(run) != run.run_id
    assert run.run_name == "emulated"


def test_start_delay_keeps_the_run_pending(project: WorkspaceClient, emulator: Emulator) -> None:
    w = project
    emulator.configure_jobs(start_delay_s=30)
    run_id = submit(w, f"{ROOT}/tests/check_env")
    run = w.jobs.get_run(run_id)
    assert run.state and run.state.life_cycle_state == RunLifeCycleState.PENDING
    assert run.status and run.status.state == RunLifecycleStateV2State.PENDING
    w.jobs.cancel_run(run_id)
    assert wait(w, run_id).state.result_state == RunResultState.CANCELED  # type: ignore[union-attr]


# --- job rules ------------------------------------------------------------------------


def test_rule_scripts_a_failure_with_its_error(
    project: WorkspaceClient, emulator: Emulator
) -> None:
    w = project
    emulator.add_job_rule(
        JobRule(path_glob="*/check_env", result_state="FAILED", error="Exception: scripted")
    )
    run = wait(w, submit(w, f"{ROOT}/tests/check_env"))
    assert run.state and run.state.result_state == RunResultState.FAILED
    assert w.jobs.get_run_output(task_id(run)).error == "Exception: scripted"


def test_no_exec_runs_every_notebook_as_success_or_by_rule(
    project: WorkspaceClient, emulator: Emulator
) -> None:
    w = project
    emulator.configure_jobs(execute=False)
    emulator.add_job_rule(JobRule(path_glob="*/sleeps", result="scripted"))
    raised = wait(w, submit(w, f"{ROOT}/tests/raises"))
    assert raised.state and raised.state.result_state == RunResultState.SUCCESS
    slept = wait(w, submit(w, f"{ROOT}/tests/sleeps", {"marker": ""}))
    out = w.jobs.get_run_output(task_id(slept))
    assert out.notebook_output and out.notebook_output.result == "scripted"


def test_rule_applies_only_for_its_times(project: WorkspaceClient, emulator: Emulator) -> None:
    w = project
    emulator.add_job_rule(JobRule(path_glob="*/raises", result_state="SUCCESS", times=1))
    first = wait(w, submit(w, f"{ROOT}/tests/raises"))
    second = wait(w, submit(w, f"{ROOT}/tests/raises"))
    assert first.state and first.state.result_state == RunResultState.SUCCESS
    assert second.state and second.state.result_state == RunResultState.FAILED


def test_rule_longer_than_the_timeout_is_timedout(
    project: WorkspaceClient, emulator: Emulator
) -> None:
    w = project
    emulator.add_job_rule(JobRule(path_glob="*", duration_s=30))
    run = wait(w, submit(w, f"{ROOT}/tests/check_env", timeout_seconds=1))
    assert run.state and run.state.result_state == RunResultState.TIMEDOUT


# --- notebook details -----------------------------------------------------------------

DETAILS = """# Databricks notebook source
# MAGIC %python
# MAGIC print("magic python ran")

# COMMAND ----------

# MAGIC %pip install something

# COMMAND ----------

try:
    dbutils.notebook.exit("kept")
except Exception:
    raise AssertionError("notebook.exit was swallowed")
"""


def test_python_magic_runs_pip_is_skipped_and_exit_is_not_swallowed(
    project: WorkspaceClient,
) -> None:
    w = project
    upload_notebook(w, f"{ROOT}/tests/details", DETAILS)
    run = wait(w, submit(w, f"{ROOT}/tests/details"))
    out = w.jobs.get_run_output(task_id(run))
    assert out.notebook_output and out.notebook_output.result == "kept"
    assert out.logs and "magic python ran" in out.logs
    assert "skipped a %pip cell" in out.logs


def test_undefined_widget_fails_like_databricks(project: WorkspaceClient) -> None:
    w = project
    source = '# Databricks notebook source\ndbutils.widgets.get("missing")\n'
    upload_notebook(w, f"{ROOT}/tests/widget", source)
    out = w.jobs.get_run_output(task_id(wait(w, submit(w, f"{ROOT}/tests/widget"))))
    assert out.error == "InputWidgetNotDefined: No input widget named missing is defined"


def test_notebook_without_exit_has_no_result(project: WorkspaceClient) -> None:
    w = project
    upload_notebook(w, f"{ROOT}/tests/quiet", "# Databricks notebook source\nx = 1\n")
    run = wait(w, submit(w, f"{ROOT}/tests/quiet"))
    assert run.state and run.state.result_state == RunResultState.SUCCESS
    out = w.jobs.get_run_output(task_id(run))
    assert out.notebook_output is None or out.notebook_output.result is None


def test_other_languages_are_not_executed_and_follow_rules(
    project: WorkspaceClient, emulator: Emulator
) -> None:
    w = project
    w.workspace.upload(
        f"{ROOT}/tests/q", b"SELECT 1/0", format=ImportFormat.SOURCE, language=Language.SQL
    )
    plain = wait(w, submit(w, f"{ROOT}/tests/q"))
    assert plain.state and plain.state.result_state == RunResultState.SUCCESS
    emulator.add_job_rule(JobRule(path_glob=f"{ROOT}/tests/q", result_state="FAILED"))
    scripted = wait(w, submit(w, f"{ROOT}/tests/q"))
    assert scripted.state and scripted.state.result_state == RunResultState.FAILED
    out = w.jobs.get_run_output(task_id(scripted))
    assert out.error == "Exception: failed by an emulator job rule"


def test_notebooks_see_no_credentials(
    project: WorkspaceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = project
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-secret-never-in-a-notebook")
    source = (
        "# Databricks notebook source\nimport os\n"
        'dbutils.notebook.exit(",".join(k for k in os.environ if "DATABRICKS" in k))\n'
    )
    upload_notebook(w, f"{ROOT}/tests/env", source)
    out = w.jobs.get_run_output(task_id(wait(w, submit(w, f"{ROOT}/tests/env"))))
    assert out.notebook_output and out.notebook_output.result == ""


def test_failed_task_skips_the_tasks_that_depend_on_it(project: WorkspaceClient) -> None:
    w = project
    tasks = [
        SubmitTask(task_key="a", notebook_task=NotebookTask(notebook_path=f"{ROOT}/tests/raises")),
        SubmitTask.from_dict(
            {
                "task_key": "b",
                "depends_on": [{"task_key": "a"}],
                "notebook_task": {"notebook_path": f"{ROOT}/tests/check_env"},
            }
        ),
    ]
    run = wait(w, w.jobs.submit(tasks=tasks).run_id)
    assert run.state and run.state.result_state == RunResultState.FAILED
    assert run.state.state_message and run.state.state_message.startswith("Task a failed")
    assert run.tasks and run.tasks[1].state
    assert run.tasks[1].state.result_state == RunResultState.UPSTREAM_FAILED


def test_a_lost_submit_response_is_retried_into_the_same_run(
    project: WorkspaceClient, emulator: Emulator
) -> None:
    """The SDK resends a submit whose answer never came; the token makes it one run."""
    w = project
    emulator.add_fault(Fault(endpoint="jobs/runs/submit", drop=True, after=True))
    run_id = submit(w, f"{ROOT}/tests/check_env", idempotency_token="lost-response")
    assert [r["run_id"] for r in emulator.job_runs()] == [run_id]
    submits = [e for e in emulator.request_log() if e["endpoint"] == "jobs/runs/submit"]
    assert [e["status"] for e in submits] == [0, 200]


def test_reset_cancels_running_notebooks(
    project: WorkspaceClient, emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    w = project
    marker = tmp_path / "started"
    submit(w, f"{ROOT}/tests/sleeps", {"marker": str(marker)})
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    emulator.reset()
    assert time.monotonic() - started < 10
    assert emulator.job_runs() == []


def test_control_api_drives_jobs_over_http(project: WorkspaceClient, emulator: Emulator) -> None:
    w = project
    control = EmulatorControl(emulator.url)
    control.configure_jobs(start_delay_s=0, clusters=["c-1"], execute=False)
    control.add_job_rule(JobRule(path_glob="*", result="over http"))
    run = wait(w, submit(w, f"{ROOT}/tests/raises"))
    out = w.jobs.get_run_output(task_id(run))
    assert out.notebook_output and out.notebook_output.result == "over http"
    assert [r["run_id"] for r in control.job_runs()] == [run.run_id]
    control.clear_job_rules()
    assert control.job_settings() == {"start_delay_s": 0.0, "clusters": ["c-1"], "execute": False}
    with pytest.raises(ValueError, match="result_state must be one of"):
        JobRule(result_state="MAYBE")


# --- how a notebook becomes cells (no process) -------------------------------------------

SEP = "\n\n# COMMAND ----------\n\n"
PROGRAM_CASES = [
    ("plain cells", "a = 1" + SEP + "b = 2", [("code", "a = 1\n"), ("code", "b = 2\n")]),
    ("header dropped", "# Databricks notebook source\nx = 1", [("code", "x = 1\n")]),
    ("CRLF", "# Databricks notebook source\r\nx = 1\r\n", [("code", "x = 1\n")]),
    ("markdown skipped", "# MAGIC %md\n# MAGIC # Title" + SEP + "x = 1", [("code", "x = 1\n")]),
    ("sql skipped", "# MAGIC %sql\n# MAGIC SELECT 1", []),
    ("python magic", "# MAGIC %python\n# MAGIC y = 2", [("code", "y = 2\n")]),
    ("sh noted", "# MAGIC %sh ls", [("skip", "skipped a %sh cell of /Shared/p/nb")]),
    ("empty cells dropped", "x = 1" + SEP + "\n" + SEP, [("code", "x = 1\n")]),
    (
        "magic lines in a code cell stay comments",
        "# MAGIC %md note\nx = 1",
        [("code", "# MAGIC %md note\nx = 1\n")],
    ),
    ("run inlines", "# MAGIC %run ./lib", [("code", "LIB = True\n")]),
    ("run up a folder", "# MAGIC %run ../top", [("code", "TOP = True\n")]),
    ("run absolute", "# MAGIC %run /Shared/top", [("code", "TOP = True\n")]),
    ("run quoted", '# MAGIC %run "./lib"', [("code", "LIB = True\n")]),
    ("run missing", "# MAGIC %run ./gone", [("error", "Exception: Notebook not found: ./gone.")]),
    ("run with arguments", "# MAGIC %run ./lib $a=1", [("error", "Exception: '%run ./lib $a=1'")]),
    (
        "run a SQL notebook",
        "# MAGIC %run ./q",
        [("error", "Exception: %run ./q: /Shared/p/q is a SQL")],
    ),
    ("run itself", "# MAGIC %run ./nb", [("error", "Exception: %run ./nb: recursive %run")]),
    ("run a file", "# MAGIC %run ./data.py", [("error", "Exception: Notebook not found")]),
]


@pytest.mark.parametrize(
    ("source", "expected"),
    [case[1:] for case in PROGRAM_CASES],
    ids=[case[0] for case in PROGRAM_CASES],
)
def test_notebook_source_becomes_cells(source: str, expected: list[tuple[str, str]]) -> None:
    store = Store(None, "u@example.com")
    store.mkdirs(parse_path("/Shared/p"))
    for path, text, language in [
        ("/Shared/p/lib", "LIB = True", "PYTHON"),
        ("/Shared/top", "TOP = True", "PYTHON"),
        ("/Shared/p/q", "SELECT 1", "SQL"),
        ("/Shared/p/nb", source, "PYTHON"),
    ]:
        request = ImportRequest(parse_path(path), text.encode(), "SOURCE", language, False)
        store.import_(request)
    store.import_(ImportRequest(parse_path("/Shared/p/data.py"), b"1", "RAW", None, False))
    cells = build_program(store, "/Shared/p/nb", source)
    got = [(c["kind"], c.get("source") or c.get("note") or c.get("error", "")) for c in cells]
    assert [kind for kind, _ in got] == [kind for kind, _ in expected]
    for (kind, text), (_, want) in zip(got, expected, strict=True):
        assert text == want if kind == "code" else text.startswith(want), (kind, text)


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_notebook_does_not_outlive_a_killed_emulator(
    tmp_path: pathlib.Path, workspace_client_factory: Callable[[str], WorkspaceClient]
) -> None:
    cmd = [sys.executable, "-m", "dbx_promote", "emulator", "serve", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        w = workspace_client_factory(proc.stdout.readline().decode().split()[-1])
        w.workspace.mkdirs("/Shared/k")
        source = SLEEPS.replace(
            'pathlib.Path(marker).write_text("started")',
            "pathlib.Path(marker).write_text(str(__import__('os').getpid()))",
        )
        upload_notebook(w, "/Shared/k/sleeps", source)
        marker = tmp_path / "pid"
        submit(w, "/Shared/k/sleeps", {"marker": str(marker)})
        deadline = time.monotonic() + 20
        while not marker.exists() or not marker.read_text():
            assert time.monotonic() < deadline, "the notebook never started"
            time.sleep(0.02)
        notebook_pid = int(marker.read_text())
        assert _alive(notebook_pid)
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(notebook_pid):
            assert time.monotonic() < deadline, "the notebook outlived the emulator"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
