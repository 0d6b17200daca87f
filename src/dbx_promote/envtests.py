"""Tests in an environment: run the release's test notebooks there as one-time job runs.

A deploy proves that bytes landed; these runs prove that they work against that
environment's data. Each test notebook of the deployed release is submitted as its own run
(`runs/submit`, through the workspace adapter), polled with backoff until it is over, and
judged: a run that ends ``SUCCESS`` passes, unless its `dbutils.notebook.exit` value is
``{"cases": [...]}`` with a failed case. The outcome is a `SuiteResult`, which the record,
`--output json` and the JUnit writer all take from.

The SDK's own waiter is not used: it treats an ordinary failed notebook (run-level
``INTERNAL_ERROR``) as an exception and gives up after 20 minutes.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dbx_promote import envsettings
from dbx_promote.config import Environment, EnvTestSettings, join_workspace
from dbx_promote.errors import (
    ConfigError,
    DbxPromoteError,
    ObjectNotFound,
    TestsInterrupted,
    WorkspaceError,
)
from dbx_promote.layout import ENVIRONMENT_NOTEBOOK
from dbx_promote.notebooks import glob_match
from dbx_promote.record import Record, utc_now
from dbx_promote.remote import JobRun, JobRunOutput, RunSpec
from dbx_promote.testresults import (
    ERRORED,
    NotebookResult,
    SuiteEvents,
    SuiteResult,
    judge,
    suite_outcome,
)
from dbx_promote.workspace import Workspace

# --- the plan --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedTest:
    notebook: str
    spec: RunSpec


@dataclass(frozen=True)
class SuitePlan:
    """Which runs one test invocation submits, and how many at once."""

    env: str
    version: str
    digest: str
    parallel: int
    tests: tuple[PlannedTest, ...]


def select_notebooks(
    settings: EnvTestSettings, notebooks: Iterable[str], *, env: str, version: str
) -> list[str]:
    """The release's notebooks that ``settings.notebooks`` names, sorted.

    Raises `ConfigError` (exit 2) naming every glob that matches none of them: a typo in
    a glob must not turn into a suite that silently tests nothing.
    """
    candidates = sorted(n for n in notebooks if n != ENVIRONMENT_NOTEBOOK)
    chosen: set[str] = set()
    unmatched = []
    for glob in settings.notebooks:
        hits = [n for n in candidates if glob_match(n, glob)]
        if not hits:
            unmatched.append(glob)
        chosen.update(hits)
    if unmatched:
        globs = ", ".join(f"'{g}'" for g in unmatched)
        raise ConfigError(
            f"environments.{env}.tests.notebooks: {globs} match no notebook of {version}; "
            "test notebooks are notebooks of the artifact (paths relative to the root)"
        )
    return sorted(chosen)


def plan_suite(
    env: Environment,
    root: str,
    *,
    version: str,
    digest: str,
    notebooks: Iterable[str],
    only: str | None = None,
    invocation: str | None = None,
) -> SuitePlan:
    """One `RunSpec` per test notebook of the release (``notebooks``: its notebooks,
    relative to ``root``). ``only`` narrows to the tests matching that glob.

    Raises `ConfigError` when the environment has no ``tests`` or a glob matches nothing.
    """
    settings = env.tests
    if settings is None:
        raise ConfigError(
            f"environment '{env.name}' has no tests; add tests: {{notebooks, compute}} to it "
            "in the config"
        )
    chosen = select_notebooks(settings, notebooks, env=env.name, version=version)
    if only is not None:
        narrowed = [n for n in chosen if glob_match(n, only)]
        if not narrowed:
            raise ConfigError(
                f"--only '{only}' matches none of the tests of '{env.name}': {', '.join(chosen)}"
            )
        chosen = narrowed
    invocation = invocation or uuid.uuid4().hex
    params = {"env": env.name, "version": version, "digest": digest, **settings.parameters}
    tests = tuple(
        PlannedTest(
            notebook,
            RunSpec(
                run_name=f"dbx-promote {env.name} {version} {notebook}"[:256],
                task_key=re.sub(r"[^A-Za-z0-9_-]", "_", notebook)[:100],
                notebook_path=join_workspace(root, notebook),
                base_parameters=params,
                compute=settings.compute,
                timeout_seconds=settings.timeout_minutes * 60,
                idempotency_token=idempotency_token(invocation, notebook),
            ),
        )
        for notebook in chosen
    )
    return SuitePlan(env.name, version, digest, settings.parallel, tests)


POLL_ENV_VAR = "DBX_PROMOTE_POLL_MAX_SECONDS"


def idempotency_token(invocation: str, notebook: str) -> str:
    """One token per (test invocation, notebook): a resent submit never starts a second
    run, and the next invocation starts fresh ones. At most 64 characters."""
    digest = hashlib.sha256(f"{invocation}\0{notebook}".encode()).hexdigest()
    return f"dbx-promote-{digest[:48]}"


# --- running ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask about a run, and how long to wait past its timeout.

    The service ends a run at ``timeout_seconds``; the client cancels one that outlives it
    by ``timeout_grace`` (a run stuck in PENDING, a service that missed its own timeout),
    and gives up on one that still has not stopped ``cancel_wait`` after that.
    """

    first: float = 2.0
    factor: float = 1.5
    longest: float = 15.0
    timeout_grace: float = 60.0
    cancel_wait: float = 120.0

    @classmethod
    def from_env(cls) -> PollPolicy:
        """The default policy, with `DBX_PROMOTE_POLL_MAX_SECONDS` as the longest wait
        between two looks at a run (short notebooks finish sooner than 15 s)."""
        longest = envsettings.seconds(POLL_ENV_VAR, cls.longest)
        return cls(first=min(cls.first, longest), longest=longest)


@dataclass
class _Flight:
    test: PlannedTest
    run_id: int
    started: float
    due: float
    interval: float
    run: JobRun | None = None
    cancelled_at: float | None = None
    overran: str | None = None


@dataclass
class SuiteRunner:
    """Runs a `SuitePlan`: at most ``parallel`` runs in flight, each polled with backoff.

    Seams: ``clock`` and ``sleep`` (monotonic seconds), ``events``.
    """

    ws: Workspace
    policy: PollPolicy = field(default_factory=PollPolicy)
    events: SuiteEvents = field(default_factory=SuiteEvents)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def run(self, plan: SuitePlan) -> SuiteResult:
        """Submit, poll and judge every planned test.

        Raises `TestsInterrupted` on Ctrl-C/SIGTERM after cancelling the runs in flight
        (naming any that could not be cancelled); any other error also cancels them first.
        """
        started_at = utc_now()
        queue = deque(plan.tests)
        flying: list[_Flight] = []
        done: dict[str, NotebookResult] = {}
        try:
            while queue or flying:
                while queue and len(flying) < plan.parallel:
                    self._launch(queue.popleft(), flying, done)
                for flight in [f for f in flying if f.due <= self.clock()]:
                    if self._poll(flight, done):
                        flying.remove(flight)
                if flying:
                    self.sleep(max(0.0, min(f.due for f in flying) - self.clock()))
        except BaseException as exc:
            self._abort(flying, exc)
            raise
        tests = tuple(done[t.notebook] for t in plan.tests)
        return SuiteResult(
            plan.env, plan.version, plan.digest, suite_outcome(tests), started_at, utc_now(), tests
        )

    def _finish(self, result: NotebookResult, done: dict[str, NotebookResult]) -> None:
        done[result.notebook] = result
        self.events.test_finished(result)

    def _launch(self, test: PlannedTest, flying: list[_Flight], done: dict[str, Any]) -> None:
        try:
            run_id = self.ws.submit_run(test.spec)
        except WorkspaceError as exc:
            self._finish(
                NotebookResult(test.notebook, ERRORED, error=f"could not start: {exc}"), done
            )
            return
        except KeyboardInterrupt:
            # The run may have started before its answer came back. Resent with the same
            # idempotency token, the submit names that run (or starts it), so it is cancelled
            # with the others instead of left running.
            try:
                self._fly(test, self.ws.submit_run(test.spec), flying)
            except DbxPromoteError:
                pass
            raise
        self._fly(test, run_id, flying)

    def _fly(self, test: PlannedTest, run_id: int, flying: list[_Flight]) -> None:
        now = self.clock()
        first = self.policy.first
        flying.append(_Flight(test, run_id, started=now, due=now + first, interval=first))
        self.events.test_submitted(test.notebook, run_id)

    def _poll(self, f: _Flight, done: dict[str, NotebookResult]) -> bool:
        """Ask about one run; True when it has its verdict."""
        now = self.clock()
        try:
            run = self.ws.get_run(f.run_id)
        except WorkspaceError as exc:
            # The adapter already retried; a run we can no longer see cannot be judged.
            self._try_cancel(f)
            error = f"lost track of run {f.run_id}: {exc}"
            self._finish(
                NotebookResult(f.test.notebook, ERRORED, run_id=f.run_id, error=error), done
            )
            return True
        if f.run is None or (run.state, run.run_page_url) != (f.run.state, f.run.run_page_url):
            self.events.test_state(f.test.notebook, run)
        f.run = run
        elapsed = now - f.started
        if run.is_over:
            duration = _duration(run, elapsed)
            result = judge(
                f.test.notebook, run, self._output(run), duration_s=duration, overran=f.overran
            )
            self._finish(result, done)
            return True
        limit = f.test.spec.timeout_seconds
        if f.cancelled_at is None and limit and elapsed > limit + self.policy.timeout_grace:
            f.overran = (
                f"timed out: still {run.state} after {limit // 60} min; cancelled by dbx-promote"
            )
            f.cancelled_at = now
            self._try_cancel(f)
        elif f.cancelled_at is not None and now - f.cancelled_at > self.policy.cancel_wait:
            error = f"{f.overran}, but the run did not stop; cancel it in the workspace"
            given_up = judge(f.test.notebook, run, None, duration_s=elapsed, overran=error)
            self._finish(given_up, done)
            return True
        f.interval = min(self.policy.longest, f.interval * self.policy.factor)
        f.due = now + f.interval
        return False

    def _output(self, run: JobRun) -> JobRunOutput | None:
        # Output belongs to the task run; the parent's id is refused by the service.
        if not run.task_run_ids:
            return None
        try:
            return self.ws.get_run_output(run.task_run_ids[0])
        except (ObjectNotFound, WorkspaceError):
            return None

    def _try_cancel(self, f: _Flight) -> str | None:
        """Cancel a run; the reason when that failed."""
        try:
            self.ws.cancel_run(f.run_id)
        except DbxPromoteError as exc:
            return str(exc)
        return None

    def _abort(self, flying: list[_Flight], exc: BaseException) -> None:
        """Cancel every run in flight; raise `TestsInterrupted` for an interrupt."""
        cancelled, stuck = [], []
        for f in flying:
            try:
                why = self._try_cancel(f)
            except KeyboardInterrupt:
                # A second Ctrl-C (or SIGTERM after SIGINT) must not leave runs going.
                why = self._try_cancel(f)
            if why is None:
                cancelled.append(f.test.notebook)
                continue
            url = f" ({f.run.run_page_url})" if f.run and f.run.run_page_url else ""
            stuck.append(f"could not cancel run {f.run_id} of {f.test.notebook}{url}: {why}")
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted; " + (
                f"cancelled the test runs in flight ({', '.join(cancelled)})"
                if cancelled
                else "no test run was left to cancel"
            )
            if stuck:
                message += "; " + "; ".join(stuck) + "; cancel it in the workspace"
            raise TestsInterrupted(message) from exc


def _duration(run: JobRun, elapsed: float) -> float:
    if run.start_time and run.end_time and run.end_time >= run.start_time:
        return (run.end_time - run.start_time) / 1000.0
    return elapsed


def run_suite(
    ws: Workspace,
    env: Environment,
    root: str,
    record: Record,
    *,
    only: str | None = None,
    events: SuiteEvents | None = None,
    policy: PollPolicy | None = None,
) -> SuiteResult:
    """Run ``env``'s tests against the release ``record`` says is deployed at ``root``."""
    notebooks = [path for path, obj in record.objects.items() if obj.kind == "notebook"]
    plan = plan_suite(
        env, root, version=record.version, digest=record.digest, notebooks=notebooks, only=only
    )
    runner = SuiteRunner(ws, policy=policy or PollPolicy.from_env(), events=events or SuiteEvents())
    return runner.run(plan)
