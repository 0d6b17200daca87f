"""The test gate: an environment's tests after a deploy, their outcome in the record, the
rollback a failed smoke test asks for, and what ``requires`` asks of the outcome.

`after_deploy` runs once a deploy, promote or rollback has been committed. The outcome is
written into the record (`deployment.json` → ``tests``) and the history (kind ``test``)
under the deploy lock, and only if the folder still runs the release that was tested.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from dbx_promote.artifact import Artifact
from dbx_promote.config import Environment
from dbx_promote.deploy import Deployer, DeployOptions, DeployResult
from dbx_promote.envtests import PollPolicy, run_suite, select_notebooks
from dbx_promote.errors import DbxPromoteError, RecordCorrupt, RequiresNotMet, TestsInterrupted
from dbx_promote.lock import DeployLock, new_lock
from dbx_promote.record import HISTORY_LIMIT, HistoryEntry, Record
from dbx_promote.target import target_from_artifact
from dbx_promote.testresults import PASSED, SKIPPED, SuiteEvents, SuiteResult


@dataclass
class TestOptions:
    """Whether and how a deploy runs the environment's tests afterwards."""

    __test__ = False

    run: bool = True  # False: `--no-test` (recorded as skipped)
    events: SuiteEvents | None = None
    policy: PollPolicy | None = None


def check_globs(env: Environment, artifact: Artifact) -> None:
    """Before anything is written: every test glob of ``env`` names a notebook of
    ``artifact`` (`ConfigError`, exit 2, otherwise)."""
    if env.tests is not None:
        notebooks = [o.workspace_path for o in artifact.manifest.objects if o.kind == "notebook"]
        select_notebooks(env.tests, notebooks, env=env.name, version=artifact.version)


def recorded_outcome(record: Record | None) -> SuiteResult | None:
    """The test outcome a record carries for its own release, if any."""
    if record is None or not record.tests:
        return None
    try:
        outcome = SuiteResult.from_dict(record.tests)
    # AttributeError: a hand-edited entry that is not an object (`"tests": [1]`).
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RecordCorrupt(
            f"the tests in the record of '{record.env}' are unreadable ({exc}); rerun "
            f"`dbx-promote test --env {record.env}`"
        ) from None
    return outcome if outcome.digest == record.digest else None


def require_passed(record: Record, required: str, env: str) -> None:
    """`requires` of an environment whose required one has tests: they passed for this
    release. Raises `RequiresNotMet` naming what failed, was skipped or never ran."""
    outcome = recorded_outcome(record)
    what = f"{record.version} ({record.digest})"
    if outcome is None:
        raise RequiresNotMet(
            f"'{env}' only takes what passed its tests in '{required}': no tests have run "
            f"for {what} there; run `dbx-promote test --env {required}`"
        )
    if outcome.outcome == SKIPPED:
        raise RequiresNotMet(
            f"'{env}' only takes what passed its tests in '{required}': the tests of {what} "
            f"were skipped there ({outcome.reason or '--no-test'}); run "
            f"`dbx-promote test --env {required}`"
        )
    if outcome.outcome != PASSED:
        raise RequiresNotMet(
            f"'{env}' only takes what passed its tests in '{required}': {record.version} "
            f"did not: {outcome.summary()}"
        )


def after_deploy(deployer: Deployer, result: DeployResult, options: TestOptions) -> DeployResult:
    """Run the environment's tests after ``result`` (a committed deploy) and record them.

    With ``on_failure: rollback``, a failed test after a deploy or promote rolls the
    environment back to the release it ran before (``result.rolled_back_to``).
    """
    env = deployer.env
    if env.tests is None or result.dry_run:
        return result
    record = deployer.read_record()
    if record is None or record.digest != result.digest:
        return result  # nothing of ours to test (a restore put something else back)
    previous = recorded_outcome(record)
    if result.noop and previous is not None and previous.passed:
        result.tests = previous  # the same release, already proven: no new runs
        return result
    if not options.run:
        outcome = SuiteResult.skipped(env.name, record.version, record.digest, "--no-test")
    else:
        try:
            outcome = run_suite(
                deployer.ws,
                env,
                deployer.root,
                record,
                events=options.events,
                policy=options.policy or PollPolicy.from_env(),
            )
        except TestsInterrupted as exc:
            raise TestsInterrupted(
                f"{result.kind} of {result.version} to '{env.name}' done, but its tests were "
                f"{exc}; it does not meet 'requires' until they pass"
            ) from exc
    record_outcome(deployer, outcome)
    result.tests = outcome
    if outcome.outcome not in (PASSED, SKIPPED) and env.tests.on_failure == "rollback":
        _roll_back(deployer, result, record, outcome, options)
    return result


def record_outcome(deployer: Deployer, outcome: SuiteResult) -> None:
    """Write ``outcome`` into the record and history, under the lock; warn if it cannot be
    (the release then stays without a passed outcome: it does not meet ``requires``)."""
    folder = deployer.folder
    try:
        current = folder.read_record()
        # A lock that announces no object writes: it only guards the record and history.
        lock = new_lock(
            uuid.uuid4().hex,
            deployer.user,
            deployer.now(),
            version=outcome.version,
            digest=outcome.digest,
            intent={},
            jupyter=[],
            new_dirs=[],
            previous=current,
        )
        with DeployLock(
            folder, lock, env_name=deployer.env.name, record=current, rules=deployer.lock_rules
        ):
            record = folder.read_record()
            if record is None or record.digest != outcome.digest:
                folder.events.warning(
                    f"'{deployer.env.name}' no longer runs {outcome.version}; its test outcome "
                    "was not recorded"
                )
                return
            folder.write_record(replace(record, tests=outcome.to_dict()))
            entry = HistoryEntry(
                version=outcome.version,
                digest=outcome.digest,
                kind="test",
                outcome=outcome.outcome,
                at=deployer.now(),
                by=deployer.user,
                commit=record.commit,
                detail=outcome.summary(),
                pipeline=record.pipeline,
            )
            history = folder.read_history_or_new()
            folder.write_history([entry, *history][:HISTORY_LIMIT])
    except DbxPromoteError as exc:
        folder.events.warning(f"the test outcome was not recorded: {exc}")


def _roll_back(
    deployer: Deployer,
    result: DeployResult,
    record: Record,
    outcome: SuiteResult,
    options: TestOptions,
) -> None:
    if result.kind == "rollback" or result.noop:
        return  # a rollback's own tests never start another one
    previous = result.plan.previous_digest
    ref = next((r for r in record.releases if r.digest == previous), None)
    if previous is None or ref is None:
        result.rollback_error = "no previous release to roll back to"
        return
    reason = f"tests failed after {result.kind} of {result.version}: {outcome.summary()}"
    try:
        with deployer.fetch_release(ref) as artifact:
            target = target_from_artifact(artifact, deployer.env, deployer.user)
            rolled = deployer.deploy(target, DeployOptions(kind="rollback", reason=reason))
    except DbxPromoteError as exc:
        result.rollback_error = f"the rollback to {ref.version} failed: {exc}"
        return
    result.rolled_back_to = ref.version
    # The restored release is tested again: what runs in Prod now must be proven to work
    # there, and a rollback's own failure never starts another rollback (see above).
    result.rollback_tests = after_deploy(deployer, rolled, options).tests
