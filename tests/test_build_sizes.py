"""Sizes are judged on the bytes that are stored and imported (issue 13, item 7): a
notebook's outputs do not count when they are stripped; the workspace's 10 MiB limit, the
build and verify's zip-bomb test agree; a build that fails leaves no artifact in dist/."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from dbx_promote.notebooks import MAX_OBJECT_SIZE

from cli_helpers import HEADER, assert_error, run_cli

CONFIG = "project: app\nsource: notebooks\nenvironments:\n  test: {root: /Shared/app/test}\n"


def project(tmp: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (tmp / "notebooks" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "notebooks" / rel).write_bytes(data)
    cfg = tmp / "dbx-promote.yml"
    cfg.write_text(CONFIG)
    return cfg


def build(cfg: Path, *args: str):
    return run_cli(cfg, "build", "--version", "1.0.0", "--output", "json", *args, host=None)


def notebook_with_outputs(output_bytes: int) -> bytes:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        cells=[
            nbformat.v4.new_code_cell(
                "print('big')",
                outputs=[nbformat.v4.new_output("stream", text="x" * output_bytes)],
                execution_count=1,
            )
        ],
    )
    return nbformat.writes(nb).encode()


def source_notebook(size: int) -> bytes:
    """A Python notebook of exactly ``size`` bytes that compresses very well."""
    body = HEADER.encode() + b"# "
    return body + b"x" * (size - len(body) - 1) + b"\n"


def dist(cfg: Path) -> list[str]:
    folder = cfg.parent / "dist"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_ipynb_large_only_by_its_outputs_builds_when_they_are_stripped(tmp_path):
    cfg = project(tmp_path, {"report.ipynb": notebook_with_outputs(20 * 1024 * 1024)})
    assert (tmp_path / "notebooks" / "report.ipynb").stat().st_size > 20 * 1024 * 1024

    result = build(cfg)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["objects"] == 1


def test_the_same_ipynb_kept_with_its_outputs_is_refused_over_the_import_limit(tmp_path):
    cfg = project(tmp_path, {"report.ipynb": notebook_with_outputs(20 * 1024 * 1024)})
    assert_error(build(cfg, "--keep-outputs"), 2, "report.ipynb", "over the workspace's 10 MB")
    assert dist(cfg) == []


def test_an_ipynb_still_too_large_without_its_outputs_says_so(tmp_path):
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        cells=[nbformat.v4.new_code_cell("x = '" + "y" * (MAX_OBJECT_SIZE + 10) + "'")],
    )
    cfg = project(tmp_path, {"big.ipynb": nbformat.writes(nb).encode()})
    assert_error(build(cfg), 2, "big.ipynb", "without its outputs, over the workspace's 10 MB")


def test_a_notebook_of_exactly_the_limit_builds_verifies_and_deploys(tmp_path, emulator):
    cfg = project(tmp_path, {"exact.py": source_notebook(MAX_OBJECT_SIZE)})

    built = build(cfg)
    assert built.returncode == 0, built.stderr
    artifact = json.loads(built.stdout)["artifact"]
    assert run_cli(cfg, "verify", artifact, host=None).returncode == 0
    deployed = run_cli(cfg, "deploy", artifact, "--env", "test", host=emulator.url)

    assert deployed.returncode == 0, deployed.stderr
    assert "/Shared/app/test/exact" in emulator.tree("/Shared/app/test")


def test_one_byte_over_the_limit_is_refused_and_dist_stays_empty(tmp_path):
    cfg = project(tmp_path, {"exact.py": source_notebook(MAX_OBJECT_SIZE + 1)})
    assert_error(build(cfg), 2, "exact.py", f"{MAX_OBJECT_SIZE + 1} bytes")
    assert dist(cfg) == []


def test_a_build_whose_zip_does_not_verify_leaves_nothing_in_dist(tmp_path):
    # "c:x" reads as a Windows drive path to verify, which refuses it; discovery does not.
    cfg = project(tmp_path, {"c:x.py": source_notebook(100)})
    line = assert_error(build(cfg), 2, "does not verify, so it was not kept", "app-1.0.0.zip")
    assert ".tmp" not in line
    assert dist(cfg) == []
