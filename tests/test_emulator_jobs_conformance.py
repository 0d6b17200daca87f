"""The real databricks-sdk against the emulator: every Jobs runs endpoint of
jobs-permissions-api.md §1, success and error paths, on the 2.1 and the 2.2 paths.

Notebook execution is off here (job rules and ``--no-exec`` cover the outcomes); the
executing side is in test_emulator_jobs.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    DatabricksError,
    InvalidParameterValue,
    NotFound,
    NotImplemented,
    ResourceDoesNotExist,
)
from databricks.sdk.service.jobs import (
    NotebookTask,
    RunLifeCycleState,
    RunResultState,
    RunType,
    SubmitTask,
)
from databricks.sdk.service.workspace import ImportFormat, Language

from dbx_promote.emulator import Emulator

NOTEBOOK = "/Shared/conf/nb"
CLUSTER = "0712-101010-emulator"
VERSIONS = ["2.1", "2.2"]


@pytest.fixture
def w(workspace_client: WorkspaceClient, emulator: Emulator) -> WorkspaceClient:
    emulator.configure_jobs(execute=False, clusters=[CLUSTER])
    workspace_client.workspace.mkdirs("/Shared/conf")
    workspace_client.workspace.upload(
        NOTEBOOK, b"print(1)", format=ImportFormat.SOURCE, language=Language.PYTHON
    )
    return workspace_client


def task(key: str = "t", **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "notebook_task": {"notebook_path": NOTEBOOK}, **extra}


def post(w: WorkspaceClient, version: str, endpoint: str, body: dict[str, Any]) -> Any:
    return w.api_client.do("POST", f"/api/{version}/jobs/{endpoint}", body=body)


def get(w: WorkspaceClient, version: str, endpoint: str, **query: Any) -> Any:
    return w.api_client.do("GET", f"/api/{version}/jobs/{endpoint}", query=query)


def wait_done(w: WorkspaceClient, run_id: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = w.jobs.get_run(run_id).state
        if state and state.life_cycle_state in (
            RunLifeCycleState.TERMINATED,
            RunLifeCycleState.INTERNAL_ERROR,
        ):
            return
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not end")


# --- success paths --------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_submit_get_list_cancel_succeed_on_both_api_versions(
    w: WorkspaceClient, version: str
) -> None:
    run_id = post(w, version, "runs/submit", {"run_name": "c", "tasks": [task()]})["run_id"]
    assert isinstance(run_id, int)
    wait_done(w, run_id)
    run = get(w, version, "runs/get", run_id=run_id)
    assert run["run_type"] == "SUBMIT_RUN" and run["state"]["result_state"] == "SUCCESS"
    task_run = run["tasks"][0]["run_id"]
    output = get(w, version, "runs/get-output", run_id=task_run)
    assert output["metadata"]["run_id"] == task_run
    listed = get(w, version, "runs/list")
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    assert post(w, version, "runs/cancel", {"run_id": run_id}) == {}


def test_submit_defaults_and_echoes_the_task(w: WorkspaceClient) -> None:
    waiter = w.jobs.submit(
        tasks=[
            SubmitTask(
                task_key="smoke",
                notebook_task=NotebookTask(notebook_path=NOTEBOOK),
                existing_cluster_id=CLUSTER,
                timeout_seconds=600,
            )
        ]
    )
    run = w.jobs.get_run(waiter.run_id)
    assert run.run_name == "Untitled"
    assert run.run_type == RunType.SUBMIT_RUN
    assert run.start_time and run.start_time > 0
    assert run.tasks and run.tasks[0].task_key == "smoke"
    assert run.tasks[0].existing_cluster_id == CLUSTER
    assert run.tasks[0].timeout_seconds == 600
    assert run.tasks[0].notebook_task and run.tasks[0].notebook_task.source
    assert run.tasks[0].notebook_task.source.value == "WORKSPACE"


def test_get_of_a_task_run_id_gives_that_task(w: WorkspaceClient) -> None:
    run_id = w.jobs.submit(tasks=[SubmitTask.from_dict(task())]).run_id
    wait_done(w, run_id)
    task_run_id = w.jobs.get_run(run_id).tasks[0].run_id  # type: ignore[index]
    assert task_run_id is not None
    as_run = w.jobs.get_run(task_run_id)
    assert as_run.run_id == task_run_id
    assert as_run.state and as_run.state.result_state == RunResultState.SUCCESS


def test_a_run_with_two_tasks_has_two_task_runs(w: WorkspaceClient) -> None:
    body = {"tasks": [task("a"), task("b", depends_on=[{"task_key": "a"}])]}
    run_id = post(w, "2.2", "runs/submit", body)["run_id"]
    wait_done(w, run_id)
    run = w.jobs.get_run(run_id)
    assert [t.task_key for t in run.tasks or []] == ["a", "b"]
    assert len({run_id, *(t.run_id for t in run.tasks or [])}) == 3


def test_list_runs_pages_filters_and_expands(w: WorkspaceClient, emulator: Emulator) -> None:
    ids = [w.jobs.submit(tasks=[SubmitTask.from_dict(task())]).run_id for _ in range(3)]
    for run_id in ids:
        wait_done(w, run_id)
    assert [r.run_id for r in w.jobs.list_runs(limit=2)] == ids[::-1]
    first = get(w, "2.2", "runs/list", limit=2)
    assert first["has_more"] is True and len(first["runs"]) == 2
    assert "tasks" not in first["runs"][0]
    rest = get(w, "2.2", "runs/list", limit=2, page_token=first["next_page_token"])
    assert [r["run_id"] for r in rest["runs"]] == [ids[0]] and rest["has_more"] is False
    assert list(w.jobs.list_runs(active_only=True)) == []
    assert len(list(w.jobs.list_runs(completed_only=True, expand_tasks=True))) == 3
    assert all(r.tasks for r in w.jobs.list_runs(expand_tasks=True))
    assert list(w.jobs.list_runs(run_type=RunType.JOB_RUN)) == []
    emulator.configure_jobs(start_delay_s=30)
    pending = w.jobs.submit(tasks=[SubmitTask.from_dict(task())]).run_id
    assert [r.run_id for r in w.jobs.list_runs(active_only=True)] == [pending]


def test_cancel_of_a_finished_run_changes_nothing(w: WorkspaceClient) -> None:
    run_id = w.jobs.submit(tasks=[SubmitTask.from_dict(task())]).run_id
    wait_done(w, run_id)
    w.jobs.cancel_run(run_id)
    state = w.jobs.get_run(run_id).state
    assert state and state.result_state == RunResultState.SUCCESS


def test_serverless_and_new_cluster_tasks_run(w: WorkspaceClient) -> None:
    body = {"tasks": [task("a"), task("b", new_cluster={"spark_version": "15.4.x-scala2.12"})]}
    run_id = post(w, "2.2", "runs/submit", body)["run_id"]
    wait_done(w, run_id)
    run = w.jobs.get_run(run_id)
    assert run.state and run.state.result_state == RunResultState.SUCCESS
    assert run.tasks and run.tasks[1].cluster_instance and run.tasks[1].cluster_instance.cluster_id


# --- error paths ----------------------------------------------------------------------

# (id, endpoint, request body, SDK exception, error_code, start of the message)
SUBMIT_ERRORS = [
    ("no tasks", {}, InvalidParameterValue, "INVALID_PARAMETER_VALUE", "A one-time run needs"),
    ("empty tasks", {"tasks": []}, InvalidParameterValue, "INVALID_PARAMETER_VALUE", "A one-"),
    (
        "no task_key",
        {"tasks": [{"notebook_task": {"notebook_path": NOTEBOOK}}]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "tasks[0].task_key",
    ),
    (
        "duplicate task_key",
        {"tasks": [task(), task()]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Task key t is used by more than one task",
    ),
    (
        "no notebook_task",
        {"tasks": [{"task_key": "t"}]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Task t: notebook_task is required",
    ),
    (
        "relative notebook_path",
        {"tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "tests/x"}}]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Invalid notebook_path: tests/x. Only absolute paths are currently supported.",
    ),
    (
        "unknown cluster",
        {"tasks": [task(existing_cluster_id="0000-nope")]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Cluster 0000-nope does not exist",
    ),
    (
        "both cluster kinds",
        {"tasks": [task(existing_cluster_id=CLUSTER, new_cluster={})]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Task t: set only one of",
    ),
    (
        "job_cluster_key",
        {"tasks": [task(job_cluster_key="c")]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Task t: job_cluster_key does not exist for one-time runs",
    ),
    (
        "negative timeout",
        {"timeout_seconds": -1, "tasks": [task()]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "timeout_seconds must be a non-negative integer",
    ),
    (
        "long idempotency token",
        {"idempotency_token": "x" * 65, "tasks": [task()]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "idempotency_token must be a string of at most 64 characters",
    ),
    (
        "non-string parameter",
        {
            "tasks": [
                {
                    "task_key": "t",
                    "notebook_task": {"notebook_path": NOTEBOOK, "base_parameters": {"n": 1}},
                }
            ]
        },
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Task t: base_parameters must map strings to strings",
    ),
    (
        "unknown dependency",
        {"tasks": [task("b", depends_on=[{"task_key": "a"}])]},
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Task b depends on a",
    ),
    (
        "GIT source without git_source",
        {
            "tasks": [
                {"task_key": "t", "notebook_task": {"notebook_path": NOTEBOOK, "source": "GIT"}}
            ]
        },
        InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        "Task t: source GIT needs git_source",
    ),
    (
        "git_source",
        {"git_source": {"git_url": "https://x"}, "tasks": [task()]},
        NotImplemented,
        "NOT_IMPLEMENTED",
        "git_source is not supported by the emulator",
    ),
    (
        "another task type",
        {"tasks": [{"task_key": "t", "spark_python_task": {"python_file": "/x.py"}}]},
        NotImplemented,
        "NOT_IMPLEMENTED",
        "Task t: spark_python_task is not supported",
    ),
]


@pytest.mark.parametrize(
    ("body", "exception", "code", "message"),
    [row[1:] for row in SUBMIT_ERRORS],
    ids=[row[0] for row in SUBMIT_ERRORS],
)
def test_bad_submit_requests_are_refused_and_start_no_run(
    w: WorkspaceClient,
    emulator: Emulator,
    body: dict[str, Any],
    exception: type[DatabricksError],
    code: str,
    message: str,
) -> None:
    with pytest.raises(exception) as exc:
        post(w, "2.2", "runs/submit", body)
    assert exc.value.error_code == code
    assert str(exc.value).startswith(message)
    assert emulator.job_runs() == []


# (id, method, endpoint, query or body, SDK exception, error_code, message)
READ_ERRORS = [
    (
        "get unknown",
        "GET",
        "runs/get",
        {"run_id": 5},
        ResourceDoesNotExist,
        "Run 5 does not exist.",
    ),
    (
        "get-output unknown",
        "GET",
        "runs/get-output",
        {"run_id": 5},
        ResourceDoesNotExist,
        "Run 5 does not exist.",
    ),
    (
        "cancel unknown",
        "POST",
        "runs/cancel",
        {"run_id": 5},
        InvalidParameterValue,
        "Run 5 does not exist.",
    ),
    (
        "get without run_id",
        "GET",
        "runs/get",
        {},
        InvalidParameterValue,
        "Missing required field: run_id",
    ),
    (
        "get-output without run_id",
        "GET",
        "runs/get-output",
        {},
        InvalidParameterValue,
        "Missing required field: run_id",
    ),
    (
        "cancel without run_id",
        "POST",
        "runs/cancel",
        {},
        InvalidParameterValue,
        "Missing required field: run_id",
    ),
    (
        "get with a bad run_id",
        "GET",
        "runs/get",
        {"run_id": "x"},
        InvalidParameterValue,
        "Invalid value for 'run_id': 'x'; expected an integer.",
    ),
    (
        "list active and completed",
        "GET",
        "runs/list",
        {"active_only": "true", "completed_only": "true"},
        InvalidParameterValue,
        "active_only and completed_only cannot both be true",
    ),
    (
        "list limit over 25",
        "GET",
        "runs/list",
        {"limit": 26},
        InvalidParameterValue,
        "limit must be between 1 and 25, got 26",
    ),
    (
        "list bad page_token",
        "GET",
        "runs/list",
        {"page_token": "zz"},
        InvalidParameterValue,
        "Invalid value for 'page_token': 'zz'; expected an integer.",
    ),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("method", "endpoint", "args", "exception", "message"),
    [row[1:] for row in READ_ERRORS],
    ids=[row[0] for row in READ_ERRORS],
)
def test_bad_run_requests_are_invalid_parameter_value(
    w: WorkspaceClient,
    version: str,
    method: str,
    endpoint: str,
    args: dict[str, Any],
    exception: type[DatabricksError],
    message: str,
) -> None:
    with pytest.raises(exception) as exc:
        if method == "GET":
            get(w, version, endpoint, **args)
        else:
            post(w, version, endpoint, args)
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"
    assert str(exc.value) == message


def test_get_output_of_a_parent_run_is_invalid_parameter_value(w: WorkspaceClient) -> None:
    run_id = w.jobs.submit(tasks=[SubmitTask.from_dict(task())]).run_id
    with pytest.raises(InvalidParameterValue) as exc:
        w.jobs.get_run_output(run_id)
    assert str(exc.value) == (
        "Retrieving the output of runs with multiple tasks is not supported. "
        "Please retrieve the output of each individual task run instead."
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/2.2/jobs/runs/submit"),
        ("POST", "/api/2.1/jobs/runs/get"),
        ("POST", "/api/2.2/jobs/runs/list"),
        ("GET", "/api/2.2/jobs/runs/cancel"),
    ],
)
def test_wrong_method_on_a_jobs_endpoint_is_405(w: WorkspaceClient, method: str, path: str) -> None:
    with pytest.raises(DatabricksError) as exc:
        w.api_client.do(method, path, body={} if method == "POST" else None)
    assert exc.value.error_code == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    "path",
    ["/api/2.0/jobs/runs/submit", "/api/2.2/jobs/runs/delete", "/api/2.2/jobs/create"],
)
def test_other_jobs_endpoints_are_not_found(w: WorkspaceClient, path: str) -> None:
    with pytest.raises(NotFound) as exc:
        w.api_client.do("POST", path, body={})
    assert exc.value.error_code == "ENDPOINT_NOT_FOUND"


def test_malformed_submit_body_is_malformed_request(w: WorkspaceClient) -> None:
    with pytest.raises(DatabricksError) as exc:
        w.api_client.do("POST", "/api/2.2/jobs/runs/submit", data="{not json")
    assert exc.value.error_code == "MALFORMED_REQUEST"
