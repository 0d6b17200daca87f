"""Pure rules of an environment's tests: which notebooks, which runs, and the verdicts."""

from __future__ import annotations

import pytest

from dbx_promote.config import Environment, EnvTestSettings
from dbx_promote.envtests import PollPolicy, idempotency_token, plan_suite, select_notebooks
from dbx_promote.errors import ConfigError
from dbx_promote.remote import JobRun, JobRunOutput
from dbx_promote.testresults import (
    NotebookResult,
    SuiteResult,
    judge,
    parse_cases,
    suite_outcome,
)

SETTINGS = EnvTestSettings(notebooks=("tests/*",), compute={"serverless": True})
RELEASE = [
    "etl/ingest",
    "tests/check_config",
    "tests/test_helpers",
    "tests/smoke_prod",
    "_environment",
]


def env(**kw: object) -> Environment:
    tests = EnvTestSettings(**{"notebooks": ("tests/*",), "compute": {"serverless": True}, **kw})  # type: ignore[arg-type]
    return Environment(name="test", root="/Shared/app/test", tests=tests)


# --- which notebooks -------------------------------------------------------------------


def test_globs_select_the_release_notebooks_they_match_sorted():
    chosen = select_notebooks(SETTINGS, RELEASE, env="test", version="1.0.0")
    assert chosen == ["tests/check_config", "tests/smoke_prod", "tests/test_helpers"]


def test_a_bare_name_glob_matches_at_any_depth_and_environment_is_never_a_test():
    s = EnvTestSettings(notebooks=("smoke_*", "_env*"), compute={"serverless": True})
    with pytest.raises(ConfigError, match=r"'_env\*' match no notebook of 1\.0\.0"):
        select_notebooks(s, RELEASE, env="prod", version="1.0.0")


def test_every_glob_that_matches_nothing_is_named_in_one_error():
    s = EnvTestSettings(notebooks=("tests/*", "tset/*", "smoke/*"), compute={"serverless": True})
    with pytest.raises(ConfigError) as err:
        select_notebooks(s, RELEASE, env="test", version="1.0.0")
    assert "'tset/*', 'smoke/*'" in str(err.value)
    assert "environments.test.tests.notebooks" in str(err.value)


def test_an_environment_without_tests_is_bad_input():
    with pytest.raises(ConfigError, match="has no tests"):
        plan_suite(
            Environment("prod", "/Shared/p"),
            "/Shared/p",
            version="1",
            digest="d",
            notebooks=RELEASE,
        )


# --- which runs ------------------------------------------------------------------------


def test_each_run_gets_the_notebook_path_widgets_timeout_compute_and_a_token():
    e = env(
        timeout_minutes=20,
        parameters={"sample_rows": "1000"},
        compute={"existing_cluster_id": "c-1"},
    )
    plan = plan_suite(
        e,
        "/Shared/app/test",
        version="1.4.0",
        digest="sha256:ab",
        notebooks=RELEASE,
        invocation="inv1",
    )
    assert [t.notebook for t in plan.tests] == [
        "tests/check_config",
        "tests/smoke_prod",
        "tests/test_helpers",
    ]
    spec = plan.tests[0].spec
    assert spec.notebook_path == "/Shared/app/test/tests/check_config"
    assert dict(spec.base_parameters) == {
        "env": "test", "version": "1.4.0", "digest": "sha256:ab", "sample_rows": "1000",
    }  # fmt: skip
    assert spec.timeout_seconds == 1200
    assert dict(spec.compute) == {"existing_cluster_id": "c-1"}
    assert spec.task_key == "tests_check_config"
    assert spec.idempotency_token == idempotency_token("inv1", "tests/check_config")
    assert plan.parallel == 4


def test_tokens_are_stable_per_invocation_and_notebook_and_fit_the_service_limit():
    a = idempotency_token("inv1", "tests/a")
    assert a == idempotency_token("inv1", "tests/a")
    assert a != idempotency_token("inv2", "tests/a")
    assert a != idempotency_token("inv1", "tests/b")
    assert len(a) <= 64


def test_two_invocations_get_different_tokens_by_default():
    one = plan_suite(env(), "/r/x/y", version="1", digest="d", notebooks=RELEASE)
    two = plan_suite(env(), "/r/x/y", version="1", digest="d", notebooks=RELEASE)
    assert one.tests[0].spec.idempotency_token != two.tests[0].spec.idempotency_token


def test_only_narrows_the_tests_and_a_miss_is_bad_input():
    plan = plan_suite(env(), "/r/x/y", version="1", digest="d", notebooks=RELEASE, only="*smoke*")
    assert [t.notebook for t in plan.tests] == ["tests/smoke_prod"]
    with pytest.raises(ConfigError, match="--only 'nope' matches none of the tests of 'test'"):
        plan_suite(env(), "/r/x/y", version="1", digest="d", notebooks=RELEASE, only="nope")


# --- verdicts ----------------------------------------------------------------------------


def run(**kw: object) -> JobRun:
    base = {
        "run_id": 7,
        "run_page_url": "u/7",
        "life_cycle_state": "TERMINATED",
        "task_run_ids": (8,),
    }
    return JobRun(**{**base, **kw})  # type: ignore[arg-type]


FAILED_TASK = {
    "life_cycle_state": "INTERNAL_ERROR",
    "result_state": "FAILED",
    "status_state": "TERMINATED",
    "termination_code": "RUN_EXECUTION_ERROR",
    "state_message": "Task t failed with message: Workload failed",
}
MISSING_NOTEBOOK = {
    "life_cycle_state": "INTERNAL_ERROR",
    "result_state": "FAILED",
    "termination_code": "RESOURCE_NOT_FOUND",
    "termination_type": "CLIENT_ERROR",
    "termination_message": 'Unable to access the notebook "/x/tests/gone" in the workspace.',
}


@pytest.mark.parametrize(
    ("state", "output", "status", "error_start"),
    [
        ({"result_state": "SUCCESS"}, JobRunOutput(result="ok"), "passed", None),
        (
            FAILED_TASK,
            JobRunOutput(error="AssertionError: bad\nline 2"),
            "failed",
            "AssertionError: bad",
        ),
        (FAILED_TASK, None, "failed", "Task t failed with message"),
        (MISSING_NOTEBOOK, None, "errored", "could not start: Unable to access the notebook"),
        (
            {"result_state": "TIMEDOUT", "state_message": "Run timed out"},
            None,
            "failed",
            "Run timed out",
        ),
        (
            {"result_state": "CANCELED", "state_message": "by a person"},
            None,
            "failed",
            "cancelled: by a person",
        ),
        ({"life_cycle_state": "SKIPPED"}, None, "errored", "could not start"),
        ({"life_cycle_state": "INTERNAL_ERROR"}, None, "errored", "could not start"),
    ],
)
def test_a_finished_run_is_judged_by_its_result_state(state, output, status, error_start):
    verdict = judge("tests/a", run(**state), output, duration_s=1.5)
    assert verdict.status == status
    if error_start is None:
        assert verdict.error is None
    else:
        assert verdict.error_line.startswith(error_start), verdict.error_line
    assert (verdict.run_id, verdict.run_page_url, verdict.duration_s) == (7, "u/7", 1.5)


def test_a_run_the_client_cancelled_for_overrunning_is_a_timeout():
    verdict = judge(
        "tests/a", run(result_state="CANCELED"), None, duration_s=9, overran="timed out: x"
    )
    assert (verdict.status, verdict.result_state, verdict.error) == (
        "failed",
        "TIMEDOUT",
        "timed out: x",
    )


def test_a_successful_run_with_a_failed_case_fails_naming_the_case():
    out = JobRunOutput(
        result='{"cases": [{"name": "a", "status": "passed"}, {"name": "b", "status": "failed", "message": "2 != 3"}]}'
    )
    verdict = judge("tests/a", run(result_state="SUCCESS"), out, duration_s=1)
    assert verdict.status == "failed"
    assert verdict.error == "1 of 2 cases failed: b: 2 != 3"
    assert [c.name for c in verdict.cases] == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ("plain text", ()),
        ('{"rows": 3}', ()),
        ('["x"]', ()),
        ('{"cases": [{"name": "a", "status": "PASSED"}]}', (("a", "passed", ""),)),
        ('{"cases": [{"name": "a", "status": "ok"}]}', (("a", "failed", "unknown status 'ok'"),)),
        ('{"cases": [{"status": "skipped", "message": "m"}]}', (("case 1", "skipped", "m"),)),
        ('{"cases": ["oops"]}', (("case 1", "failed", "not a case object: 'oops'"),)),
    ],
)
def test_the_cases_convention(value, expected):
    assert tuple((c.name, c.status, c.message) for c in parse_cases(value)) == expected


def test_suite_outcome_failed_beats_errored_beats_passed():
    p, f, e = (NotebookResult("x", s) for s in ("passed", "failed", "errored"))
    assert suite_outcome([p, p]) == "passed"
    assert suite_outcome([p, e]) == "errored"
    assert suite_outcome([e, f, p]) == "failed"


def test_the_summary_names_what_did_not_pass_with_its_first_error_line():
    tests = (
        NotebookResult("tests/a", "passed"),
        NotebookResult("tests/b", "failed", error="AssertionError: x\ntrace"),
        NotebookResult("tests/c", "errored", error="could not start: no cluster"),
    )
    s = SuiteResult("test", "1.0", "d", "failed", "t0", "t1", tests)
    assert s.summary() == (
        "1 of 3 tests failed and 1 could not run: tests/b (AssertionError: x); "
        "tests/c (could not start: no cluster)"
    )
    assert (
        SuiteResult("test", "1.0", "d", "passed", "t0", "t1", tests[:1]).summary()
        == "1 of 1 test passed"
    )


def test_a_suite_result_survives_the_record_round_trip():
    tests = (NotebookResult("tests/b", "failed", 3, "u", "FAILED", 2.5, "r", "e", "trace"),)
    s = SuiteResult("test", "1.0", "d", "failed", "t0", "t1", tests)
    back = SuiteResult.from_dict(s.to_dict())
    assert back.to_dict() == s.to_dict()
    assert back.tests[0].trace is None  # traces go to JUnit, not into the record


def test_the_longest_poll_wait_comes_from_the_environment(monkeypatch):
    assert PollPolicy.from_env() == PollPolicy()
    monkeypatch.setenv("DBX_PROMOTE_POLL_MAX_SECONDS", "0.5")
    assert (PollPolicy.from_env().first, PollPolicy.from_env().longest) == (0.5, 0.5)
    for bad in ("soon", "0"):
        monkeypatch.setenv("DBX_PROMOTE_POLL_MAX_SECONDS", bad)
        with pytest.raises(ConfigError, match="DBX_PROMOTE_POLL_MAX_SECONDS must be"):
            PollPolicy.from_env()
