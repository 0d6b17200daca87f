"""azure-pipelines.yml: valid against the Azure Pipelines schema, and shaped build-once/promote-many."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from ci_helpers import SHARED_SCHEMAS

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "azure-pipelines.yml"
SCHEMAS = SHARED_SCHEMAS


@lru_cache(maxsize=1)
def _validator_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "validate_pipeline", SCHEMAS / "validate_pipeline.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def schema_validator() -> tuple[ModuleType, Any]:
    """The schema validator, compiled once per session (the schema is 1.6 MB)."""
    if not (SCHEMAS / "validate_pipeline.py").is_file():
        pytest.skip(f"shared schemas not found at {SCHEMAS} (they live beside the repository)")
    module = _validator_module()
    schema = json.loads((SCHEMAS / "azure-pipelines.schema.json").read_text())
    return module, module.make_validator(schema, "ado")


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    # BaseLoader: every scalar a string, as the Azure DevOps parser reads it.
    doc: dict[str, Any] = yaml.load(PIPELINE.read_text(), Loader=yaml.BaseLoader)
    return doc


def stage(pipeline: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in pipeline["stages"] if s["stage"] == name)


def steps_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    if "deployment" in job:
        return job["strategy"]["runOnce"]["deploy"]["steps"]
    return job["steps"]


def all_steps(st: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in st["jobs"]:
        yield from steps_of(job)


def scripts(st: dict[str, Any]) -> list[str]:
    out = []
    for step in all_steps(st):
        if "script" in step:
            out.append(step["script"])
        if step.get("task", "").startswith("AzureCLI@"):
            out.append(step["inputs"]["inlineScript"])
    return out


def test_pipeline_validates_against_the_schema(schema_validator: tuple[ModuleType, Any]) -> None:
    module, validator = schema_validator
    doc = module.load_yaml(PIPELINE.read_text(), "ado")
    assert module.report(validator, doc) == []


def test_triggers_main_tags_and_pull_requests(pipeline: dict[str, Any]) -> None:
    assert pipeline["trigger"]["branches"]["include"] == ["main"]
    assert pipeline["trigger"]["tags"]["include"] == ["v*"]
    assert pipeline["pr"]["branches"]["include"] == ["main"]


def test_stages_run_build_then_test_then_prod(pipeline: dict[str, Any]) -> None:
    assert [s["stage"] for s in pipeline["stages"]] == ["Build", "Test", "Prod", "Watch"]
    assert stage(pipeline, "Test")["dependsOn"] == "Build"
    assert stage(pipeline, "Prod")["dependsOn"] == "Test"


def test_deployment_jobs_target_the_gated_environments(pipeline: dict[str, Any]) -> None:
    envs = {
        s["stage"]: [j["environment"] for j in s["jobs"] if "deployment" in j]
        for s in pipeline["stages"]
    }
    assert envs == {"Build": [], "Test": ["dbx-test"], "Prod": ["dbx-prod"], "Watch": []}


def test_conditions_are_on_stages_never_on_deployment_jobs(pipeline: dict[str, Any]) -> None:
    """Environment approvals are requested even for jobs whose condition would skip them."""
    for st in pipeline["stages"]:
        for job in st["jobs"]:
            if "deployment" in job:
                assert "condition" not in job, job["deployment"]
    # Build skips only the nightly schedule (and with it Test and Prod, which depend on it).
    assert stage(pipeline, "Build")["condition"].startswith("ne(variables.isSchedule, true)")


def test_test_stage_runs_for_main_and_release_tags(pipeline: dict[str, Any]) -> None:
    condition = stage(pipeline, "Test")["condition"]
    assert "eq(variables.isMain, true)" in condition
    assert "eq(variables.isReleaseTag, true)" in condition
    variables = {v["name"]: v["value"] for v in pipeline["variables"] if "name" in v}
    assert variables["isMain"] == "$[eq(variables['Build.SourceBranch'], 'refs/heads/main')]"
    assert variables["isReleaseTag"] == (
        "$[startsWith(variables['Build.SourceBranch'], 'refs/tags/v')]"
    )


def test_prod_runs_only_for_release_tags(pipeline: dict[str, Any]) -> None:
    condition = stage(pipeline, "Prod")["condition"]
    assert condition == "and(succeeded(), eq(variables.isReleaseTag, true))"


def test_pull_requests_reach_no_deploy_stage(pipeline: dict[str, Any]) -> None:
    """A PR build's source branch is refs/pull/N/merge: neither isMain nor isReleaseTag."""
    for name in ("Test", "Prod"):
        condition = stage(pipeline, name)["condition"]
        assert condition.startswith("and(succeeded(), ")
        assert "isMain" in condition or "isReleaseTag" in condition
        assert "always()" not in condition and "PullRequest" not in condition


def test_release_artifact_is_published_once_in_build(pipeline: dict[str, Any]) -> None:
    publishes = [
        (s["stage"], step["inputs"]["artifact"])
        for s in pipeline["stages"]
        for step in all_steps(s)
        if step.get("task") == "PublishPipelineArtifact@1"
    ]
    assert publishes.count(("Build", "release")) == 1
    assert [p for p in publishes if p[1] == "release"] == [("Build", "release")]
    # The only other artifact is the read-only Prod plan, made before the gate.
    assert [p for p in publishes if p[1] != "release"] == [("Test", "prod-plan")]


def test_build_ships_the_tool_the_notebooks_and_the_config(pipeline: dict[str, Any]) -> None:
    build_script = "\n".join(scripts(stage(pipeline, "Build")))
    assert "make test" in build_script
    assert "-m build --wheel" in build_script
    assert "dbx-promote build --out" in build_script
    assert "cp dbx-promote.yml" in build_script


def test_deploy_stages_download_the_release_and_build_nothing(pipeline: dict[str, Any]) -> None:
    for name in ("Test", "Prod"):
        st = stage(pipeline, name)
        for job in st["jobs"]:
            steps = steps_of(job)
            downloads = [s.get("artifact") for s in steps if s.get("download") == "current"]
            assert "release" in downloads, (name, job)
            for step in steps:
                assert step.get("checkout", "none") == "none", (name, step)
                assert not step.get("task", "").startswith("PublishPipelineArtifact") or (
                    step["inputs"]["artifact"] != "release"
                )
        text = "\n".join(scripts(st))
        for forbidden in ("make ", "-m build", "dbx-promote build", "git "):
            assert forbidden not in text, (name, forbidden)


def test_deploy_steps_use_the_service_connection_and_map_the_access_token(
    pipeline: dict[str, Any],
) -> None:
    for name in ("Test", "Prod"):
        for step in all_steps(stage(pipeline, name)):
            if step.get("task", "").startswith("AzureCLI@"):
                assert step["inputs"]["azureSubscription"] == "$(serviceConnection)"
                assert step["env"]["DBX_PROMOTE_AUTH"] == "azure-pipelines"
                assert step["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"


def test_prod_jobs_see_both_workspaces_and_test_only_its_own(pipeline: dict[str, Any]) -> None:
    """Prod's `requires: test` reads Test's record in the Test workspace, so Prod jobs get
    both groups (DBX_PROMOTE_TEST_HOST, DBX_PROMOTE_PROD_HOST); Test never sees Prod's."""

    def groups(node: dict[str, Any]) -> list[str]:
        return [v["group"] for v in node.get("variables", []) if "group" in v]

    assert groups(stage(pipeline, "Test")) == ["dbx-test"]
    assert groups(stage(pipeline, "Prod")) == ["dbx-test", "dbx-prod"]
    plan_job = next(j for j in stage(pipeline, "Test")["jobs"] if j.get("job") == "PlanProd")
    assert groups(plan_job) == ["dbx-test", "dbx-prod"]


def test_test_stage_saves_the_prod_plan_and_prod_applies_it(pipeline: dict[str, Any]) -> None:
    test_text = "\n".join(scripts(stage(pipeline, "Test")))
    assert 'deploy "${zips[0]}" --env test' in test_text
    assert '--env prod --dry-run --plan-out "$plan/prod-plan.json"' in test_text
    prod = stage(pipeline, "Prod")
    prod_text = "\n".join(scripts(prod))
    assert '--env prod --plan "$(Pipeline.Workspace)/prod-plan/prod-plan.json"' in prod_text
    downloads = [s.get("artifact") for s in all_steps(prod) if s.get("download") == "current"]
    assert downloads == ["release", "prod-plan"]


def test_every_deploy_writes_junit_and_its_job_publishes_it_even_on_failure(
    pipeline: dict[str, Any],
) -> None:
    for name, env in (("Test", "test"), ("Prod", "prod")):
        (job,) = [j for j in stage(pipeline, name)["jobs"] if "deployment" in j]
        steps = list(all_steps({"jobs": [job]}))
        deploy = next(i for i, s in enumerate(steps) if "--env " + env in str(s.get("inputs")))
        assert f'--junit "$(Common.TestResultsDirectory)/TEST-dbx-{env}.xml"' in str(
            steps[deploy]["inputs"]["inlineScript"]
        )
        publish = steps[deploy + 1]
        assert publish["task"] == "PublishTestResults@2"
        assert publish["condition"] == "always()"
        assert publish["inputs"]["testResultsFormat"] == "JUnit"
        assert "TEST-dbx-*.xml" in publish["inputs"]["testResultsFiles"]
    # The Prod plan (and so Prod) waits for Test's deploy, whose tests must pass.
    plan_job = next(j for j in stage(pipeline, "Test")["jobs"] if j.get("job") == "PlanProd")
    assert plan_job["dependsOn"] == "DeployTest"


def test_no_secret_in_the_file(pipeline: dict[str, Any]) -> None:
    """Secrets come from the service connection and System.AccessToken, never the file."""
    text = PIPELINE.read_text()
    assert not re.search(r"dapi[0-9a-f]{32}", text)
    for word in ("client_secret", "password", "DATABRICKS_TOKEN"):
        assert word.lower() not in text.lower()
    for st in pipeline["stages"]:
        for step in all_steps(st):
            for name, value in step.get("env", {}).items():
                if "TOKEN" in name or "SECRET" in name:
                    assert re.fullmatch(r"\$\([A-Za-z.]+\)", value), (name, value)


MACRO = re.compile(r"\$\((?P<name>[A-Za-z]+(?:\.[A-Za-z]+)+)\)")


def test_scripts_use_only_predefined_macros_and_are_valid_bash(pipeline: dict[str, Any]) -> None:
    """Each script stands alone: agent macros, plain bash, nothing from outside the step."""
    predefined = {
        "Pipeline.Workspace",
        "Build.ArtifactStagingDirectory",
        "Agent.TempDirectory",
        "Common.TestResultsDirectory",
    }
    for st in pipeline["stages"]:
        for script in scripts(st):
            assert {m["name"] for m in MACRO.finditer(script)} <= predefined, script
            expanded = MACRO.sub("/tmp/agent", script)
            result = subprocess.run(["bash", "-n"], input=expanded, text=True, capture_output=True)
            assert result.returncode == 0, (script, result.stderr)


def test_a_nightly_schedule_watches_prod(pipeline: dict[str, Any]) -> None:
    """status --check and Prod's smoke tests, on main, even when nothing changed."""
    (schedule,) = pipeline["schedules"]
    assert schedule["branches"]["include"] == ["main"]
    assert schedule["always"] == "true"
    variables = {v["name"]: v["value"] for v in pipeline["variables"] if "name" in v}
    assert variables["isSchedule"] == "$[eq(variables['Build.Reason'], 'Schedule')]"
    watch = stage(pipeline, "Watch")
    assert watch["dependsOn"] == [] and watch["condition"] == "eq(variables.isSchedule, true)"
    text = "\n".join(scripts(watch))
    assert '"$venv/bin/dbx-promote" status --check; check=$?' in text
    assert '"$venv/bin/dbx-promote" test --env prod; smoke=$?' in text
    assert "exit $(( check || smoke ))" in text
