"""Logging commands are read by the Azure Pipelines agent: one command per line, escaped."""

from __future__ import annotations

import pytest

from dbx_promote.azure import logging_commands as lc


def agent_unescape(value: str) -> str:
    """What the agent does to a value (CommandStringConvertor.Unescape, percents on)."""
    for token, repl in (("%3B", ";"), ("%0D", "\r"), ("%0A", "\n"), ("%5D", "]")):
        value = value.replace(token, repl)
    return value.replace("%AZP25", "%")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("two\nlines", "two%0Alines"),
        ("crlf\r\n", "crlf%0D%0A"),
        ("100%", "100%AZP25"),
        ("already %0A escaped", "already %AZP250A escaped"),
        ("a;b]c", "a;b]c"),
    ],
)
def test_escape_data_escapes_percent_and_line_breaks_only(raw: str, escaped: str) -> None:
    assert lc.escape_data(raw) == escaped
    assert agent_unescape(escaped) == raw


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a;b", "a%3Bb"),
        ("x]y", "x%5Dy"),
        ("50%;\n]", "50%AZP25%3B%0A%5D"),
    ],
)
def test_escape_property_also_escapes_separator_and_terminator(raw: str, escaped: str) -> None:
    assert lc.escape_property(raw) == escaped
    assert agent_unescape(escaped) == raw


def test_log_issue_is_one_line_even_for_a_multiline_message() -> None:
    line = lc.log_issue("error", "deploy failed\nrestored 1.2.2")
    assert line == "##vso[task.logissue type=error;]deploy failed%0Arestored 1.2.2"
    assert "\n" not in line


def test_log_issue_escapes_properties_that_could_end_the_command() -> None:
    line = lc.log_issue("warning", "bad", source_path="nb/a;b].py", line=3, code="X1")
    assert line == (
        "##vso[task.logissue type=warning;sourcepath=nb/a%3Bb%5D.py;linenumber=3;code=X1;]bad"
    )


def test_log_issue_refuses_unknown_types() -> None:
    with pytest.raises(ValueError):
        lc.log_issue("info", "x")  # type: ignore[arg-type]


def test_groups_wrap_collapsible_sections() -> None:
    assert lc.group_start("Plan for prod") == "##[group]Plan for prod"
    assert lc.group_start("two\nlines") == "##[group]two lines"
    assert lc.group_end() == "##[endgroup]"


def test_upload_summary_and_build_tag() -> None:
    assert lc.upload_summary("/tmp/s.md") == "##vso[task.uploadsummary]/tmp/s.md"
    assert lc.add_build_tag("v1.2.3") == "##vso[build.addbuildtag]v1.2.3"
    assert lc.add_build_tag("evil\n##vso[x]") == "##vso[build.addbuildtag]evil%0A##vso[x]"


def test_set_variable_output_and_secret_flags() -> None:
    assert lc.set_variable("dbxPromoteVersion", "1.2.3", is_output=True) == (
        "##vso[task.setvariable variable=dbxPromoteVersion;isOutput=true;]1.2.3"
    )
    assert lc.set_variable("v", "a\nb", is_secret=True) == (
        "##vso[task.setvariable variable=v;issecret=true;]a%0Ab"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TF_BUILD": "True"}, True),
        ({"TF_BUILD": "true"}, True),
        ({"TF_BUILD": "False"}, False),
        ({}, False),
    ],
)
def test_in_pipeline_reads_tf_build_case_insensitively(env: dict[str, str], expected: bool) -> None:
    assert lc.in_pipeline(env) is expected


RESULT = {
    "env": "prod",
    "version": "1.4.3",
    "digest": "sha256:abc",
    "dry_run": True,
    "changes": {
        "create": ["/Shared/x/prod/new"],
        "update": ["/Shared/x/prod/a|b"],
        "delete": [],
        "unchanged": 7,
        "drift": ["/Shared/x/prod/hand"],
        "unmanaged": [],
    },
    "verified": None,
}


def test_summary_has_counts_table_and_paths() -> None:
    md = lc.plan_summary_markdown(RESULT)
    assert md.startswith("## dbx-promote plan: prod\n")
    assert "| create | 1 |" in md
    assert "| unchanged | 7 |" in md
    assert "| drift | 1 |" in md
    assert "- `/Shared/x/prod/new`" in md
    assert "a\\|b" in md  # a pipe in a path must not split the table/list
    assert "Drift" in md


def test_summary_caps_long_lists() -> None:
    many = dict(RESULT, changes={"create": [f"/p/{i}" for i in range(120)], "unchanged": []})
    md = lc.plan_summary_markdown(many, cap=10)
    assert md.count("- `/p/") == 10
    assert "and 110 more" in md
    assert "| create | 120 |" in md


def test_summary_of_applied_deploy_states_verification() -> None:
    md = lc.plan_summary_markdown(dict(RESULT, dry_run=False, verified=True))
    assert "## dbx-promote deployment: prod" in md
    assert "Verified: yes" in md


def test_summary_tolerates_a_sparse_result() -> None:
    assert "| create | 0 |" in lc.plan_summary_markdown({"env": "test"})
