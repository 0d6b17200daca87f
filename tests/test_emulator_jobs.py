"""The emulator's Jobs API one-time runs, driven by the real databricks-sdk over HTTP.

Notebooks are executed for real in a subprocess; job rules script outcomes without one.
"""

from __future__ import annotations

import json
import pathlib
import time

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

from dbx_promote.emulator import Emulator, JobRule

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
