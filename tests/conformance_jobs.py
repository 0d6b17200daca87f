"""Conformance rows for one-time job runs (jobs-permissions-api.md §1) and `clusters/get`.

Live, the rows that need a run share **one** tiny notebook run (``Scratch.shared``), on the
cluster of DBX_PROMOTE_LIVE_CLUSTER_ID or on serverless; no cluster is ever created.
"""

from __future__ import annotations

import json
import time
from typing import Any

from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import Language

from conformance_suite import Behaviour, Scratch, answer

NOTEBOOK = (
    "# Databricks notebook source\n"
    "import json\n"
    'dbutils.notebook.exit(json.dumps({"env": dbutils.widgets.get("env")}))\n'
)
RUN_TIMEOUT_S = 1200


def _the_run(s: Scratch) -> dict[str, Any]:
    """Submit the one tiny run (once per side), wait for it, and keep what rows look at."""
    if "run" in s.shared:
        return s.shared["run"]
    folder = s.root.rsplit("/", 1)[0] + "/the-run"
    s.w.workspace.mkdirs(folder)
    s.w.workspace.upload(f"{folder}/smoke", NOTEBOOK.encode(), language=Language.PYTHON)
    task = jobs.SubmitTask(
        task_key="smoke",
        notebook_task=jobs.NotebookTask(
            notebook_path=f"{folder}/smoke",
            base_parameters={"env": "conformance"},
            source=jobs.Source.WORKSPACE,
        ),
        existing_cluster_id=s.compute.get("existing_cluster_id"),
    )
    run_id = s.w.jobs.submit(run_name="dbx-promote conformance", tasks=[task]).run_id
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        run = s.w.jobs.get_run(run_id)
        if run.state and run.state.life_cycle_state in (
            jobs.RunLifeCycleState.TERMINATED,
            jobs.RunLifeCycleState.INTERNAL_ERROR,
            jobs.RunLifeCycleState.SKIPPED,
        ):
            break
        if time.monotonic() > deadline:
            s.w.jobs.cancel_run(run_id)
            raise TimeoutError(f"run {run_id} did not finish in {RUN_TIMEOUT_S} s")
        time.sleep(2)
    s.shared["run"] = {"run": run, "folder": folder}
    return s.shared["run"]


def _run_states(s: Scratch) -> dict[str, Any]:
    run: jobs.Run = _the_run(s)["run"]
    assert run.state and run.status
    details = run.status.termination_details
    return {
        "run_type": run.run_type,
        "life_cycle_state": run.state.life_cycle_state,
        "result_state": run.state.result_state,
        "status": run.status.state,
        "termination": [details.code, details.type] if details else None,
        "task_run_id_differs": bool(run.tasks) and run.tasks[0].run_id != run.run_id,  # type: ignore[index]
    }


def _task_output(s: Scratch) -> dict[str, Any]:
    run: jobs.Run = _the_run(s)["run"]
    assert run.tasks and run.tasks[0].run_id is not None
    out = s.w.jobs.get_run_output(run.tasks[0].run_id)
    result = out.notebook_output.result if out.notebook_output else None
    return {"result": json.loads(result) if result else None, "error": out.error}


def _parent_output(s: Scratch) -> Any:
    run: jobs.Run = _the_run(s)["run"]
    return answer(lambda: s.w.jobs.get_run_output(run.run_id))  # type: ignore[arg-type]


ROWS = [
    Behaviour(
        "jobs/unknown-run",
        "jobs",
        "runs/get of a run id that does not exist",
        {
            "raises": "ResourceDoesNotExist",
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": "Run 5 does not exist.",
        },
        lambda s: s.w.jobs.get_run(5),
    ),
    Behaviour(
        "clusters/unknown-cluster",
        "jobs",
        "clusters/get of a cluster id that does not exist",
        {
            "raises": "ResourceDoesNotExist",
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": "Cluster 0000-000000-conformance does not exist",
        },
        lambda s: s.w.clusters.get("0000-000000-conformance"),
    ),
    Behaviour(
        "jobs/run-succeeds",
        "jobs",
        "runs/submit one notebook task, runs/get until it is over",
        {
            "run_type": "SUBMIT_RUN",
            "life_cycle_state": "TERMINATED",
            "result_state": "SUCCESS",
            "status": "TERMINATED",
            "termination": ["SUCCESS", "SUCCESS"],
            "task_run_id_differs": True,
        },
        _run_states,
        needs="compute",
    ),
    Behaviour(
        "jobs/task-output",
        "jobs",
        "runs/get-output of the task run",
        {"result": {"env": "conformance"}, "error": None},
        _task_output,
        choice="running notebooks | Python source notebooks are executed in a subprocess "
        "with `dbutils.widgets` and `dbutils.notebook.exit`",
        needs="compute",
    ),
    Behaviour(
        "jobs/parent-output",
        "jobs",
        "runs/get-output of the parent run",
        {
            "raises": "InvalidParameterValue",
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": "Retrieving the output of runs with multiple tasks is not supported. "
            "Please retrieve the output of each individual task run instead.",
        },
        _parent_output,
        needs="compute",
    ),
]
