"""`dbx-promote test`: bad input is one line and exit 2, before anything is submitted."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbx_promote.cli import main


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The CLI in this process (no subprocess): exit code, stdout, stderr."""
    code = 0
    try:
        main(list(argv))
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def config(tmp_path: Path, tests: str) -> Path:
    p = tmp_path / "dbx-promote.yml"
    p.write_text(
        "project: app\nenvironments:\n"
        "  test:\n    root: /Shared/app/test\n" + tests + "  prod:\n    root: /Shared/app/prod\n"
    )
    return p


def test_an_environment_without_tests_is_exit_2(tmp_path, capsys):
    cfg = config(tmp_path, "")
    code, _, err = run_main(capsys, "--config", str(cfg), "test", "--env", "prod")
    assert code == 2
    assert "environment 'prod' has no tests" in one_error_line(err)


def test_a_bad_tests_setting_is_exit_2_naming_it(tmp_path, capsys):
    cfg = config(
        tmp_path, "    tests: {notebooks: [t/*], compute: {serverless: true}, timeout_minutes: 0}\n"
    )
    code, _, err = run_main(capsys, "--config", str(cfg), "test", "--env", "test")
    assert code == 2
    assert "environments.test.tests.timeout_minutes must be an integer >= 1" in one_error_line(err)


def test_an_unknown_environment_is_exit_2(tmp_path, capsys):
    cfg = config(tmp_path, "")
    code, _, err = run_main(capsys, "--config", str(cfg), "test", "--env", "stage")
    assert code == 2
    assert "unknown environment 'stage'" in one_error_line(err)
