"""The verdict on an environment's tests: per notebook, per case, and for the suite.

Pure: judging a finished run needs no server, so the rules are table-tested. The record,
`--output json`, `status` and the JUnit writer all read these types.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dbx_promote.record import utc_now
from dbx_promote.remote import JobRun, JobRunOutput

PASSED, FAILED, ERRORED, SKIPPED = "passed", "failed", "errored", "skipped"
CASE_STATUSES = (PASSED, FAILED, SKIPPED)

# Termination codes that mean the notebook never ran: missing notebook or cluster, bad
# configuration, the workspace out of capacity. These are errors of the setup, not of
# the code under test, and are reported as such ("errored").
START_FAILURES = frozenset(
    {
        "RESOURCE_NOT_FOUND",
        "INVALID_RUN_CONFIGURATION",
        "INVALID_CLUSTER_REQUEST",
        "CLUSTER_ERROR",
        "CLUSTER_REQUEST_LIMIT_EXCEEDED",
        "DRIVER_ERROR",
        "LIBRARY_INSTALLATION_ERROR",
        "WORKSPACE_RUN_LIMIT_EXCEEDED",
        "MAX_JOB_QUEUE_SIZE_EXCEEDED",
        "CLOUD_FAILURE",
        "STORAGE_ACCESS_ERROR",
        "UNAUTHORIZED_ERROR",
        "DISABLED",
    }
)
# What the record keeps of a notebook's exit value; the service returns up to 5 MB.
RESULT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class CaseResult:
    """One case of a notebook that reported ``{"cases": [...]}``."""

    name: str
    status: str  # passed | failed | skipped
    message: str = ""


@dataclass(frozen=True)
class NotebookResult:
    """One test notebook's run and its verdict."""

    notebook: str  # relative to the root
    status: str  # passed | failed | errored
    run_id: int | None = None
    run_page_url: str | None = None
    result_state: str | None = None
    duration_s: float = 0.0
    result: str | None = None
    error: str | None = None
    trace: str | None = None  # for JUnit only; not kept in the record
    cases: tuple[CaseResult, ...] = ()

    @property
    def error_line(self) -> str:
        """The first line of the error (what a person reads first)."""
        return first_line(self.error) or self.status

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "status": self.status,
            "run_id": self.run_id,
            "run_page_url": self.run_page_url,
            "result_state": self.result_state,
            "duration_s": round(self.duration_s, 3),
            "result": self.result,
            "error": self.error,
            "cases": [vars(c).copy() for c in self.cases],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NotebookResult:
        cases = tuple(CaseResult(**c) for c in d.get("cases") or [])
        return cls(
            notebook=str(d["notebook"]),
            status=str(d["status"]),
            run_id=d.get("run_id"),
            run_page_url=d.get("run_page_url"),
            result_state=d.get("result_state"),
            duration_s=float(d.get("duration_s") or 0.0),
            result=d.get("result"),
            error=d.get("error"),
            cases=cases,
        )


@dataclass(frozen=True)
class SuiteResult:
    """The outcome of one environment's tests against one release.

    ``outcome`` is ``passed`` (every test passed), ``failed`` (a test failed, timed out or
    was cancelled), ``errored`` (none failed, but some could not start) or ``skipped``
    (`--no-test`: nothing ran, and the release does not meet ``requires``).
    """

    env: str
    version: str
    digest: str
    outcome: str
    started_at: str
    finished_at: str
    tests: tuple[NotebookResult, ...] = ()
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED

    @property
    def not_passed(self) -> list[NotebookResult]:
        return [t for t in self.tests if t.status != PASSED]

    def summary(self) -> str:
        """``3 of 3 tests passed`` / ``1 of 3 tests failed: tests/x (AssertionError: …)``."""
        if self.outcome == SKIPPED:
            return f"tests skipped ({self.reason})" if self.reason else "tests skipped"
        total, bad = len(self.tests), self.not_passed
        noun = "test" if total == 1 else "tests"
        if not bad:
            return f"{total} of {total} {noun} passed"
        failed = sum(t.status == FAILED for t in bad)
        errored = len(bad) - failed
        if failed and errored:
            head = f"{failed} of {total} {noun} failed and {errored} could not run"
        elif failed:
            head = f"{failed} of {total} {noun} failed"
        else:
            head = f"{errored} of {total} {noun} could not run"
        return f"{head}: {self.failures()}"

    def failures(self) -> str:
        """``tests/x (AssertionError: …); tests/y (could not start: …)``."""
        return "; ".join(f"{t.notebook} ({t.error_line})" for t in self.not_passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "version": self.version,
            "digest": self.digest,
            "outcome": self.outcome,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "reason": self.reason,
            "tests": [t.to_dict() for t in self.tests],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SuiteResult:
        return cls(
            env=str(d["env"]),
            version=str(d["version"]),
            digest=str(d["digest"]),
            outcome=str(d["outcome"]),
            started_at=str(d.get("started_at", "")),
            finished_at=str(d.get("finished_at", "")),
            reason=str(d.get("reason", "")),
            tests=tuple(NotebookResult.from_dict(t) for t in d.get("tests") or []),
        )

    @classmethod
    def skipped(cls, env: str, version: str, digest: str, reason: str) -> SuiteResult:
        """The outcome recorded when tests were skipped on purpose."""
        now = utc_now()
        return cls(env, version, digest, SKIPPED, now, now, reason=reason)


def suite_outcome(tests: Iterable[NotebookResult]) -> str:
    statuses = {t.status for t in tests}
    if FAILED in statuses:
        return FAILED
    return ERRORED if ERRORED in statuses else PASSED


def first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def parse_cases(result: str | None) -> tuple[CaseResult, ...]:
    """The cases of an exit value ``{"cases": [{"name", "status", "message"}]}``, if any.

    Any other value (plain text, other JSON) has no cases. A case with an unknown status
    counts as failed, so a typo can never turn a failure into a pass.
    """
    try:
        data = json.loads(result) if result else None
    except ValueError:
        return ()
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        return ()
    cases = []
    for i, raw in enumerate(data["cases"]):
        if not isinstance(raw, dict):
            cases.append(CaseResult(f"case {i + 1}", FAILED, f"not a case object: {raw!r}"[:300]))
            continue
        name = str(raw.get("name") or f"case {i + 1}")
        status = str(raw.get("status", "")).lower()
        message = str(raw.get("message") or "")
        if status not in CASE_STATUSES:
            message = f"unknown status {raw.get('status')!r}" + (f": {message}" if message else "")
            status = FAILED
        cases.append(CaseResult(name, status, message))
    return tuple(cases)


def judge(
    notebook: str,
    run: JobRun,
    output: JobRunOutput | None,
    *,
    duration_s: float,
    overran: str | None = None,
) -> NotebookResult:
    """The verdict on a finished run (pure: table-tested without a server).

    ``overran`` is set when the client cancelled a run that outlived its timeout.
    """
    result = output.result[:RESULT_LIMIT] if output and output.result else None
    cases = parse_cases(output.result if output else None)
    base = NotebookResult(
        notebook=notebook,
        status=FAILED,
        run_id=run.run_id,
        run_page_url=run.run_page_url,
        result_state=run.result_state,
        duration_s=duration_s,
        result=result,
        trace=output.error_trace if output else None,
        cases=cases,
    )
    said = (output.error if output else None) or run.termination_message or run.state_message
    if overran:
        return replace(base, result_state="TIMEDOUT", error=overran)
    if run.result_state == "SUCCESS":
        bad = [c for c in cases if c.status == FAILED]
        if not bad:
            return replace(base, status=PASSED)
        first = bad[0]
        detail = f"{first.name}: {first.message}" if first.message else first.name
        return replace(base, error=f"{len(bad)} of {len(cases)} cases failed: {detail}")
    cannot_start = (
        run.termination_code in START_FAILURES
        or run.life_cycle_state == "SKIPPED"
        or (run.result_state is None and run.life_cycle_state == "INTERNAL_ERROR")
    )
    if cannot_start:
        why = said or f"the run ended {run.life_cycle_state} before the notebook ran"
        return replace(base, status=ERRORED, error=f"could not start: {why}")
    if run.result_state == "TIMEDOUT":
        return replace(base, error=said or "timed out")
    if run.result_state == "CANCELED":
        return replace(base, error=f"cancelled: {said}" if said else "cancelled")
    return replace(base, error=said or f"the run ended {run.state}")


class SuiteEvents:
    """What a suite reports while it runs (the CLI draws its live table from these)."""

    def test_submitted(self, notebook: str, run_id: int) -> None:
        """A run was submitted."""

    def test_state(self, notebook: str, run: JobRun) -> None:
        """A run's state changed (or its URL became known)."""

    def test_finished(self, result: NotebookResult) -> None:
        """A test has its verdict."""
