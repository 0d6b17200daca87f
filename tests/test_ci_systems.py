"""The CI seam: detection in one place, and each system's dialect as its runner reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbx_promote.ci import CISystem, detect, report_failure
from dbx_promote.ci.azure import AzurePipelines
from dbx_promote.ci.github import GitHubActions, escape_data, escape_property
from dbx_promote.errors import BuildError

from ci_helpers import (
    parse_command,
    read_outputs,
    runner_unescape_data,
    runner_unescape_property,
)


class Lines:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []


def github(env: dict[str, str]) -> tuple[CISystem, Lines]:
    lines = Lines()
    ci = detect({"GITHUB_ACTIONS": "true", **env}, out=lines.out.append, err=lines.err.append)
    return ci, lines


# --- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "system"),
    [
        ({"TF_BUILD": "True"}, AzurePipelines),
        ({"TF_BUILD": "true"}, AzurePipelines),
        ({"GITHUB_ACTIONS": "true"}, GitHubActions),
        ({"GITHUB_ACTIONS": "false"}, CISystem),
        ({"TF_BUILD": "False"}, CISystem),
        ({"CI": "true"}, CISystem),
        ({}, CISystem),
    ],
)
def test_detect_reads_each_systems_own_marker(env: dict[str, str], system: type) -> None:
    assert type(detect(env)) is system


def test_outside_ci_every_report_is_silent(tmp_path: Path) -> None:
    lines = Lines()
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
    ci = detect(env, out=lines.out.append, err=lines.err.append)
    assert not ci.active
    ci.error("e", file=tmp_path / "x.py", line=1)
    ci.warning("w")
    with ci.group("g"):
        pass
    ci.summary("# s", name="x")
    ci.tag("t")
    ci.outputs({"version": "1"})
    assert ci.run_context() is None
    assert lines.out == lines.err == []
    assert not summary.exists() and not outputs.exists()


# --- GitHub Actions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("two\nlines", "two%0Alines"),
        ("crlf\r\n", "crlf%0D%0A"),
        ("100%", "100%25"),
        ("already %0A escaped", "already %250A escaped"),
        ("a: b, c", "a: b, c"),
    ],
)
def test_github_data_escapes_percent_and_line_breaks(raw: str, escaped: str) -> None:
    assert escape_data(raw) == escaped
    assert runner_unescape_data(escaped) == raw


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("dir/a,b.py", "dir/a%2Cb.py"),
        ("C:x", "C%3Ax"),
        ("50%,\n:", "50%25%2C%0A%3A"),
    ],
)
def test_github_properties_also_escape_comma_and_colon(raw: str, escaped: str) -> None:
    assert escape_property(raw) == escaped
    assert runner_unescape_property(escaped) == raw


def test_annotations_name_the_file_relative_to_the_workspace_on_stderr(tmp_path: Path) -> None:
    ci, lines = github({"GITHUB_WORKSPACE": str(tmp_path)})
    ci.error("bad\nthing", file=tmp_path / "notebooks" / "a,b.py", line=3)
    ci.warning("careful")
    assert lines.out == []
    assert lines.err[0] == ("::error title=dbx-promote,file=notebooks/a%2Cb.py,line=3::bad%0Athing")
    assert parse_command(lines.err[0]) == (
        "error",
        {"title": "dbx-promote", "file": "notebooks/a,b.py", "line": "3"},
        "bad\nthing",
    )
    assert lines.err[1] == "::warning title=dbx-promote::careful"


def test_a_file_outside_the_workspace_keeps_its_path(tmp_path: Path) -> None:
    ci, lines = github({"GITHUB_WORKSPACE": str(tmp_path / "repo")})
    ci.error("x", file=tmp_path / "elsewhere.py")
    assert parse_command(lines.err[0])[1]["file"] == (tmp_path / "elsewhere.py").as_posix()


def test_a_message_cannot_inject_a_second_command() -> None:
    ci, lines = github({})
    ci.error("oops\n::add-mask::x\r\n::set-output name=a::b")
    assert len(lines.err) == 1 and "\n" not in lines.err[0] and "\r" not in lines.err[0]


def test_groups_fold_standard_output() -> None:
    ci, lines = github({})
    with ci.group("plan for prod\n(3 changes)"):
        lines.out.append("table")
    assert lines.out == ["::group::plan for prod (3 changes)", "table", "::endgroup::"]


def test_step_summary_is_appended_markdown(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    ci, lines = github({"GITHUB_STEP_SUMMARY": str(summary)})
    ci.summary("## plan test\n\n| a | b |", name="test")
    ci.summary("## plan prod", name="prod")
    assert summary.read_text() == "earlier step\n## plan test\n\n| a | b |\n\n## plan prod\n\n"
    assert lines.out == lines.err == []


def test_outputs_use_the_multiline_safe_form(tmp_path: Path) -> None:
    outputs = tmp_path / "output"
    outputs.write_text("earlier=1\n")
    ci, _ = github({"GITHUB_OUTPUT": str(outputs)})
    ci.outputs({"version": "1.2.3", "digest": "sha256:abc"})
    ci.outputs({"note": "two\nlines\nversion=evil"})
    text = outputs.read_text()
    assert re.search(r"^version<<ghadelimiter_[0-9a-f-]{36}$", text, flags=re.MULTILINE)
    assert read_outputs(outputs) == {
        "earlier": "1",
        "version": "1.2.3",
        "digest": "sha256:abc",
        "note": "two\nlines\nversion=evil",
    }


def test_without_the_runner_files_nothing_is_written(tmp_path: Path) -> None:
    ci, lines = github({})
    ci.summary("x", name="x")
    ci.outputs({"version": "1"})
    assert lines.out == lines.err == []


def test_github_run_context_names_the_run_actor_ref_and_sha() -> None:
    ci, _ = github(
        {
            "GITHUB_SERVER_URL": "https://github.example.com",
            "GITHUB_REPOSITORY": "contoso/notebooks",
            "GITHUB_RUN_ID": "987",
            "GITHUB_RUN_ATTEMPT": "2",
            "GITHUB_WORKFLOW": "dbx-promote",
            "GITHUB_JOB": "deploy-test",
            "GITHUB_ACTOR": "jane",
            "GITHUB_REF": "refs/tags/v1.2.3",
            "GITHUB_SHA": "0123abcd",
        }
    )
    assert ci.run_context() == {
        "ci": "github-actions",
        "repository": "contoso/notebooks",
        "workflow": "dbx-promote",
        "job": "deploy-test",
        "run_id": "987",
        "run_attempt": "2",
        "actor": "jane",
        "ref": "refs/tags/v1.2.3",
        "sha": "0123abcd",
        "run_url": "https://github.example.com/contoso/notebooks/actions/runs/987",
    }


# --- Azure Pipelines through the same seam --------------------------------------------------


def test_azure_speaks_vso_on_stdout(tmp_path: Path) -> None:
    lines = Lines()
    env = {"TF_BUILD": "True", "BUILD_SOURCESDIRECTORY": str(tmp_path), "AGENT_TEMPDIRECTORY": ""}
    ci = detect(env, out=lines.out.append, err=lines.err.append)
    ci.error("bad", file=tmp_path / "nb" / "a.py", line=2)
    ci.outputs({"version": "1.2.3", "digest": "sha256:abc"})
    ci.tag("dbx-test-1.2.3")
    ci.summary("## plan", name="test")
    assert lines.err == []
    assert lines.out[0] == "##vso[task.logissue type=error;sourcepath=nb/a.py;linenumber=2;]bad"
    assert lines.out[1:4] == [
        "##vso[task.setvariable variable=dbxPromoteVersion;isOutput=true;]1.2.3",
        "##vso[task.setvariable variable=dbxPromoteDigest;isOutput=true;]sha256:abc",
        "##vso[build.addbuildtag]dbx-test-1.2.3",
    ]
    uploaded = lines.out[4].removeprefix("##vso[task.uploadsummary]")
    assert Path(uploaded).read_text() == "## plan"
    Path(uploaded).unlink()


# --- build problems become annotations at their files ---------------------------------------


def test_build_problems_are_annotated_at_their_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    (source / "etl").mkdir(parents=True)
    (source / "etl" / "ingest.py").write_text("x\n")
    (source / "a.py").write_text("x\n")
    exc = BuildError(
        "cannot build: 3 problems",
        problems=[
            "etl/ingest.py:2: looks like a Databricks personal access token; remove it",
            "a.py, a.sql: all map to workspace path 'a'; rename all but one",
            "etl/ingest.py: no Databricks header",
        ],
        source=source,
    )
    ci, lines = github({"GITHUB_WORKSPACE": str(tmp_path)})
    report_failure(ci, "cannot build: 3 problems", exc)
    parsed = [parse_command(line) for line in lines.err]
    assert [(p[1].get("file"), p[1].get("line")) for p in parsed] == [
        ("notebooks/etl/ingest.py", "2"),
        (None, None),
        ("notebooks/etl/ingest.py", None),
    ]
    assert parsed[0][2] == (
        "etl/ingest.py: looks like a Databricks personal access token; remove it"
    )


def test_other_failures_are_one_error() -> None:
    ci, lines = github({})
    report_failure(ci, "unknown environment 'nope'", None)
    assert lines.err == ["::error title=dbx-promote::unknown environment 'nope'"]


def test_the_tests_summary_lists_each_test_and_what_failed() -> None:
    from dbx_promote.ci.markdown import tests_summary_markdown

    text = tests_summary_markdown(
        {
            "env": "prod",
            "version": "1.2.3",
            "digest": "sha256:abc",
            "outcome": "failed",
            "tests": [
                {"notebook": "tests/smoke_a", "status": "passed", "duration_s": 2.04},
                {
                    "notebook": "tests/smoke_b",
                    "status": "failed",
                    "duration_s": 1,
                    "run_page_url": "https://ws/run/7",
                    "error": "AssertionError: no rows\nTraceback ...",
                    "cases": [{"name": "rows|today", "status": "failed", "message": "0 rows"}],
                },
            ],
        }
    )
    assert text.startswith("## dbx-promote tests: prod — **FAILED**\n")
    assert "- 1 passed, 1 failed, 0 errored" in text
    assert "| `tests/smoke_a` | passed | 2.0 s |  |" in text
    assert "| `tests/smoke_b` | **FAILED** | 1.0 s | [run](https://ws/run/7) |" in text
    assert "- `tests/smoke_b`: AssertionError: no rows" in text
    assert "  - rows\\|today: 0 rows" in text
    assert tests_summary_markdown({}).startswith("## dbx-promote tests: ? — ?")
