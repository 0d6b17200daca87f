""".github/workflows/*.yml: valid against SchemaStore's GitHub workflow schema (a test fixture,
tests/schemas/github-workflow.md says where from), and shaped build-once/promote-many."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ci_helpers import github_schema_errors, load_workflow

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
WORKFLOW = REPO / ".github" / "workflows" / "dbx-promote.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    doc: dict[str, Any] = load_workflow(WORKFLOW.read_text())
    return doc


def steps(job: dict[str, Any], uses: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(uses)]


def scripts(job: dict[str, Any]) -> str:
    return "\n".join(str(s["run"]) for s in job["steps"] if "run" in s)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_validates_against_the_schema(path: Path) -> None:
    assert github_schema_errors(path.read_text()) == []


def test_the_schema_catches_a_misspelled_key() -> None:
    text = WORKFLOW.read_text().replace("runs-on:", "run-on:", 1)
    assert github_schema_errors(text)


def test_triggers_prs_main_tags_and_a_nightly_schedule(workflow: dict[str, Any]) -> None:
    on = workflow["on"]
    assert on["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert on["pull_request"] == {"branches": ["main"]}
    assert len(on["schedule"]) == 1 and re.fullmatch(r"\d+ \d+ \* \* \*", on["schedule"][0]["cron"])
    assert workflow["permissions"] == {"contents": "read"}


def test_jobs_and_their_environments(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert list(jobs) == ["build", "test", "plan-prod", "prod", "watch"]
    assert {n: j.get("environment") for n, j in jobs.items()} == {
        "build": None,
        "test": "test",
        "plan-prod": "prod-plan",
        "prod": "prod",
        "watch": "watch",
    }
    assert jobs["test"]["needs"] == "build"
    assert jobs["plan-prod"]["needs"] == "test"
    assert jobs["prod"]["needs"] == ["build", "plan-prod"]
    assert jobs["prod"]["if"] == "startsWith(github.ref, 'refs/tags/v')"


def test_deploying_jobs_have_a_concurrency_group_per_environment(
    workflow: dict[str, Any],
) -> None:
    groups = {n: j.get("concurrency") for n, j in workflow["jobs"].items()}
    assert groups["test"] == {"group": "dbx-promote-test", "cancel-in-progress": False}
    assert groups["prod"] == {"group": "dbx-promote-prod", "cancel-in-progress": False}
    assert groups["watch"]["group"] not in ("dbx-promote-prod", "dbx-promote-test")


def test_the_release_is_uploaded_once_and_never_rebuilt(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    uploads = [
        (name, s["with"]["name"])
        for name, job in jobs.items()
        for s in steps(job, "actions/upload-artifact@")
    ]
    assert uploads == [
        ("build", "release"),
        ("test", "test-results-test"),
        ("plan-prod", "prod-plan"),
        ("prod", "test-results-prod"),
    ]
    build = scripts(jobs["build"])
    assert "make test" in build and "-m build --wheel" in build
    assert "dbx-promote build --out" in build and "cp dbx-promote.yml" in build
    for name in ("test", "plan-prod", "prod"):
        job = jobs[name]
        assert not steps(job, "actions/checkout@"), name
        downloads = [s["with"]["name"] for s in steps(job, "actions/download-artifact@")]
        assert downloads[0] == "release", name
        text = scripts(job)
        for forbidden in ("make ", "-m build", "dbx-promote build", "git "):
            assert forbidden not in text, (name, forbidden)


def test_test_plans_prod_and_prod_applies_exactly_that_plan(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert 'deploy "${zips[0]}" --env test' in scripts(jobs["test"])
    assert '--env prod --dry-run --plan-out "$plan/prod-plan.json"' in scripts(jobs["plan-prod"])
    prod = jobs["prod"]
    assert '--env prod --plan "$RUNNER_TEMP/prod-plan/prod-plan.json"' in scripts(prod)
    assert [s["with"]["name"] for s in steps(prod, "actions/download-artifact@")] == [
        "release",
        "prod-plan",
    ]


@pytest.mark.parametrize(
    ("job", "env"),
    [("test", "test"), ("prod", "prod")],
)
def test_deploys_upload_their_junit_results_even_when_the_tests_failed(
    workflow: dict[str, Any], job: str, env: str
) -> None:
    steps_ = workflow["jobs"][job]["steps"]
    [deploy] = [s for s in steps_ if f"--env {env}" in str(s.get("run", ""))]
    results = f'--junit "$RUNNER_TEMP/test-results/TEST-dbx-{env}.xml"'
    assert results in deploy["run"]
    [upload] = steps(workflow["jobs"][job], "actions/upload-artifact@")
    assert steps_.index(upload) == steps_.index(deploy) + 1
    # After a failed step a step runs only with a status function in its condition.
    assert upload["if"] == "${{ !cancelled() }}"
    assert upload["with"] == {
        "name": f"test-results-{env}",
        "path": "${{ runner.temp }}/test-results/",
        "if-no-files-found": "ignore",
    }


def test_the_nightly_watch_checks_status_and_runs_prods_smoke_tests(
    workflow: dict[str, Any],
) -> None:
    watch = workflow["jobs"]["watch"]
    assert watch["if"] == "github.event_name == 'schedule'"
    text = scripts(watch)
    assert "status --check" in text and "test --env prod" in text
    assert workflow["jobs"]["build"]["if"] == "github.event_name != 'schedule'"


def test_auth_is_github_oidc_and_no_secret_is_anywhere(workflow: dict[str, Any]) -> None:
    text = WORKFLOW.read_text()
    assert workflow["env"]["DBX_PROMOTE_AUTH"] == "github-oidc"
    assert not re.search(r"dapi[0-9a-f]{32}", text)
    for word in ("secrets.", "DATABRICKS_TOKEN", "client_secret", "password"):
        assert word.lower() not in text.lower()
    # Every job that reaches a workspace has an environment (a stable OIDC subject for the
    # federation policy) and may ask for an OIDC token; the build job may not.
    for name, job in workflow["jobs"].items():
        if name != "build":
            assert job.get("environment"), name
            assert job["permissions"] == {"contents": "read", "id-token": "write"}, name
    assert "permissions" not in workflow["jobs"]["build"]


def test_run_scripts_are_valid_bash(workflow: dict[str, Any]) -> None:
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                script = re.sub(r"\$\{\{.*?\}\}", "x", str(step["run"]))
                result = subprocess.run(
                    ["bash", "-n"], input=script, text=True, capture_output=True
                )
                assert result.returncode == 0, (script, result.stderr)
