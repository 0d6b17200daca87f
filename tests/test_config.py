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
    # Prod: readers read, the deploying service principal manages, under its own home.
    sp = "9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f"
    prod = cfg.environment("prod")
    assert prod.root.startswith(f"/Users/{sp}/")
    assert [g.to_json() for g in prod.permissions or ()] == [
        {"group": "sales-readers", "level": "CAN_READ"},
        {"service_principal": sp, "level": "CAN_MANAGE"},
    ]


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


# --- tests: per environment (issue 12) ---------------------------------------------------

TESTS_BASE = "project: app\nenvironments:\n  test:\n    root: /Shared/app/test\n    tests:\n"


def test_tests_settings_with_their_defaults(tmp_path):
    p = write(
        tmp_path, TESTS_BASE + "      notebooks: [tests/*]\n      compute: {serverless: true}\n"
    )
    tests = load_config(p).environment("test").tests
    assert tests is not None
    assert (tests.notebooks, dict(tests.compute), tests.compute_kind) == (
        ("tests/*",), {"serverless": True}, "serverless",
    )  # fmt: skip
    assert (tests.timeout_minutes, tests.parallel, tests.on_failure) == (30, 4, "none")
    assert load_config(p).environment("test").tests is not None


def test_tests_settings_in_full_with_widgets_as_strings(tmp_path):
    p = write(
        tmp_path,
        TESTS_BASE + "      notebooks: [tests/*, smoke_*]\n"
        "      compute: {new_cluster: {spark_version: 15.4.x-scala2.12, num_workers: 1}}\n"
        "      timeout_minutes: 20\n      parallel: 2\n      on_failure: rollback\n"
        "      parameters: {sample_rows: 1000, strict: true}\n",
    )
    tests = load_config(p).environment("test").tests
    assert tests is not None
    assert tests.compute["new_cluster"]["num_workers"] == 1
    assert dict(tests.parameters) == {"sample_rows": "1000", "strict": "true"}
    assert (tests.timeout_minutes, tests.parallel, tests.on_failure) == (20, 2, "rollback")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("      notebooks: [tests/*]\n", "tests.compute is required"),
        ("      notebooks: [tests/*]\n      compute: {}\n", "must be exactly one of"),
        ("      notebooks: [tests/*]\n      compute: {cluster: abc}\n", "unknown key 'cluster'"),
        (
            "      notebooks: [tests/*]\n      compute: {serverless: true, existing_cluster_id: c}\n",
            "must be exactly one of",
        ),
        (
            "      notebooks: [tests/*]\n      compute: {serverless: false}\n",
            "serverless must be true",
        ),
        (
            "      notebooks: [tests/*]\n      compute: {existing_cluster_id: ''}\n",
            "must be a cluster id",
        ),
        (
            "      notebooks: [tests/*]\n      compute: {new_cluster: {num_workers: 1}}\n",
            "spark_version",
        ),
        ("      notebooks: [tests/*]\n      compute: serverless\n", "compute must be one of"),
        ("      compute: {serverless: true}\n", "tests.notebooks is required"),
        ("      notebooks: []\n      compute: {serverless: true}\n", "at least one glob"),
        ("      notebooks: [/abs/*]\n      compute: {serverless: true}\n", "relative to the root"),
        (
            "      notebooks: [tests/*]\n      compute: {serverless: true}\n      on_failure: retry\n",
            "on_failure 'retry' is not one of: rollback, none",
        ),
        (
            "      notebooks: [tests/*]\n      compute: {serverless: true}\n      timeout_minutes: 0\n",
            "timeout_minutes must be an integer >= 1",
        ),
        (
            "      notebooks: [tests/*]\n      compute: {serverless: true}\n      timeout_minutes: -5\n",
            "timeout_minutes must be an integer >= 1",
        ),
        (
            "      notebooks: [tests/*]\n      compute: {serverless: true}\n      parallel: 0\n",
            "parallel must be an integer >= 1",
        ),
        (
            "      notebooks: [tests/*]\n      compute: {serverless: true}\n      parameters: {env: x}\n",
            "'env' is set by dbx-promote",
        ),
        (
            "      notebooks: [tests/*]\n      compute: {serverless: true}\n      retries: 2\n",
            "unknown key 'retries'",
        ),
    ],
)
def test_bad_tests_settings_are_refused(tmp_path, body, needle):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, TESTS_BASE + body))
    assert needle in str(err.value)
    assert err.value.exit_code == 2


def test_tests_problems_are_reported_with_the_rest_of_the_file(tmp_path):
    p = write(
        tmp_path,
        "project: app\nenvironments:\n  test:\n    root: /Shared\n"
        "    tests: {notebooks: [tests/*], compute: {gpu: 1}, on_failure: explode}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(p)
    text = str(err.value)
    assert "has 3 problems" in text
    assert "shared top-level folder" in text and "unknown key 'gpu'" in text and "explode" in text


@pytest.mark.parametrize("value", ["0", "-1", "two", "true"])
def test_keep_backups_below_one_is_refused(tmp_path, value):
    path = tmp_path / "dbx-promote.yml"
    path.write_text(
        "project: p\nsource: nb\nenvironments:\n"
        f"  test:\n    root: /Shared/p/test\n    keep_backups: {value}\n"
    )
    with pytest.raises(
        ConfigError, match=r"environments\.test\.keep_backups must be an integer >= 1"
    ):
        load_config(path)
