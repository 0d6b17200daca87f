"""Rehearse azure-pipelines.yml: run its script steps stage by stage, as an agent would.

Build -> Test (DeployTest, then PlanProd) -> Prod, against two emulator workspaces (test and
prod). The scripts are taken verbatim from the YAML; only the agent is simulated:

- macros ``$(Name)`` are expanded from the predefined variables, the pipeline/stage/job
  ``variables:`` and the variable groups (dbx-test / dbx-prod: ``DBX_PROMOTE_TEST_HOST`` /
  ``DBX_PROMOTE_PROD_HOST`` = the
  emulator URL); non-secret variables are also exported as environment variables,
  upper-cased with ``.`` -> ``_``, and the agent's predefined environment is set (``TF_BUILD``,
  ``BUILD_SOURCEBRANCH``, ``PIPELINE_WORKSPACE``, ``SYSTEM_*``...);
- every job gets fresh ``Pipeline.Workspace``, ``Build.ArtifactStagingDirectory`` and
  ``Agent.TempDirectory`` folders, so a later job sees only what it downloads;
- ``checkout: self`` is a ``git clone`` of the committed repository, tagged ``v9.9.9`` (a
  release run); ``PublishPipelineArtifact@1`` copies into an artifact store and
  ``download: current`` copies from it into ``$(Pipeline.Workspace)/<artifact>``;
- ``UsePythonVersion@0`` puts the base Python 3.11 first on PATH (not the dev .venv);
- ``AzureCLI@2`` runs its ``inlineScript`` with bash.

The one difference from a real run is auth: there is no Entra ID / workload identity
federation here, so ``DBX_PROMOTE_AUTH`` (``azure-pipelines`` in the YAML) is overridden to
``pat`` with ``DATABRICKS_TOKEN`` for the emulators.

The Build step running ``make test`` (lint, type-check, pytest) is skipped: we are already
inside pytest, and running the suite from within itself would recurse. Its side effect, the
clone's ``.venv`` used by the next step, is stood in for by the dev venv (with the clone's
``src`` first on ``PYTHONPATH``, as ``pip install -e .`` in the clone would give).

The deploy steps really ``pip install`` the wheel built by the Build stage into a fresh venv
(dependencies come from the package index / pip cache), three times; hence ``slow``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbx_promote.artifact import open_artifact
from dbx_promote.emulator import Emulator, JobRule

from rehearsal_helpers import (
    HOTFIX,
    PROD_NOTEBOOK,
    deployed_record,
    path_without_dev_venv,
    python_toolcache,
    release_checkout,
    release_deployed,
)

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "azure-pipelines.yml"
TAG = "v9.9.9"
TOKEN = "dapi-rehearsal"

# Script steps that would run the test suite (or its linters) inside the rehearsal: skipped.
_RECURSIVE = re.compile(r"\bmake\s+(test|lint|typecheck|pytest)\b|\bpytest\b|\bruff\b|\bmypy\b")
_MACRO = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def load_pipeline() -> dict[str, Any]:
    # BaseLoader: every scalar a string, as the Azure DevOps parser reads it.
    doc: dict[str, Any] = yaml.load(PIPELINE.read_text(), Loader=yaml.BaseLoader)
    return doc


def stage(pipeline: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in pipeline["stages"] if s["stage"] == name)


def steps_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    if "deployment" in job:
        steps: list[dict[str, Any]] = job["strategy"]["runOnce"]["deploy"]["steps"]
        return steps
    return list(job["steps"])


def job_name(job: dict[str, Any]) -> str:
    return str(job.get("deployment") or job["job"])


def variables_of(block: Any, groups: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Plain ``name/value`` variables plus the variable groups a ``variables:`` list names."""
    out: dict[str, str] = {}
    for item in block or []:
        if "group" in item:
            out.update(groups[item["group"]])
        else:
            out[item["name"]] = item["value"]
    return out


# --- a small evaluator for the condition / $[ ] expressions the YAML uses -------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'[^']*')|(?P<word>[A-Za-z_][A-Za-z0-9_.]*)|(?P<p>[(),\[\]]))")


def evaluate(expr: str, variables: Mapping[str, str], succeeded: bool = True) -> Any:
    """Evaluate an Azure Pipelines expression built from and/or/not/eq/ne/startsWith/succeeded,
    ``variables.x`` / ``variables['x']``, strings and booleans (case-insensitive, as Azure)."""
    tokens: list[str] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        assert m, f"cannot parse {expr[pos:]!r}"
        tokens.append(m.group(m.lastgroup or "p"))
        pos = m.end()

    def var(name: str) -> Any:
        value = variables[name]
        if value.startswith("$[") and value.endswith("]"):
            return evaluate(value[2:-1], variables, succeeded)
        return value

    def parse(i: int) -> tuple[Any, int]:
        tok = tokens[i]
        if tok.startswith("'"):
            return tok[1:-1], i + 1
        low = tok.lower()
        if low in ("true", "false"):
            return low == "true", i + 1
        if low == "variables" and tokens[i + 1] == "[":
            return var(tokens[i + 2][1:-1]), i + 4
        if low.startswith("variables."):
            return var(tok.split(".", 1)[1]), i + 1
        assert tokens[i + 1] == "(", f"unknown term {tok!r}"
        args: list[Any] = []
        i += 2
        while tokens[i] != ")":
            value, i = parse(i)
            args.append(value)
            if tokens[i] == ",":
                i += 1
        return call(low, args), i + 1

    def norm(v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    def truthy(v: Any) -> bool:
        return v if isinstance(v, bool) else str(v).lower() == "true"

    def eq(a: Any, b: Any) -> bool:
        if isinstance(a, bool) or isinstance(b, bool):
            return truthy(a) == truthy(b)
        return bool(norm(a) == norm(b))

    def call(fn: str, a: list[Any]) -> Any:
        funcs = {
            "and": lambda: all(truthy(x) for x in a),
            "or": lambda: any(truthy(x) for x in a),
            "not": lambda: not truthy(a[0]),
            "eq": lambda: eq(a[0], a[1]),
            "ne": lambda: not eq(a[0], a[1]),
            "startswith": lambda: str(a[0]).lower().startswith(str(a[1]).lower()),
            "succeeded": lambda: succeeded,
            "failed": lambda: not succeeded,
            "succeededOrFailed": lambda: True,  # only cancellation stops it
            "always": lambda: True,
        }
        assert fn in funcs, f"expression function {fn!r} not supported by the rehearsal"
        return funcs[fn]()

    value, end = parse(0)
    assert end == len(tokens), f"trailing tokens in {expr!r}"
    return value


# --- the agent -----------------------------------------------------------------------------


class Agent:
    """Runs jobs of the pipeline the way an Azure Pipelines agent would, closely enough."""

    def __init__(self, tmp: Path, sources: Path, groups: dict[str, dict[str, str]]) -> None:
        self.tmp = tmp
        self.sources = sources
        self.groups = groups
        self.artifacts = tmp / "artifact-store"  # what PublishPipelineArtifact uploads to
        self.artifacts.mkdir()
        self.build_id = "4242"
        self.log: list[str] = []
        self.failures: list[str] = []  # steps that exited non-zero, with their output
        self.test_results: list[Path] = []  # JUnit files PublishTestResults@2 picked up
        self.attempts: dict[str, int] = {}
        # UsePythonVersion@0: a Python 3.11 first on PATH; the dev venv is not on PATH.
        self.toolcache = python_toolcache(tmp)
        self.base_path = path_without_dev_venv()

    def run_job(
        self, pipeline: dict[str, Any], stage_: dict[str, Any], job: dict[str, Any], branch: str
    ) -> bool:
        """Run one job's steps; False when a step failed (later steps then run only when
        their condition allows it, e.g. ``always()``)."""
        name = job_name(job)
        self.attempts[name] = attempt = self.attempts.get(name, 0) + 1
        home = self.tmp / "jobs" / f"{name}-{attempt}"  # a rerun gets a fresh agent folder
        workspace, staging, agent_tmp = home / "w", home / "a", home / "_temp"
        results_dir = home / "TestResults"
        for d in (workspace, staging, agent_tmp, results_dir):
            d.mkdir(parents=True)
        is_deployment = "deployment" in job
        # Steps run in the sources directory; deployment jobs and checkout: none have an empty one.
        checks_out = any(s.get("checkout") == "self" for s in steps_of(job))
        workdir = self.sources if checks_out else home / "s"
        workdir.mkdir(exist_ok=True)

        variables = {
            "Build.SourceBranch": branch,
            "Build.BuildId": self.build_id,
            "Build.BuildNumber": f"20261129.{self.build_id}",
            "Build.SourcesDirectory": str(workdir),
            "Build.ArtifactStagingDirectory": str(staging),
            "Pipeline.Workspace": str(workspace),
            "Agent.TempDirectory": str(agent_tmp),
            "Common.TestResultsDirectory": str(results_dir),
            "System.DefaultWorkingDirectory": str(workdir),
            "System.CollectionUri": "https://dev.azure.com/org/",
            "System.TeamProject": "proj",
            "System.AccessToken": "dummy-system-access-token",
        }
        variables.update(variables_of(pipeline.get("variables"), self.groups))
        variables.update(variables_of(stage_.get("variables"), self.groups))
        variables.update(variables_of(job.get("variables"), self.groups))

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABRICKS_", "SYSTEM_", "BUILD_", "DBX_PROMOTE_", "TF_BUILD"))
        }
        # System.AccessToken is a secret: the agent does not export it unless mapped in env:.
        env.update(
            {
                re.sub(r"[.\s]", "_", k).upper(): v
                for k, v in variables.items()
                if k != "System.AccessToken"
            }
        )
        env.update(
            {
                "TF_BUILD": "True",
                "AGENT_TEMPDIRECTORY": str(agent_tmp),
                "PATH": self.base_path,
                # Nothing from the developer's ~/.databrickscfg (HOME stays: pip's index config).
                "DATABRICKS_CONFIG_FILE": str(home / "no-databrickscfg"),
                # Speed only: no .pyc compilation of the deps pip installs into each venv.
                "PIP_NO_COMPILE": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            }
        )

        def expand(text: str) -> str:
            def sub(m: re.Match[str]) -> str:
                key = m.group(1)
                if key in variables:
                    return variables[key]
                # The agent leaves unknown macros alone; a dotted one here is surely a typo.
                assert "." not in key, f"{name}: undefined variable $({key})"
                return m.group(0)

            return _MACRO.sub(sub, text)

        if is_deployment:
            assert not checks_out, f"{name}: deployment jobs must not check out the repository"

        ok = True
        for step in steps_of(job):
            task = step.get("task")
            condition = step.get("condition", "succeeded()")
            if not evaluate(condition, variables, ok):
                self.log.append(f"[{name}] skipped ({condition}): {step.get('displayName')}")
                continue
            if "checkout" in step:
                continue  # done: the sources directory is the clone (or empty)
            if "download" in step:
                assert step["download"] == "current"
                src = self.artifacts / step["artifact"]
                assert src.is_dir(), f"{name}: artifact {step['artifact']!r} was never published"
                shutil.copytree(src, workspace / step["artifact"])
            elif task == "UsePythonVersion@0":
                assert step["inputs"]["versionSpec"] == "3.11"
                env["PATH"] = f"{self.toolcache}{os.pathsep}{env['PATH']}"
            elif task == "PublishPipelineArtifact@1":
                artifact = step["inputs"]["artifact"]
                target = Path(expand(step["inputs"]["targetPath"]))
                assert target.is_dir(), f"{name}: nothing to publish at {target}"
                assert not (self.artifacts / artifact).exists(), f"{artifact} published twice"
                shutil.copytree(target, self.artifacts / artifact)
            elif task == "PublishTestResults@2":
                inputs = step["inputs"]
                assert inputs["testResultsFormat"] == "JUnit"
                found = sorted(Path("/").glob(expand(inputs["testResultsFiles"]).lstrip("/")))
                if not found and inputs.get("failTaskOnMissingResultsFile", False):
                    ok = False
                self.test_results.extend(found)
            elif "script" in step or task == "AzureCLI@2":
                script = step["script"] if "script" in step else step["inputs"]["inlineScript"]
                if task == "AzureCLI@2":
                    assert step["inputs"]["scriptType"] == "bash"
                if _RECURSIVE.search(script):
                    # Lint/type-check/pytest: skipped, we are running inside pytest already.
                    self.log.append(f"[{name}] skipped: {script.strip()}")
                    continue
                step_env = dict(env)
                step_env.update({k: expand(v) for k, v in (step.get("env") or {}).items()})
                if checks_out:
                    # Stand-in for `make test`'s `pip install -e .` in the clone's .venv.
                    step_env["PYTHONPATH"] = str(self.sources / "src")
                if "DBX_PROMOTE_AUTH" in step_env:
                    # The only deviation from a real run: PAT auth instead of workload identity.
                    assert step_env["DBX_PROMOTE_AUTH"] == "azure-pipelines"
                    step_env["DBX_PROMOTE_AUTH"] = "pat"
                    step_env["DATABRICKS_TOKEN"] = TOKEN
                proc = subprocess.run(
                    ["bash", "--noprofile", "--norc", "-c", expand(script)],
                    cwd=workdir,
                    env=step_env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                self.log.append(f"[{name}] {step.get('displayName', '')}\n{proc.stdout}")
                if proc.returncode != 0:
                    ok = False
                    self.failures.append(
                        f"{name}: step {step.get('displayName')!r} exited {proc.returncode}\n"
                        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
                    )
            else:
                raise AssertionError(f"{name}: the rehearsal does not know step {step}")
        return ok

    def run_stage(self, pipeline: dict[str, Any], name: str, branch: str) -> list[str]:
        """Run the stage's jobs in dependency order (file order, checked); return the names
        of those that succeeded. A job whose dependency failed is skipped, as on an agent."""
        stage_ = stage(pipeline, name)
        done: list[str] = []
        seen: set[str] = set()
        for job in stage_["jobs"]:
            deps = job.get("dependsOn") or []
            deps = [deps] if isinstance(deps, str) else deps
            for dep in deps:
                assert dep in seen, f"{job_name(job)} depends on {dep}, which comes later"
            seen.add(job_name(job))
            if all(dep in done for dep in deps) and self.run_job(pipeline, stage_, job, branch):
                done.append(job_name(job))
        return done


def stage_runs(
    pipeline: dict[str, Any], name: str, branch: str, reason: str = "IndividualCI"
) -> bool:
    """Would the stage run on ``branch`` for a run started for ``reason``? succeeded() holds
    when every stage it depends on (default: the one before it) would run."""
    stages = pipeline["stages"]
    stage_ = stage(pipeline, name)
    index = stages.index(stage_)
    deps = stage_.get("dependsOn", [stages[index - 1]["stage"]] if index else [])
    deps = [deps] if isinstance(deps, str) else deps
    succeeded = all(stage_runs(pipeline, d, branch, reason) for d in deps)
    variables = {"Build.SourceBranch": branch, "Build.Reason": reason}
    variables.update({v["name"]: v["value"] for v in pipeline.get("variables", [])})
    return bool(evaluate(stage_.get("condition", "succeeded()"), variables, succeeded))


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """checkout: self -- the committed repository, tagged as a release."""
    return release_checkout(tmp_path, TAG)


_record = deployed_record


def _rehearse_release(
    tmp_path: Path, sources: Path, emulator: Emulator, prod: Emulator, *, fail_first: bool
) -> None:
    """A tag run: Build -> Test (DeployTest, PlanProd) -> Prod; test on ``emulator``. With
    ``fail_first``, Test's first attempt has a failing test and the stage is rerun."""
    pipeline = load_pipeline()
    branch = f"refs/tags/{TAG}"
    groups = {
        "dbx-test": {"DBX_PROMOTE_TEST_HOST": emulator.url},
        "dbx-prod": {"DBX_PROMOTE_PROD_HOST": prod.url},
    }
    agent = Agent(tmp_path, sources, groups)
    assert [s["stage"] for s in pipeline["stages"]] == ["Build", "Test", "Prod", "Watch"]
    assert not stage_runs(pipeline, "Watch", branch)

    # Build: lint/tests skipped (recursion), wheel + notebook artifact + config published.
    assert stage_runs(pipeline, "Build", branch)
    assert agent.run_stage(pipeline, "Build", branch) == ["Build"], agent.failures
    release = agent.artifacts / "release"
    wheels = list(release.glob("*.whl"))
    zips = list(release.glob("*.zip"))
    assert len(wheels) == 1 and wheels[0].name.startswith("dbx_promote-")
    assert len(zips) == 1 and (release / "dbx-promote.yml").is_file()
    artifact = open_artifact(zips[0])
    assert artifact.version.startswith("9.9.9"), artifact.version
    assert any("skipped: make test" in line for line in agent.log)

    assert stage_runs(pipeline, "Test", branch)
    if fail_first:
        # Test, first attempt: a test notebook fails. The deploy step exits 1, the results are
        # published all the same, and no Prod plan is made.
        emulator.add_job_rule(
            JobRule(
                path_glob="/Shared/sales-analytics/test/tests/test_helpers",
                result_state="FAILED",
                error="AssertionError: scripted by the rehearsal",
                times=1,
            )
        )
        assert agent.run_stage(pipeline, "Test", branch) == []
        assert any("exited 1" in f and "1 of 3 tests failed" in f for f in agent.failures)
        (published,) = agent.test_results
        assert published.name == "TEST-dbx-test.xml"
        assert published.read_text().count("<failure") == 1
        assert "scripted by the rehearsal" in published.read_text()
        assert _record(emulator, "test")["tests"]["outcome"] == "failed"
        assert not (agent.artifacts / "prod-plan").exists()

    # Test (after a failure: the rerun of the stage, the same artifact with nothing to write;
    # its tests run again and pass), then the read-only Prod plan.
    agent.failures.clear()
    assert agent.run_stage(pipeline, "Test", branch) == ["DeployTest", "PlanProd"], agent.failures
    assert "<failure" not in agent.test_results[-1].read_text()
    test_record = _record(emulator, "test")
    assert test_record["tests"]["outcome"] == "passed"
    assert test_record["digest"] == artifact.digest
    assert test_record["verified"] is True
    assert test_record["env"] == "test"
    plan = agent.artifacts / "prod-plan" / "prod-plan.json"
    assert plan.is_file()
    with pytest.raises(Exception):  # noqa: B017 - nothing is in prod before the Prod stage
        _record(prod, "prod")

    # Prod (approval granted): apply exactly the reviewed plan; the smoke test runs after it.
    assert stage_runs(pipeline, "Prod", branch)
    assert agent.run_stage(pipeline, "Prod", branch) == ["DeployProd"], agent.failures
    prod_record = _record(prod, "prod")
    assert prod_record["tests"]["outcome"] == "passed"
    assert [t["notebook"] for t in prod_record["tests"]["tests"]] == ["tests/smoke_prod"]
    assert agent.test_results[-1].name == "TEST-dbx-prod.xml"
    assert prod_record["digest"] == test_record["digest"] == artifact.digest
    assert prod_record["verified"] is True
    assert prod_record["version"] == test_record["version"]

    output = "\n".join(agent.log)
    assert "##vso[task.uploadsummary]" in output
    # DATABRICKS_TOKEN is never printed.
    assert TOKEN not in output


@pytest.mark.slow
def test_release_run_one_workspace(tmp_path: Path, sources: Path, emulator: Emulator) -> None:
    """Test and Prod roots in one workspace: dbx-test and dbx-prod name the same host."""
    _rehearse_release(tmp_path, sources, emulator, emulator, fail_first=True)


@pytest.mark.slow
def test_release_run_two_workspaces(
    tmp_path: Path, sources: Path, emulator: Emulator, second_emulator: Emulator
) -> None:
    """Test and Prod in separate workspaces, as docs/azure-devops.md sets the groups up."""
    _rehearse_release(tmp_path, sources, emulator, second_emulator, fail_first=False)


@pytest.mark.slow
def test_the_nightly_watch_fails_on_a_drifted_prod_and_still_runs_its_smoke_tests(
    tmp_path: Path, sources: Path, emulator: Emulator, second_emulator: Emulator
) -> None:
    """The Watch stage of a scheduled run, after a release, once someone edited Prod."""
    release_deployed(sources, emulator, second_emulator)
    second_emulator.hand_edit(PROD_NOTEBOOK, HOTFIX)
    groups = {
        "dbx-test": {"DBX_PROMOTE_TEST_HOST": emulator.url},
        "dbx-prod": {"DBX_PROMOTE_PROD_HOST": second_emulator.url},
    }
    agent = Agent(tmp_path, sources, groups)
    pipeline = load_pipeline()
    assert stage_runs(pipeline, "Watch", "refs/heads/main", "Schedule")

    assert agent.run_stage(pipeline, "Watch", "refs/heads/main") == []
    [failure] = agent.failures
    assert failure.startswith("Watch: step 'status --check, then test --env prod' exited 1")
    # The finding is one logged issue, naming the drifted notebook; test is clean.
    issues = [x for x in failure.splitlines() if x.startswith("##vso[task.logissue")]
    assert len(issues) == 1 and issues[0].startswith("##vso[task.logissue type=error")
    assert "prod: drift: " in issues[0] and "ingest/load_orders" in issues[0]
    assert "ok    test: runs " in failure
    # The smoke tests ran after the failed check, and passed: Prod works, it drifted.
    assert "tests/smoke_prod" in failure
    assert _record(second_emulator, "prod")["tests"]["outcome"] == "passed"
    assert TOKEN not in failure


def test_prod_stage_runs_only_for_release_tags() -> None:
    pipeline = load_pipeline()
    prod = stage(pipeline, "Prod")
    variables = {v["name"]: v["value"] for v in pipeline["variables"]}
    assert "variables.isReleaseTag" in prod["condition"]
    assert (
        variables["isReleaseTag"] == "$[startsWith(variables['Build.SourceBranch'], 'refs/tags/v')]"
    )

    runs = {
        branch: [s["stage"] for s in pipeline["stages"] if stage_runs(pipeline, s["stage"], branch)]
        for branch in (
            "refs/tags/v9.9.9",
            "refs/heads/main",
            "refs/heads/feature",
            "refs/pull/7/merge",
        )
    }
    assert runs == {
        "refs/tags/v9.9.9": ["Build", "Test", "Prod"],
        "refs/heads/main": ["Build", "Test"],
        "refs/heads/feature": ["Build"],
        "refs/pull/7/merge": ["Build"],
    }
    # The nightly schedule on main runs only the watch.
    nightly = [
        s["stage"]
        for s in pipeline["stages"]
        if stage_runs(pipeline, s["stage"], "refs/heads/main", "Schedule")
    ]
    assert nightly == ["Watch"]
    # And a failed earlier stage stops everything after it.
    assert not evaluate(
        prod["condition"], {"Build.SourceBranch": "refs/tags/v1", **variables}, False
    )
