"""The Jobs API's one-time runs: submit, get, get-output, cancel, list and their life cycle.

A submitted run is a parent run with one task run per task, each with its own run id.
A worker thread per run keeps it PENDING for the start delay, then RUNNING while its
tasks run one after another, then TERMINATED (or INTERNAL_ERROR when a task failed, as
the service reports it). A task follows the first matching `JobRule`; otherwise a
Python notebook is executed for real (`notebook_exec`) and anything else ends SUCCESS
without running. Runs live in memory only. One lock guards every run; nothing sleeps or
waits on a process while holding it.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dbx_promote.emulator.control import JobRule
from dbx_promote.emulator.notebook_exec import NotebookProcess, Outcome
from dbx_promote.emulator.store import ApiError, Store, invalid, parse_path

log = logging.getLogger("dbx_promote.emulator")

ENDPOINTS = {
    "runs/submit": "POST",
    "runs/get": "GET",
    "runs/get-output": "GET",
    "runs/cancel": "POST",
    "runs/list": "GET",
}
JOBS_ROUTE = re.compile(r"/api/2\.[12]/jobs/(.+)")
TASK_FAILURE_MESSAGE = "Workload failed, see run output for details"
MULTI_TASK_OUTPUT = (
    "Retrieving the output of runs with multiple tasks is not supported. "
    "Please retrieve the output of each individual task run instead."
)
MAX_TOKEN_CHARS = 64
MAX_PARAMETER_BYTES = 1_000_000
MAX_LIST_LIMIT = 25
TASK_KEY = re.compile(r"[\w\-.]{1,100}")
OTHER_TASK_TYPES = (
    "spark_python_task",
    "spark_jar_task",
    "spark_submit_task",
    "python_wheel_task",
    "sql_task",
    "dbt_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
)
# result state -> (termination code, termination type) for a task that got there itself.
TERMINATION = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("CANCELED", "CLIENT_ERROR"),
    "CANCELED": ("USER_CANCELED", "SUCCESS"),
}


def jobs_endpoint(route: str) -> str | None:
    """``runs/submit`` for ``/api/2.1/jobs/runs/submit`` (or 2.2); None for other routes."""
    match = JOBS_ROUTE.fullmatch(route)
    return match.group(1) if match else None


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _TaskSpec:
    key: str
    path: str  # canonical
    echo: dict[str, Any]  # what runs/get shows of the request's task
    params: dict[str, str]
    timeout: int
    cluster_id: str | None
    depends_on: list[str]


@dataclass
class _Task:
    run_id: int
    spec: _TaskSpec
    life: str = "PENDING"
    result_state: str | None = None
    message: str = ""
    code: str | None = None
    type: str | None = None
    start_ms: int = 0
    end_ms: int = 0
    outcome: Outcome | None = None
    process: NotebookProcess | None = None


@dataclass
class _Run:
    run_id: int
    name: str
    token: str | None
    timeout: int
    submitted_ms: int
    tasks: list[_Task]
    life: str = "PENDING"
    result_state: str | None = None
    message: str = ""
    code: str | None = None
    type: str | None = None
    end_ms: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class _ArmedRule:
    def __init__(self, rule: JobRule) -> None:
        self.rule = rule
        self.used = 0


class Jobs:
    """The one-time runs of one emulated workspace."""

    def __init__(
        self,
        store: Store,
        user: str,
        base_url: Callable[[], str],
        workspace_id: str,
        clusters: Iterable[str] = (),
        start_delay_s: float = 0.0,
        execute: bool = True,
    ) -> None:
        self.store = store
        self.user = user
        self.base_url = base_url
        self.workspace_id = workspace_id
        self._lock = threading.Lock()
        self._defaults = (frozenset(clusters), float(start_delay_s), bool(execute))
        self.clusters, self.start_delay_s, self.execute = self._defaults
        self._runs: dict[int, _Run] = {}
        self._task_parent: dict[int, int] = {}
        self._tokens: dict[str, int] = {}
        self._rules: list[_ArmedRule] = []
        self._next_id = _now_ms()

    # --- HTTP entry point -------------------------------------------------------------

    def handle(
        self, method: str, endpoint: str, query: dict[str, str], body: dict[str, Any]
    ) -> dict[str, Any]:
        """Answer one Jobs API request (``endpoint`` after ``/jobs/``); raise `ApiError`."""
        allowed = ENDPOINTS.get(endpoint)
        if allowed is None:
            raise ApiError(
                404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /jobs/{endpoint}'"
            )
        if method != allowed:
            raise ApiError(
                405, "METHOD_NOT_ALLOWED", f"Method {method} is not allowed on /jobs/{endpoint}"
            )
        if endpoint == "runs/submit":
            return self.submit(body)
        if endpoint == "runs/get":
            return self.get(_run_id(query.get("run_id")))
        if endpoint == "runs/get-output":
            return self.get_output(_run_id(query.get("run_id")))
        if endpoint == "runs/cancel":
            self.cancel(_run_id(body.get("run_id")))
            return {}
        return self.list_runs(query)

    # --- submit ---------------------------------------------------------------------------

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a one-time run; the same ``idempotency_token`` gives back the same run."""
        name, token, timeout, specs = _parse_submit(body)
        with self._lock:
            if token is not None and token in self._tokens:
                return {"run_id": self._tokens[token]}
            for spec in specs:
                if spec.cluster_id is not None and spec.cluster_id not in self.clusters:
                    raise invalid(f"Cluster {spec.cluster_id} does not exist")
            run = _Run(self._new_id(), name, token, timeout, _now_ms(), [])
            run.tasks = [_Task(self._new_id(), spec) for spec in specs]
            self._runs[run.run_id] = run
            for task in run.tasks:
                self._task_parent[task.run_id] = run.run_id
            if token is not None:
                self._tokens[token] = run.run_id
            run.thread = threading.Thread(
                target=self._work, args=(run,), name=f"emulator-run-{run.run_id}", daemon=True
            )
        run.thread.start()
        return {"run_id": run.run_id}

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- reads ----------------------------------------------------------------------------

    def _find(self, run_id: int) -> tuple[_Run, _Task | None]:
        run = self._runs.get(run_id)
        if run is not None:
            return run, None
        parent = self._task_parent.get(run_id)
        if parent is not None and parent in self._runs:
            run = self._runs[parent]
            return run, next(t for t in run.tasks if t.run_id == run_id)
        raise invalid(f"Run {run_id} does not exist.")

    def get(self, run_id: int) -> dict[str, Any]:
        """The run (a task run id gives that task as a run); 400 if unknown."""
        with self._lock:
            run, task = self._find(run_id)
            if task is not None:
                return self._task_as_run(run, task)
            return self._run_json(run, with_tasks=True)

    def get_output(self, run_id: int) -> dict[str, Any]:
        """A task run's output; 400 for a parent run id or an unknown one."""
        with self._lock:
            run, task = self._find(run_id)
            if task is None:
                raise invalid(MULTI_TASK_OUTPUT)
            out: dict[str, Any] = {"metadata": self._task_as_run(run, task)}
            outcome = task.outcome
            if outcome is None:
                return out
            out["notebook_output"] = (
                {} if outcome.result is None else _notebook_output(outcome.result)
            )
            if outcome.error is not None:
                out["error"] = outcome.error
                out["error_trace"] = outcome.error_trace or outcome.error
            if outcome.logs:
                out["logs"] = outcome.logs
                out["logs_truncated"] = outcome.logs_truncated
            return out

    def list_runs(self, query: dict[str, str]) -> dict[str, Any]:
        """Runs, newest first, filtered and paged like ``runs/list``."""
        active = _query_bool(query, "active_only")
        completed = _query_bool(query, "completed_only")
        if active and completed:
            raise invalid("active_only and completed_only cannot both be true")
        limit = _query_int(query, "limit", 20) or MAX_LIST_LIMIT
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise invalid(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        offset = _query_int(query, "page_token", _query_int(query, "offset", 0))
        since = _query_int(query, "start_time_from", 0)
        until = _query_int(query, "start_time_to", 0)
        run_type = query.get("run_type") or "SUBMIT_RUN"
        expand = _query_bool(query, "expand_tasks")
        with self._lock:
            runs = [
                r
                for r in sorted(self._runs.values(), key=lambda r: -r.run_id)
                if "job_id" not in query
                and run_type == "SUBMIT_RUN"
                and not (active and _done(r))
                and not (completed and not _done(r))
                and r.submitted_ms >= since
                and (not until or r.submitted_ms <= until)
            ]
            page = [self._run_json(r, with_tasks=expand) for r in runs[offset : offset + limit]]
        out: dict[str, Any] = {"has_more": offset + limit < len(runs)}
        if page:
            out["runs"] = page
        if out["has_more"]:
            out["next_page_token"] = str(offset + limit)
        if offset > 0:
            out["prev_page_token"] = str(max(0, offset - limit))
        return out

    # --- cancel ---------------------------------------------------------------------------

    def cancel(self, run_id: int) -> None:
        """Cancel a run (a task run id cancels its whole run); a finished run is unchanged."""
        with self._lock:
            run, _ = self._find(run_id)
            if _done(run):
                return
            run.cancel.set()
            processes = [t.process for t in run.tasks if t.process is not None]
        for process in processes:
            process.cancel()

    # --- life cycle ---------------------------------------------------------------------

    def _work(self, run: _Run) -> None:
        try:
            if run.cancel.wait(self.start_delay_s):
                return
            with self._lock:
                run.life = "RUNNING"
            deadline = time.monotonic() + run.timeout if run.timeout else None
            failed: set[str] = set()
            for task in run.tasks:
                if run.cancel.is_set():
                    break
                if failed.intersection(task.spec.depends_on):
                    self._end_task(task, Outcome("UPSTREAM_FAILED"), "SKIPPED")
                    failed.add(task.spec.key)
                    continue
                self._run_task(run, task, deadline)
                if task.result_state != "SUCCESS":
                    failed.add(task.spec.key)
        finally:
            self._finish(run)

    def _run_task(self, run: _Run, task: _Task, deadline: float | None) -> None:
        try:
            self._run_task_unguarded(run, task, deadline)
        except Exception as exc:  # a run never stays RUNNING because the emulator broke
            log.exception(
                "emulator: run %s task %s failed inside the emulator", run.run_id, task.run_id
            )
            error = f"Emulator internal error: {type(exc).__name__}: {exc}"
            self._end_task(task, Outcome("FAILED", error=error, error_trace=error), "TERMINATED")

    def _run_task_unguarded(self, run: _Run, task: _Task, deadline: float | None) -> None:
        with self._lock:
            task.life, task.start_ms = "RUNNING", _now_ms()
        spec = task.spec
        try:
            info = self.store.get_status(parse_path(spec.path))
        except ApiError:
            info = {}
        if info.get("object_type") != "NOTEBOOK":
            self._cannot_start(task)
            return
        timeout = _effective_timeout(spec.timeout, deadline)
        rule = self._rule_for(spec.path)
        if rule is not None:
            outcome = _scripted(rule, timeout, run.cancel)
        elif self.execute and info.get("language") == "PYTHON":
            source = self.store.read(spec.path).decode("utf-8", errors="replace")
            process = NotebookProcess(self.store, spec.path, source, spec.params)
            with self._lock:
                task.process = process
                if run.cancel.is_set():
                    process.cancel()
            outcome = process.run(timeout)
        else:
            why = "--no-exec" if not self.execute else f"a {info.get('language')} notebook"
            outcome = Outcome("SUCCESS", logs=f"[emulator] not executed ({why}): SUCCESS\n")
        self._end_task(task, outcome, "TERMINATED")

    def _cannot_start(self, task: _Task) -> None:
        message = (
            f'Unable to access the notebook "{task.spec.echo["notebook_task"]["notebook_path"]}" '
            f"in the workspace. Either it does not exist, or the identity used to run this "
            f"job, {self.user}, lacks the required permissions."
        )
        with self._lock:
            task.outcome = Outcome("FAILED", error=message, error_trace=message)
            task.life, task.result_state, task.message = "INTERNAL_ERROR", "FAILED", message
            task.code, task.type = "RESOURCE_NOT_FOUND", "CLIENT_ERROR"
            task.end_ms = _now_ms()

    def _end_task(self, task: _Task, outcome: Outcome, life: str) -> None:
        with self._lock:
            task.outcome = outcome
            task.life, task.result_state = life, outcome.state
            task.code, task.type = TERMINATION.get(outcome.state, ("SKIPPED", "SUCCESS"))
            task.message = {
                "SUCCESS": "",
                "FAILED": TASK_FAILURE_MESSAGE,
                "TIMEDOUT": "Timed out",
                "CANCELED": "Run cancelled.",
            }.get(outcome.state, "Upstream task failed.")
            task.process = None
            if not task.start_ms:
                task.start_ms = _now_ms()
            task.end_ms = _now_ms()

    def _finish(self, run: _Run) -> None:
        """Settle the tasks that never ran and roll the tasks up into the run's state."""
        with self._lock:
            for task in run.tasks:
                if task.result_state is None:
                    task.outcome = Outcome("CANCELED")
                    task.life, task.result_state = "TERMINATED", "CANCELED"
                    task.code, task.type = TERMINATION["CANCELED"]
                    task.message = "Run cancelled."
                    task.end_ms = _now_ms()
            states = {t.result_state for t in run.tasks}
            failed = next((t for t in run.tasks if t.result_state == "FAILED"), None)
            if run.cancel.is_set() or "CANCELED" in states:
                run.life, run.result_state, run.message = "TERMINATED", "CANCELED", "Run cancelled."
                run.code, run.type = TERMINATION["CANCELED"]
            elif failed is not None:
                message = failed.message.rstrip(".")
                run.life, run.result_state = "INTERNAL_ERROR", "FAILED"
                run.message = f"Task {failed.spec.key} failed with message: {message}."
                run.code, run.type = failed.code, failed.type
            elif "TIMEDOUT" in states:
                run.life, run.result_state, run.message = "TERMINATED", "TIMEDOUT", "Timed out"
                run.code, run.type = TERMINATION["TIMEDOUT"]
            else:
                run.life, run.result_state, run.message = "TERMINATED", "SUCCESS", ""
                run.code, run.type = TERMINATION["SUCCESS"]
            run.end_ms = _now_ms()

    def _rule_for(self, path: str) -> JobRule | None:
        with self._lock:
            for armed in self._rules:
                rule = armed.rule
                if rule.matches(path) and (rule.times == -1 or armed.used < rule.times):
                    armed.used += 1
                    return rule
        return None

    # --- JSON shapes ----------------------------------------------------------------------

    def _url(self, run_id: int) -> str:
        return f"{self.base_url()}/?o={self.workspace_id}#job/run/{run_id}"

    def _run_json(self, run: _Run, with_tasks: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": run.run_id,
            "run_name": run.name,
            "run_type": "SUBMIT_RUN",
            "trigger": "ONE_TIME",
            "run_page_url": self._url(run.run_id),
            "creator_user_name": self.user,
            "number_in_job": run.run_id,
            "original_attempt_run_id": run.run_id,
            "attempt_number": 0,
            "start_time": run.submitted_ms,
            "end_time": run.end_ms,
            # Multitask runs report 0 here and their length in run_duration.
            "setup_duration": 0,
            "execution_duration": 0,
            "cleanup_duration": 0,
            "run_duration": (run.end_ms - run.submitted_ms) if run.end_ms else 0,
            "state": _state(run.life, run.result_state, run.message),
            "status": _status(run.life, run.code, run.type, run.message),
        }
        if run.timeout:
            out["timeout_seconds"] = run.timeout
        if with_tasks:
            out["tasks"] = [self._task_json(run, t) for t in run.tasks]
        return out

    def _task_json(self, run: _Run, task: _Task) -> dict[str, Any]:
        setup = (task.start_ms - run.submitted_ms) if task.start_ms else 0
        execution = (task.end_ms - task.start_ms) if task.end_ms else 0
        out: dict[str, Any] = {
            "run_id": task.run_id,
            "task_key": task.spec.key,
            **task.spec.echo,
            "run_page_url": self._url(task.run_id),
            "attempt_number": 0,
            "start_time": task.start_ms or run.submitted_ms,
            "end_time": task.end_ms,
            "setup_duration": setup,
            "execution_duration": execution,
            "cleanup_duration": 0,
            "run_duration": setup + execution if task.end_ms else 0,
            "state": _state(task.life, task.result_state, task.message),
            "status": _status(task.life, task.code, task.type, task.message),
        }
        if task.start_ms and "new_cluster" in task.spec.echo:
            out["cluster_instance"] = {"cluster_id": f"emulator-job-cluster-{task.run_id}"}
        elif task.spec.cluster_id is not None:
            out["cluster_instance"] = {"cluster_id": task.spec.cluster_id}
        return out

    def _task_as_run(self, run: _Run, task: _Task) -> dict[str, Any]:
        return {
            **self._task_json(run, task),
            "run_name": run.name,
            "run_type": "SUBMIT_RUN",
            "creator_user_name": self.user,
        }

    # --- controls -------------------------------------------------------------------------

    def add_rule(self, rule: JobRule) -> None:
        """Arm a `JobRule`; its count of runs starts now."""
        with self._lock:
            self._rules.append(_ArmedRule(rule))

    def clear_rules(self) -> None:
        """Disarm every rule."""
        with self._lock:
            self._rules.clear()

    def configure(
        self,
        start_delay_s: float | None = None,
        clusters: Iterable[str] | None = None,
        execute: bool | None = None,
    ) -> None:
        """Change the start delay, the existing cluster ids or notebook execution."""
        if start_delay_s is not None and start_delay_s < 0:
            raise ValueError("start_delay_s must be >= 0")
        with self._lock:
            if start_delay_s is not None:
                self.start_delay_s = float(start_delay_s)
            if clusters is not None:
                self.clusters = frozenset(clusters)
            if execute is not None:
                self.execute = bool(execute)

    def settings(self) -> dict[str, Any]:
        """The current start delay, cluster ids and whether notebooks are executed."""
        with self._lock:
            return {
                "start_delay_s": self.start_delay_s,
                "clusters": sorted(self.clusters),
                "execute": self.execute,
            }

    def runs(self) -> list[dict[str, Any]]:
        """Every run with its tasks, oldest first."""
        with self._lock:
            return [self._run_json(r, with_tasks=True) for r in self._runs.values()]

    def reset(self, settings: bool = False) -> None:
        """Cancel and forget every run, token and rule; with ``settings`` restore the defaults."""
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
            self._task_parent.clear()
            self._tokens.clear()
            self._rules.clear()
            if settings:
                self.clusters, self.start_delay_s, self.execute = self._defaults
        for run in runs:
            run.cancel.set()
            for task in run.tasks:
                if task.process is not None:
                    task.process.cancel()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=10)


# --- request parsing ------------------------------------------------------------------------


def _run_id(raw: Any) -> int:
    if raw is None or raw == "":
        raise invalid("Missing required field: run_id")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value for 'run_id': {raw!r}; expected an integer.") from None
    if isinstance(raw, bool) or value <= 0:
        raise invalid(f"Invalid value for 'run_id': {raw!r}; expected a positive integer.")
    return value


def _query_bool(query: dict[str, str], name: str) -> bool:
    raw = query.get(name, "").lower()
    if raw not in ("", "true", "false"):
        raise invalid(f"Invalid value for '{name}': {query[name]!r}; expected true or false.")
    return raw == "true"


def _query_int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"Invalid value for '{name}': {raw!r}; expected an integer.") from None
    if value < 0:
        raise invalid(f"Invalid value for '{name}': {raw!r}; expected a non-negative integer.")
    return value


def _int_field(data: dict[str, Any], name: str, where: str) -> int:
    value = data.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"{where}{name} must be a non-negative integer, got {value!r}.")
    return value


def _parse_submit(body: dict[str, Any]) -> tuple[str, str | None, int, list[_TaskSpec]]:
    name = body.get("run_name") or "Untitled"
    if not isinstance(name, str):
        raise invalid("run_name must be a string.")
    token = body.get("idempotency_token")
    if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS):
        raise invalid(
            f"idempotency_token must be a string of at most {MAX_TOKEN_CHARS} characters."
        )
    if "git_source" in body:
        raise ApiError(501, "NOT_IMPLEMENTED", "git_source is not supported by the emulator.")
    timeout = _int_field(body, "timeout_seconds", "")
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise invalid("A one-time run needs at least one task in tasks.")
    specs = [_parse_task(t, i) for i, t in enumerate(tasks)]
    keys = [s.key for s in specs]
    for spec in specs:
        if keys.count(spec.key) > 1:
            raise invalid(f"Task key {spec.key} is used by more than one task.")
        for dep in spec.depends_on:
            if dep not in keys[: keys.index(spec.key)]:
                raise invalid(
                    f"Task {spec.key} depends on {dep}, which is not a task listed before it."
                )
    return name, token or None, timeout, specs


def _parse_task(raw: Any, index: int) -> _TaskSpec:
    if not isinstance(raw, dict):
        raise invalid(f"tasks[{index}] must be an object.")
    key = raw.get("task_key")
    if not isinstance(key, str) or not TASK_KEY.fullmatch(key):
        raise invalid(
            f"tasks[{index}].task_key must be 1-100 letters, digits, '-', '_' or '.'; got {key!r}."
        )
    where = f"Task {key}: "
    other = [t for t in OTHER_TASK_TYPES if t in raw]
    if other:
        raise ApiError(
            501, "NOT_IMPLEMENTED", f"{where}{other[0]} is not supported by the emulator."
        )
    notebook = raw.get("notebook_task")
    if not isinstance(notebook, dict):
        raise invalid(f"{where}notebook_task is required (the only task type emulated).")
    path, params = _parse_notebook_task(notebook, where)
    echo: dict[str, Any] = {"notebook_task": {**notebook, "source": "WORKSPACE"}}
    cluster_id = raw.get("existing_cluster_id")
    if "job_cluster_key" in raw:
        raise invalid(f"{where}job_cluster_key does not exist for one-time runs.")
    if cluster_id is not None and "new_cluster" in raw:
        raise invalid(f"{where}set only one of existing_cluster_id and new_cluster.")
    if cluster_id is not None:
        if not isinstance(cluster_id, str) or not cluster_id:
            raise invalid(f"{where}existing_cluster_id must be a non-empty string.")
        echo["existing_cluster_id"] = cluster_id
    elif "new_cluster" in raw:
        if not isinstance(raw["new_cluster"], dict):
            raise invalid(f"{where}new_cluster must be an object.")
        echo["new_cluster"] = raw["new_cluster"]
    for name in ("environment_key", "description", "libraries"):
        if name in raw:
            echo[name] = raw[name]
    timeout = _int_field(raw, "timeout_seconds", where)
    echo["timeout_seconds"] = timeout
    deps = raw.get("depends_on") or []
    if not isinstance(deps, list) or not all(
        isinstance(d, dict) and isinstance(d.get("task_key"), str) for d in deps
    ):
        raise invalid(f"{where}depends_on must be a list of {{'task_key': ...}}.")
    if deps:
        echo["depends_on"] = deps
    depends_on = [d["task_key"] for d in deps]
    return _TaskSpec(key, path, echo, params, timeout, cluster_id, depends_on)


def _parse_notebook_task(notebook: dict[str, Any], where: str) -> tuple[str, dict[str, str]]:
    raw_path = notebook.get("notebook_path")
    if not isinstance(raw_path, str) or not raw_path:
        raise invalid(f"{where}notebook_task.notebook_path is required.")
    source = notebook.get("source", "WORKSPACE")
    if source == "GIT":
        raise invalid(f"{where}source GIT needs git_source, which this run does not have.")
    if source != "WORKSPACE":
        raise invalid(f"{where}notebook_task.source must be WORKSPACE or GIT, got {source!r}.")
    if not raw_path.startswith("/"):
        raise invalid(
            f"Invalid notebook_path: {raw_path}. Only absolute paths are currently supported. "
            "Paths must begin with '/'."
        )
    path = parse_path(posixpath.normpath(raw_path)).canonical
    params = notebook.get("base_parameters") or {}
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise invalid(f"{where}base_parameters must map strings to strings.")
    if len(json.dumps(params).encode("utf-8")) > MAX_PARAMETER_BYTES:
        raise invalid(f"{where}base_parameters exceed {MAX_PARAMETER_BYTES} bytes of JSON.")
    return path, params


# --- small helpers --------------------------------------------------------------------------


def _done(run: _Run) -> bool:
    return run.life in ("TERMINATED", "INTERNAL_ERROR")


def _effective_timeout(task_timeout: int, deadline: float | None) -> float | None:
    limits = [float(task_timeout)] if task_timeout else []
    if deadline is not None:
        limits.append(max(0.0, deadline - time.monotonic()))
    return min(limits) if limits else None


def _scripted(rule: JobRule, timeout: float | None, cancel: threading.Event) -> Outcome:
    """Wait out the rule's duration (a timeout or a cancel cuts it short), then its outcome."""
    if timeout is not None and timeout < rule.duration_s:
        return Outcome("CANCELED") if cancel.wait(timeout) else Outcome("TIMEDOUT")
    if cancel.wait(rule.duration_s):
        return Outcome("CANCELED")
    error = rule.error
    if rule.result_state == "FAILED" and error is None:
        error = "Exception: failed by an emulator job rule"
    return Outcome(
        rule.result_state,
        result=rule.result,
        error=error if rule.result_state == "FAILED" else None,
        error_trace=rule.error_trace or error if rule.result_state == "FAILED" else None,
        logs=rule.logs or "",
    )


def _notebook_output(result: str) -> dict[str, Any]:
    data = result.encode("utf-8")
    if len(data) <= 5 * 1024 * 1024:
        return {"result": result, "truncated": False}
    return {"result": data[: 5 * 1024 * 1024].decode("utf-8", errors="ignore"), "truncated": True}


def _state(life: str, result_state: str | None, message: str) -> dict[str, Any]:
    out: dict[str, Any] = {"life_cycle_state": life, "state_message": message}
    if result_state is not None:
        out["result_state"] = result_state
        out["user_cancelled_or_timedout"] = result_state in ("CANCELED", "TIMEDOUT")
    return out


def _status(life: str, code: str | None, type_: str | None, message: str) -> dict[str, Any]:
    if life in ("PENDING", "RUNNING"):
        return {"state": life}
    return {
        "state": "TERMINATED",
        "termination_details": {"code": code, "type": type_, "message": message},
    }
