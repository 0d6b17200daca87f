"""Rehearse .github/workflows/dbx-promote.yml: run its jobs' shell steps as a runner would.

A ``v*`` tag push runs build -> test -> plan-prod -> prod against an emulator workspace. The
``run:`` scripts are taken verbatim from the workflow; only the runner is simulated:

- ``${{ ... }}`` expressions (``vars.X``, ``runner.temp``, ``steps.<id>.outputs.<name>``,
  ``github.*``, ``!cancelled()``) and job ``if:`` conditions are evaluated by a small
  evaluator; ``needs:`` order is checked and a job whose needs were skipped is skipped;
- workflow, job and step ``env:`` are exported, with the runner's own variables
  (``GITHUB_ACTIONS``, ``GITHUB_WORKSPACE``, ``RUNNER_TEMP``, ``GITHUB_REF``,
  ``GITHUB_STEP_SUMMARY``, ``GITHUB_OUTPUT``...); every job gets a fresh ``RUNNER_TEMP``
  and workspace, so a later job sees only what it downloads;
- ``actions/checkout`` is a ``git clone`` of the committed repository, tagged ``v9.9.9``;
  ``actions/upload-artifact`` copies into an artifact store and ``download-artifact`` back;
  ``actions/setup-python`` puts the base Python 3.11 first on PATH (not the dev .venv);
- ``run:`` uses GitHub's default shell, ``bash --noprofile --norc -eo pipefail``.

The one difference from a real run is auth: there is no GitHub OIDC token here, so
``DBX_PROMOTE_AUTH`` (``github-oidc`` in the workflow) becomes ``pat`` with
``DATABRICKS_TOKEN`` for the emulator, and ``DATABRICKS_CLIENT_ID`` is dropped. The
``make test`` step is skipped (we are inside pytest); the clone's ``.venv`` it would create
is stood in for by the dev venv, as in the Azure rehearsal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dbx_promote.artifact import open_artifact
from dbx_promote.emulator import Emulator

from ci_helpers import load_workflow, parse_command, read_outputs
from rehearsal_helpers import (
    HOTFIX,
    PROD_NOTEBOOK,
    REPO,
    deployed_record,
    path_without_dev_venv,
    python_toolcache,
    release_checkout,
    release_deployed,
)

WORKFLOW = REPO / ".github" / "workflows" / "dbx-promote.yml"
TAG = "v9.9.9"
TOKEN = "dapi-rehearsal"
_RECURSIVE = re.compile(r"\bmake\s+(test|lint|typecheck|pytest)\b|\bpytest\b|\bruff\b|\bmypy\b")
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load() -> dict[str, Any]:
    doc: dict[str, Any] = load_workflow(WORKFLOW.read_text())
    return doc


# --- a small evaluator for the expressions the workflow uses -------------------------------

_TOKENS = re.compile(
    r"\s*(?:(?P<str>'[^']*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)|(?P<word>[A-Za-z_][\w.-]*))"
)


def evaluate(expr: str, context: dict[str, Any]) -> Any:
    """GitHub expressions: ==, !=, &&, ||, !, parentheses, strings, dotted context names,
    startsWith / contains / success / always / cancelled / failure (case-insensitive)."""
    tokens: list[str] = []
    pos, expr = 0, expr.strip()
    while pos < len(expr):
        m = _TOKENS.match(expr, pos)
        assert m and m.end() > pos, f"cannot parse {expr[pos:]!r}"
        tokens.append(m.group(m.lastgroup or "op"))
        pos = m.end()
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> str:
        nonlocal i
        i += 1
        return tokens[i - 1]

    def primary() -> Any:
        tok = take()
        if tok == "!":
            return not primary()
        if tok == "(":
            value = disjunction()
            assert take() == ")"
            return value
        if tok.startswith("'"):
            return tok[1:-1]
        if peek() == "(":
            take()
            args = []
            while peek() != ")":
                args.append(disjunction())
                if peek() == ",":
                    take()
            take()
            return call(tok.lower(), args)
        if tok in ("true", "false"):
            return tok == "true"
        value: Any = context
        for part in tok.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def comparison() -> Any:
        left = primary()
        while peek() in ("==", "!="):
            op, right = take(), primary()
            same = str(left).lower() == str(right).lower()
            left = same if op == "==" else not same
        return left

    def conjunction() -> Any:
        left = comparison()
        while peek() == "&&":
            take()
            right = comparison()
            left = left and right
        return left

    def disjunction() -> Any:
        left = conjunction()
        while peek() == "||":
            take()
            right = conjunction()
            left = left or right
        return left

    def call(fn: str, a: list[Any]) -> Any:
        failed = context.get("job", {}).get("status") == "failure"
        funcs = {
            "startswith": lambda: str(a[0]).lower().startswith(str(a[1]).lower()),
            "contains": lambda: str(a[1]).lower() in str(a[0]).lower(),
            "success": lambda: not failed,
            "always": lambda: True,
            "cancelled": lambda: False,
            "failure": lambda: failed,
        }
        assert fn in funcs, f"expression function {fn!r} not supported by the rehearsal"
        return funcs[fn]()

    value = disjunction()
    assert i == len(tokens), f"trailing tokens in {expr!r}"
    return value


def substitute(text: str, context: dict[str, Any]) -> str:
    return _EXPR.sub(lambda m: str(evaluate(m.group(1), context)), text)


_STATUS_FUNCTION = re.compile(r"\b(success|failure|always|cancelled)\(", re.IGNORECASE)


def step_runs(step: dict[str, Any], context: dict[str, Any]) -> bool:
    """A step's ``if:``; without a status function in it GitHub adds ``success() &&``, so
    after a failed step only steps that say ``always()``, ``!cancelled()``... run."""
    condition = _EXPR.sub(r"\1", str(step.get("if", "success()")))
    if not _STATUS_FUNCTION.search(condition):
        condition = f"success() && ({condition})"
    return bool(evaluate(condition, context))


def job_runs(job: dict[str, Any], context: dict[str, Any]) -> bool:
    condition = str(job.get("if", "success()"))
    return bool(evaluate(_EXPR.sub(r"\1", condition), context))


# --- the runner ------------------------------------------------------------------------------


class Runner:
    """Runs the workflow's jobs the way a GitHub-hosted runner would, closely enough."""

    def __init__(self, tmp: Path, sources: Path, variables: dict[str, str]) -> None:
        self.tmp = tmp
        self.sources = sources
        self.variables = variables
        self.artifacts = tmp / "artifact-store"
        self.artifacts.mkdir()
        self.outputs: dict[str, dict[str, str]] = {}  # job -> outputs
        self.summaries: dict[str, str] = {}  # job -> step summary text
        self.log: list[str] = []
        self.failures: list[str] = []  # steps that exited non-zero, with their output
        self.toolcache = python_toolcache(tmp)
        self.base_path = path_without_dev_venv()

    def github(self, event: str, ref: str) -> dict[str, str]:
        return {
            "event_name": event,
            "ref": ref,
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "repository": "contoso/sales-analytics",
            "run_id": "4711",
            "actor": "jane",
            "server_url": "https://github.com",
        }

    def run_workflow(self, workflow: dict[str, Any], event: str, ref: str) -> list[str]:
        """Run every job whose ``if:`` holds, in file order (needs checked); return those
        that succeeded. A failed job's later steps run only as their ``if:`` allows; a job
        that needs a failed or skipped one is skipped."""
        ran: list[str] = []
        skipped: set[str] = set()
        for name, job in workflow["jobs"].items():
            needs = job.get("needs") or []
            needs = [needs] if isinstance(needs, str) else needs
            context = {"github": self.github(event, ref), "vars": self.variables}
            context["needs"] = {n: {"outputs": self.outputs.get(n, {})} for n in needs}
            for need in needs:
                assert need in ran or need in skipped, f"{name} needs {need}, not yet run"
            if any(n in skipped for n in needs) or not job_runs(job, context):
                skipped.add(name)
                continue
            if self.run_job(workflow, name, job, context):
                ran.append(name)
            else:
                skipped.add(name)
        return ran

    def run_job(
        self, workflow: dict[str, Any], name: str, job: dict[str, Any], context: dict[str, Any]
    ) -> bool:
        home = self.tmp / "jobs" / name
        temp, workspace = home / "_temp", home / "workspace"
        for d in (temp, workspace):
            d.mkdir(parents=True)
        uses = [str(s.get("uses", "")) for s in job["steps"]]
        workdir = (
            self.sources if any(u.startswith("actions/checkout@") for u in uses) else workspace
        )
        state = Job(
            name,
            {},
            {**context, "runner": {"temp": str(temp)}, "steps": {}, "job": {"status": "success"}},
            workdir,
            home,
        )
        state.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABRICKS_", "GITHUB_", "RUNNER_", "DBX_PROMOTE_", "ACTIONS_"))
        }
        state.env.update(
            {
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(workdir),
                "RUNNER_TEMP": str(temp),
                "PATH": self.base_path,
                "DATABRICKS_CONFIG_FILE": str(home / "no-databrickscfg"),
                "PIP_NO_COMPILE": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                **{f"GITHUB_{k.upper()}": v for k, v in context["github"].items()},
                "GITHUB_JOB": name,
            }
        )
        for block in (workflow.get("env"), job.get("env")):
            state.env.update({k: state.sub(v) for k, v in (block or {}).items()})
        for index, step in enumerate(job["steps"]):
            self.run_step(state, index, step)
        summary = state.home / "step_summary.md"
        self.summaries[name] = summary.read_text() if summary.exists() else ""
        self.outputs[name] = {k: state.sub(v) for k, v in (job.get("outputs") or {}).items()}
        return state.context["job"]["status"] == "success"

    def run_step(self, job: Job, index: int, step: dict[str, Any]) -> None:
        if not step_runs(step, job.context):
            self.log.append(f"[{job.name}] skipped: {step.get('name') or step.get('uses')}")
            return
        uses = str(step.get("uses", ""))
        inputs = {k: job.sub(v) for k, v in (step.get("with") or {}).items()}
        if uses.startswith("actions/checkout@"):
            assert job.workdir == self.sources
        elif uses.startswith("actions/setup-python@"):
            assert inputs["python-version"] == "3.11"
            job.env["PATH"] = f"{self.toolcache}{os.pathsep}{job.env['PATH']}"
        elif uses.startswith("actions/upload-artifact@"):
            target = Path(inputs["path"])
            if inputs.get("if-no-files-found") == "ignore" and not (
                target.is_dir() and any(target.iterdir())
            ):
                return
            assert target.is_dir() and any(target.iterdir()), f"{job.name}: nothing at {target}"
            assert not (self.artifacts / inputs["name"]).exists(), f"{inputs['name']} twice"
            shutil.copytree(target, self.artifacts / inputs["name"])
        elif uses.startswith("actions/download-artifact@"):
            src = self.artifacts / inputs["name"]
            assert src.is_dir(), f"{job.name}: artifact {inputs['name']!r} was never uploaded"
            dest = Path(inputs["path"])
            shutil.copytree(src, dest if dest.is_absolute() else job.workdir / dest)
        elif "run" in step:
            self.run_script(job, index, step)
        else:
            raise AssertionError(f"{job.name}: the rehearsal does not know step {step}")

    def run_script(self, job: Job, index: int, step: dict[str, Any]) -> None:
        script = job.sub(step["run"])
        if _RECURSIVE.search(script):
            self.log.append(f"[{job.name}] skipped: {script.strip()}")
            return
        output = job.home / f"output-{index}"
        step_env = {
            **job.env,
            "GITHUB_STEP_SUMMARY": str(job.home / "step_summary.md"),
            "GITHUB_OUTPUT": str(output),
        }
        step_env.update({k: job.sub(v) for k, v in (step.get("env") or {}).items()})
        if job.workdir == self.sources:
            step_env["PYTHONPATH"] = str(self.sources / "src")  # stand-in for `pip install -e .`
        if "DBX_PROMOTE_AUTH" in step_env:
            # The only deviation from a real run: a PAT instead of GitHub OIDC.
            assert step_env["DBX_PROMOTE_AUTH"] == "github-oidc"
            step_env["DBX_PROMOTE_AUTH"] = "pat"
            step_env["DATABRICKS_TOKEN"] = TOKEN
            step_env.pop("DATABRICKS_CLIENT_ID", None)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=job.workdir,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.log.append(f"[{job.name}] {step.get('name', '')}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            job.context["job"]["status"] = "failure"
            self.failures.append(
                f"{job.name}: step {step.get('name')!r} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        if "id" in step:
            outputs = read_outputs(output) if output.exists() else {}
            job.context["steps"][step["id"]] = {"outputs": outputs}


@dataclass
class Job:
    """One job while it runs: its environment, expression context and folders."""

    name: str
    env: dict[str, str]
    context: dict[str, Any]
    workdir: Path
    home: Path

    def sub(self, value: object) -> str:
        return substitute(str(value), self.context)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """actions/checkout with fetch-depth 0: the committed repository, tagged as a release."""
    return release_checkout(tmp_path, TAG)


@pytest.mark.slow
def test_a_release_tag_builds_once_tests_plans_and_applies_the_plan_in_prod(
    tmp_path: Path, sources: Path, emulator: Emulator
) -> None:
    workflow = load()
    variables = {
        "DATABRICKS_CLIENT_ID": "9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f",
        "DBX_PROMOTE_TEST_HOST": emulator.url,
        "DBX_PROMOTE_PROD_HOST": emulator.url,
    }
    runner = Runner(tmp_path, sources, variables)
    ran = runner.run_workflow(workflow, "push", f"refs/tags/{TAG}")
    assert ran == ["build", "test", "plan-prod", "prod"], runner.failures

    release = runner.artifacts / "release"
    (wheel,) = release.glob("*.whl")
    (zip_,) = release.glob("*.zip")
    assert wheel.name.startswith("dbx_promote-") and (release / "dbx-promote.yml").is_file()
    artifact = open_artifact(zip_)
    assert artifact.version.startswith("9.9.9")
    # The build job's outputs come from dbx-promote build's $GITHUB_OUTPUT.
    assert runner.outputs["build"] == {"version": artifact.version, "digest": artifact.digest}
    assert any("skipped: make test" in line for line in runner.log)

    test_record, prod_record = deployed_record(emulator, "test"), deployed_record(emulator, "prod")
    assert test_record["digest"] == prod_record["digest"] == artifact.digest
    assert test_record["verified"] and prod_record["verified"]
    assert prod_record["pipeline"]["run_url"] == (
        "https://github.com/contoso/sales-analytics/actions/runs/4711"
    )
    assert prod_record["pipeline"]["job"] == "prod"
    assert (runner.artifacts / "prod-plan" / "prod-plan.json").is_file()
    # The approver reads the Prod plan in the plan-prod job's summary.
    assert "dbx-promote plan: prod" in runner.summaries["plan-prod"]
    # ... with Prod's permissions as code: readers granted on root by the first deploy.
    assert "- `group sales-readers: CAN_READ`" in runner.summaries["plan-prod"]
    assert "dbx-promote deployment: test" in runner.summaries["test"]
    # Each deploy's JUnit results are uploaded: Test's tests, Prod's smoke test.
    for env, notebook in (("test", "tests/test_helpers"), ("prod", "tests/smoke_prod")):
        junit = (runner.artifacts / f"test-results-{env}" / f"TEST-dbx-{env}.xml").read_text()
        assert f'<property name="env" value="{env}" />' in junit and notebook in junit
        assert 'failures="0" errors="0"' in junit and "<testcase" in junit
    assert TOKEN not in "\n".join(runner.log) + "".join(runner.summaries.values())


def test_which_jobs_run_for_which_event() -> None:
    workflow = load()
    runner_like = {"vars": {}}

    def jobs(event: str, ref: str) -> list[str]:
        ran: list[str] = []
        for name, job in workflow["jobs"].items():
            needs = job.get("needs") or []
            needs = [needs] if isinstance(needs, str) else needs
            context = {**runner_like, "github": {"event_name": event, "ref": ref}}
            if all(n in ran for n in needs) and job_runs(job, context):
                ran.append(name)
        return ran

    assert jobs("push", "refs/tags/v1.2.3") == ["build", "test", "plan-prod", "prod"]
    assert jobs("push", "refs/heads/main") == ["build", "test", "plan-prod"]
    assert jobs("pull_request", "refs/pull/7/merge") == ["build"]
    assert jobs("push", "refs/heads/feature") == ["build"]
    assert jobs("schedule", "refs/heads/main") == ["watch"]
    assert jobs("workflow_dispatch", "refs/heads/main") == ["build"]


@pytest.mark.slow
def test_the_nightly_watch_fails_on_a_drifted_prod_and_still_runs_its_smoke_tests(
    tmp_path: Path, sources: Path, emulator: Emulator
) -> None:
    release_deployed(sources, emulator, emulator)
    emulator.hand_edit(PROD_NOTEBOOK, HOTFIX)
    variables = {"DBX_PROMOTE_TEST_HOST": emulator.url, "DBX_PROMOTE_PROD_HOST": emulator.url}
    runner = Runner(tmp_path, sources, variables)

    assert runner.run_workflow(load(), "schedule", "refs/heads/main") == []
    [failure] = runner.failures
    assert failure.startswith(
        "watch: step 'Drift, interrupted deploys, stale locks, failed tests' exited 1"
    )
    # The finding is one error annotation on the run's page, naming the drifted notebook.
    stderr = failure.split("--- stderr\n", 1)[1]
    [(name, _, message)] = [parse_command(x) for x in stderr.splitlines() if x.startswith("::")]
    assert name == "error" and message.startswith("prod: drift: ")
    assert "ingest/load_orders" in message
    # The smoke test step still ran (`if: !cancelled()`), and Prod itself still works.
    smoke = [x for x in runner.log if x.startswith("[watch] Prod's smoke tests")]
    assert len(smoke) == 1 and "tests/smoke_prod" in smoke[0]
    assert deployed_record(emulator, "prod")["tests"]["outcome"] == "passed"
