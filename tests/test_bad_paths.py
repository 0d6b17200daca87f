"""Local paths that cannot work are bad input (issue 13, item 8): exit 2 and one line
about the path, never "internal error" and exit 1; an output that cannot be written is
refused before anything is sent to a workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dbx_promote.deploy import DeployOptions
from dbx_promote.reviewed import save_plan
from silent_host import SilentHost

from cli_helpers import HEADER, assert_error, run_cli
from deploy_helpers import V1, build, deploy

CONFIG = """\
project: app
source: notebooks
environments:
  test:
    root: /Shared/app/test
    tests: {notebooks: [tests/*], compute: {serverless: true}}
"""
LONG = "/tmp/" + "a" * 5000  # one name far over 255 bytes, the whole over 4096 characters
DEEP = "/tmp/" + "/".join(["b" * 200] * 30)  # names that fit, a path that does not


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "etl.py").write_text(HEADER + "print(1)\n")
    (tmp_path / "a-file").write_text("not a folder\n")
    path = tmp_path / "dbx-promote.yml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def silent() -> Iterator[SilentHost]:
    with SilentHost() as host:
        yield host


@pytest.mark.parametrize("path", [LONG, DEEP], ids=["long-name", "deep"])
@pytest.mark.parametrize(
    "args",
    [
        ["build", "--version", "1", "--out", "PATH"],
        ["verify", "PATH.zip"],
        ["inspect", "PATH.zip"],
        ["deploy", "PATH.zip", "--env", "test", "--dry-run"],
        ["deploy", "--env", "test", "--plan", "PATH.json"],
        ["deploy", "--env", "test", "--dry-run", "--plan-out", "PATH.json"],
        ["test", "--env", "test", "--junit", "PATH.xml"],
    ],
    ids=lambda a: " ".join(a[:1] + [x for x in a[1:] if x.startswith("--")][:1]),
)
def test_a_path_over_4096_characters_is_bad_input_not_an_internal_error(cfg, silent, args, path):
    args = [a.replace("PATH", path) for a in args]
    line = assert_error(run_cli(cfg, *args, host=silent.url), 2)
    assert "internal error" not in line
    assert len(line) < 400  # the path is shown cut short, not in full
    assert silent.accepted == 0  # refused before any connection


def test_a_config_path_over_4096_characters_is_bad_input(cfg):
    line = assert_error(run_cli(Path(LONG + ".yml"), "status", host=None), 2, "too long")
    assert "internal error" not in line


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["deploy", "--env", "test", "--dry-run", "--plan-out", "a-file/plan.json"], "--plan-out"),
        (["deploy", "--env", "test", "--junit", "a-file/t.xml"], "--junit"),
        (["test", "--env", "test", "--junit", "a-file/t.xml"], "--junit"),
        (["build", "--version", "1", "--out", "a-file/dist"], "--out"),
    ],
    ids=["plan-out", "deploy-junit", "test-junit", "build-out"],
)
def test_an_output_under_an_existing_file_is_refused_before_any_work(cfg, silent, args, option):
    args = [str(cfg.parent / a) if a.startswith("a-file") else a for a in args]
    assert_error(run_cli(cfg, *args, host=silent.url), 2, option, "is a file, not a folder")
    assert silent.accepted == 0


def test_a_source_holding_a_nul_byte_is_a_config_problem(cfg):
    cfg.write_text(CONFIG.replace("source: notebooks", 'source: "note\\0books"'))
    assert_error(run_cli(cfg, "build", "--version", "1", host=None), 2, "no control characters")


@pytest.mark.parametrize("name", ["DBX_PROMOTE_CONNECT_TIMEOUT", "DBX_PROMOTE_RETRY_TIMEOUT"])
def test_a_timeout_setting_beyond_a_day_is_bad_input_not_an_overflow(cfg, silent, name):
    result = run_cli(cfg, "status", "--env", "test", host=silent.url, extra_env={name: "1e300"})
    assert_error(result, 2, name, "at most 86400", "'1e300'")
    assert silent.accepted == 0


def test_a_source_date_epoch_beyond_what_a_zip_holds_is_bad_input(cfg):
    result = run_cli(
        cfg,
        "build",
        "--version",
        "1",
        host=None,
        extra_env={"SOURCE_DATE_EPOCH": "99999999999999999999"},
    )
    assert_error(result, 2, "SOURCE_DATE_EPOCH", "after 2107")
    assert not (cfg.parent / "dist").exists()


def test_a_build_into_a_file_or_onto_a_folder_names_it(cfg):
    dist = cfg.parent / "dist"
    dist.write_text("not a folder\n")
    assert_error(run_cli(cfg, "build", "--version", "1", host=None), 2, f"{dist} is a file")

    dist.unlink()
    (dist / "app-1.zip").mkdir(parents=True)
    assert_error(run_cli(cfg, "build", "--version", "1", host=None), 2, "app-1.zip is a folder")
    assert sorted(p.name for p in dist.iterdir()) == ["app-1.zip"]  # no temporary file left


def test_a_plan_that_cannot_be_named_leaves_no_temporary_file(emulator, fake_clock, tmp_path):
    """The CLI refuses such a name up front; the library, called directly, cleans up."""
    plan = deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"), DeployOptions(dry_run=True))
    out = tmp_path / "plans"
    out.mkdir()

    with pytest.raises(OSError):
        save_plan(plan.plan, out / ("p" * 300 + ".json"))
    assert list(out.iterdir()) == []
