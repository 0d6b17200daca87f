"""The baseline: the legacy `databricks-cli` (`databricks workspace import_dir -o`).

This is what the Microsoft "DevOps for Azure Databricks" marketplace task shells out to.
`ensure_legacy` installs it from PyPI into its own virtual environment (default
``benchmarks/.work/legacy-venv``) the first time; `import_dir` runs it against a workspace
(the emulator) with a throw-away config file, so no ``~/.databrickscfg`` is read or written.

Run alone: ``python benchmarks/legacy.py SRC TARGET_PATH HOST`` (installs, then imports).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / ".work" / "legacy-venv"
REQUIREMENT = "databricks-cli"


def _exe(venv_dir: Path, name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    suffix = ".exe" if os.name == "nt" else ""
    return venv_dir / sub / f"{name}{suffix}"


def ensure_legacy(venv_dir: Path = DEFAULT_VENV) -> tuple[Path, str]:
    """Install `databricks-cli` into ``venv_dir`` if needed; return (executable, version)."""
    exe = _exe(venv_dir, "databricks")
    if not exe.exists():
        if not _exe(venv_dir, "python").exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
        subprocess.run(
            [str(_exe(venv_dir, "python")), "-m", "pip", "install", "--quiet", REQUIREMENT],
            check=True,
        )
    out = subprocess.run(
        [str(exe), "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return exe, out.removeprefix("Version ").strip()


def legacy_env(host: str, config_dir: Path) -> dict[str, str]:
    """Environment for the legacy CLI pointed at the workspace ``host`` (``http://H:PORT``).

    The legacy CLI drops the port from its host (``api_client.py``: ``scheme://hostname``),
    so it cannot reach an emulator on a free port directly. It is given a portless host
    name instead and sends its requests through ``HTTP_PROXY`` = the emulator, which serves
    absolute-form request targets: one hop per request, exactly as without a proxy.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    portless = "http://legacy-benchmark.invalid"
    cfg = config_dir / "databrickscfg"
    cfg.write_text(f"[DEFAULT]\nhost = {portless}\ntoken = dapi-benchmark-not-a-secret\n")
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy")}
    env.update(
        DATABRICKS_HOST=portless,
        DATABRICKS_TOKEN="dapi-benchmark-not-a-secret",
        DATABRICKS_CONFIG_FILE=str(cfg),
        HTTP_PROXY=host,
        http_proxy=host,
    )
    return env


def import_dir(exe: Path, source: Path, target: str, host: str) -> dict[str, float | int]:
    """Run `databricks workspace import_dir -o SOURCE TARGET`; return wall time and max RSS."""
    with tempfile.TemporaryDirectory(prefix="legacy-cfg-") as tmp:
        env = legacy_env(host, Path(tmp))
        log = Path(tmp) / "output.txt"
        with log.open("wb") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [str(exe), "workspace", "import_dir", "-o", str(source), target],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            text = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"legacy import_dir failed ({code}): {text}")
    return {"seconds": seconds, "max_rss_mb": usage.ru_maxrss / 1024}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: legacy.py SRC TARGET_PATH HOST")
    cli, version = ensure_legacy()
    print(f"databricks-cli {version}")
    print(import_dir(cli, Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
