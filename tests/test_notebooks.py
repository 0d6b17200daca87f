"""Discovery and validation: every rule, each on its own small scenario.

Scenarios live in ``tests/scenarios/<name>/``; the ones that would put credential-shaped
strings, huge files, symlinks or odd names into the repository are built in ``tmp_path``.
Each refusal is checked twice: the `BuildError` problem list from the library, and the exit
code plus one-line message from the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from dbx_promote.cli import main
from dbx_promote.errors import BuildError
from dbx_promote.notebooks import (
    ALLOW_SECRET_MARKER,
    MAX_OBJECT_SIZE,
    SourceObject,
    discover,
    glob_match,
    object_bytes,
    workspace_path_problem,
)

SCENARIOS = Path(__file__).parent / "scenarios"
HEADER = "# Databricks notebook source\n"


def by_path(objects: list[SourceObject]) -> dict[str, SourceObject]:
    return {o.path: o for o in objects}


def problems_of(source: Path, **kwargs: object) -> list[str]:
    with pytest.raises(BuildError) as info:
        discover(source, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def run_build(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run ``dbx-promote build`` in-process on ``source``; (exit code, stdout, stderr)."""
    config = tmp_path / "dbx-promote.yml"
    config.write_text(
        f"project: demo\nsource: {json.dumps(str(source))}\n"
        "environments:\n  test:\n    root: /Shared/demo/test\n"
    )
    with pytest.raises(SystemExit) as info:
        main(
            [
                "--config",
                str(config),
                "build",
                "--version",
                "1.0.0",
                "--out",
                str(tmp_path / "dist"),
                *args,
            ]
        )
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def assert_refused(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], expected: str, *args: str
) -> None:
    code, _out, err = run_build(source, tmp_path, capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: cannot build:")
    assert expected in lines[0]
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())


# --- discovery rules -------------------------------------------------------------------------


@pytest.fixture
def discovery(tmp_path: Path) -> Path:
    """The discovery scenario plus the entries git would not keep (hidden, caches)."""
    src = tmp_path / "src"
    shutil.copytree(SCENARIOS / "discovery", src)
    for skipped in (".git/config", "__pycache__/mod.cpython-311.pyc", ".hidden/x.py"):
        (src / skipped).parent.mkdir(parents=True, exist_ok=True)
        (src / skipped).write_text(HEADER)
    (src / ".ipynb_checkpoints").mkdir()
    shutil.copy(
        src / "with_outputs.ipynb", src / ".ipynb_checkpoints/with_outputs-checkpoint.ipynb"
    )
    (src / ".env").write_text("X=1\n")
    return src


def test_source_notebooks_are_recognised_by_their_header_per_language(discovery: Path) -> None:
    objs = by_path(discover(discovery))
    expected = {
        "py_notebook.py": ("py_notebook", "PYTHON"),
        "sql_notebook.sql": ("sql_notebook", "SQL"),
        "scala_notebook.scala": ("scala_notebook", "SCALA"),
        "lower_r.r": ("lower_r", "R"),
        "upper_R.R": ("upper_R", "R"),
        "sub/deeper/nested.py": ("sub/deeper/nested", "PYTHON"),
        "crlf_notebook.py": ("crlf_notebook", "PYTHON"),
    }
    for path, (workspace_path, language) in expected.items():
        obj = objs[path]
        assert (obj.kind, obj.format, obj.workspace_path, obj.language) == (
            "notebook",
            "SOURCE",
            workspace_path,
            language,
        )


def test_files_without_a_header_become_workspace_files_with_extension(discovery: Path) -> None:
    objs = by_path(discover(discovery))
    for path in (
        "plain_module.py",
        "query_without_header.sql",
        "settings.json",
        "requirements.txt",
    ):
        assert (objs[path].kind, objs[path].format, objs[path].language) == ("file", "AUTO", None)
        assert objs[path].workspace_path == path


def test_ipynb_is_a_jupyter_notebook_with_its_kernel_language(discovery: Path) -> None:
    objs = by_path(discover(discovery))
    assert (objs["with_outputs.ipynb"].format, objs["with_outputs.ipynb"].language) == (
        "JUPYTER",
        "PYTHON",
    )
    assert objs["with_outputs.ipynb"].workspace_path == "with_outputs"
    assert objs["r_kernel.ipynb"].language == "R"


def test_hidden_entries_git_and_caches_are_skipped(discovery: Path) -> None:
    paths = set(by_path(discover(discovery)))
    assert not any(p.startswith((".", "__pycache__")) or "/." in p for p in paths)
    assert len(paths) == 13


def test_objects_are_sorted_by_path(discovery: Path) -> None:
    paths = [o.path for o in discover(discovery)]
    assert paths == sorted(paths)


def test_ipynb_outputs_and_execution_counts_are_stripped_by_default(discovery: Path) -> None:
    obj = by_path(discover(discovery))["with_outputs.ipynb"]
    stored = object_bytes(obj)
    nb = nbformat.reads(stored.decode(), as_version=4)
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None
    assert nb.cells[0].source == 'print("hello")'
    assert obj.size == len(stored)


def test_keep_outputs_stores_the_notebook_unchanged(discovery: Path) -> None:
    obj = by_path(discover(discovery, strip_outputs=False))["with_outputs.ipynb"]
    assert object_bytes(obj) == (discovery / "with_outputs.ipynb").read_bytes()


def test_include_and_exclude_globs_select_files(discovery: Path) -> None:
    objs = discover(discovery, include=("**/*.py", "*.sql"), exclude=("sub/**", "plain_*"))
    assert [o.path for o in objs] == [
        "crlf_notebook.py",
        "py_notebook.py",
        "query_without_header.sql",
        "sql_notebook.sql",
    ]


@pytest.mark.parametrize(
    ("path", "pattern", "matches"),
    [
        ("a.py", "**/*", True),
        ("x/y/a.py", "**/*.py", True),
        ("x/y/a.py", "*.py", True),
        ("x/y/a.py", "x/*.py", False),
        ("x/a.py", "x/*.py", True),
        ("x/y/a.py", "x/**", True),
        ("xa.py", "x/**", False),
    ],
)
def test_glob_semantics(path: str, pattern: str, matches: bool) -> None:
    assert glob_match(path, pattern) is matches


def test_missing_source_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="does not exist"):
        discover(tmp_path / "nope")


def test_empty_selection_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="nothing to build"):
        discover(tmp_path)


# --- refusals from scenario folders ----------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("collision", "a.py, a.sql: all map to workspace path 'a'"),
        ("notebook_folder_collision", "etl.py: workspace path 'etl' is also a folder"),
        ("invalid_ipynb_json", "broken.ipynb:3: invalid notebook: not JSON"),
        ("invalid_ipynb_v3", "old.ipynb: invalid notebook: nbformat 3, expected 4"),
        ("invalid_ipynb_schema", "no_cell_metadata.ipynb: invalid notebook: 'metadata'"),
        ("ipynb_missing_id", "no_ids.ipynb: invalid notebook: 'id' is a required property"),
        ("unsupported_kernel", "julia.ipynb: unsupported kernel language 'julia'"),
        ("reserved_environment", "_environment.py: the workspace cannot hold this path"),
    ],
)
def test_scenario_is_refused_with_a_one_line_reason(
    scenario: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = problems_of(SCENARIOS / scenario)
    assert any(expected in p for p in problems), problems
    assert_refused(SCENARIOS / scenario, tmp_path, capsys, expected)


def test_non_notebooks_are_refused_when_files_are_not_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert [o.kind for o in discover(SCENARIOS / "plain_file")] == ["file"]
    problems = problems_of(SCENARIOS / "plain_file", allow_files=False)
    assert problems == [
        "helpers.py: not a notebook (no Databricks header) and workspace files are not "
        "allowed; add the header, exclude it, or allow files"
    ]
    assert_refused(
        SCENARIOS / "plain_file", tmp_path, capsys, "helpers.py: not a notebook", "--no-files"
    )


def test_all_problems_of_a_build_are_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = problems_of(SCENARIOS / "many_problems")
    assert len(problems) == 3
    assert_refused(SCENARIOS / "many_problems", tmp_path, capsys, "cannot build: 3 problems")


# --- refusals built in tmp_path --------------------------------------------------------------

# Assembled at run time so that no credential-shaped string sits in the repository.
_HEX32 = "0123456789abcdef" * 2
_CREDENTIALS = {
    "pat": ("Databricks personal access token", f'token = "dapi{_HEX32}"'),
    "storage_key": ("Azure storage account key", f'key = "{"A" * 60 + "b" * 26}=="'),
    "sas": (
        "Azure SAS signature",
        'url = "https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=' + "x" * 43 + '%3D"',
    ),
    "aad_secret": ("Azure AD client secret", 'secret = "abc8Q~' + "y" * 34 + '"'),
    "aws": ("AWS access key id", 'aws_key = "AKIA' + "Q" * 16 + '"'),
    "private_key": ("private key block", "-----BEGIN RSA " + "PRIVATE KEY-----"),
    "password": ("password literal", 'password = "' + "hunter2" + '"'),
    "jdbc_password": ("password literal", '.option("password", "' + "s3cr3t" + '")'),
}


@pytest.mark.parametrize("name", sorted(_CREDENTIALS))
def test_credential_fails_the_build_with_file_and_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    what, line = _CREDENTIALS[name]
    src = tmp_path / "src"
    (src / "etl").mkdir(parents=True)
    (src / "etl" / "job.py").write_text(HEADER + "x = 1\n" + line + "\n")
    assert problems_of(src) == [
        f"etl/job.py:3: looks like a {what}; remove it (use a secret scope) or mark a false "
        f"positive with '{ALLOW_SECRET_MARKER}'"
    ]
    assert_refused(src, tmp_path, capsys, f"etl/job.py:3: looks like a {what}")


def test_allow_comment_silences_a_false_positive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    line = _CREDENTIALS["aws"][1]
    (src / "doc.py").write_text(HEADER + f"{line}  # {ALLOW_SECRET_MARKER}: AWS docs example\n")
    assert [o.path for o in discover(src)] == ["doc.py"]


def test_secret_reads_are_not_credentials(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.py").write_text(
        HEADER
        + 'password = dbutils.secrets.get("kv", "sql-password")\n'
        + 'df = spark.read.option("password", password).load()\n'
        + 'password = ""\n'
    )
    assert len(discover(src)) == 1


def test_credential_in_a_workspace_file_is_found_too(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "settings.json").write_text('{\n  "password": "' + "x1y2z3" + '"\n}\n')
    assert problems_of(src)[0].startswith("settings.json:2: looks like a password literal")


def test_file_over_10_mb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.csv").write_bytes(b"x" * (MAX_OBJECT_SIZE + 1))
    (src / "ok.py").write_text(HEADER)
    expected = f"big.csv: {MAX_OBJECT_SIZE + 1} bytes, over the workspace's 10 MB import limit"
    assert problems_of(src) == [expected]
    assert_refused(src, tmp_path, capsys, expected)


def test_symlink_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "outside.py").write_text(HEADER)
    os.symlink(tmp_path / "outside.py", src / "link.py")
    assert problems_of(src) == ["link.py: is a symbolic link; the workspace cannot hold links"]
    assert_refused(src, tmp_path, capsys, "link.py: is a symbolic link")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("clean .py", "name starts or ends with whitespace"),
        ("tab\there.py", "name holds a control or invisible character (U+0009)"),
        ("del\x7fhere.py", "name holds a control or invisible character (U+007F)"),
        ("bidi\u202ecod.py", "name holds a control or invisible character (U+202E)"),
        ("back\\slash.py", "backslash in the name"),
    ],
)
def test_path_the_workspace_cannot_hold_is_refused(
    name: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / name).write_text(HEADER)
    assert problems_of(src) == [f"{name}: the workspace cannot hold this path: {reason}"]
    assert_refused(src, tmp_path, capsys, reason)


def test_names_longer_than_the_workspace_allows_are_refused() -> None:
    # Local file systems stop at 255 bytes as well, so this rule is checked on the path.
    assert workspace_path_problem("a/" + "ü" * 128) == "name longer than 255 bytes"
    assert workspace_path_problem("a/" * 600 + "b") == "path longer than 1024 characters"
    assert workspace_path_problem("etl/clean_orders") is None
