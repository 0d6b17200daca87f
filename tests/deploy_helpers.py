"""Small builders for deploy tests: projects on disk, artifacts, deployers on the emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dbx_promote.artifact import Artifact, BuildOptions, build_artifact
from dbx_promote.config import Environment
from dbx_promote.deploy import Deployer, DeployOptions, DeployResult, target_from_artifact
from dbx_promote.emulator import Emulator
from dbx_promote.workspace import RetryPolicy, Workspace

from conftest import FakeClock, make_client

ROOT = "/Shared/app/test"

V1 = {
    "etl/ingest.py": "# Databricks notebook source\nprint('ingest v1')\n",
    "etl/clean.sql": "-- Databricks notebook source\nSELECT 1\n",
    "reports/summary.py": "# Databricks notebook source\nprint('summary v1')\n",
    "lib/helpers.py": "def helper():\n    return 1\n",
}
# v2: one changed, one added, one removed (with its folder).
V2 = {
    "etl/ingest.py": "# Databricks notebook source\nprint('ingest v2')\n",
    "etl/clean.sql": "-- Databricks notebook source\nSELECT 1\n",
    "etl/enrich.scala": "// Databricks notebook source\nprintln(1)\n",
    "lib/helpers.py": "def helper():\n    return 1\n",
}


def build(tmp: Path, files: dict[str, str], version: str, project: str = "app") -> Artifact:
    """Write ``files`` under a fresh source folder and build them as ``version``."""
    src = tmp / f"src-{version}"
    for rel, text in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return build_artifact(
        BuildOptions(project=project, source=src, version=version), tmp / f"dist-{version}"
    )


def environment(root: str = ROOT, **kw: object) -> Environment:
    return Environment(name="test", root=root, parameters={"catalog": "test_cat"}, **kw)  # type: ignore[arg-type]


def deployer(
    emu: Emulator,
    clock: FakeClock,
    env: Environment | None = None,
    attempts: int = 4,
    sleep: Callable[[float], None] | None = None,
) -> Deployer:
    """A fresh engine on ``emu``; retry sleeps cost nothing unless ``sleep`` is given
    (they advance ``clock``, which a retry deadline is then judged on)."""
    env = env or environment()
    ws = Workspace(
        make_client(emu.url, clock),
        sleep=sleep or clock.sleep,
        retry=RetryPolicy(attempts=attempts),
        **({} if sleep else {"clock": clock.time}),
    )
    user = ws.current_user()
    return Deployer(ws, env, env.resolved_root(user), user)


def deploy(
    emu: Emulator,
    clock: FakeClock,
    artifact: Artifact,
    options: DeployOptions | None = None,
    env: Environment | None = None,
) -> DeployResult:
    d = deployer(emu, clock, env)
    return d.deploy(target_from_artifact(artifact, d.env, d.user), options)


def managed_state(emu: Emulator, root: str = ROOT) -> dict[str, tuple[str, str]]:
    """{relative path: (object type, sha256)} of everything under root but our state folder."""
    out = {}
    for path, info in emu.tree(root).items():
        rel = path[len(root) + 1 :]
        if not rel or rel.startswith(".dbx-promote") or info["object_type"] == "DIRECTORY":
            continue
        out[rel] = (info["object_type"], info["sha256"])
    return out
