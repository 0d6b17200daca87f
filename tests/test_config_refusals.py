"""Configs that attack the parser or slip past the checks are refused with exit 2 and one
line naming the problem (issue 13, items 3 and 9): duplicate keys, alias bombs, control
characters in a root, a pace of NaN or infinity, home folders shown as written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dbx_promote.config import Environment, load_config
from dbx_promote.errors import ConfigError
from dbx_promote.yaml_loader import MAX_EXPANDED_VALUES

from cli_helpers import assert_error, run_cli

GOOD = "project: app\nenvironments:\n  test:\n    root: /Shared/app/test\n"


def write(tmp: Path, text: str) -> Path:
    p = tmp / "dbx-promote.yml"
    p.write_text(text, encoding="utf-8")
    return p


def refused(tmp: Path, text: str, *needles: str) -> str:
    """`status` with this config: exit 2, one line naming ``needles`` (nothing contacted)."""
    result = run_cli(write(tmp, text), "status", "--env", "test", host=None)
    return assert_error(result, 2, *needles)


def alias_bomb(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return GOOD + "\n".join(lines) + "\n"


# --- item 3: the parser ------------------------------------------------------------------


def test_a_key_given_twice_is_refused_with_its_line_not_silently_the_last(tmp_path):
    text = GOOD + "    root: /Shared/other\n"
    refused(tmp_path, text, "line 5", "key 'root' is given twice", "first at line 4")


def test_a_top_level_key_given_twice_is_refused(tmp_path):
    refused(tmp_path, GOOD + "project: other\n", "line 5", "key 'project'")


def test_an_alias_bomb_is_refused_in_moments_with_its_line(tmp_path):
    started = time.monotonic()
    line = refused(tmp_path, alias_bomb(9), "aliases expand to more than", "line ")
    assert time.monotonic() - started < 5
    assert f"{MAX_EXPANDED_VALUES:,}" in line


def test_an_alias_that_contains_itself_is_refused(tmp_path):
    refused(tmp_path, GOOD + "loop: &a [1, *a]\n", "line 5", "alias refers to")


def test_nesting_deeper_than_python_recurses_is_refused_not_an_internal_error(tmp_path):
    refused(tmp_path, GOOD + "deep: " + "[" * 20_000 + "]" * 20_000 + "\n", "too deeply")


def test_a_config_of_more_than_a_mebibyte_is_refused_unread(tmp_path):
    refused(tmp_path, GOOD + "#" * (1024 * 1024) + "\n", "larger than 1024 KiB")


def test_a_key_that_is_a_list_is_refused(tmp_path):
    refused(tmp_path, GOOD + "? [a, b]\n: x\n", "line 5", "a key must be a name")


def test_anchors_and_merge_keys_still_work_and_explicit_keys_override_merged_ones(tmp_path):
    text = (
        "project: app\n"
        "environments:\n"
        "  test: &test {root: /Shared/app/test, parallel: 4, keep_releases: 3}\n"
        "  prod: {<<: *test, root: /Shared/app/prod, parallel: 2}\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.environment("test").parallel == 4
    assert cfg.environment("prod").parallel == 2
    assert cfg.environment("prod").keep_releases == 3


def test_keys_are_the_text_written_so_yaml_1_1_booleans_do_not_change_names(tmp_path):
    text = "project: app\nenvironments:\n  yes: {root: /Shared/app/y}\n  1: {root: /Shared/app/1}\n"
    assert sorted(load_config(write(tmp_path, text)).environments) == ["1", "yes"]


# --- item 9: small gaps ------------------------------------------------------------------


@pytest.mark.parametrize(
    "root",
    ["/Shared/app\\n/x", "/Shared/app\\a", "/Shared/\\u202eppa", "/Shared/a\\u200bpp"],
    ids=["newline", "bell", "right-to-left-override", "zero-width-space"],
)
def test_a_root_holding_a_control_or_invisible_character_is_refused(tmp_path, root):
    text = f'project: app\nenvironments:\n  test:\n    root: "{root}"\n'
    refused(tmp_path, text, "control or invisible character (U+")


def test_a_root_longer_than_4096_characters_is_refused(tmp_path):
    root = "/Shared/" + "a" * 5000
    refused(tmp_path, f"project: app\nenvironments:\n  test: {{root: {root}}}\n", "at most 4096")


@pytest.mark.parametrize("rate", [".nan", ".inf", "-.inf", "-1", "1.0e-300", "0.001", "1.0e+9"])
def test_an_import_rate_of_nan_infinity_or_out_of_range_is_refused(tmp_path, rate):
    """1e-300 imports/s is an interval of 1e300 s: it overflowed the pacer mid-deploy."""
    text = GOOD + f"    import_rate: {rate}\n"
    refused(tmp_path, text, "import_rate must be 0 (no pacing) or from 0.01 to 10000")


@pytest.mark.parametrize("rate", ["0", "0.5", "30", "10000"])
def test_an_import_rate_in_range_is_kept(tmp_path, rate):
    cfg = load_config(write(tmp_path, GOOD + f"    import_rate: {rate}\n"))
    assert cfg.environment("test").import_rate == float(rate)


@pytest.mark.parametrize(
    ("key", "value", "most"),
    [
        ("parallel", "100000000", 64),
        ("keep_releases", "100000000000000000000000", 1000),
        ("keep_backups", "1001", 1000),
        ("lock_stale_minutes", "99999999999", 10080),
    ],
)
def test_a_count_far_beyond_any_use_is_refused_naming_the_key(tmp_path, key, value, most):
    text = GOOD + f"    {key}: {value}\n"
    refused(tmp_path, text, f"environments.test.{key} must be an integer >= 1 and <= {most}")


def test_the_largest_counts_allowed_are_kept(tmp_path):
    text = GOOD + "    parallel: 64\n    keep_releases: 1000\n"
    env = load_config(write(tmp_path, text)).environment("test")
    assert (env.parallel, env.keep_releases) == (64, 1000)


def test_a_home_folder_root_is_refused_quoting_the_root_as_written_not_a_stand_in(tmp_path):
    text = "project: app\nenvironments:\n  test: {root: '/Users/{user}'}\n"
    line = refused(tmp_path, text, "root '/Users/{user}' is a home folder", "/Users/{user}/project")
    assert "someone@example.com" not in line


def test_after_expansion_the_refusal_names_the_real_user():
    env = Environment(name="dev", root="/Shared/{user}/app")
    assert env.resolved_root("alice@example.com") == "/Shared/alice@example.com/app"
    with pytest.raises(ConfigError, match="'/Shared/bad\\\\nname/app'"):
        env.resolved_root("bad\nname")
