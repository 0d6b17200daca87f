"""Running the CLI in tests: in-process by default (fast), in a subprocess where a real
process is needed (signals, the console script), and building small releases with it."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = "dapi-test-token-not-secret"
HEADER = "# Databricks notebook source\n"


@dataclass(frozen=True)
class Built:
    path: Path
    version: str
    digest: str


def cli_env(host: str | None, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a pipeline step would give the CLI (no terminal, one workspace)."""
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
    return env


@contextlib.contextmanager
def _process_state(env: Mapping[str, str], cwd: Path | None) -> Iterator[None]:
    """Give `main` the environment and folder of a fresh process, then put ours back."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_sigterm = signal.getsignal(signal.SIGTERM)
    loggers = {n: logging.getLogger(n) for n in ("dbx_promote", "databricks.sdk")}
    saved_logging = {n: (lg.level, list(lg.handlers)) for n, lg in loggers.items()}
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        signal.signal(signal.SIGTERM, saved_sigterm)
        for name, (level, handlers) in saved_logging.items():
            loggers[name].setLevel(level)
            loggers[name].handlers[:] = handlers


def run_main(
    args: list[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    connect: Callable[..., Any] | None = None,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    """`dbx-promote ARGS` in this process: exit code, stdout and stderr as a subprocess
    would give them (stdin is not a terminal)."""
    from dbx_promote.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with (
        _process_state(os.environ if env is None else env, cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        saved_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            main(list(args), connect=connect)
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.stdin = saved_stdin
    if code is None:
        code = 0
    elif not isinstance(code, int):
        err.write(f"{code}\n")
        code = 1
    return subprocess.CompletedProcess(["dbx-promote", *args], code, out.getvalue(), err.getvalue())


def run_cli(
    cfg: Path,
    *args: str,
    host: str | None,
    extra_env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`dbx-promote --config CFG ARGS` the way a pipeline would run it (in-process)."""
    return run_main(["--config", str(cfg), *args], env=cli_env(host, extra_env), cwd=cwd)


def run_cli_process(
    cfg: Path, *args: str, host: str | None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Like `run_cli`, in a real subprocess (for what needs a process of its own)."""
    return subprocess.run(
        [sys.executable, "-m", "dbx_promote", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        env=cli_env(host, extra_env),
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


def ctrl_c_reaches_python() -> None:
    """`preexec_fn` for a CLI that a test stops with SIGINT: a shell's background job starts
    with SIGINT ignored, and a Python started so never turns it into KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
