"""`dbx-promote.yml`: every problem reported at once, credentials refused, roots checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbx_promote.config import load_config, validate_root
from dbx_promote.errors import ConfigError, UnknownEnvironment


def write(tmp: Path, text: str) -> Path:
    p = tmp / "dbx-promote.yml"
    p.write_text(text)
    return p


def test_the_sample_config_loads():
    cfg = load_config(Path(__file__).parents[1] / "dbx-promote.yml")
    assert cfg.project == "sales-analytics"
    assert cfg.environment("prod").requires == "test"
    assert cfg.environment("prod").approval is not None
    assert cfg.environment("test").ado_environment == "dbx-test"


def test_all_problems_are_reported_in_one_error(tmp_path):
    p = write(
        tmp_path,
        "project: app\nsurprise: 1\nenvironments:\n"
        "  test: {root: /Shared, keep_releases: 0, password: x}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(p)
    text = str(err.value)
    assert "unknown key 'surprise'" in text
    assert "shared top-level folder" in text
    assert "keep_releases" in text
    assert "credential" in text
    assert "\n" not in text


@pytest.mark.parametrize(
    "root",
    [
        "/",
        "/Shared",
        "/Users",
        "/Repos",
        "/Workspace",
        "/Workspace/Shared",
        "/Users/a@b.c",
        "x",
        "/a/../b",
    ],
)
def test_roots_that_are_refused(root):
    assert validate_root(root)


@pytest.mark.parametrize(
    "root", ["/Shared/app/test", "/Users/a@b.c/app", "/Projects/x", "/Workspace/Shared/x"]
)
def test_roots_that_are_fine(root):
    assert validate_root(root) == []


def test_a_requires_cycle_is_refused(tmp_path):
    p = write(
        tmp_path,
        "project: app\nenvironments:\n  a: {root: /Shared/a, requires: b}\n  b: {root: /Shared/b, requires: a}\n",
    )
    with pytest.raises(ConfigError, match="cycle"):
        load_config(p)


def test_a_token_value_is_refused_even_under_an_innocent_key(tmp_path):
    p = write(
        tmp_path,
        "project: app\nenvironments:\n  a:\n    root: /Shared/a\n"
        "    parameters: {note: dapi0123456789abcdef0123456789abcdef}\n",
    )
    with pytest.raises(ConfigError, match="Databricks token") as err:
        load_config(p)
    assert "dapi0123" not in str(err.value)


def test_yaml_errors_do_not_echo_the_file(tmp_path):
    p = write(tmp_path, "project: app\nenvironments: {a: [secret-value-123\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "secret-value-123" not in str(err.value)


def test_unknown_environment_names_the_known_ones(tmp_path):
    cfg = load_config(write(tmp_path, "project: app\nenvironments: {a: {root: /Shared/a}}\n"))
    with pytest.raises(UnknownEnvironment, match="defines: a"):
        cfg.environment("b")


def test_config_comes_from_the_environment_variable(tmp_path, monkeypatch):
    p = write(tmp_path, "project: fromenv\nenvironments: {a: {root: /Shared/a}}\n")
    monkeypatch.setenv("DBX_PROMOTE_CONFIG", str(p))
    assert load_config(None).project == "fromenv"


def test_missing_config_says_how_to_point_at_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--config"):
        load_config(None)


def test_user_placeholder_expands_and_is_checked_again(tmp_path):
    cfg = load_config(
        write(tmp_path, "project: app\nenvironments: {dev: {root: '/Users/{user}/app'}}\n")
    )
    assert cfg.environment("dev").resolved_root("me@example.com") == "/Users/me@example.com/app"


def test_two_environments_in_one_folder_are_refused(tmp_path):
    p = write(
        tmp_path,
        "project: app\nenvironments:\n  test: {root: /Shared/app}\n  prod: {root: /Shared/app/prod}\n",
    )
    with pytest.raises(ConfigError, match="share a folder"):
        load_config(p)


def test_the_same_root_in_two_workspaces_is_fine(tmp_path, monkeypatch):
    monkeypatch.setenv("DBX_PROMOTE_TEST_HOST", "https://adb-1.1.azuredatabricks.net")
    monkeypatch.setenv("DBX_PROMOTE_PROD_HOST", "https://adb-2.2.azuredatabricks.net")
    p = write(
        tmp_path,
        "project: app\nenvironments:\n  test: {root: /Shared/app}\n  prod: {root: /Shared/app}\n",
    )
    assert set(load_config(p).environments) == {"test", "prod"}
