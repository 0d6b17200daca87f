"""Running the real CLI in a subprocess, and building small releases with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TOKEN = "dapi-test-token-not-secret"
HEADER = "# Databricks notebook source\n"


@dataclass(frozen=True)
class Built:
    path: Path
    version: str
    digest: str


def run_cli(
    cfg: Path, *args: str, host: str | None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m dbx_promote --config CFG ARGS` the way a pipeline would (no terminal)."""
    env = {
        **os.environ,
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_CONFIG_FILE": "/nonexistent",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "COLUMNS": "200",
        **(extra_env or {}),
    }
    if host:
        env["DATABRICKS_HOST"] = host
    return subprocess.run(
        [sys.executable, "-m", "dbx_promote", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def assert_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Exit ``code``, stderr exactly one line starting with 'error:', naming ``needles``."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def build_releases(
    base: Path, releases: dict[str, dict[str, str]], config: str
) -> dict[str, Built]:
    """Build each release's notebooks with `dbx-promote build` (outside git, so --version)."""
    out: dict[str, Built] = {}
    for version, files in releases.items():
        src = base / f"src-{version}"
        for rel, text in files.items():
            (src / "notebooks" / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / "notebooks" / rel).write_text(text)
        (src / "dbx-promote.yml").write_text(config)
        result = run_cli(
            src / "dbx-promote.yml",
            "build",
            "--version",
            version,
            "--out",
            str(base / "dist"),
            "--output",
            "json",
            host=None,
        )
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        out[version] = Built(Path(data["artifact"]), data["version"], data["digest"])
    return out
