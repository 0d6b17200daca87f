"""The one seam to a Databricks workspace.

This is the only module that imports `databricks.sdk`. It creates the client (unified auth
plus our `azure-pipelines` mode), retries what the SDK does not (it never retries
`workspace.upload`), adapts concurrency when the workspace throttles, counts requests,
and translates every SDK and transport error into our own error tree.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    DatabricksError,
    DeadlineExceeded,
    InternalError,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceConflict,
    TemporarilyUnavailable,
    TooManyRequests,
    Unauthenticated,
)
from databricks.sdk.errors.platform import STATUS_CODE_MAPPING
from databricks.sdk.service.workspace import (
    ExportFormat,
    ImportFormat,
    Language,
    WorkspaceObjectAccessControlRequest,
    WorkspaceObjectPermissionLevel,
)

from dbx_promote import permissions as acl
from dbx_promote.config import normalize_workspace_path
from dbx_promote.errors import (
    BulkImportRefused,
    CredentialsError,
    ObjectExists,
    ObjectNotFound,
    WorkspaceError,
)
from dbx_promote.errors import PermissionDenied as OurPermissionDenied
from dbx_promote.layout import STATE_DIR
from dbx_promote.pacing import Pacer, Throttle
from dbx_promote.remote import Identity, JobRun, JobRunOutput, RemoteObject, RunSpec

log = logging.getLogger("dbx_promote.workspace")

T = TypeVar("T")

# Reads in flight at once (listings, status checks): reads are not paced like imports.
READ_PARALLEL = 16


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before a request counts as failed.

    With a ``deadline`` (a value of the adapter's monotonic clock) a throttled or
    transient request is retried until then, however many attempts that takes; without
    one, ``attempts`` times.
    """

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    deadline: float | None = None


@dataclass
class _Counts:
    requests: int = 0
    retries: int = 0


class _Once:
    """A value fetched at most once, shared by an adapter and its copies; a failed fetch
    is not kept (the next caller tries again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Any = None

    def get(self, fetch: Callable[[], Any]) -> Any:
        # Callers that arrive while the fetch runs wait for it instead of sending their own.
        with self._lock:
            if self._value is None:
                self._value = fetch()
            return self._value


class Workspace:
    """A small adapter over `WorkspaceClient.workspace` with our retries and errors.

    Args:
        client: a configured SDK client.
        retry: how often to retry a throttled or dropped request.
        sleep: the sleep function (a seam so tests do not wait).
        parallel: the initial concurrency limit for writes.
        clock: the monotonic clock a retry deadline is judged on (a seam, with ``sleep``).
    """

    def __init__(
        self,
        client: WorkspaceClient,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        parallel: int = 8,
        import_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.throttle = Throttle(parallel)
        self.pacer = Pacer(import_rate, sleep)
        self._lock = threading.Lock()
        self._counts = _Counts()
        self._me = _Once()
        self.host = client.config.host or ""

    @property
    def requests(self) -> int:
        """Requests sent so far (every attempt counts)."""
        return self._counts.requests

    @property
    def retries(self) -> int:
        """Attempts that were repeated after a throttled, failed or dropped request."""
        return self._counts.retries

    def patient(self, seconds: float) -> Workspace:
        """The same adapter, retrying throttled or transient requests for up to ``seconds``
        from now, honouring Retry-After (a restore outlasts a storm the deploy did not)."""
        return self.with_retry(replace(self.retry, deadline=self._clock() + seconds))

    def with_retry(self, retry: RetryPolicy) -> Workspace:
        """The same adapter (client, throttle, pacer, counters) with another retry policy."""
        other = copy.copy(self)
        other.retry = retry
        return other

    # --- reads -----------------------------------------------------------------------

    def _scim_me(self) -> Any:
        """SCIM Me, asked once per adapter: a token's principal does not change, and a
        deploy needs it twice (the user for the lock and record, the groups for permissions)."""
        return self._me.get(lambda: self._call("who am I", lambda: self.client.current_user.me()))

    def current_user(self) -> str:
        """The signed-in principal's user name (SCIM Me)."""
        me = self._scim_me()
        return str(me.user_name or me.display_name or me.id or "unknown")

    def whoami(self) -> Identity:
        """The signed-in principal: user name, display name, groups and auth method."""
        me = self._scim_me()
        groups = tuple(str(g.display) for g in (me.groups or []) if g.display)
        return Identity(
            user_name=str(me.user_name or me.display_name or me.id or "unknown"),
            display_name=me.display_name,
            groups=groups,
            auth_type=self.client.config.auth_type,
        )

    def cluster_state(self, cluster_id: str) -> str | None:
        """The state of an existing cluster (RUNNING, TERMINATED, ...); None if there is none."""
        try:
            info = self._call(f"cluster {cluster_id}", lambda: self.client.clusters.get(cluster_id))
        except ObjectNotFound:
            return None
        return str(getattr(info.state, "value", info.state) or "UNKNOWN")

    def can_list_runs(self) -> None:
        """One page of one job run: a read that needs access to the Jobs API."""
        self._call("list job runs", lambda: next(iter(self.client.jobs.list_runs(limit=1)), None))

    def get_status(self, path: str) -> RemoteObject | None:
        """The object at ``path``, or None when it does not exist."""
        try:
            info = self._call(path, lambda: self.client.workspace.get_status(path))
        except ObjectNotFound:
            return None
        return _remote(info)

    def age_of(self, path: str) -> float | None:
        """Seconds since ``path`` was last written, by the workspace's own clock (its
        ``modified_at`` against the answer's ``Date``), so that no client's clock skew
        enters; None when it does not exist or the workspace does not say."""

        def ask() -> Any:
            return self.client.api_client.do(
                "GET",
                "/api/2.0/workspace/get-status",
                query={"path": path},
                response_headers=["Date"],
            )

        try:
            answer = self._call(path, ask)
        except ObjectNotFound:
            return None
        modified, date = answer.get("modified_at"), answer.get("Date")
        if isinstance(modified, bool) or not isinstance(modified, int) or not date:
            return None
        try:
            now = email.utils.parsedate_to_datetime(str(date)).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, now - modified / 1000)

    def statuses(self, paths: list[str]) -> dict[str, RemoteObject | None]:
        """`get_status` of each path at once (None where nothing is): one round trip."""
        if not paths:
            return {}
        with ThreadPoolExecutor(max_workers=min(READ_PARALLEL, len(paths))) as pool:
            return dict(zip(paths, pool.map(self.get_status, paths), strict=True))

    def list_dir(self, path: str) -> list[RemoteObject] | None:
        """The direct children of ``path``; None when ``path`` does not exist."""
        try:
            items = self._call(path, lambda: list(self.client.workspace.list(path)))
        except ObjectNotFound:
            return None
        return [_remote(i) for i in items]

    def list_tree(self, root: str, *, skip: tuple[str, ...] = (STATE_DIR,)) -> list[RemoteObject]:
        """Everything under ``root`` (directories included), one `list` call per directory.

        The folders of one level are listed in parallel, so a tree costs about one round
        trip per level, not per folder. Children named in ``skip`` directly under ``root``
        are reported but not descended into. An absent root gives an empty list.
        """
        found: list[RemoteObject] = []
        level = [root]
        # Listings are reads, which the import limit does not cover: a level of up to
        # READ_PARALLEL folders is one round trip.
        with ThreadPoolExecutor(max_workers=max(READ_PARALLEL, self.throttle.max_limit)) as pool:
            while level:
                results = list(pool.map(self.list_dir, level))
                next_level: list[str] = []
                for current, children in zip(level, results, strict=True):
                    if children is None:
                        if current == root:
                            return []
                        continue  # removed while we walked: nothing to report
                    for child in sorted(children, key=lambda o: o.path):
                        found.append(child)
                        name = child.path.rsplit("/", 1)[-1]
                        if child.is_dir and not (current == root and name in skip):
                            next_level.append(child.path)
                level = next_level
        return found

    def download(self, path: str, *, jupyter: bool = False) -> bytes:
        """The content of ``path`` (notebook source, ipynb, or file bytes)."""
        fmt = ExportFormat.JUPYTER if jupyter else ExportFormat.SOURCE

        def go() -> bytes:
            with self.client.workspace.download(path, format=fmt) as f:
                return bytes(f.read())

        return self._call(path, go)

    def read_optional(self, path: str) -> bytes | None:
        """Like `download`, but None when the object does not exist."""
        try:
            return self.download(path)
        except ObjectNotFound:
            return None

    # --- writes ----------------------------------------------------------------------

    def mkdirs(self, path: str) -> None:
        """Create ``path`` and its parents (an existing folder is fine)."""
        self._call(path, lambda: self.client.workspace.mkdirs(path), write=True)

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        """Delete ``path``; False when it was already gone."""
        try:
            self._call(
                path,
                lambda: self.client.workspace.delete(path, recursive=recursive),
                write=True,
            )
        except ObjectNotFound:
            return False
        return True

    def import_notebook(
        self, path: str, content: bytes, *, language: str, jupyter: bool = False
    ) -> None:
        """Create or overwrite a notebook at exactly ``path`` (no extension)."""
        fmt = ImportFormat.JUPYTER if jupyter else ImportFormat.SOURCE
        lang = None if jupyter else Language(language)
        self._upload(path, content, fmt, lang, overwrite=True)

    def import_file(self, path: str, content: bytes, *, overwrite: bool = True) -> None:
        """Create or overwrite a workspace file at ``path`` (extension kept)."""
        self._upload(path, content, ImportFormat.AUTO, None, overwrite=overwrite)

    def import_directory(self, path: str, archive: bytes) -> None:
        """Create the folder ``path`` from a zip in one request (`SOURCE`, no language).

        The folder must not exist: the workspace imports a directory only as a new name.
        A 500 or a dropped connection may or may not have applied it, so the folder is
        looked up before the request is sent again. Raises `BulkImportRefused` when the
        workspace refuses directory imports (a 4xx other than 429, or 501), `ObjectExists`
        when ``path`` exists — also when the SDK itself resent the request after a dropped
        connection and the first one had landed: whose folder it is cannot be told then —
        and `WorkspaceError` for anything retries could not fix.
        """
        content = base64.b64encode(archive).decode("ascii")

        def go() -> None:
            self.client.workspace.import_(
                path, content=content, format=ImportFormat.SOURCE, overwrite=False
            )

        try:
            with self.throttle.slot():
                self.pacer.wait()
                self._call(
                    path,
                    go,
                    write=True,
                    idempotent=False,
                    landed=lambda: self.get_status(path) is not None,
                )
        except ObjectExists:
            raise
        except WorkspaceError as exc:
            if exc.status == 501 or (exc.status is not None and 400 <= exc.status < 500):
                raise BulkImportRefused(
                    str(exc), status=exc.status, error_code=exc.error_code
                ) from exc
            raise

    def create_file_exclusive(self, path: str, content: bytes) -> None:
        """Create a file only if nothing is at ``path``; `ObjectExists` otherwise."""
        self._upload(path, content, ImportFormat.AUTO, None, overwrite=False)

    def _upload(
        self,
        path: str,
        content: bytes,
        fmt: ImportFormat,
        language: Language | None,
        *,
        overwrite: bool,
    ) -> None:
        # Bytes, never a stream: a retried stream uploads an empty notebook
        # (databricks-sdk-py#796). The SDK does not retry uploads; _call does.
        def go() -> None:
            self.client.workspace.upload(
                path, content, format=fmt, language=language, overwrite=overwrite
            )

        with self.throttle.slot():
            self.pacer.wait()
            self._call(path, go, write=True, idempotent=overwrite)

    # --- one-time job runs (an environment's tests) ----------------------------------

    def submit_run(self, spec: RunSpec) -> int:
        """Submit one notebook run (`runs/submit`); its run id.

        The idempotency token makes a resend safe: if a first submit started the run and
        only its answer was lost, the service hands back that run instead of a second one.
        """
        from databricks.sdk.service import compute, jobs

        task = jobs.SubmitTask(
            task_key=spec.task_key,
            notebook_task=jobs.NotebookTask(
                notebook_path=spec.notebook_path,
                base_parameters=dict(spec.base_parameters),
                source=jobs.Source.WORKSPACE,
            ),
            timeout_seconds=spec.timeout_seconds,
        )
        # Serverless is the absence of any cluster: notebook tasks need no environment.
        if "existing_cluster_id" in spec.compute:
            task.existing_cluster_id = str(spec.compute["existing_cluster_id"])
        elif "new_cluster" in spec.compute:
            task.new_cluster = compute.ClusterSpec.from_dict(dict(spec.compute["new_cluster"]))

        def go() -> int:
            waiter = self.client.jobs.submit(
                run_name=spec.run_name,
                tasks=[task],
                timeout_seconds=spec.timeout_seconds,
                idempotency_token=spec.idempotency_token,
            )
            return int(waiter.run_id)

        return self._call(f"submit {spec.notebook_path}", go)

    def get_run(self, run_id: int) -> JobRun:
        """The run's state (`runs/get`); `ObjectNotFound` when it does not exist."""
        run = self._call(f"run {run_id}", lambda: self.client.jobs.get_run(run_id))
        state, status = run.state, run.status
        details = status.termination_details if status else None
        return JobRun(
            run_id=int(run.run_id or run_id),
            run_page_url=run.run_page_url,
            life_cycle_state=_enum(state.life_cycle_state) if state else None,
            result_state=_enum(state.result_state) if state else None,
            state_message=state.state_message if state else None,
            status_state=_enum(status.state) if status else None,
            termination_code=_enum(details.code) if details else None,
            termination_type=_enum(details.type) if details else None,
            termination_message=details.message if details else None,
            start_time=run.start_time,
            end_time=run.end_time,
            task_run_ids=tuple(int(t.run_id) for t in run.tasks or [] if t.run_id is not None),
        )

    def get_run_output(self, task_run_id: int) -> JobRunOutput:
        """A task run's `dbutils.notebook.exit` value and error (`runs/get-output`).

        Only a task run has output: the parent run's id gets a 400 from the service.
        """
        out = self._call(
            f"output of run {task_run_id}", lambda: self.client.jobs.get_run_output(task_run_id)
        )
        notebook = out.notebook_output
        return JobRunOutput(
            result=notebook.result if notebook else None,
            truncated=bool(notebook.truncated) if notebook else False,
            error=out.error,
            error_trace=out.error_trace,
        )

    def cancel_run(self, run_id: int) -> None:
        """Ask the service to cancel a run (`runs/cancel`); it stops asynchronously."""
        self._call(f"cancel run {run_id}", lambda: self.client.jobs.cancel_run(run_id))

    # --- permissions -----------------------------------------------------------------

    def identity(self) -> acl.Identity:
        """The signed-in principal with its groups (SCIM Me), for permissions."""
        return self.whoami().principal

    def get_acl(self, obj: RemoteObject) -> acl.ObjectAcl:
        """The permissions of ``obj``; `PermissionDenied` without CAN_MANAGE on it."""
        kind = acl_type(obj.object_type)
        perms = self._call(
            f"permissions of {obj.path}",
            lambda: self.client.workspace.get_permissions(kind, str(obj.object_id)),
        )
        return acl.acl_from_response(obj.path, kind, obj.object_id or 0, perms)

    def get_acls(self, objects: list[RemoteObject]) -> list[acl.ObjectAcl]:
        """`get_acl` of each of ``objects``, in parallel, in their order."""
        with ThreadPoolExecutor(max_workers=self.throttle.max_limit) as pool:
            return list(pool.map(self.get_acl, objects))

    def set_acl(self, kind: str, object_id: int, grants: tuple[acl.Grant, ...], what: str) -> None:
        """Replace the direct grants of an object with exactly ``grants`` (one PUT)."""
        entries = [
            WorkspaceObjectAccessControlRequest(
                permission_level=WorkspaceObjectPermissionLevel(g.level),
                **{acl.PRINCIPAL_FIELDS[g.kind]: g.name},
            )
            for g in grants
        ]
        self._call(
            f"permissions of {what}",
            lambda: self.client.workspace.set_permissions(
                kind, str(object_id), access_control_list=entries
            ),
            write=True,
        )

    # --- the one place SDK errors are translated -------------------------------------

    def _call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        write: bool = False,
        idempotent: bool = True,
        landed: Callable[[], bool] | None = None,
    ) -> T:
        """Send ``fn`` with retries; translate what still fails.

        A request that is not ``idempotent`` is only sent again after a 500, 504 or a
        dropped connection when ``landed`` is given and says that the first one did not
        apply; when it did, the answer is None.
        """
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self._counts.requests += 1
            try:
                result = fn()
            except (DatabricksError, requests.ConnectionError, requests.Timeout) as exc:
                if self._after_failure(what, attempt, exc, idempotent, landed):
                    return cast(T, None)
                continue
            except TimeoutError as exc:
                # The SDK's own retries of a throttled request ran out of their time; a
                # patient adapter (a restore) sends it again while its deadline allows.
                deadline = self.retry.deadline
                if deadline is not None and self._clock() < deadline:
                    continue
                cause = exc.__cause__
                detail = f" (last error: {_short(cause)})" if cause else ""
                raise WorkspaceError(
                    f"{what}: the workspace kept failing until the retry budget ran out{detail}"
                ) from exc
            if write:
                self.throttle.on_success()
            return result

    def _after_failure(
        self,
        what: str,
        attempt: int,
        exc: Exception,
        idempotent: bool,
        landed: Callable[[], bool] | None,
    ) -> bool:
        """Back off and return False to send again, or True when a request that must not
        be resent is known to have landed; raise our error when it failed for good."""
        if isinstance(exc, (TooManyRequests, TemporarilyUnavailable)):
            if isinstance(exc, TooManyRequests):
                self.throttle.on_throttled()
            self._backoff(what, attempt, exc, getattr(exc, "retry_after_secs", None))
            return False
        # A 500, a 504 or a dropped connection is usually transient, but may or may not
        # have applied the write: only requests that give the same result twice (every
        # write but the exclusive lock create), or whose effect can be looked up, go again.
        dropped = not isinstance(exc, DatabricksError) or _is_dropped(exc)
        transient = dropped or isinstance(exc, (InternalError, DeadlineExceeded))
        if transient and not idempotent and landed is not None:
            if landed():
                return True
        elif not transient or not idempotent:
            if isinstance(exc, DatabricksError):
                raise translate(exc, what) from exc
            raise WorkspaceError(
                f"connection lost during {what}; the workspace did not answer"
            ) from exc
        self._backoff(what, attempt, exc, None)
        return False

    def _backoff(self, what: str, attempt: int, exc: BaseException, retry_after: Any) -> None:
        deadline = self.retry.deadline
        left = deadline - self._clock() if deadline is not None else None
        if (attempt >= self.retry.attempts) if left is None else (left <= 0):
            raise WorkspaceError(
                f"{what}: still failing after {attempt} attempts ({_short(exc)})",
                status=getattr(exc, "status_code", None),
                error_code=getattr(exc, "error_code", None),
            ) from exc
        if isinstance(retry_after, (int, float)) and retry_after >= 0:
            delay = float(retry_after)
        else:
            delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        delay += random.uniform(0, self.retry.base_delay)
        if left is not None:
            delay = min(delay, left)  # one last attempt at the deadline
        with self._lock:
            self._counts.retries += 1
        log.debug("retrying %s in %.2fs after %s", what, delay, _short(exc))
        self._sleep(delay)


_ACL_TYPES = {"DIRECTORY": "directories", "NOTEBOOK": "notebooks", "FILE": "files"}


def acl_type(object_type: str) -> str:
    """The Permissions API's name for a workspace object type (``directories`` …)."""
    return _ACL_TYPES.get(object_type, "directories")


def _is_dropped(exc: DatabricksError) -> bool:
    text = str(exc)
    return "Connection aborted" in text or "RemoteDisconnected" in text


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = " ".join(str(exc).split())
    # The SDK appends its config dump to auth errors; it is noise for the user.
    text = text.split(" Config: ")[0]
    return text[:300] or type(exc).__name__


def translate(exc: DatabricksError, what: str) -> WorkspaceError | CredentialsError:
    """Map an SDK error to ours, keeping the service's message."""
    message = f"{what}: {_short(exc)}"
    code = getattr(exc, "error_code", None)
    if isinstance(exc, Unauthenticated):
        return CredentialsError(
            "the workspace refused the credentials (401); check the token or service principal"
        )
    if isinstance(exc, PermissionDenied):
        return OurPermissionDenied(f"permission denied: {message}", status=403, error_code=code)
    if isinstance(exc, NotFound):
        return ObjectNotFound(message, status=404, error_code=code)
    if isinstance(exc, (ResourceAlreadyExists, ResourceConflict)):
        return ObjectExists(message, status=400, error_code=code)
    return WorkspaceError(message, status=_status(exc), error_code=code)


def _status(exc: DatabricksError) -> int | None:
    """The HTTP status an SDK error stands for (the SDK keeps only its class)."""
    for status, cls in STATUS_CODE_MAPPING.items():
        if isinstance(exc, cls):
            return status
    return None


def _enum(v: Any) -> str | None:
    return None if v is None else str(getattr(v, "value", v))


def _remote(info: Any) -> RemoteObject:
    return RemoteObject(
        path=normalize_workspace_path(info.path or ""),
        object_type=_enum(info.object_type) or "UNKNOWN",
        language=_enum(info.language),
        object_id=info.object_id,
        modified_at=info.modified_at,
        size=info.size,
    )


__all__ = [
    "STATE_DIR",
    "RemoteObject",
    "RetryPolicy",
    "Throttle",
    "Workspace",
    "translate",
]
