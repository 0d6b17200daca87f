"""What the Azure Pipelines and GitHub Actions rehearsals share: the checkout, the Python a
hosted agent puts on PATH, and reading the record a deploy left in an emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dbx_promote.config import load_config
from dbx_promote.emulator import Emulator

from cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[1]
# A notebook of the sample project in Prod, and what a hand edit there makes of it.
PROD_NOTEBOOK = (
    f"{load_config(REPO / 'dbx-promote.yml').environment('prod').root}/ingest/load_orders"
)
HOTFIX = b"# Databricks notebook source\nprint('hotfix by hand')\n"


def release_checkout(tmp: Path, tag: str) -> Path:
    """The committed repository, cloned with full history and tagged as a release."""
    src = tmp / "src"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(src)], check=True)
    subprocess.run(["git", "-C", str(src), "tag", tag], check=True)
    # Stand-in for the .venv `make test` (skipped: we are inside pytest) creates in the clone.
    (src / ".venv").symlink_to(REPO / ".venv")
    return src


def python_toolcache(tmp: Path) -> Path:
    """A folder with the base Python 3.11 as python/python3 (UsePythonVersion, setup-python)."""
    toolcache = tmp / "hostedtoolcache" / "bin"
    toolcache.mkdir(parents=True)
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    for name in ("python", "python3"):
        (toolcache / name).symlink_to(base)
    return toolcache


def path_without_dev_venv() -> str:
    """PATH without the dev .venv: an agent has only what its steps install."""
    venv_bin = str(REPO / ".venv")
    return os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(venv_bin)
    )


def deployed_record(emu: Emulator, env: str) -> dict[str, Any]:
    """The sample project's deployment record in ``env`` (raises if there is none)."""
    root = load_config(REPO / "dbx-promote.yml").environment(env).root
    data: dict[str, Any] = json.loads(emu.read(f"{root}/.dbx-promote/deployment.json"))
    return data


def release_deployed(sources: Path, test: Emulator, prod: Emulator) -> None:
    """What a release run leaves behind, for rehearsing the nightly watch: the sample
    project of ``sources`` deployed (and tested) in test, then promoted to prod."""
    hosts = {"DBX_PROMOTE_TEST_HOST": test.url, "DBX_PROMOTE_PROD_HOST": prod.url}
    for env in ("test", "prod"):
        proc = run_cli(
            sources / "dbx-promote.yml", "deploy", "--env", env, host=None, extra_env=hosts
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
